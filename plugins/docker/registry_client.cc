#include "registry_client.h"

#include <nlohmann/json.hpp>
#include <regex>

#include "lcake/errors.hpp"

namespace lcake::docker {
namespace {

const char* kManifestAccept =
    "Accept: application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

std::string errors_text(const std::string& body) {
  try {
    auto j = nlohmann::json::parse(body);
    std::string out;
    for (const auto& e : j.at("errors")) {
      out += (out.empty() ? "" : "; ") + e.value("code", std::string()) + " " + e.value("message", std::string());
    }
    if (!out.empty()) return out;
  } catch (const std::exception&) {
  }
  std::string s = body.substr(0, 200);
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

std::string registry_scheme(const std::string& setting, const std::string& registry) {
  if (setting == "http" || setting == "https") return setting;
  std::string host = registry.substr(0, registry.rfind(':') == std::string::npos ? registry.size() : registry.rfind(':'));
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]" ? "http" : "https";
}

HttpResponse RegistryClient::send(HttpRequest request, const std::string& what) {
  request.tls_verify = options_.tls_verify;
  request.timeout = options_.timeout;
  request.cancel = options_.cancel;
  auto attempt = [&]() {
    HttpRequest r = request;
    if (!authorization_.empty()) r.headers.push_back("Authorization: " + authorization_);
    try {
      return http_perform(r);
    } catch (const HttpFailure& e) {
      std::string hint = e.kind == HttpFailure::Kind::connect ? ": is the registry running? check the uploader's registry setting" : "";
      throw lcake::BuildError("registry " + options_.registry + ": " + what + ": " + e.what() + hint);
    }
  };
  HttpResponse r = attempt();
  if (r.status == 401 && fetch_token(r.header("www-authenticate"))) r = attempt();
  return r;
}

bool RegistryClient::fetch_token(const std::string& challenge) {
  if (challenge.empty()) return false;
  std::string scheme = challenge.substr(0, challenge.find(' '));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto& creds = options_.credentials;
  if (scheme == "basic") {
    if (!creds || creds->username.empty()) return false;
    std::string next = "Basic " + base64_encode(creds->username + ":" + creds->password);
    if (next == authorization_) return false;
    authorization_ = next;
    return true;
  }
  if (scheme != "bearer") return false;
  std::map<std::string, std::string> params;
  static const std::regex kParam(R"re((\w+)="([^"]*)")re");
  for (std::sregex_iterator it(challenge.begin(), challenge.end(), kParam), end; it != end; ++it) {
    params[(*it)[1]] = (*it)[2];
  }
  if (params["realm"].empty()) return false;
  HttpRequest req;
  req.url = params["realm"] + "?service=" + url_escape(params["service"]);
  if (!params["scope"].empty()) req.url += "&scope=" + url_escape(params["scope"]);
  if (creds && !creds->username.empty()) {
    req.headers.push_back("Authorization: Basic " + base64_encode(creds->username + ":" + creds->password));
  }
  req.tls_verify = options_.tls_verify;
  req.timeout = options_.timeout;
  req.cancel = options_.cancel;
  HttpResponse r;
  try {
    r = http_perform(req);
  } catch (const HttpFailure& e) {
    throw lcake::BuildError("registry " + options_.registry + ": token service: " + e.what());
  }
  if (r.status != 200) return false;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::string token = j.is_object() ? j.value("token", j.value("access_token", std::string())) : "";
  if (token.empty() || "Bearer " + token == authorization_) return false;
  authorization_ = "Bearer " + token;
  return true;
}

void RegistryClient::fail(const std::string& what, const HttpResponse& r) {
  std::string hint = r.status == 401 || r.status == 403
                         ? ": add credentials for " + options_.registry + " to ~/.docker/config.json (docker login)"
                         : "";
  throw lcake::BuildError("registry " + options_.registry + ": " + what + " failed (HTTP " + std::to_string(r.status) +
                          "): " + errors_text(r.body) + hint);
}

std::string image_reference(const std::string& repo, const std::string& reference) {
  return repo + (reference.rfind("sha256:", 0) == 0 ? "@" : ":") + reference;
}

std::optional<Manifest> RegistryClient::get_manifest(const std::string& repo, const std::string& reference) {
  HttpRequest req;
  req.url = base() + "/v2/" + repo + "/manifests/" + reference;
  req.headers.push_back(kManifestAccept);
  std::string what = "GET manifest " + image_reference(repo, reference);
  auto r = send(req, what);
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail(what, r);
  return Manifest{r.body, r.header("content-type"), r.header("docker-content-digest")};
}

std::optional<std::string> RegistryClient::head_manifest(const std::string& repo, const std::string& reference) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = base() + "/v2/" + repo + "/manifests/" + reference;
  req.headers.push_back(kManifestAccept);
  std::string what = "HEAD manifest " + image_reference(repo, reference);
  auto r = send(req, what);
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail(what, r);
  return r.header("docker-content-digest");
}

std::string RegistryClient::put_manifest(const std::string& repo, const std::string& reference, const Manifest& m) {
  HttpRequest req;
  req.method = "PUT";
  req.url = base() + "/v2/" + repo + "/manifests/" + reference;
  req.headers.push_back("Content-Type: " + m.media_type);
  req.body = m.body;
  req.has_body = true;
  std::string what = "PUT manifest " + image_reference(repo, reference);
  auto r = send(req, what);
  if (r.status != 201 && r.status != 200) fail(what, r);
  return r.header("docker-content-digest");
}

void RegistryClient::delete_manifest(const std::string& repo, const std::string& digest) {
  HttpRequest req;
  req.method = "DELETE";
  req.url = base() + "/v2/" + repo + "/manifests/" + digest;
  std::string what = "DELETE manifest " + image_reference(repo, digest);
  auto r = send(req, what);
  if (r.status == 404 || r.status == 202 || r.status == 200) return;
  fail(what, r);
}

std::vector<std::string> RegistryClient::list_tags(const std::string& repo) {
  HttpRequest req;
  req.url = base() + "/v2/" + repo + "/tags/list";
  std::string what = "GET tags of " + repo;
  auto r = send(req, what);
  if (r.status == 404) return {};
  if (r.status != 200) fail(what, r);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::vector<std::string> tags;
  if (j.is_object() && j.contains("tags") && j["tags"].is_array()) {
    for (const auto& t : j["tags"]) tags.push_back(t.get<std::string>());
  }
  return tags;
}

}  // namespace lcake::docker
