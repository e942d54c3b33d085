// The OCI distribution (registry HTTP API v2) calls the uploader needs beyond a
// push through the engine: read, write and delete manifests, list tags. Handles
// Basic and Bearer-token auth challenges with credentials from the Docker config:
// on a 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` it asks the
// realm for a token (anonymously, with Basic credentials, or an identity token
// as an OAuth2 refresh_token), caches it per registry and scope, and asks again
// when the registry refuses a cached token (expired).
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lcake/common/http_client.h"
#include "lcake/context.hpp"
#include "registry_auth.h"

namespace lcake::docker {

using http::HttpFailure;
using http::HttpRequest;
using http::HttpResponse;
using http::http_perform;
using http::url_escape;
using http::base64_encode;
using http::base64_decode;


struct Manifest {
  std::string body;        // the exact bytes: their digest is the manifest's identity
  std::string media_type;
  std::string digest;      // "sha256:…"
};

// Authorization header values ("Bearer …", "Basic …": secrets) by "registry scope";
// shared by the clients of one uploader so a token is fetched once per scope.
struct TokenCache {
  std::mutex mu;
  std::map<std::string, std::string> authorization;
  int fetched = 0;  // tokens obtained from token services
};

struct RegistryOptions {
  std::string registry;              // "127.0.0.1:5000"
  std::string scheme = "https";      // "https" | "http"
  bool tls_verify = true;
  std::optional<RegistryCredentials> credentials;
  std::chrono::seconds timeout{60};
  const lcake::CancelToken* cancel = nullptr;
  std::shared_ptr<TokenCache> tokens;              // null: a cache of the client's own
  std::function<void(const std::string&)> redact;  // called with every token obtained
};

// How a reference is written after the repository: "repo@sha256:…" for a
// digest, "repo:tag" for a tag.
std::string image_reference(const std::string& repo, const std::string& reference);

// "auto": plain HTTP for localhost and 127.0.0.0/8 (as docker does), HTTPS elsewhere.
std::string registry_scheme(const std::string& setting, const std::string& registry);

class RegistryClient {
 public:
  explicit RegistryClient(RegistryOptions options) : options_(std::move(options)) {}
  // The same registry, deaf to cancellation: for undoing after a cancel.
  RegistryClient uncancellable() const {
    RegistryClient copy = *this;
    copy.options_.cancel = nullptr;
    return copy;
  }
  std::optional<Manifest> get_manifest(const std::string& repo, const std::string& reference);
  std::optional<std::string> head_manifest(const std::string& repo, const std::string& reference);
  std::string put_manifest(const std::string& repo, const std::string& reference, const Manifest& manifest);
  // Deleting by digest removes every tag that points at it (distribution has no tag delete).
  void delete_manifest(const std::string& repo, const std::string& digest);
  // Every tag, following the registry's pages (Link: <...>; rel="next", as the distribution
  // spec says); page_size > 0 asks for pages of that many (n=), 0 leaves it to the registry.
  std::vector<std::string> list_tags(const std::string& repo, int page_size = 0);

 private:
  // `action`: the scope's action class, "pull" (GET/HEAD), "push" (PUT), "delete".
  HttpResponse send(HttpRequest request, const std::string& what, const std::string& repo, const std::string& action);
  [[noreturn]] void fail(const std::string& what, const HttpResponse& r);
  std::string base() const { return options_.scheme + "://" + options_.registry; }
  // The Authorization value answering `challenge`, or "" when there is none to try.
  std::string authorize(const std::string& challenge, const std::string& refused);

  RegistryOptions options_;
};

}  // namespace lcake::docker
