// connect_when_talking against plain TCP listeners that behave like QEMU's user network.
#include "ssh/server_probe.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Listens on 127.0.0.1; `on_accept(n, fd)` decides what the n-th accepted connection sees.
struct Listener {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int port = 0;
  std::vector<int> accepted;
  std::thread thread;
  std::atomic<bool> stop{false};

  template <class F>
  explicit Listener(F on_accept) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    listen(fd, 16);
    thread = std::thread([this, on_accept] {
      for (int n = 0; !stop; ++n) {
        int c = accept(fd, nullptr, nullptr);
        if (c < 0) return;
        accepted.push_back(c);
        on_accept(n, c);
      }
    });
  }
  ~Listener() {
    stop = true;
    shutdown(fd, SHUT_RDWR);
    close(fd);
    thread.join();
    for (int c : accepted) close(c);
  }
};

int unused_port() {
  Listener l([](int, int) {});
  return l.port;  // closed again when l goes away
}

long open_fds() {
  return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                       std::filesystem::directory_iterator{});
}

}  // namespace

TEST_CASE("connect_when_talking: a silent held connection does not hide a later live one") {
  // Connection 0 is accepted and never answered (QEMU while the guest boots); later ones get a banner.
  Listener l([](int n, int c) {
    if (n > 0) {
      const char banner[] = "SSH-2.0-test\r\n";
      (void)!write(c, banner, sizeof banner - 1);
    }
  });
  auto start = Clock::now();
  int fd = lcake::core::connect_when_talking("127.0.0.1", l.port, start + 10s, [] {}, 200ms);
  CHECK(Clock::now() - start < 2s);
  char buf[32] = {};
  CHECK(read(fd, buf, sizeof buf - 1) > 0);
  CHECK(std::string(buf) == "SSH-2.0-test\r\n");
  close(fd);
}

TEST_CASE("connect_when_talking: at most 4 attempts at once, the oldest held one giving way") {
  // The first 6 connections are held silent (more than dropbear's 5 unauthenticated clients per
  // address would keep); the 7th gets a banner. lcake must get there with no more than 4 open.
  std::atomic<int> accepted{0};
  Listener l([&](int n, int c) {
    accepted = n + 1;
    if (n >= 6) {
      const char banner[] = "SSH-2.0-test\r\n";
      (void)!write(c, banner, sizeof banner - 1);
    }
  });
  long base = open_fds();
  long most = 0;
  auto start = Clock::now();
  int fd = lcake::core::connect_when_talking("127.0.0.1", l.port, start + 20s, [&] {
    long fds = open_fds();
    most = std::max(most, fds - base - accepted.load());  // ours: all but the listener's accepted ones
  }, 50ms);
  CHECK(Clock::now() - start < 10s);
  CHECK(accepted >= 7);
  CHECK(most <= 4);
  CHECK(most >= 3);  // it did keep several going
  char buf[32] = {};
  CHECK(read(fd, buf, sizeof buf - 1) > 0);
  CHECK(std::string(buf).rfind("SSH-2.0-test", 0) == 0);
  close(fd);
}

TEST_CASE("connect_when_talking: errors say what was seen last") {
  auto fds = open_fds();
  SUBCASE("nothing listening") {
    int port = unused_port();
    CHECK_THROWS_WITH_AS(lcake::core::connect_when_talking("127.0.0.1", port, Clock::now() + 500ms, [] {}),
                         "Connection refused", lcake::core::ServerSilent);
  }
  SUBCASE("accepted and closed at once") {
    Listener l([](int, int c) { shutdown(c, SHUT_RDWR); });
    CHECK_THROWS_WITH_AS(lcake::core::connect_when_talking("127.0.0.1", l.port, Clock::now() + 500ms, [] {}),
                         doctest::Contains("connection closed before the SSH banner"), lcake::core::ServerSilent);
  }
  SUBCASE("accepted and silent") {
    Listener l([](int, int) {});
    CHECK_THROWS_WITH_AS(lcake::core::connect_when_talking("127.0.0.1", l.port, Clock::now() + 700ms, [] {}, 200ms),
                         doctest::Contains("no SSH banner"), lcake::core::ServerSilent);
  }
  SUBCASE("tick throwing stops the wait") {
    Listener l([](int, int) {});
    int ticks = 0;
    CHECK_THROWS_WITH(lcake::core::connect_when_talking("127.0.0.1", l.port, Clock::now() + 10s, [&] {
      if (++ticks == 5) throw std::runtime_error("vm died");
    }), "vm died");
  }
  CHECK(open_fds() == fds);  // every probe socket closed
}
