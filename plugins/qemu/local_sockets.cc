#include "local_sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "lcake/errors.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lcake::qemu {

int free_local_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) ::close(fd);
  if (!port) throw BuildError("cannot find a free TCP port on 127.0.0.1 for the guest's SSH");
  return port;
}

// One request/reply over QMP: greeting, qmp_capabilities, then `command`.
bool qmp_exchange(const fs::path& socket_path, const std::string& command,
                         std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string buffer;
  // Reads messages until one is a reply ("return"/"error") or a greeting ("QMP").
  auto read_reply = [&]() -> bool {
    for (;;) {
      for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
        auto line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        auto msg = nlohmann::json::parse(line, nullptr, false);
        if (msg.is_object() && (msg.contains("return") || msg.contains("QMP"))) return true;
        if (msg.is_object() && msg.contains("error")) return false;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char chunk[4096];
      auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
    }
  };
  auto send = [&](const std::string& name) {
    auto text = nlohmann::json{{"execute", name}}.dump() + "\n";
    return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  };
  bool ok = read_reply() && send("qmp_capabilities") && read_reply() && send(command) && read_reply();
  ::close(fd);
  return ok;
}

// Does something on 127.0.0.1:port send an SSH banner within ~1.5 s? slirp
// accepts connections before the guest's sshd runs; such a connection just
// hangs, so short probes find the moment sshd is up sooner than SSH handshakes.
bool ssh_banner_seen(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool seen = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EINPROGRESS) {
    pollfd p{fd, POLLIN, 0};
    char banner[8] = {};
    if (::poll(&p, 1, 1500) > 0 && (p.revents & POLLIN)) seen = ::recv(fd, banner, 4, 0) == 4 && std::string(banner, 4) == "SSH-";
  }
  ::close(fd);
  return seen;
}

}  // namespace lcake::qemu
