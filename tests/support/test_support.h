// Small helpers every test binary gets (linked into lcake_doctest_main).
#pragma once
#include <filesystem>
#include <string>

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

}  // namespace lcake::test
