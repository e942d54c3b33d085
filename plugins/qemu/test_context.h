// lcake::testing::FakeContext for driving the plugin's classes without the
// host, with the host's own SSH (libssh) and key generation.
#pragma once
#include "lcake/testing.hpp"

namespace lcake::qemu::test {

class TestContext : public lcake::testing::FakeContext {
 public:
  // work_dir = root/<step>/work, store_dir = root/<step>/store
  TestContext(const std::filesystem::path& root, const std::string& step);
  std::string generate_ssh_key(const std::filesystem::path& dir) override;
};

}  // namespace lcake::qemu::test
