// Small helpers every test binary gets (linked into lcake_doctest_main).
#pragma once
#include <filesystem>
#include <string>

#include "lcake/context.hpp"

namespace lcake::test {

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// A fresh directory under $LCAKE_BINARY_DIR/tmp (or the system temp dir),
// removed with everything in it when the object goes out of scope.
struct TempDir {
  explicit TempDir(const std::string& prefix = "lcake-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path path;
};

// The test guest of this build tree (scripts/build-guest.sh --sshd FLAVOUR --reuse into
// $LCAKE_BINARY_DIR/tests/guest/FLAVOUR): built on first use, rebuilt only when the script changed,
// shared by every test binary (build-guest.sh locks the directory while it builds). Returns the
// directory (base.qcow2, host_key.pub, vmlinuz, initrd.img). Throws with the log's path on failure;
// the caller skips when it is not root (the build needs root).
std::filesystem::path test_guest(const std::string& flavour = "dropbear");

}  // namespace lcake::test
