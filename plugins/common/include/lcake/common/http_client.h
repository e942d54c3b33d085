// The one HTTP client of lcake's backends (docker, openstack, aws), over libcurl:
// TCP or a unix socket, TLS verified by default (CA file, client certificate),
// proxies from the usual environment variables (libcurl reads http_proxy,
// https_proxy, no_proxy), a connect timeout plus an overall deadline, the run's
// cancel token polled during transfers, bodies from memory or streamed from a
// reader, responses collected or streamed, and retries with exponential backoff
// and jitter on 429, 5xx and dropped connections. Transport failures throw
// HttpFailure; callers word them for the user.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lcake/context.hpp"

namespace lcake::http {

struct HttpRequest {
  std::string method = "GET";
  std::string url;                    // "http://docker/v1.41/_ping" when over a unix socket
  std::string unix_socket;            // empty: TCP
  std::vector<std::string> headers;   // "Name: value"
  std::string body;
  bool has_body = false;              // send `body` (even when empty)
  // A streamed body of `body_size` bytes: called to fill `buf`, returns the
  // bytes written (0 only at the end). Replaces `body`. With retries, `rewind`
  // must restart it from the first byte (or retries of this request are off).
  std::function<std::size_t(char* buf, std::size_t max)> body_reader;
  std::function<void()> rewind;
  std::uint64_t body_size = 0;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{0};  // whole exchange; zero: no limit
  // Abort when fewer than 1 byte/s moved for this long (a server that hangs mid-transfer).
  std::chrono::seconds stall_timeout{0};
  const lcake::CancelToken* cancel = nullptr;  // null: not cancellable (cleanup calls)
  bool tls_verify = true;
  std::string ca_file;                      // PEM bundle; empty: the system's
  std::string client_cert, client_key;      // PEM files for TLS client authentication
  // When set, body chunks go here instead of into HttpResponse::body; only for
  // 2xx answers (error bodies are always collected).
  std::function<void(std::string_view)> on_body;
  // Bytes sent so far (uploads), for progress reports.
  std::function<void(std::uint64_t sent, std::uint64_t total)> on_upload_progress;
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

// One exchange. Throws HttpFailure on transport errors, lcake::Cancelled when
// the token fired; any HTTP status is returned.
HttpResponse http_perform(const HttpRequest& request);

struct RetryPolicy {
  int attempts = 5;  // in all, including the first
  std::chrono::milliseconds initial_delay{500};
  std::chrono::milliseconds max_delay{20000};
  // Which answers are worth another try; default: 429, 500, 502, 503, 504.
  std::function<bool(const HttpResponse&)> retry_on;
  // Called before each retry (e.g. to log "Glance answered 503; retrying in 2 s").
  std::function<void(int attempt, const std::string& why, std::chrono::milliseconds delay)> on_retry;
  // Called before each attempt, to refresh what changes between tries (signatures, tokens).
  std::function<void(HttpRequest&)> prepare;
};

// http_perform with retries: transient statuses, connection failures and
// timeouts are retried with exponential backoff and full jitter, honouring
// Retry-After. The last answer is returned (or the last HttpFailure thrown).
// Waits are cancellable through request.cancel.
HttpResponse http_perform_retrying(HttpRequest request, const RetryPolicy& policy = {});

// %-encodes a query or path component (RFC 3986 unreserved characters stay).
std::string url_escape(std::string_view s);
std::string base64_encode(std::string_view bytes, bool url_safe = false);
std::string base64_decode(std::string_view text);

}  // namespace lcake::http
