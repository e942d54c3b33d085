// Waits until an SSH server at host:port starts talking, before libssh takes over the socket.
#pragma once
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

namespace lcake::core {

// The server did not send an SSH banner before the deadline; what() says what was seen last
// ("Connection refused", "connected, but no SSH banner yet", ...).
struct ServerSilent : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// QEMU's user network accepts TCP at once, then holds a connection open while the guest cannot
// answer yet; that connection may never see the banner even after sshd is up. So a new connection
// is opened every `stagger` while older ones keep waiting, and the first one on which the server
// sends its banner wins. At most 4 attempts are open at once (SSH servers drop unauthenticated
// clients beyond 5 or 10); at that limit the oldest gives way to a new one after 20 staggers (10 s),
// 4 staggers longer each time up to 120 (so a server that is merely slow gets its answer out). `tick` is
// called about every 100 ms and may throw (cancel, VM died). Returns a blocking socket with
// TCP_NODELAY whose unread data starts with the banner; the caller owns it.
int connect_when_talking(const std::string& host, int port, std::chrono::steady_clock::time_point deadline,
                         const std::function<void()>& tick,
                         std::chrono::milliseconds stagger = std::chrono::milliseconds(500));

}  // namespace lcake::core
