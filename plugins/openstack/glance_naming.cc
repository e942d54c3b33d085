#include "glance_naming.h"

#include <algorithm>
#include <ctime>

#include "lcake/errors.hpp"

namespace lcake::openstack {

std::string utc_stamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

NameVars naming_vars(const LayerInfo& l) {
  std::string upload_key = l.upload_key.empty() ? l.key : l.upload_key;
  return {{"variant", l.variant},
          {"layer", l.layer},
          {"key", l.key},
          {"key12", l.key.substr(0, 12)},
          {"upload_key", upload_key},
          {"upload_key12", upload_key.substr(0, 12)},
          {"target", l.target},
          {"pipeline", l.pipeline},
          {"date", utc_stamp().substr(0, 8)}};
}

std::string render_name(const std::string& tmpl, const std::string& where,
                        const NameVars& vars) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    std::size_t open = tmpl.find("${", i);
    if (open == std::string::npos) {
      out += tmpl.substr(i);
      break;
    }
    out += tmpl.substr(i, open - i);
    std::size_t close = tmpl.find('}', open);
    if (close == std::string::npos) throw InputError(where + ": unclosed ${ in \"" + tmpl + "\"");
    std::string key = tmpl.substr(open + 2, close - open - 2);
    auto it = std::find_if(vars.begin(), vars.end(), [&](const auto& kv) { return kv.first == key; });
    if (it == vars.end()) {
      std::string names;
      for (const auto& kv : vars) names += (names.empty() ? "${" : ", ${") + kv.first + "}";
      throw InputError(where + ": unknown ${" + key + "} in \"" + tmpl + "\"; use " + names);
    }
    out += it->second;
    i = close + 1;
  }
  if (out.empty() || out.size() > 255) throw InputError(where + ": \"" + out + "\" is not a usable image name (1-255 characters)");
  return out;
}

}  // namespace lcake::openstack
