// Small helpers every test binary gets (linked into lcake_doctest_main).
#pragma once
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
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

// A cancel token a test fires by hand (from any thread).
class TestCancel : public lcake::CancelToken {
 public:
  bool cancelled() const override { return fired_; }
  bool wait_for(std::chrono::milliseconds d) const override {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return fired_.load(); });
  }
  void fire() {
    {
      std::lock_guard lock(mu_);
      fired_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::atomic<bool> fired_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

}  // namespace lcake::test
