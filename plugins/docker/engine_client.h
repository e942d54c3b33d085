// A Docker Engine API client (v1.41, also spoken by `podman system service`)
// over DOCKER_HOST: unix:///path (default /var/run/docker.sock) or tcp://host:port,
// plain or TLS (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, docker contexts: see
// docker_config.h).
// Every call has a connect timeout and a deadline, checks the run's cancel
// token while it waits, and fails with one line naming DOCKER_HOST and the endpoint.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "docker_config.h"
#include "lcake/common/http_client.h"
#include "lcake/communicator.hpp"
#include "lcake/context.hpp"

namespace lcake::docker {

using http::HttpFailure;
using http::HttpRequest;
using http::HttpResponse;
using http::http_perform;
using http::url_escape;
using http::base64_encode;
using http::base64_decode;


struct EngineOptions {
  // empty: as the docker CLI finds it (resolve_engine_endpoint: $DOCKER_HOST, the
  // docker context, else unix:///var/run/docker.sock), TLS settings included
  std::string docker_host;
  bool tls = false;          // https to a tcp:// host
  bool tls_verify = true;
  std::string ca_file, cert_file, key_file;  // PEM files (DOCKER_CERT_PATH/{ca,cert,key}.pem)
  std::string source;        // what chose the engine, for errors ("DOCKER_HOST", "docker context 'x' …")
  std::chrono::seconds api_timeout{60};         // ordinary calls
  std::chrono::seconds transfer_timeout{3600};  // pull, push, commit, archives
  const lcake::CancelToken* cancel = nullptr;   // null: calls cannot be cancelled

  // Talk to this engine (host, TLS and the source naming it); timeouts and cancel stay.
  void use(const EngineEndpoint& e);
};

struct ExecOptions {
  std::string user;     // empty: the container's user
  std::string workdir;  // empty: the container's working directory
  std::vector<std::string> env;  // "K=V"
  std::chrono::seconds timeout{0};  // zero: no limit
};

class EngineClient {
 public:
  explicit EngineClient(EngineOptions options);

  const std::string& docker_host() const { return options_.docker_host; }
  // The same engine, but deaf to cancellation: for cleanup after a cancel.
  EngineClient uncancellable() const;

  // GET /_ping and /version; settles on min(server ApiVersion, 1.41). Returns it ("1.41").
  std::string negotiate();
  const std::string& api_version() const { return api_version_; }
  nlohmann::json version();

  // ---- images
  std::optional<nlohmann::json> inspect_image(const std::string& ref);
  // `registry_auth` is an X-Registry-Auth value (may be empty). A secret: never logged.
  void pull_image(const std::string& ref, const std::string& platform, const std::string& registry_auth,
                  const std::function<void(const std::string&)>& on_status = {});
  void tag_image(const std::string& image, const std::string& repo, const std::string& tag);
  // Returns the pushed manifest digest ("sha256:…"), or "" when the engine did not say.
  std::string push_image(const std::string& repo, const std::string& tag, const std::string& registry_auth,
                         bool tls_verify, const std::function<void(const std::string&)>& on_status = {});
  // Already gone is fine.
  void remove_image(const std::string& ref, bool force, bool noprune);

  // ---- containers
  std::string create_container(const std::string& name, const nlohmann::json& config, const std::string& platform);
  void start_container(const std::string& id);
  void stop_container(const std::string& id, int grace_seconds);
  std::optional<nlohmann::json> inspect_container(const std::string& id);
  // Already gone is fine: returns false then, true when it removed the container.
  bool remove_container(const std::string& id, bool force);
  // Containers (running or not) matching the Engine API's `filters`, e.g. {"name": ["^/?x-"]}.
  std::vector<nlohmann::json> list_containers(const nlohmann::json& filters);
  // POST /commit; returns the new image ID ("sha256:…").
  std::string commit(const std::string& container, const std::string& repo, const std::string& tag,
                     const std::vector<std::string>& changes, const nlohmann::json& config);

  // ---- exec and files
  // Runs `cmd` in the container, streams demultiplexed stdout/stderr, returns the exit code.
  int exec(const std::string& container, const std::vector<std::string>& cmd, const ExecOptions& options,
           const lcake::Communicator::OutputFn& on_output);
  void put_archive(const std::string& container, const std::string& dir, const std::string& tar);
  std::string get_archive(const std::string& container, const std::string& path);
  // HEAD …/archive: {"name","size","mode","mtime","linkTarget"} or nullopt when absent.
  std::optional<nlohmann::json> stat_path(const std::string& container, const std::string& path);

 private:
  struct Call {
    Call(std::string m, std::string p, std::string q = {}) : method(std::move(m)), path(std::move(p)), query(std::move(q)) {}
    std::string method;
    std::string path;   // "/containers/create", without the version prefix
    std::string query;  // without "?"
    std::optional<std::string> body;
    std::string content_type = "application/json";
    std::vector<std::string> headers;
    std::chrono::seconds timeout{0};  // zero: options_.api_timeout
    std::function<void(std::string_view)> on_body;
    bool versioned = true;
  };
  HttpResponse send(const Call& call);
  // send() + throw lcake::BuildError unless 2xx (or one of `ok_statuses`).
  HttpResponse expect(const Call& call, std::initializer_list<long> ok_statuses = {});
  [[noreturn]] void fail_http(const Call& call, const HttpResponse& response);
  // Reads a JSON-lines progress stream; throws on an {"error":…} line.
  std::vector<nlohmann::json> json_stream(const Call& call, const std::function<void(const nlohmann::json&)>& each);

  EngineOptions options_;
  std::string unix_socket_;
  std::string base_url_;
  std::string api_version_ = "1.41";
};

}  // namespace lcake::docker
