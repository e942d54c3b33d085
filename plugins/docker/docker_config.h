// The Docker client's own configuration, read as the docker CLI reads it:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json (auths, credsStore,
// credHelpers, currentContext), and the contexts under $DOCKER_CONFIG/contexts
// (meta/<sha256 of name>/meta.json, tls/<sha256 of name>/docker/{ca,cert,key}.pem).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::docker {

// $DOCKER_CONFIG, else ~/.docker; empty when neither is known.
std::filesystem::path docker_config_dir();
// config.json in docker_config_dir().
std::filesystem::path docker_config_file();
// The parsed config.json; {} when there is none. A file that is not a JSON object
// is an InputError naming it.
nlohmann::json load_docker_config();

// Where the engine is and how to talk to it.
struct EngineEndpoint {
  std::string host;        // unix:///path or tcp://host:port
  bool tls = false;        // https to a tcp:// host
  bool tls_verify = true;  // check the engine's certificate (against ca_file when set)
  std::string ca_file, cert_file, key_file;  // PEM files; empty: none
  std::string source;      // what chose it, for errors: "DOCKER_HOST", "docker context 'x' (…/meta.json)"
};

// As the docker CLI decides (settings as its --host and --context flags): the
// `docker_host` setting, else the `docker_context` setting, else $DOCKER_HOST
// (TLS with DOCKER_TLS_VERIFY / DOCKER_TLS, files from DOCKER_CERT_PATH), else
// $DOCKER_CONTEXT, else config.json's currentContext, else
// unix:///var/run/docker.sock. A named context that does not exist, or TLS files
// that are missing, are InputErrors naming the file and what to do.
EngineEndpoint resolve_engine_endpoint(const std::string& docker_host_setting, const std::string& context_setting);

}  // namespace lcake::docker
