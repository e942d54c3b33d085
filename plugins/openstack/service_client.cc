#include "service_client.h"

#include <regex>

#include "lcake/errors.hpp"

namespace lcake::openstack {

namespace {

std::string service_label(const std::string& type) {
  if (type == "image") return "Glance";
  if (type == "compute") return "Nova";
  if (type == "identity") return "Keystone";
  if (type == "network") return "Neutron";
  if (type == "volumev3" || type == "block-storage") return "Cinder";
  return type;
}

}  // namespace

std::string error_message(const http::HttpResponse& r) {
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object()) {
    // Keystone {"error": {"message"}}, Nova {"badRequest": {"message"}}, Glance {"message"} / {"title"}.
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it->is_object() && it->contains("message") && (*it)["message"].is_string())
        return (*it)["message"].get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"];
    if (j.contains("title") && j["title"].is_string()) return j["title"];
  }
  // Glance answers HTML or plain text: the text without tags, on one line.
  std::string text = std::regex_replace(r.body, std::regex("<[^>]*>"), " ");
  text = std::regex_replace(text, std::regex("\\s+"), " ");
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text.empty() ? "(no message)" : text;
}

void fail(const http::HttpResponse& r, const std::string& service, const std::string& what) {
  throw BuildError(what + ": " + service + " answered " + std::to_string(r.status) + ": " + error_message(r));
}

ServiceClient::ServiceClient(std::shared_ptr<KeystoneSession> session, std::string service_type, Context& ctx,
                             bool cancellable)
    : session_(std::move(session)), type_(std::move(service_type)), ctx_(&ctx), cancellable_(cancellable) {
  base_ = session_->endpoint(type_, ctx);
  retry_policy.on_retry = [this](int attempt, const std::string& why, std::chrono::milliseconds delay) {
    ctx_->warn(service_label(type_) + ": " + why + "; retry " + std::to_string(attempt) + " in " +
               std::to_string(delay.count()) + " ms");
  };
}

http::HttpResponse ServiceClient::send(http::HttpRequest request, http::RetryPolicy retry) {
  if (!request.url.empty() && request.url.front() == '/') request.url = base_ + request.url;
  request.cancel = cancellable_ ? &ctx_->cancel() : nullptr;
  session_->apply_tls(request);
  auto base_headers = request.headers;
  std::string used_token;
  auto user_prepare = retry.prepare;
  retry.prepare = [&](http::HttpRequest& r) {
    used_token = session_->token(*ctx_);
    r.headers = base_headers;
    r.headers.push_back("X-Auth-Token: " + used_token);
    if (user_prepare) user_prepare(r);
  };
  auto perform = [&] {
    try {
      return http::http_perform_retrying(request, retry);
    } catch (const http::HttpFailure& e) {
      throw BuildError(service_label(type_) + " at " + base_ + ": " + request.method + " " + request.url +
                       " failed: " + e.what());
    }
  };
  http::HttpResponse r = perform();
  if (r.status == 401) {  // the token expired or was revoked: once more with a fresh one
    ctx_->debug(service_label(type_) + " answered 401; re-authenticating");
    session_->invalidate(used_token);
    if (request.rewind) request.rewind();
    r = perform();
  }
  return r;
}

http::HttpResponse ServiceClient::call(const std::string& method, const std::string& path, const nlohmann::json* body,
                                       std::vector<std::string> headers, const std::string& content_type) {
  http::HttpRequest r;
  r.method = method;
  r.url = path;
  r.headers = std::move(headers);
  r.headers.push_back("Accept: application/json");
  if (body) {
    r.body = body->dump();
    r.has_body = true;
    r.headers.push_back("Content-Type: " + content_type);
  }
  r.timeout = timeout;
  return send(std::move(r));
}

nlohmann::json ServiceClient::get_json(const std::string& path, const std::string& what) {
  auto r = call("GET", path);
  if (r.status != 200) fail(r, service_label(type_), what);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) throw BuildError(what + ": " + service_label(type_) + " answered unreadable JSON");
  return j;
}

}  // namespace lcake::openstack
