#include "test_context.h"

#include "ssh/ssh.h"

namespace lcake::qemu::test {

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
