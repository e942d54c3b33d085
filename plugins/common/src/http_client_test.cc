// The shared HTTP client against a scripted HTTP/1.1 server on 127.0.0.1:
// retries on 503 (and not on 404), Retry-After, streamed uploads that rewind
// for a retry, cancellation of a request the server never answers.
#include "lcake/common/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <doctest/doctest.h>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "lcake/testing.hpp"

using namespace lcake::http;

namespace {

struct Received {
  std::string method, path, body;
};

// Answers each connection with the next scripted reply (the last one repeats);
// a reply of "HANG" reads the request and never answers.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> replies) : replies_(std::move(replies)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : hung_) ::close(c);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Received> received() {
    std::lock_guard l(mu_);
    return received_;
  }

 private:
  void serve() {
    for (std::size_t n = 0; !stop_; ++n) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      Received r = read_request(c);
      {
        std::lock_guard l(mu_);
        received_.push_back(r);
      }
      const std::string& reply = replies_[std::min(n, replies_.size() - 1)];
      if (reply == "HANG") {
        hung_.push_back(c);
        continue;
      }
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  static Received read_request(int c) {
    std::string data;
    char buf[65536];
    std::size_t header_end = std::string::npos, need = 0;
    for (;;) {
      if (header_end != std::string::npos && data.size() >= header_end + 4 + need) break;
      ssize_t got = ::read(c, buf, sizeof buf);
      if (got <= 0) break;
      data.append(buf, static_cast<std::size_t>(got));
      if (header_end == std::string::npos && (header_end = data.find("\r\n\r\n")) != std::string::npos) {
        auto p = data.find("Content-Length: ");
        if (p != std::string::npos && p < header_end) need = std::stoul(data.substr(p + 16));
      }
    }
    Received r;
    r.method = data.substr(0, data.find(' '));
    r.path = data.substr(r.method.size() + 1, data.find(' ', r.method.size() + 1) - r.method.size() - 1);
    if (header_end != std::string::npos) r.body = data.substr(header_end + 4);
    return r;
  }
  std::vector<std::string> replies_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> received_;
  std::vector<int> hung_;
};

std::string reply(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra + "\r\n" + body;
}

RetryPolicy fast_policy(std::vector<std::string>* log = nullptr) {
  RetryPolicy p;
  p.attempts = 4;
  p.initial_delay = std::chrono::milliseconds(10);
  p.max_delay = std::chrono::milliseconds(50);
  p.on_retry = [log](int, const std::string& why, std::chrono::milliseconds) {
    if (log) log->push_back(why);
  };
  return p;
}

}  // namespace

TEST_CASE("transient answers are retried with backoff; the final answer is returned") {
  ScriptedServer server({reply(503, "busy"), reply(503, "busy"), reply(200, "ok")});
  std::vector<std::string> why;
  HttpRequest req;
  req.url = server.url("/thing");
  HttpResponse r = http_perform_retrying(req, fast_policy(&why));
  CHECK(r.status == 200);
  CHECK(r.body == "ok");
  CHECK(server.received().size() == 3);
  CHECK(why == std::vector<std::string>{"HTTP 503", "HTTP 503"});
}

TEST_CASE("a client error is not retried, and retries stop after the last attempt") {
  ScriptedServer not_found({reply(404, "no")});
  HttpRequest req;
  req.url = not_found.url("/x");
  CHECK(http_perform_retrying(req, fast_policy()).status == 404);
  CHECK(not_found.received().size() == 1);

  ScriptedServer broken({reply(500, "boom")});
  req.url = broken.url("/x");
  HttpResponse r = http_perform_retrying(req, fast_policy());
  CHECK(r.status == 500);
  CHECK(r.body == "boom");
  CHECK(broken.received().size() == 4);
}

TEST_CASE("a streamed body is sent whole, and rewound for a retry") {
  ScriptedServer server({reply(503, ""), reply(201, "made")});
  std::string data(300000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  std::size_t pos = 0;
  std::uint64_t progress = 0;
  HttpRequest req;
  req.method = "PUT";
  req.url = server.url("/upload");
  req.body_size = data.size();
  req.body_reader = [&](char* buf, std::size_t max) {
    std::size_t n = std::min(max, data.size() - pos);
    std::memcpy(buf, data.data() + pos, n);
    pos += n;
    return n;
  };
  req.rewind = [&] { pos = 0; };
  req.on_upload_progress = [&](std::uint64_t sent, std::uint64_t) { progress = sent; };
  HttpResponse r = http_perform_retrying(req, fast_policy());
  CHECK(r.status == 201);
  auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(got[1].method == "PUT");
  CHECK(got[1].body == data);
  CHECK(progress == data.size());
}

TEST_CASE("a server that never answers: the run's cancel token ends the wait") {
  ScriptedServer server({"HANG"});
  lcake::testing::ManualCancel cancel;
  HttpRequest req;
  req.url = server.url("/slow");
  req.cancel = &cancel;
  cancel.fire_after(std::chrono::milliseconds(300));
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(http_perform(req), lcake::Cancelled);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("a server that never answers: the deadline is a timeout failure, retried then thrown") {
  ScriptedServer server({"HANG"});
  HttpRequest req;
  req.url = server.url("/slow");
  req.timeout = std::chrono::milliseconds(300);
  RetryPolicy p = fast_policy();
  p.attempts = 2;
  try {
    http_perform_retrying(req, p);
    FAIL("no failure");
  } catch (const HttpFailure& f) {
    CHECK(f.kind == HttpFailure::Kind::timeout);
  }
  CHECK(server.received().size() == 2);
}

TEST_CASE("Retry-After is honoured as the least delay") {
  ScriptedServer server({reply(429, "", "Retry-After: 1\r\n"), reply(200, "ok")});
  HttpRequest req;
  req.url = server.url("/t");
  auto t0 = std::chrono::steady_clock::now();
  CHECK(http_perform_retrying(req, fast_policy()).status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(950));
}

TEST_CASE("url_escape and base64 round trips") {
  CHECK(url_escape("a b/c~d") == "a%20b%2Fc~d");
  CHECK(base64_encode("hello") == "aGVsbG8=");
  CHECK(base64_decode("aGVsbG8=") == "hello");
  CHECK(base64_decode(base64_encode(std::string("\0\xff\x10", 3), true)) == std::string("\0\xff\x10", 3));
}
