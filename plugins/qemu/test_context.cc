#include "test_context.h"

#include "child_process.h"
#include "ssh/ssh.h"

namespace lcake::qemu::test {

bool process_alive(int pid, std::uint64_t start_time) {
  return pid > 0 && process_start_time(pid) == start_time && start_time != 0;
}

TestContext::TestContext(const std::filesystem::path& root, const std::string& step)
    : FakeContext(root / step) {
  ssh_factory = [](const SshOptions& options, FakeContext& ctx) {
    return core::connect_ssh(options, ctx.cancel(),
                             [&ctx](std::string_view m) { ctx.log(LogLevel::debug, m); });
  };
}

std::string TestContext::generate_ssh_key(const std::filesystem::path& dir) {
  return core::generate_ed25519_key(dir);
}

}  // namespace lcake::qemu::test
