#include "lcake/common/http_client.h"

#include <curl/curl.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <openssl/evp.h>

namespace lcake::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  bool cancelled = false;
  size_t sent = 0;
};

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view chunk(data, size * n);
  // The status line is known by the time body bytes arrive.
  if (t->request->on_body && t->response->status >= 200 && t->response->status < 300) {
    t->request->on_body(chunk);
  } else {
    t->response->body.append(chunk);
  }
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after 100-continue or a redirect): start over.
    t->response->headers.clear();
    auto sp = line.find(' ');
    if (sp != std::string::npos) t->response->status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
  t->response->headers[name] = value;
  return size * n;
}

size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->body_reader) {
    std::size_t got = t->request->body_reader(buffer, size * n);
    t->sent += got;
    return got;
  }
  const std::string& body = t->request->body;
  size_t left = body.size() - t->sent;
  size_t take = std::min(left, size * n);
  std::memcpy(buffer, body.data() + t->sent, take);
  t->sent += take;
  return take;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->on_upload_progress && ulnow > 0)
    t->request->on_upload_progress(static_cast<std::uint64_t>(ulnow), t->request->body_size);
  if (t->request->cancel && t->request->cancel->cancelled()) {
    t->cancelled = true;
    return 1;
  }
  return 0;
}

}  // namespace

HttpResponse http_perform(const HttpRequest& request) {
  global_init();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw HttpFailure(HttpFailure::Kind::other, "curl_easy_init failed");
  HttpResponse response;
  Transfer transfer{&request, &response};
  CURL* c = curl.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  if (!request.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  if (request.timeout.count() > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  if (!request.tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!request.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, request.ca_file.c_str());
  if (!request.client_cert.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, request.client_cert.c_str());
  if (!request.client_key.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, request.client_key.c_str());
  if (request.stall_timeout.count() > 0) {
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.stall_timeout.count()));
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.has_body || !request.body.empty() || request.body_reader) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &transfer);
    curl_off_t size = request.body_reader ? static_cast<curl_off_t>(request.body_size)
                                          : static_cast<curl_off_t>(request.body.size());
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
    // Larger buffers: fewer read callbacks and syscalls on multi-gigabyte uploads.
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
  } else if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  struct curl_slist* headers = nullptr;
  // curl would otherwise wait a second for "100 Continue" on uploads.
  headers = curl_slist_append(headers, "Expect:");
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, &curl_slist_free_all);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(c);
  if (transfer.cancelled) throw lcake::Cancelled();
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    auto kind = HttpFailure::Kind::other;
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) kind = HttpFailure::Kind::connect;
    if (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
        rc == CURLE_PARTIAL_FILE)
      kind = HttpFailure::Kind::connect;  // reset or dropped: worth a retry
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      long code = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
      double connect_time = 0;
      curl_easy_getinfo(c, CURLINFO_CONNECT_TIME, &connect_time);
      kind = connect_time > 0 || code ? HttpFailure::Kind::timeout : HttpFailure::Kind::connect;
    }
    throw HttpFailure(kind, detail);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

namespace {

bool default_retry_on(const HttpResponse& r) {
  return r.status == 429 || r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504;
}

// Retry-After in seconds (the HTTP-date form is rare from APIs; ignored).
std::chrono::milliseconds retry_after(const HttpResponse& r) {
  std::string v = r.header("retry-after");
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return {};
  return std::chrono::seconds(std::stol(v));
}

}  // namespace

HttpResponse http_perform_retrying(HttpRequest request, const RetryPolicy& policy) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto retry_on = policy.retry_on ? policy.retry_on : default_retry_on;
  bool can_repeat = !request.body_reader || static_cast<bool>(request.rewind);
  for (int attempt = 1;; ++attempt) {
    if (attempt > 1 && request.rewind) request.rewind();
    if (policy.prepare) policy.prepare(request);
    std::string why;
    std::chrono::milliseconds hint{0};
    bool last = attempt >= policy.attempts || !can_repeat;
    try {
      HttpResponse r = http_perform(request);
      if (last || !retry_on(r)) return r;
      why = "HTTP " + std::to_string(r.status);
      hint = retry_after(r);
    } catch (const HttpFailure& f) {
      if (last) throw;
      why = f.what();
    }
    std::chrono::milliseconds cap = std::min(
        policy.max_delay, std::chrono::milliseconds(policy.initial_delay.count() << std::min(attempt - 1, 16)));
    std::uniform_int_distribution<long long> jitter(0, cap.count());
    auto delay = std::max(hint, std::chrono::milliseconds(jitter(rng)));
    if (policy.on_retry) policy.on_retry(attempt, why, delay);
    if (request.cancel) {
      if (request.cancel->wait_for(delay)) throw lcake::Cancelled();
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
}

std::string url_escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes, bool url_safe) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  if (url_safe) {
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return out;
}

std::string base64_decode(std::string_view text) {
  std::string in(text);
  for (auto& c : in) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (in.size() % 4) in += '=';
  std::string out(3 * in.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return {};
  out.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock counts padding bytes as output zeros.
  size_t pad = 0;
  for (auto it = in.rbegin(); it != in.rend() && *it == '='; ++it) ++pad;
  out.resize(out.size() - std::min(pad, out.size()));
  return out;
}

}  // namespace lcake::http
