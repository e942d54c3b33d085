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
