// The guest's host-side sockets: a free localhost port for SSH forwarding, a
// probe for the guest's SSH banner, and one-shot QMP commands.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>

namespace lcake::qemu {

// A TCP port on 127.0.0.1 that was free a moment ago (qemu may still lose a race for it).
int free_local_port();

// Does something on 127.0.0.1:port send an SSH banner within ~1.5 s?
bool ssh_banner_seen(int port);

// Sends one QMP command (after the greeting and qmp_capabilities) over the
// unix socket; true when qemu acknowledged it within `timeout`.
bool qmp_exchange(const std::filesystem::path& socket_path, const std::string& command,
                  std::chrono::milliseconds timeout);

}  // namespace lcake::qemu
