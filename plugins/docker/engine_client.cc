#include "engine_client.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <thread>

#include "docker_config.h"
#include "lcake/errors.hpp"

namespace lcake::docker {
namespace {

constexpr const char* kMaxApiVersion = "1.41";

// "1.41" < "1.9"? Compare numerically, part by part.
bool version_less(const std::string& a, const std::string& b) {
  int a1 = 0, a2 = 0, b1 = 0, b2 = 0;
  std::sscanf(a.c_str(), "%d.%d", &a1, &a2);
  std::sscanf(b.c_str(), "%d.%d", &b1, &b2);
  return a1 != b1 ? a1 < b1 : a2 < b2;
}

std::string seconds_text(std::chrono::seconds s) { return std::to_string(s.count()) + "s"; }

std::string one_line(std::string s) {
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.size() > 400) s = s.substr(0, 400) + "…";
  return s;
}

// The server's own words: {"message": "..."} from Docker and podman.
std::string server_message(const std::string& body) {
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return one_line(j["message"]);
  } catch (const std::exception&) {
  }
  return one_line(body);
}

}  // namespace

void EngineOptions::use(const EngineEndpoint& e) {
  docker_host = e.host;
  tls = e.tls;
  tls_verify = e.tls_verify;
  ca_file = e.ca_file;
  cert_file = e.cert_file;
  key_file = e.key_file;
  source = e.source;
}

EngineClient::EngineClient(EngineOptions options) : options_(std::move(options)) {
  if (options_.docker_host.empty()) options_.use(resolve_engine_endpoint("", ""));
  const std::string& host = options_.docker_host;
  if (host.rfind("unix://", 0) == 0) {
    unix_socket_ = host.substr(7);
    base_url_ = "http://docker";
  } else if (host.rfind("tcp://", 0) == 0) {
    base_url_ = (options_.tls ? "https://" : "http://") + host.substr(6);
    while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  } else {
    const std::string& src = options_.source;
    throw lcake::InputError((src.empty() || src == "DOCKER_HOST"  ? std::string("DOCKER_HOST")
                             : src == "the docker_host setting" ? src
                                                                : src + ": host") +
                            " '" + host + "' is not supported: use unix:///path/to/docker.sock or tcp://host:port");
  }
}

EngineClient EngineClient::uncancellable() const {
  EngineClient copy = *this;
  copy.options_.cancel = nullptr;
  return copy;
}

HttpResponse EngineClient::send(const Call& call) {
  HttpRequest req;
  req.method = call.method;
  std::string path = (call.versioned ? "/v" + api_version_ : std::string()) + call.path;
  req.url = base_url_ + path + (call.query.empty() ? "" : "?" + call.query);
  req.unix_socket = unix_socket_;
  if (options_.tls) {
    req.tls_verify = options_.tls_verify;
    req.ca_file = options_.ca_file;
    req.client_cert = options_.cert_file;
    req.client_key = options_.key_file;
  }
  req.headers = call.headers;
  if (call.body) {
    req.body = *call.body;
    req.has_body = true;
    req.headers.push_back("Content-Type: " + call.content_type);
  }
  req.timeout = call.timeout.count() > 0 ? call.timeout : options_.api_timeout;
  if (req.timeout.count() > 0 && req.connect_timeout > req.timeout) req.connect_timeout = req.timeout;
  req.cancel = options_.cancel;
  req.on_body = call.on_body;
  try {
    return http_perform(req);
  } catch (const HttpFailure& e) {
    std::string where = call.method + " " + call.path;
    std::string tls_hint;
    if (options_.tls) {
      tls_hint = std::string(": check the TLS files (") + (options_.ca_file.empty() ? "no CA" : options_.ca_file) + ", " +
                 (options_.cert_file.empty() ? "no client certificate" : options_.cert_file) + ")" +
                 (options_.source.empty() ? std::string() : " of " + options_.source);
    }
    if (e.kind == HttpFailure::Kind::connect) {
      std::string why = e.what();
      if (!unix_socket_.empty()) {
        struct stat st {};
        if (::stat(unix_socket_.c_str(), &st) != 0) {
          why = errno == ENOENT ? "no such file" : std::strerror(errno);
        } else if (!S_ISSOCK(st.st_mode)) {
          why = "not a socket";
        } else {
          why = "connection refused";
        }
      }
      throw lcake::BuildError("cannot reach the Docker engine at " + options_.docker_host + " (" + why + ")" +
                              (options_.source.empty() || options_.source == "DOCKER_HOST" || options_.source == "the default"
                                   ? std::string()
                                   : " from " + options_.source) +
                              (tls_hint.empty() ? ": start the engine or set DOCKER_HOST" : tls_hint));
    }
    if (e.kind == HttpFailure::Kind::timeout) {
      throw lcake::BuildError("the Docker engine at " + options_.docker_host + " did not finish " + where +
                              " within " + seconds_text(std::chrono::duration_cast<std::chrono::seconds>(req.timeout)) +
                              ": check the engine, or raise the plugin's api_timeout/transfer_timeout");
    }
    throw lcake::BuildError("Docker engine at " + options_.docker_host + ": " + where + ": " + e.what() + tls_hint);
  }
}

void EngineClient::fail_http(const Call& call, const HttpResponse& response) {
  throw lcake::BuildError("Docker engine at " + options_.docker_host + ": " + call.method + " " + call.path +
                          " failed (HTTP " + std::to_string(response.status) + "): " + server_message(response.body));
}

HttpResponse EngineClient::expect(const Call& call, std::initializer_list<long> ok_statuses) {
  HttpResponse r = send(call);
  if (r.status >= 200 && r.status < 300) return r;
  for (long ok : ok_statuses) {
    if (r.status == ok) return r;
  }
  fail_http(call, r);
}

std::string EngineClient::negotiate() {
  Call ping{"GET", "/_ping"};
  ping.versioned = false;
  // Docker and podman name their API version in /_ping's header; podman's
  // GET /version takes ~0.5 s (it asks the OCI runtime), so it is the fallback only.
  std::string server = expect(ping).header("api-version");
  if (server.empty()) {
    Call ver{"GET", "/version"};
    ver.versioned = false;
    auto r = expect(ver);
    server = kMaxApiVersion;
    try {
      auto j = nlohmann::json::parse(r.body);
      if (j.contains("ApiVersion") && j["ApiVersion"].is_string()) server = j["ApiVersion"];
    } catch (const std::exception&) {
      throw lcake::BuildError("Docker engine at " + options_.docker_host + ": GET /version answered no JSON");
    }
  }
  api_version_ = version_less(server, kMaxApiVersion) ? server : kMaxApiVersion;
  return api_version_;
}

nlohmann::json EngineClient::version() {
  auto r = expect({"GET", "/version"});
  return nlohmann::json::parse(r.body);
}

std::vector<nlohmann::json> EngineClient::json_stream(const Call& call_in,
                                                      const std::function<void(const nlohmann::json&)>& each) {
  Call call = call_in;
  std::string pending;
  std::vector<nlohmann::json> messages;
  std::string error;
  auto consume = [&](std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) return;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      return;
    }
    if (j.is_object() && (j.contains("error") || j.contains("errorDetail")) && error.empty()) {
      if (j.contains("error") && j["error"].is_string()) {
        error = j["error"];
      } else if (j["errorDetail"].is_object() && j["errorDetail"].contains("message")) {
        error = j["errorDetail"]["message"].get<std::string>();
      } else {
        error = j.dump();
      }
    }
    if (each) each(j);
    messages.push_back(std::move(j));
  };
  call.on_body = [&](std::string_view chunk) {
    pending.append(chunk);
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      consume(std::string_view(pending).substr(0, nl));
      pending.erase(0, nl + 1);
    }
  };
  expect(call);
  consume(pending);
  if (!error.empty()) {
    throw lcake::BuildError("Docker engine at " + options_.docker_host + ": " + call.method + " " + call.path +
                            " failed: " + one_line(error));
  }
  return messages;
}

// ---- images ---------------------------------------------------------------

std::optional<nlohmann::json> EngineClient::inspect_image(const std::string& ref) {
  auto r = expect({"GET", "/images/" + ref + "/json"}, {404});
  if (r.status == 404) return std::nullopt;
  return nlohmann::json::parse(r.body);
}

void EngineClient::pull_image(const std::string& ref, const std::string& platform, const std::string& registry_auth,
                              const std::function<void(const std::string&)>& on_status) {
  // fromImage takes the whole reference; a digest reference must not get a tag.
  std::string name = ref, tag;
  auto at = ref.find('@');
  auto colon = ref.rfind(':');
  auto slash = ref.rfind('/');
  if (at == std::string::npos && colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    name = ref.substr(0, colon);
    tag = ref.substr(colon + 1);
  } else if (at == std::string::npos) {
    tag = "latest";
  }
  Call call{"POST", "/images/create", "fromImage=" + url_escape(name)};
  if (!tag.empty()) call.query += "&tag=" + url_escape(tag);
  if (!platform.empty()) call.query += "&platform=" + url_escape(platform);
  if (!registry_auth.empty()) call.headers.push_back("X-Registry-Auth: " + registry_auth);
  call.timeout = options_.transfer_timeout;
  json_stream(call, [&](const nlohmann::json& j) {
    if (on_status && j.contains("status") && j["status"].is_string()) on_status(j["status"]);
  });
}

void EngineClient::tag_image(const std::string& image, const std::string& repo, const std::string& tag) {
  expect({"POST", "/images/" + image + "/tag", "repo=" + url_escape(repo) + "&tag=" + url_escape(tag)});
}

std::string EngineClient::push_image(const std::string& repo, const std::string& tag, const std::string& registry_auth,
                                     bool tls_verify, const std::function<void(const std::string&)>& on_status) {
  Call call{"POST", "/images/" + repo + "/push", "tag=" + url_escape(tag)};
  // Docker ignores tlsVerify; podman uses it for registries not listed as insecure.
  if (!tls_verify) call.query += "&tlsVerify=false";
  // Docker requires the header even for anonymous pushes.
  call.headers.push_back("X-Registry-Auth: " + (registry_auth.empty() ? base64_encode("{}", true) : registry_auth));
  call.timeout = options_.transfer_timeout;
  std::string digest;
  static const std::regex kDigest("digest: (sha256:[0-9a-f]{64})");
  json_stream(call, [&](const nlohmann::json& j) {
    if (j.contains("aux") && j["aux"].is_object() && j["aux"].contains("Digest")) {
      digest = j["aux"]["Digest"].get<std::string>();
    }
    if (j.contains("status") && j["status"].is_string()) {
      std::string status = j["status"];
      std::smatch m;
      if (std::regex_search(status, m, kDigest)) digest = m[1];
      if (on_status) on_status(status);
    }
  });
  return digest;
}

void EngineClient::remove_image(const std::string& ref, bool force, bool noprune) {
  std::string q = std::string("force=") + (force ? "true" : "false") + "&noprune=" + (noprune ? "true" : "false");
  expect({"DELETE", "/images/" + ref, q}, {404});
}

// ---- containers -----------------------------------------------------------

std::string EngineClient::create_container(const std::string& name, const nlohmann::json& config,
                                           const std::string& platform) {
  Call call{"POST", "/containers/create", "name=" + url_escape(name)};
  if (!platform.empty()) call.query += "&platform=" + url_escape(platform);
  call.body = config.dump();
  auto r = expect(call);
  return nlohmann::json::parse(r.body).at("Id").get<std::string>();
}

void EngineClient::start_container(const std::string& id) { expect({"POST", "/containers/" + id + "/start"}, {304}); }

void EngineClient::stop_container(const std::string& id, int grace_seconds) {
  Call call{"POST", "/containers/" + id + "/stop", "t=" + std::to_string(grace_seconds)};
  call.timeout = options_.api_timeout + std::chrono::seconds(grace_seconds);
  expect(call, {304, 404});
}

std::optional<nlohmann::json> EngineClient::inspect_container(const std::string& id) {
  auto r = expect({"GET", "/containers/" + id + "/json"}, {404});
  if (r.status == 404) return std::nullopt;
  return nlohmann::json::parse(r.body);
}

bool EngineClient::remove_container(const std::string& id, bool force) {
  return expect({"DELETE", "/containers/" + id, std::string("v=true&force=") + (force ? "true" : "false")}, {404})
             .status != 404;
}

std::vector<nlohmann::json> EngineClient::list_containers(const nlohmann::json& filters) {
  auto r = expect({"GET", "/containers/json", "all=true&filters=" + url_escape(filters.dump())});
  auto j = nlohmann::json::parse(r.body);
  return j.is_array() ? j.get<std::vector<nlohmann::json>>() : std::vector<nlohmann::json>{};
}

std::string EngineClient::commit(const std::string& container, const std::string& repo, const std::string& tag,
                                 const std::vector<std::string>& changes, const nlohmann::json& config) {
  Call call{"POST", "/commit", "container=" + url_escape(container) + "&pause=false"};
  if (!repo.empty()) call.query += "&repo=" + url_escape(repo) + "&tag=" + url_escape(tag);
  for (const auto& c : changes) call.query += "&changes=" + url_escape(c);
  // podman answers 500 "Decode(): EOF" without a body.
  call.body = config.is_null() ? "{}" : config.dump();
  call.timeout = options_.transfer_timeout;
  auto r = expect(call);
  std::string id = nlohmann::json::parse(r.body).at("Id").get<std::string>();
  if (id.rfind("sha256:", 0) != 0) id = "sha256:" + id;
  return id;
}

// ---- exec and files -------------------------------------------------------

int EngineClient::exec(const std::string& container, const std::vector<std::string>& cmd, const ExecOptions& options,
                       const lcake::Communicator::OutputFn& on_output) {
  nlohmann::json create = {{"AttachStdin", false}, {"AttachStdout", true}, {"AttachStderr", true},
                           {"Tty", false}, {"Cmd", cmd}};
  if (!options.user.empty()) create["User"] = options.user;
  if (!options.workdir.empty()) create["WorkingDir"] = options.workdir;
  if (!options.env.empty()) create["Env"] = options.env;
  Call make{"POST", "/containers/" + container + "/exec"};
  make.body = create.dump();
  std::string exec_id = nlohmann::json::parse(expect(make).body).at("Id").get<std::string>();

  // The attached stream is multiplexed: 8-byte headers {stream, 0, 0, 0, size (big endian)}.
  std::string pending;
  Call start{"POST", "/exec/" + exec_id + "/start"};
  start.body = R"({"Detach":false,"Tty":false})";
  start.timeout = options.timeout.count() > 0 ? options.timeout : std::chrono::hours(24 * 365);
  start.on_body = [&](std::string_view chunk) {
    pending.append(chunk);
    while (pending.size() >= 8) {
      auto b = reinterpret_cast<const unsigned char*>(pending.data());
      size_t size = (size_t(b[4]) << 24) | (size_t(b[5]) << 16) | (size_t(b[6]) << 8) | size_t(b[7]);
      if (pending.size() < 8 + size) break;
      if (on_output && size) on_output(std::string_view(pending).substr(8, size), b[0] == 2);
      pending.erase(0, 8 + size);
    }
  };
  try {
    expect(start);
  } catch (const lcake::BuildError& e) {
    if (options.timeout.count() > 0 && std::string(e.what()).find("did not finish") != std::string::npos) {
      throw lcake::BuildError("command timed out after " + seconds_text(options.timeout) + " in container " +
                              container.substr(0, 12));
    }
    throw;
  }
  // The stream can end a moment before the engine records the exit code.
  for (int i = 0; i < 200; ++i) {
    auto info = nlohmann::json::parse(expect({"GET", "/exec/" + exec_id + "/json"}).body);
    bool running = info.value("Running", false);
    if (!running && info.contains("ExitCode") && info["ExitCode"].is_number_integer()) return info["ExitCode"];
    if (options_.cancel && options_.cancel->wait_for(std::chrono::milliseconds(25))) throw lcake::Cancelled();
    if (!options_.cancel) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw lcake::BuildError("Docker engine at " + options_.docker_host + ": exec " + exec_id.substr(0, 12) +
                          " ended its output but never reported an exit code");
}

void EngineClient::put_archive(const std::string& container, const std::string& dir, const std::string& tar) {
  Call call{"PUT", "/containers/" + container + "/archive", "path=" + url_escape(dir)};
  call.body = tar;
  call.content_type = "application/x-tar";
  call.timeout = options_.transfer_timeout;
  expect(call);
}

std::string EngineClient::get_archive(const std::string& container, const std::string& path) {
  Call call{"GET", "/containers/" + container + "/archive", "path=" + url_escape(path)};
  call.timeout = options_.transfer_timeout;
  return expect(call).body;
}

std::optional<nlohmann::json> EngineClient::stat_path(const std::string& container, const std::string& path) {
  auto r = expect({"HEAD", "/containers/" + container + "/archive", "path=" + url_escape(path)}, {404});
  if (r.status == 404) return std::nullopt;
  std::string header = r.header("x-docker-container-path-stat");
  if (header.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(base64_decode(header));
  } catch (const std::exception&) {
    return nlohmann::json::object();
  }
}

}  // namespace lcake::docker
