#include "ssh/server_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

namespace lcake::core {
namespace {

using Clock = std::chrono::steady_clock;

struct Attempt {
  int fd;
  bool connected;
  std::chrono::steady_clock::time_point opened;
};

// Closes every pending socket however we leave (including a throwing tick).
struct Attempts {
  std::vector<Attempt> list;
  ~Attempts() {
    for (auto& a : list) close(a.fd);
  }
  void drop(std::size_t i) {
    close(list[i].fd);
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
  }
};

}  // namespace

int connect_when_talking(const std::string& host, int port, Clock::time_point deadline,
                         const std::function<void()>& tick, std::chrono::milliseconds stagger) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0)
    throw ServerSilent("cannot resolve " + host + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  std::vector<addrinfo*> addresses;
  for (addrinfo* a = found; a; a = a->ai_next) addresses.push_back(a);

  // Each connected attempt is an unauthenticated client to the server until it answers; servers
  // drop clients beyond a small limit (dropbear: 5 per address, OpenSSH: MaxStartups 10, random
  // drops past it), and a slow guest then never gets to answer the ones it keeps. Stay below both.
  constexpr std::size_t kMaxPending = 4;
  // At the limit, the oldest attempt makes room for a new one once it waited this long (QEMU's
  // user network may hold it forever); longer each time, so a merely slow server gets its turn.
  std::chrono::milliseconds hold = 20 * stagger, longer = 4 * stagger;
  Attempts pending;
  std::string last_error = "no answer";
  std::size_t next_address = 0;
  auto next_open = Clock::now();
  for (;;) {
    auto now = Clock::now();
    if (now >= next_open && pending.list.size() >= kMaxPending && now - pending.list.front().opened >= hold) {
      pending.drop(0);
      hold = std::min(hold + longer, 120 * stagger);
    }
    if (now >= next_open && pending.list.size() < kMaxPending) {
      addrinfo* a = addresses[next_address++ % addresses.size()];
      int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        last_error = strerror(errno);
      } else if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last_error = strerror(errno);
        close(fd);
      } else {
        pending.list.push_back({fd, false, now});
      }
      next_open = now + stagger;
    }

    std::vector<pollfd> polls;
    for (auto& a : pending.list) polls.push_back({a.fd, static_cast<short>(a.connected ? POLLIN : POLLOUT), 0});
    auto until = std::min({next_open, deadline, now + std::chrono::milliseconds(100)});
    int wait_ms = static_cast<int>(std::max<long long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count(), 0));
    if (poll(polls.data(), polls.size(), wait_ms) < 0 && errno != EINTR)
      throw ServerSilent(std::string("poll: ") + strerror(errno));

    for (std::size_t i = polls.size(); i-- > 0;) {
      if (!polls[i].revents) continue;
      Attempt& a = pending.list[i];
      if (!a.connected) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        getsockopt(a.fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        if (so_error != 0) {
          last_error = strerror(so_error);
          pending.drop(i);
        } else {
          a.connected = true;
          last_error = "connected, but no SSH banner yet (sshd not running?)";
        }
        continue;
      }
      char c;
      if (recv(a.fd, &c, 1, MSG_PEEK) <= 0) {
        last_error = "connection closed before the SSH banner (sshd not running yet?)";
        pending.drop(i);
        continue;
      }
      int fd = a.fd;
      pending.list.erase(pending.list.begin() + static_cast<std::ptrdiff_t>(i));
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      int one = 1;  // SFTP waits for each reply: Nagle + delayed ACK would cost 40 ms a chunk
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    if (Clock::now() >= deadline) throw ServerSilent(last_error);
    tick();
  }
}

}  // namespace lcake::core
