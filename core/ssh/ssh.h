// The SSH communicator (libssh), offered to plugins through Context::connect_ssh.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lcake/context.hpp"

namespace lcake::core {

// Retries the connection until options.connect_timeout while the guest boots;
// enforces options.expected_host_key when set; checks cancel between attempts
// and during transfers/commands. On final failure throws lcake::BuildError with
// the last error and the text of options.diagnostics().
std::unique_ptr<lcake::SshCommunicator> connect_ssh(const lcake::SshOptions& options,
                                                    const lcake::CancelToken& cancel,
                                                    std::function<void(std::string_view)> debug_log);

// Writes dir/id_ed25519 and dir/id_ed25519.pub (OpenSSH format); returns the public key line.
std::string generate_ed25519_key(const std::filesystem::path& dir);

}  // namespace lcake::core
