// Where OpenStack credentials come from, the way the `openstack` CLI finds them:
// a named cloud in clouds.yaml (secure.yaml merged in), else the openrc OS_*
// variables. The result names its source, for error messages.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lcake::openstack {

// Everything Keystone authentication and endpoint selection needs. Empty: not set.
struct CloudConfig {
  std::string source;      // "clouds.yaml (/path): cloud \"devstack\"" or "OS_* environment variables"
  std::string cloud;       // the cloud's name ("" for the environment)
  std::string auth_type;   // "password" | "v3applicationcredential" | "v3token" (normalised)
  std::string auth_url;
  std::string username, user_id, password;
  std::string user_domain_name, user_domain_id;
  std::string project_name, project_id;
  std::string project_domain_name, project_domain_id;
  std::string domain_name, domain_id;  // domain scope, and the fallback domain of user/project
  std::string application_credential_id, application_credential_name, application_credential_secret;
  std::string token;
  std::string region_name;
  std::string interface = "public";  // public | internal | admin
  std::string cacert, cert, key;     // PEM files
  bool verify = true;
  // "<service type>_endpoint_override" keys of clouds.yaml: used instead of the catalog's URL.
  std::map<std::string, std::string> endpoint_overrides;
  std::vector<std::string> secrets() const;  // the values to redact
};

// Where to look; the defaults are the real environment and file system.
struct ConfigSources {
  std::function<std::optional<std::string>(const std::string&)> getenv;  // null: ::getenv
  std::filesystem::path cwd;   // empty: the current directory
  std::filesystem::path home;  // empty: $HOME
  std::filesystem::path etc = "/etc/openstack";
};

// The cloud to use: `cloud` (the target's setting) else $OS_CLOUD names one in
// clouds.yaml; with neither, the OS_* variables. `region`/`interface`, when
// given, override the config's. Throws InputError naming the source and what
// is missing or wrong.
CloudConfig resolve_cloud(const std::string& cloud, const std::string& region, const std::string& interface,
                          const ConfigSources& sources = {});

// The clouds.yaml / secure.yaml that would be read (first that exists), or empty.
std::filesystem::path find_clouds_file(const ConfigSources& sources, const char* basename);

}  // namespace lcake::openstack
