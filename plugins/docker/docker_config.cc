#include "docker_config.h"

#include <openssl/sha.h>

#include <cstdlib>
#include <fstream>

#include "lcake/errors.hpp"

namespace lcake::docker {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string sha256_hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

// The PEM files of a TLS directory that exist; a cert without its key (or the
// reverse) is an input error.
void tls_files(EngineEndpoint& e, const fs::path& dir, const std::string& what) {
  auto pick = [&](const char* name) { return fs::exists(dir / name) ? (dir / name).string() : std::string(); };
  e.ca_file = pick("ca.pem");
  e.cert_file = pick("cert.pem");
  e.key_file = pick("key.pem");
  if (e.cert_file.empty() != e.key_file.empty()) {
    throw lcake::InputError(what + ": " + (dir / (e.cert_file.empty() ? "cert.pem" : "key.pem")).string() +
                            " is missing (the other half of the client certificate is there): add it or remove both");
  }
}

}  // namespace

fs::path docker_config_dir() {
  if (auto dir = env("DOCKER_CONFIG"); !dir.empty()) return dir;
  if (auto home = env("HOME"); !home.empty()) return fs::path(home) / ".docker";
  return {};
}

fs::path docker_config_file() {
  auto dir = docker_config_dir();
  return dir.empty() ? fs::path() : dir / "config.json";
}

nlohmann::json load_docker_config() {
  auto path = docker_config_file();
  if (path.empty() || !fs::exists(path)) return nlohmann::json::object();
  std::ifstream in(path);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    throw lcake::InputError(path.string() + ": not a JSON object: fix it (docker reads the same file) or point DOCKER_CONFIG elsewhere");
  }
  return config;
}

EngineEndpoint resolve_engine_endpoint(const std::string& docker_host_setting, const std::string& context_setting) {
  EngineEndpoint e;
  auto from_env_tls = [&](const std::string& what) {
    bool verify = !env("DOCKER_TLS_VERIFY").empty();  // as docker: any non-empty value, "0" included
    if (!verify && env("DOCKER_TLS").empty()) return;
    e.tls = true;
    e.tls_verify = verify;
    fs::path dir = env("DOCKER_CERT_PATH").empty() ? docker_config_dir() : fs::path(env("DOCKER_CERT_PATH"));
    tls_files(e, dir, what);
    if (verify && e.ca_file.empty()) {
      throw lcake::InputError(what + " with DOCKER_TLS_VERIFY: " + (dir / "ca.pem").string() +
                              " is missing: put the engine's CA there or set DOCKER_CERT_PATH");
    }
  };
  if (!docker_host_setting.empty() || (context_setting.empty() && !env("DOCKER_HOST").empty())) {
    e.host = docker_host_setting.empty() ? env("DOCKER_HOST") : docker_host_setting;
    e.source = docker_host_setting.empty() ? "DOCKER_HOST" : "the docker_host setting";
    from_env_tls(e.source);
    return e;
  }
  std::string name = context_setting;
  std::string chosen_by = "the docker_context setting";
  if (name.empty() && !env("DOCKER_CONTEXT").empty()) name = env("DOCKER_CONTEXT"), chosen_by = "DOCKER_CONTEXT";
  if (name.empty()) {
    auto config = load_docker_config();
    if (config.contains("currentContext") && config["currentContext"].is_string()) {
      name = config["currentContext"];
      chosen_by = "currentContext in " + docker_config_file().string();
    }
  }
  if (name.empty() || name == "default") {
    e.host = "unix:///var/run/docker.sock";
    e.source = "the default";
    return e;
  }
  fs::path base = docker_config_dir() / "contexts";
  std::string id = sha256_hex(name);
  fs::path meta = base / "meta" / id / "meta.json";
  std::string what = "docker context '" + name + "' (from " + chosen_by + ")";
  if (!fs::exists(meta)) {
    throw lcake::InputError(what + ": " + meta.string() + " does not exist: create the context (docker context create " +
                            name + " --docker host=…) or choose another");
  }
  std::ifstream in(meta);
  auto j = nlohmann::json::parse(in, nullptr, false);
  const nlohmann::json* docker = nullptr;
  if (!j.is_discarded() && j.is_object() && j.contains("Endpoints") && j["Endpoints"].is_object() &&
      j["Endpoints"].contains("docker") && j["Endpoints"]["docker"].is_object())
    docker = &j["Endpoints"]["docker"];
  if (!docker || !docker->contains("Host") || !(*docker)["Host"].is_string()) {
    throw lcake::InputError(what + ": " + meta.string() +
                            " has no Endpoints.docker.Host: recreate the context with docker context create");
  }
  e.host = (*docker)["Host"];
  e.source = what;
  e.tls_verify = !docker->value("SkipTLSVerify", false);
  fs::path tls = base / "tls" / id / "docker";
  if (fs::exists(tls)) {
    tls_files(e, tls, what);
    e.tls = !e.ca_file.empty() || !e.cert_file.empty();
  }
  if (!e.tls && !e.tls_verify && e.host.rfind("tcp://", 0) == 0) e.tls = true;  // SkipTLSVerify means TLS
  return e;
}

}  // namespace lcake::docker
