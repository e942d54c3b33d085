#include "aws_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "lcake/errors.hpp"

namespace lcake::aws {
namespace fs = std::filesystem;
namespace {

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

fs::path expand_home(const std::string& path, const EnvLookup& env) {
  if (path.rfind("~/", 0) == 0 || path == "~") return fs::path(env("HOME").value_or("")) / path.substr(path.size() > 1 ? 2 : 1);
  return path;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

IniFile IniFile::parse(const std::string& text, const std::string& origin) {
  IniFile ini;
  std::istringstream in(text);
  std::string line, section, key;
  bool nested = false;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    bool indented = line[0] == ' ' || line[0] == '\t';
    if (t.front() == '[') {
      if (t.back() != ']')
        throw InputError(origin + ":" + std::to_string(lineno) + ": unterminated section header '" + t + "'");
      section = trim(t.substr(1, t.size() - 2));
      ini.sections[section];
      key.clear();
      continue;
    }
    if (section.empty())
      throw InputError(origin + ":" + std::to_string(lineno) + ": '" + t + "' is outside any [section]");
    std::size_t eq = t.find('=');
    if (indented && !key.empty()) {
      if (nested && eq != std::string::npos) {
        ini.sections[section][key + "." + trim(t.substr(0, eq))] = trim(t.substr(eq + 1));
      } else {
        ini.sections[section][key] += "\n" + t;  // a folded value
      }
      continue;
    }
    if (eq == std::string::npos)
      throw InputError(origin + ":" + std::to_string(lineno) + ": expected 'key = value', got '" + t + "'");
    key = trim(t.substr(0, eq));
    std::string value = trim(t.substr(eq + 1));
    nested = value.empty();
    if (!nested) ini.sections[section][key] = value;
  }
  return ini;
}

IniFile IniFile::load(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), file.string());
}

const std::map<std::string, std::string>* IniFile::section(const std::string& name) const {
  auto it = sections.find(name);
  return it == sections.end() ? nullptr : &it->second;
}

const char* signing_name(Service s) {
  switch (s) {
    case Service::ec2: return "ec2";
    case Service::ebs: return "ebs";
    case Service::s3: return "s3";
    case Service::sts: return "sts";
    case Service::ssm: return "ssm";
  }
  return "?";
}

AwsConfig AwsConfig::load(EnvLookup env, const std::string& profile_name, const std::string& region) {
  AwsConfig c;
  c.env = env;
  c.config_file = expand_home(env("AWS_CONFIG_FILE").value_or("~/.aws/config"), env);
  c.credentials_file = expand_home(env("AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials"), env);
  c.config = IniFile::load(c.config_file);
  c.credentials = IniFile::load(c.credentials_file);
  if (!profile_name.empty()) {
    c.profile = profile_name, c.profile_explicit = true;
  } else if (auto p = env("AWS_PROFILE"); p && !p->empty()) {
    c.profile = *p, c.profile_explicit = true;
  } else if (auto p2 = env("AWS_DEFAULT_PROFILE"); p2 && !p2->empty()) {
    c.profile = *p2, c.profile_explicit = true;
  }
  if (c.profile_explicit && !c.has_profile(c.profile))
    throw InputError("AWS profile '" + c.profile + "' is in neither " + c.config_file.string() +
                     " nor " + c.credentials_file.string() +
                     ": add it there or name another profile (AWS_PROFILE or the target's `profile`)");
  if (!region.empty()) {
    c.region = region, c.region_source = "the target's region setting";
  } else if (auto r = env("AWS_REGION"); r && !r->empty()) {
    c.region = *r, c.region_source = "AWS_REGION";
  } else if (auto r2 = env("AWS_DEFAULT_REGION"); r2 && !r2->empty()) {
    c.region = *r2, c.region_source = "AWS_DEFAULT_REGION";
  } else if (auto r3 = c.value("region")) {
    c.region = *r3, c.region_source = "profile " + c.profile + " in " + c.config_file.string();
  }
  return c;
}

std::map<std::string, std::string> AwsConfig::profile_values(const std::string& name) const {
  std::map<std::string, std::string> out;
  const auto* s = config.section("profile " + name);
  if (!s && name == "default") s = config.section("default");
  if (s) out = *s;
  if (const auto* cred = credentials.section(name))
    for (const auto& [k, v] : *cred) out[k] = v;
  return out;
}

bool AwsConfig::has_profile(const std::string& name) const {
  return config.section("profile " + name) || credentials.section(name) ||
         (name == "default" && config.section("default"));
}

std::optional<std::string> AwsConfig::value(const std::string& key) const {
  auto values = profile_values(profile);
  auto it = values.find(key);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::string AwsConfig::endpoint(Service s, const std::string& in_region) const {
  std::string svc = signing_name(s);
  bool ignore = false;
  if (auto v = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) ignore = *v == "true";
  if (auto v = value("ignore_configured_endpoint_urls")) ignore = ignore || *v == "true";
  if (!ignore) {
    if (auto v = env("AWS_ENDPOINT_URL_" + upper(svc)); v && !v->empty()) return *v;
    if (auto v = env("AWS_ENDPOINT_URL"); v && !v->empty()) return *v;
    if (auto services = value("services")) {
      if (const auto* sec = config.section("services " + *services)) {
        auto it = sec->find(svc + ".endpoint_url");
        if (it != sec->end() && !it->second.empty()) return it->second;
      }
    }
    if (auto v = value("endpoint_url")) return *v;
  }
  if (in_region.empty()) require_region();
  return "https://" + svc + "." + in_region + ".amazonaws.com";
}

const std::string& AwsConfig::require_region() const {
  if (region.empty())
    throw InputError("no AWS region: set the target's `region`, AWS_REGION or AWS_DEFAULT_REGION, or "
                     "`region` in profile " + profile + " of " + config_file.string());
  return region;
}

}  // namespace lcake::aws
