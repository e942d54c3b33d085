#include "registry_auth.h"

#include <nlohmann/json.hpp>

#include "docker_config.h"
#include "lcake/common/http_client.h"
#include "lcake/errors.hpp"

namespace lcake::docker {
using http::base64_decode;
using http::base64_encode;
namespace {

// "https://host:5000/v2/" → "host:5000"
std::string host_of_key(std::string key) {
  for (const char* scheme : {"https://", "http://"}) {
    if (key.rfind(scheme, 0) == 0) key = key.substr(std::string(scheme).size());
  }
  if (auto slash = key.find('/'); slash != std::string::npos) key = key.substr(0, slash);
  return key;
}

bool is_hub(const std::string& host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

// `docker-credential-NAME get` with the server URL on stdin. The SDK's processes
// read /dev/null, so a shell hands the URL over; the helper's output (holding the
// secret) is collected by Context::run, never logged.
std::optional<RegistryCredentials> from_helper(const std::string& name, const std::string& setting,
                                               const std::string& server, lcake::Context& ctx) {
  std::string helper = "docker-credential-" + name;
  std::string where = setting + " in " + docker_config_file().string();
  lcake::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "printf '%s' \"$2\" | \"$1\" get", "lcake-credential-lookup", helper, server};
  spec.timeout = std::chrono::seconds(60);
  lcake::ProcessResult r;
  try {
    r = ctx.run(spec);
  } catch (const lcake::Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    throw lcake::BuildError("credential helper " + helper + " (" + where + ") for " + server + ": " + e.what());
  }
  if (r.exit_code == 127) {
    throw lcake::InputError("credential helper " + helper + " (" + where + ") is not in PATH: install it, or change " +
                            setting + " in that file");
  }
  std::string json_line;
  for (size_t start = 0; start < r.output.size();) {
    size_t end = r.output.find('\n', start);
    if (end == std::string::npos) end = r.output.size();
    std::string line = r.output.substr(start, end - start);
    if (!line.empty() && line[0] == '{') json_line = line;
    start = end + 1;
  }
  if (r.exit_code != 0) {
    // docker's helpers say "credentials not found in native keychain": anonymous, as for docker.
    if (r.output.find("credentials not found") != std::string::npos) return std::nullopt;
    std::string said = json_line.empty() ? r.output.substr(0, 200) : std::string();  // never echo JSON: it may hold a secret
    for (auto& c : said)
      if (c == '\n' || c == '\r') c = ' ';
    while (!said.empty() && said.back() == ' ') said.pop_back();
    throw lcake::BuildError("credential helper " + helper + " get (" + where + ") failed for " + server + " (exit " +
                            std::to_string(r.exit_code) + ")" + (said.empty() ? "" : ": " + said) +
                            ": check the helper (e.g. log in again with docker login " + server + ")");
  }
  auto j = nlohmann::json::parse(json_line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("Secret") || !j["Secret"].is_string()) {
    throw lcake::BuildError("credential helper " + helper + " get (" + where + ") for " + server +
                            " did not print {\"Username\", \"Secret\"}: check the helper");
  }
  RegistryCredentials creds;
  std::string secret = j["Secret"];
  if (!secret.empty()) ctx.redact(secret);
  std::string user = j.value("Username", std::string());
  if (user == "<token>") {
    creds.identity_token = secret;
  } else {
    creds.username = user;
    creds.password = secret;
  }
  creds.source = setting + " helper " + helper + " (" + docker_config_file().string() + ")";
  if (creds.username.empty() && creds.identity_token.empty()) return std::nullopt;
  return creds;
}

}  // namespace

std::string registry_of(const std::string& reference) {
  auto slash = reference.find('/');
  if (slash == std::string::npos) return "docker.io";
  std::string first = reference.substr(0, slash);
  if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost") return first;
  return "docker.io";
}

std::optional<RegistryCredentials> find_registry_credentials(const std::string& registry, lcake::Context& ctx) {
  nlohmann::json config = load_docker_config();
  bool hub = is_hub(registry);
  // What docker itself asks a helper for: Docker Hub's legacy URL, else the host.
  std::string server = hub ? "https://index.docker.io/v1/" : registry;
  if (config.contains("credHelpers") && config["credHelpers"].is_object()) {
    for (auto& [key, helper] : config["credHelpers"].items()) {
      std::string host = host_of_key(key);
      if (!helper.is_string() || !(host == registry || (hub && is_hub(host)))) continue;
      return from_helper(helper.get<std::string>(), "credHelpers[\"" + key + "\"]", server, ctx);
    }
  }
  if (config.contains("credsStore") && config["credsStore"].is_string() && !config["credsStore"].get<std::string>().empty()) {
    return from_helper(config["credsStore"].get<std::string>(), "credsStore", server, ctx);
  }
  if (!config.contains("auths") || !config["auths"].is_object()) return std::nullopt;
  for (auto& [key, entry] : config["auths"].items()) {
    std::string host = host_of_key(key);
    bool match = host == registry || (hub && is_hub(host));
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
    if (!creds.password.empty()) ctx.redact(creds.password);
    if (!creds.identity_token.empty()) ctx.redact(creds.identity_token);
    creds.source = "auths[\"" + key + "\"] in " + docker_config_file().string();
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
