// One HTTP exchange over libcurl, shared by the Engine API and registry clients:
// TCP or a unix socket, a connect timeout plus an overall deadline, the run's
// cancel token polled from curl's progress callback, and optional streaming of
// the response body. Transport failures throw HttpFailure; the caller words them.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lcake/context.hpp"

namespace lcake::docker {

struct HttpRequest {
  std::string method = "GET";
  std::string url;                    // "http://docker/v1.41/_ping" when over a unix socket
  std::string unix_socket;            // empty: TCP
  std::vector<std::string> headers;   // "Name: value"
  std::string body;
  bool has_body = false;              // send `body` (even when empty)
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{0};  // whole exchange; zero: no limit
  const lcake::CancelToken* cancel = nullptr;  // null: not cancellable (cleanup calls)
  bool tls_verify = true;
  // When set, body chunks go here instead of into HttpResponse::body; only for
  // 2xx answers (error bodies are always collected).
  std::function<void(std::string_view)> on_body;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpFailure : std::runtime_error {
  enum class Kind { connect, timeout, other };
  HttpFailure(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
  Kind kind;
};

// Throws HttpFailure on transport errors, lcake::Cancelled when the token fired;
// any HTTP status is returned.
HttpResponse http_perform(const HttpRequest& request);

// %-encodes a query or path component.
std::string url_escape(std::string_view s);
std::string base64_encode(std::string_view bytes, bool url_safe = false);
std::string base64_decode(std::string_view text);

}  // namespace lcake::docker
