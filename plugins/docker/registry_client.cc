#include "registry_client.h"

#include <set>

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

HttpResponse RegistryClient::send(HttpRequest request, const std::string& what, const std::string& repo,
                                  const std::string& action) {
  if (!options_.tokens) options_.tokens = std::make_shared<TokenCache>();
  request.tls_verify = options_.tls_verify;
  request.timeout = options_.timeout;
  request.cancel = options_.cancel;
  const std::string key = options_.registry + " repository:" + repo + ":" + action;
  auto attempt = [&](const std::string& authorization) {
    HttpRequest r = request;
    if (!authorization.empty()) r.headers.push_back("Authorization: " + authorization);
    try {
      return http_perform(r);
    } catch (const HttpFailure& e) {
      std::string hint = e.kind == HttpFailure::Kind::connect ? ": is the registry running? check the uploader's registry setting" : "";
      throw lcake::BuildError("registry " + options_.registry + ": " + what + ": " + e.what() + hint);
    }
  };
  std::string cached;
  {
    std::lock_guard lock(options_.tokens->mu);
    cached = options_.tokens->authorization[key];
  }
  HttpResponse r = attempt(cached);
  if (r.status != 401) return r;
  // No token yet, or the registry refused the cached one (expired): ask again, once.
  std::string fresh = authorize(r.header("www-authenticate"), cached);
  if (fresh.empty()) return r;
  {
    std::lock_guard lock(options_.tokens->mu);
    options_.tokens->authorization[key] = fresh;
  }
  return attempt(fresh);
}

std::string RegistryClient::authorize(const std::string& challenge, const std::string& refused) {
  if (challenge.empty()) return {};
  std::string scheme = challenge.substr(0, challenge.find(' '));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto& creds = options_.credentials;
  if (scheme == "basic") {
    if (!creds || creds->username.empty()) return {};
    std::string next = "Basic " + base64_encode(creds->username + ":" + creds->password);
    return next == refused ? std::string() : next;
  }
  if (scheme != "bearer") return {};
  std::map<std::string, std::string> params;
  static const std::regex kParam(R"re((\w+)="([^"]*)")re");
  for (std::sregex_iterator it(challenge.begin(), challenge.end(), kParam), end; it != end; ++it) {
    params[(*it)[1]] = (*it)[2];
  }
  const std::string& realm = params["realm"];
  if (realm.empty()) return {};
  HttpRequest req;
  req.url = realm;
  std::string who = "anonymously";
  if (creds && !creds->identity_token.empty()) {
    // An identity token (docker login's OAuth2 refresh token) goes in a POST, as docker sends it.
    req.method = "POST";
    req.body = "grant_type=refresh_token&client_id=lcake&service=" + url_escape(params["service"]) +
               (params["scope"].empty() ? "" : "&scope=" + url_escape(params["scope"])) +
               "&refresh_token=" + url_escape(creds->identity_token);
    req.has_body = true;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    who = "with the identity token from " + creds->source;
  } else {
    req.url += (realm.find('?') == std::string::npos ? "?" : "&") + std::string("service=") + url_escape(params["service"]);
    if (!params["scope"].empty()) req.url += "&scope=" + url_escape(params["scope"]);
    if (creds && !creds->username.empty()) {
      req.headers.push_back("Authorization: Basic " + base64_encode(creds->username + ":" + creds->password));
      who = "as " + creds->username + " (credentials from " + creds->source + ")";
    }
  }
  req.tls_verify = options_.tls_verify;
  req.timeout = options_.timeout;
  req.cancel = options_.cancel;
  HttpResponse r;
  try {
    r = http_perform(req);
  } catch (const HttpFailure& e) {
    throw lcake::BuildError("registry " + options_.registry + ": token service " + realm + ": " + e.what() +
                            ": is it running?");
  }
  if (r.status != 200) {
    throw lcake::BuildError("registry " + options_.registry + ": token service " + realm + " refused a token " + who +
                            " for '" + params["scope"] + "' (HTTP " + std::to_string(r.status) + "): " +
                            (creds ? "check those credentials (docker login " + options_.registry + ")"
                                   : "add credentials for " + options_.registry + " (docker login " + options_.registry + ")"));
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::string token = j.is_object() ? j.value("token", j.value("access_token", std::string())) : "";
  if (token.empty()) {
    throw lcake::BuildError("registry " + options_.registry + ": token service " + realm +
                            " answered without a token: check the registry's auth.token realm");
  }
  if (options_.redact) options_.redact(token);
  {
    std::lock_guard lock(options_.tokens->mu);
    ++options_.tokens->fetched;
  }
  std::string next = "Bearer " + token;
  return next == refused ? std::string() : next;
}

void RegistryClient::fail(const std::string& what, const HttpResponse& r) {
  std::string hint = r.status == 401 || r.status == 403
                         ? (options_.credentials ? ": check the credentials from " + options_.credentials->source
                                                 : ": add credentials for " + options_.registry + " to ~/.docker/config.json (docker login " +
                                                       options_.registry + ")")
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
  auto r = send(req, what, repo, "pull");
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
  auto r = send(req, what, repo, "pull");
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
  auto r = send(req, what, repo, "push");
  if (r.status != 201 && r.status != 200) fail(what, r);
  return r.header("docker-content-digest");
}

void RegistryClient::delete_manifest(const std::string& repo, const std::string& digest) {
  HttpRequest req;
  req.method = "DELETE";
  req.url = base() + "/v2/" + repo + "/manifests/" + digest;
  std::string what = "DELETE manifest " + image_reference(repo, digest);
  auto r = send(req, what, repo, "delete");
  if (r.status == 404 || r.status == 202 || r.status == 200) return;
  fail(what, r);
}

namespace {
// The target of a Link header's rel="next" entry ("" when there is none).
std::string next_link(const std::string& link) {
  std::size_t pos = 0;
  while ((pos = link.find('<', pos)) != std::string::npos) {
    std::size_t close = link.find('>', pos);
    if (close == std::string::npos) return "";
    std::size_t end = link.find(',', close);
    std::string params = link.substr(close + 1, end == std::string::npos ? std::string::npos : end - close - 1);
    if (params.find("rel=\"next\"") != std::string::npos || params.find("rel=next") != std::string::npos)
      return link.substr(pos + 1, close - pos - 1);
    pos = close;
  }
  return "";
}
}  // namespace

std::vector<std::string> RegistryClient::list_tags(const std::string& repo, int page_size) {
  std::string url = base() + "/v2/" + repo + "/tags/list" + (page_size > 0 ? "?n=" + std::to_string(page_size) : "");
  std::string what = "GET tags of " + repo;
  std::vector<std::string> tags;
  std::set<std::string> seen_urls;
  while (!url.empty()) {
    if (!seen_urls.insert(url).second)
      throw lcake::BuildError("registry " + options_.registry + ": " + what + ": its pages loop back to " + url);
    HttpRequest req;
    req.url = url;
    auto r = send(req, what, repo, "pull");
    if (r.status == 404) return tags;
    if (r.status != 200) fail(what, r);
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("tags") && j["tags"].is_array()) {
      for (const auto& t : j["tags"])
        if (t.is_string()) tags.push_back(t.get<std::string>());
    }
    std::string next = next_link(r.header("link"));
    // The spec's links are relative to the registry ("/v2/...?n=..&last=.."); an absolute one
    // must stay on it (the request carries the registry's credentials).
    if (!next.empty() && next.front() != '/' && next.rfind(base() + "/", 0) != 0)
      throw lcake::BuildError("registry " + options_.registry + ": " + what + ": the next page is on another host (" +
                              next + "); not following it");
    url = next.empty() ? "" : next.front() == '/' ? base() + next : next;
  }
  return tags;
}

}  // namespace lcake::docker
