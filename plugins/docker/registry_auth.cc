#include "registry_auth.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lcake/common/http_client.h"

namespace lcake::docker {
using http::base64_decode;
using http::base64_encode;
namespace {

std::filesystem::path config_path() {
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir && *dir) return std::filesystem::path(dir) / "config.json";
  if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".docker/config.json";
  return {};
}

// "https://host:5000/v2/" → "host:5000"
std::string host_of_key(std::string key) {
  for (const char* scheme : {"https://", "http://"}) {
    if (key.rfind(scheme, 0) == 0) key = key.substr(std::string(scheme).size());
  }
  if (auto slash = key.find('/'); slash != std::string::npos) key = key.substr(0, slash);
  return key;
}

}  // namespace

std::string registry_of(const std::string& reference) {
  auto slash = reference.find('/');
  if (slash == std::string::npos) return "docker.io";
  std::string first = reference.substr(0, slash);
  if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost") return first;
  return "docker.io";
}

std::optional<RegistryCredentials> find_registry_credentials(const std::string& registry) {
  auto path = config_path();
  if (path.empty() || !std::filesystem::exists(path)) return std::nullopt;
  nlohmann::json config;
  try {
    std::ifstream in(path);
    config = nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return std::nullopt;  // a broken client config means anonymous access, as for docker itself
  }
  if (!config.contains("auths") || !config["auths"].is_object()) return std::nullopt;
  bool hub = registry == "docker.io" || registry == "index.docker.io" || registry == "registry-1.docker.io";
  for (auto& [key, entry] : config["auths"].items()) {
    std::string host = host_of_key(key);
    bool match = host == registry || (hub && (host == "index.docker.io" || host == "docker.io" || host == "registry-1.docker.io"));
    if (!match || !entry.is_object()) continue;
    RegistryCredentials creds;
    if (entry.contains("auth") && entry["auth"].is_string()) {
      std::string decoded = base64_decode(entry["auth"].get<std::string>());
      auto colon = decoded.find(':');
      if (colon != std::string::npos) {
        creds.username = decoded.substr(0, colon);
        creds.password = decoded.substr(colon + 1);
      }
    }
    if (entry.contains("username") && entry["username"].is_string()) creds.username = entry["username"];
    if (entry.contains("password") && entry["password"].is_string()) creds.password = entry["password"];
    if (entry.contains("identitytoken") && entry["identitytoken"].is_string()) creds.identity_token = entry["identitytoken"];
    if (creds.username.empty() && creds.identity_token.empty()) continue;
    return creds;
  }
  return std::nullopt;
}

std::string engine_registry_auth(const std::string& registry, const std::optional<RegistryCredentials>& creds) {
  if (!creds) return {};
  nlohmann::json j = {{"serveraddress", registry}};
  if (!creds->identity_token.empty()) {
    j["identitytoken"] = creds->identity_token;
  } else {
    j["username"] = creds->username;
    j["password"] = creds->password;
  }
  return base64_encode(j.dump(), true);
}

}  // namespace lcake::docker
