#include "clouds_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "lcake/errors.hpp"

namespace lcake::openstack {
namespace fs = std::filesystem;

namespace {

using Env = std::function<std::optional<std::string>(const std::string&)>;

Env env_of(const ConfigSources& s) {
  if (s.getenv) return s.getenv;
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string env_or(const Env& env, const char* name) { return env(name).value_or(""); }

fs::path home_of(const ConfigSources& s, const Env& env) {
  if (!s.home.empty()) return s.home;
  return env_or(env, "HOME");
}

// yaml-cpp nodes as nlohmann::json, so clouds.yaml and secure.yaml merge as plain data.
nlohmann::json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      std::string s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted: stays a string
      if (s == "true" || s == "True" || s == "yes") return true;
      if (s == "false" || s == "False" || s == "no") return false;
      return s;
    }
    default:
      return nullptr;
  }
}

nlohmann::json load_yaml(const fs::path& file, const std::string& label) {
  try {
    return to_json(YAML::LoadFile(file.string()));
  } catch (const YAML::ParserException& e) {
    throw InputError(label + " (" + file.string() + "): line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    throw InputError(label + " (" + file.string() + "): cannot read: " + e.msg);
  }
}

void merge(nlohmann::json& into, const nlohmann::json& from) {
  if (!from.is_object() || !into.is_object()) {
    into = from;
    return;
  }
  for (auto it = from.begin(); it != from.end(); ++it) {
    if (into.contains(it.key()) && into[it.key()].is_object() && it->is_object())
      merge(into[it.key()], *it);
    else
      into[it.key()] = *it;
  }
}

std::string str(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return "";
  if (obj[key].is_string()) return obj[key].get<std::string>();
  return obj[key].dump();
}

std::string normalise_auth_type(std::string t, const std::string& source) {
  if (t.empty() || t == "password" || t == "v3password") return "password";
  if (t == "v3applicationcredential" || t == "applicationcredential" || t == "application_credential")
    return "v3applicationcredential";
  if (t == "token" || t == "v3token") return "v3token";
  throw InputError(source + ": auth_type \"" + t +
                   "\" is not supported; use password, v3applicationcredential or token");
}

// The OS_* variables, as clouds.yaml keys: the CLI lets them override a named cloud.
const std::map<std::string, std::vector<const char*>> kAuthVars = {
    {"auth_url", {"OS_AUTH_URL"}},
    {"username", {"OS_USERNAME"}},
    {"user_id", {"OS_USER_ID"}},
    {"password", {"OS_PASSWORD"}},
    {"project_name", {"OS_PROJECT_NAME", "OS_TENANT_NAME"}},
    {"project_id", {"OS_PROJECT_ID", "OS_TENANT_ID"}},
    {"user_domain_name", {"OS_USER_DOMAIN_NAME"}},
    {"user_domain_id", {"OS_USER_DOMAIN_ID"}},
    {"project_domain_name", {"OS_PROJECT_DOMAIN_NAME"}},
    {"project_domain_id", {"OS_PROJECT_DOMAIN_ID"}},
    {"domain_name", {"OS_DOMAIN_NAME"}},
    {"domain_id", {"OS_DOMAIN_ID"}},
    {"application_credential_id", {"OS_APPLICATION_CREDENTIAL_ID"}},
    {"application_credential_name", {"OS_APPLICATION_CREDENTIAL_NAME"}},
    {"application_credential_secret", {"OS_APPLICATION_CREDENTIAL_SECRET"}},
    {"token", {"OS_TOKEN"}},
};
const std::map<std::string, std::vector<const char*>> kCloudVars = {
    {"auth_type", {"OS_AUTH_TYPE"}},     {"region_name", {"OS_REGION_NAME"}},
    {"interface", {"OS_INTERFACE", "OS_ENDPOINT_TYPE"}},
    {"cacert", {"OS_CACERT"}},           {"cert", {"OS_CERT"}},
    {"key", {"OS_KEY"}},                 {"insecure", {"OS_INSECURE"}},
};

// Overlays the OS_* variables that are set; returns their names.
std::vector<std::string> overlay_env(nlohmann::json& cloud, const Env& env) {
  std::vector<std::string> used;
  auto take = [&](nlohmann::json& into, const std::string& key, const std::vector<const char*>& names) {
    for (const char* n : names) {
      if (auto v = env(n); v && !v->empty()) {
        into[key] = *v;
        used.emplace_back(n);
        return;
      }
    }
  };
  if (!cloud.contains("auth") || !cloud["auth"].is_object()) cloud["auth"] = nlohmann::json::object();
  for (const auto& [key, names] : kAuthVars) take(cloud["auth"], key, names);
  for (const auto& [key, names] : kCloudVars) take(cloud, key, names);
  return used;
}

bool truthy(const nlohmann::json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    return s == "1" || s == "true" || s == "True" || s == "yes";
  }
  return false;
}

CloudConfig to_config(const nlohmann::json& cloud, const std::string& source) {
  CloudConfig c;
  c.source = source;
  const nlohmann::json& a = cloud.contains("auth") ? cloud["auth"] : nlohmann::json::object();
  c.auth_type = normalise_auth_type(str(cloud, "auth_type"), source);
  c.auth_url = str(a, "auth_url");
  c.username = str(a, "username");
  c.user_id = str(a, "user_id");
  c.password = str(a, "password");
  c.user_domain_name = str(a, "user_domain_name");
  c.user_domain_id = str(a, "user_domain_id");
  c.project_name = str(a, "project_name");
  if (c.project_name.empty()) c.project_name = str(a, "tenant_name");
  c.project_id = str(a, "project_id");
  if (c.project_id.empty()) c.project_id = str(a, "tenant_id");
  c.project_domain_name = str(a, "project_domain_name");
  c.project_domain_id = str(a, "project_domain_id");
  c.domain_name = str(a, "domain_name");
  c.domain_id = str(a, "domain_id");
  c.application_credential_id = str(a, "application_credential_id");
  c.application_credential_name = str(a, "application_credential_name");
  c.application_credential_secret = str(a, "application_credential_secret");
  c.token = str(a, "token");
  c.region_name = str(cloud, "region_name");
  if (std::string i = str(cloud, "interface"); !i.empty()) c.interface = i;
  else if (std::string e = str(cloud, "endpoint_type"); !e.empty()) c.interface = e;
  c.cacert = str(cloud, "cacert");
  c.cert = str(cloud, "cert");
  c.key = str(cloud, "key");
  if (cloud.contains("verify")) {
    const auto& v = cloud["verify"];
    std::string s = v.is_string() ? v.get<std::string>() : "";
    if (v.is_boolean() || s == "0" || s == "1" || s == "true" || s == "false") c.verify = truthy(v);
    else if (!s.empty() && c.cacert.empty()) c.cacert = s;  // requests-style: verify may name a CA bundle
  }
  if (cloud.contains("insecure") && truthy(cloud["insecure"])) c.verify = false;
  for (auto it = cloud.begin(); it != cloud.end(); ++it) {
    const std::string& k = it.key();
    const std::string suffix = "_endpoint_override";
    if (k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0 && it->is_string())
      c.endpoint_overrides[k.substr(0, k.size() - suffix.size())] = it->get<std::string>();
  }
  // An auth_type left out: the credentials given decide, as keystoneauth does.
  if (str(cloud, "auth_type").empty()) {
    if (!c.application_credential_secret.empty()) c.auth_type = "v3applicationcredential";
    else if (!c.token.empty() && c.password.empty()) c.auth_type = "v3token";
  }
  return c;
}

void validate(const CloudConfig& c, bool from_yaml) {
  auto where = [&](const char* yaml_key, const char* var) {
    return from_yaml ? std::string("auth.") + yaml_key + " in clouds.yaml/secure.yaml, or " + var
                     : std::string(var);
  };
  auto missing = [&](const std::string& what) { throw InputError(c.source + ": " + what); };
  if (c.auth_url.empty()) missing("auth_url missing (" + where("auth_url", "OS_AUTH_URL") + ")");
  if (c.interface != "public" && c.interface != "internal" && c.interface != "admin")
    missing("interface \"" + c.interface + "\" is not public, internal or admin");
  bool user_by_name = c.user_id.empty() && !c.username.empty();
  bool has_user_domain = !c.user_domain_name.empty() || !c.user_domain_id.empty() ||
                         !c.domain_name.empty() || !c.domain_id.empty();
  if (c.auth_type == "password") {
    if (c.username.empty() && c.user_id.empty())
      missing("password authentication needs a user (" + where("username", "OS_USERNAME") + ")");
    if (c.password.empty()) missing("password missing (" + where("password", "OS_PASSWORD") + ")");
    if (user_by_name && !has_user_domain)
      missing("user \"" + c.username + "\" needs its domain (" +
              where("user_domain_name", "OS_USER_DOMAIN_NAME") + ", or the _id form)");
  } else if (c.auth_type == "v3applicationcredential") {
    if (c.application_credential_secret.empty())
      missing("application credential secret missing (" +
              where("application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET") + ")");
    if (c.application_credential_id.empty()) {
      if (c.application_credential_name.empty())
        missing("application credential needs an id (" +
                where("application_credential_id", "OS_APPLICATION_CREDENTIAL_ID") + ") or a name and its user");
      if (c.username.empty() && c.user_id.empty())
        missing("application credential \"" + c.application_credential_name + "\" given by name needs its user (" +
                where("username", "OS_USERNAME") + " or user_id)");
      if (user_by_name && !has_user_domain)
        missing("user \"" + c.username + "\" needs its domain (" +
                where("user_domain_name", "OS_USER_DOMAIN_NAME") + ")");
    }
    return;  // application credentials carry their own scope
  } else if (c.auth_type == "v3token") {
    if (c.token.empty()) missing("token missing (" + where("token", "OS_TOKEN") + ")");
  }
  if (c.project_id.empty() && !c.project_name.empty() && c.project_domain_name.empty() &&
      c.project_domain_id.empty() && c.domain_name.empty() && c.domain_id.empty())
    missing("project \"" + c.project_name + "\" needs its domain (" +
            where("project_domain_name", "OS_PROJECT_DOMAIN_NAME") + ", or the _id form)");
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::vector<std::string> CloudConfig::secrets() const {
  std::vector<std::string> out;
  for (const std::string* s : {&password, &application_credential_secret, &token})
    if (!s->empty()) out.push_back(*s);
  return out;
}

fs::path find_clouds_file(const ConfigSources& sources, const char* basename) {
  Env env = env_of(sources);
  const char* var = std::string(basename) == "clouds.yaml" ? "OS_CLIENT_CONFIG_FILE" : "OS_CLIENT_SECURE_FILE";
  if (auto f = env(var); f && !f->empty()) {
    if (!fs::exists(*f)) throw InputError(std::string(var) + "=" + *f + ": no such file");
    return *f;
  }
  fs::path cwd = sources.cwd.empty() ? fs::current_path() : sources.cwd;
  fs::path home = home_of(sources, env);
  std::vector<fs::path> candidates = {cwd / basename};
  if (!home.empty()) candidates.push_back(home / ".config/openstack" / basename);
  candidates.push_back(sources.etc / basename);
  for (const auto& p : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p;
  }
  return {};
}

CloudConfig resolve_cloud(const std::string& cloud_setting, const std::string& region, const std::string& interface,
                          const ConfigSources& sources) {
  Env env = env_of(sources);
  std::string cloud_name = cloud_setting;
  std::string named_by = "the target's cloud setting";
  if (cloud_name.empty()) cloud_name = env_or(env, "OS_CLOUD"), named_by = "OS_CLOUD";

  CloudConfig config;
  if (!cloud_name.empty()) {
    fs::path file = find_clouds_file(sources, "clouds.yaml");
    if (file.empty()) {
      fs::path home = home_of(sources, env);
      throw InputError("cloud \"" + cloud_name + "\" (from " + named_by +
                       ") but no clouds.yaml found: set OS_CLIENT_CONFIG_FILE or create ./clouds.yaml, " +
                       (home.empty() ? std::string("~") : home.string()) + "/.config/openstack/clouds.yaml or " +
                       (sources.etc / "clouds.yaml").string());
    }
    nlohmann::json doc = load_yaml(file, "clouds.yaml");
    std::string label = "clouds.yaml (" + file.string() + ")";
    if (!doc.is_object() || !doc.contains("clouds") || !doc["clouds"].is_object())
      throw InputError(label + ": no \"clouds:\" mapping at the top");
    if (fs::path secure = find_clouds_file(sources, "secure.yaml"); !secure.empty()) {
      nlohmann::json sec = load_yaml(secure, "secure.yaml");
      if (sec.is_object() && sec.contains("clouds")) merge(doc["clouds"], sec["clouds"]);
      label += " + secure.yaml (" + secure.string() + ")";
    }
    if (!doc["clouds"].contains(cloud_name)) {
      std::vector<std::string> have;
      for (auto it = doc["clouds"].begin(); it != doc["clouds"].end(); ++it) have.push_back(it.key());
      throw InputError(label + ": cloud \"" + cloud_name + "\" (from " + named_by + ") not found (have: " +
                       (have.empty() ? std::string("none") : join(have, ", ")) + ")");
    }
    nlohmann::json cloud = doc["clouds"][cloud_name];
    if (!cloud.is_object()) throw InputError(label + ": cloud \"" + cloud_name + "\" is not a mapping");
    if (cloud.contains("profile"))
      throw InputError(label + ": cloud \"" + cloud_name +
                       "\" uses a profile (vendor defaults), which lcake does not read: write its auth_url and region_name out");
    std::vector<std::string> vars = overlay_env(cloud, env);
    std::string source = label + ": cloud \"" + cloud_name + "\"";
    if (!vars.empty()) source += " with " + join(vars, ", ") + " from the environment";
    config = to_config(cloud, source);
    config.cloud = cloud_name;
    validate(config, true);
  } else {
    nlohmann::json cloud = nlohmann::json::object();
    std::vector<std::string> vars = overlay_env(cloud, env);
    if (vars.empty())
      throw InputError(
          "no OpenStack credentials: name a cloud from clouds.yaml (the target's \"cloud\" setting or OS_CLOUD), "
          "or source an openrc file (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...)");
    config = to_config(cloud, "OS_* environment variables (" + join(vars, ", ") + ")");
    validate(config, false);
  }
  if (!region.empty()) config.region_name = region;
  if (!interface.empty()) {
    config.interface = interface;
    validate(config, !config.cloud.empty());
  }
  return config;
}

}  // namespace lcake::openstack
