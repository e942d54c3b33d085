// Calls to one OpenStack service (image, compute, ...) found in the catalog:
// token header, TLS from the cloud config, retries on 429/5xx/dropped
// connections (lcake::http's policy, logged), and one re-authentication when
// the service answers 401. Errors are worded from the service's error body.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth.h"
#include "lcake/common/http_client.h"
#include "lcake/context.hpp"

namespace lcake::openstack {

class ServiceClient {
 public:
  // cancellable=false for cleanup calls that must run after Ctrl-C.
  ServiceClient(std::shared_ptr<KeystoneSession> session, std::string service_type, Context& ctx,
                bool cancellable = true);

  // The service's base URL from the catalog ("http://127.0.0.1:9292").
  const std::string& base_url() const { return base_; }
  KeystoneSession& session() { return *session_; }
  Context& context() { return *ctx_; }

  // Sends `request` (a path starting with '/' is put under base_url()). Adds
  // X-Auth-Token, TLS, the cancel token; retries per retry_policy (or `retry`).
  // Returns any HTTP status; throws BuildError on transport failure naming the
  // service and URL. A streamed body needs `rewind` for retries and the 401 retry.
  http::HttpResponse send(http::HttpRequest request) { return send(std::move(request), retry_policy); }
  http::HttpResponse send(http::HttpRequest request, http::RetryPolicy retry);

  // JSON convenience: method + path (+ body), with extra headers ("Name: value").
  http::HttpResponse call(const std::string& method, const std::string& path,
                          const nlohmann::json* body = nullptr, std::vector<std::string> headers = {},
                          const std::string& content_type = "application/json");
  // GET that must answer 200 with JSON; `what` words errors ("image 1234").
  nlohmann::json get_json(const std::string& path, const std::string& what);

  // Retries for this client's calls (attempts, delays); tests lower them.
  http::RetryPolicy retry_policy;
  std::chrono::milliseconds timeout{120000};  // per exchange for JSON calls

 private:
  std::shared_ptr<KeystoneSession> session_;
  std::string type_, base_;
  Context* ctx_;
  bool cancellable_;
};

// "Glance answered 409 Conflict: Image status transition from active to saving is not allowed"
// — the message from an OpenStack error body (JSON of any service, or HTML).
std::string error_message(const http::HttpResponse& response);
// Throws BuildError "<what>: <service> answered <status>: <message>".
[[noreturn]] void fail(const http::HttpResponse& response, const std::string& service, const std::string& what);

}  // namespace lcake::openstack
