#include "selection.h"

#include <fnmatch.h>

#include <algorithm>

#include "lcake/errors.hpp"

namespace lcake::core {

bool glob_match(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

std::vector<bool> named_layers(const Variant& v, const std::vector<std::string>& only) {
  std::vector<bool> sel(v.layers.size(), only.empty());
  for (std::size_t i = 0; i < v.layers.size(); ++i)
    for (const auto& g : only)
      if (glob_match(g, v.name) || glob_match(g, v.name + "/" + v.layers[i].name)) sel[i] = true;
  return sel;
}

std::vector<bool> with_ancestors(const Variant& v, std::vector<bool> sel) {
  for (std::size_t i = v.layers.size(); i-- > 0;) {
    if (!sel[i] || !v.layers[i].from) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (v.layers[j].name == *v.layers[i].from) sel[j] = true;
  }
  return sel;
}

std::vector<const Variant*> selected_variants(const std::vector<Variant>& variants,
                                              const std::vector<std::string>& only) {
  std::vector<const Variant*> out;
  for (const auto& v : variants) {
    auto named = named_layers(v, only);
    if (std::find(named.begin(), named.end(), true) != named.end()) out.push_back(&v);
  }
  if (out.empty() && !only.empty()) {
    std::string globs, names;
    for (const auto& g : only) globs += (globs.empty() ? "'" : ", '") + g + "'";
    for (const auto& v : variants) {
      names += (names.empty() ? "" : ", ") + v.name;
      if (names.size() > 200) break;
    }
    std::string example = variants.empty() || variants[0].layers.empty()
                              ? std::string("?")
                              : variants[0].name + "/" + variants[0].layers[0].name;
    throw lcake::InputError("--only " + globs + " matches no variant or layer; variants: " +
                            (names.empty() ? std::string("none") : names) +
                            " (layers are named like '" + example + "')");
  }
  return out;
}

}  // namespace lcake::core
