// The run's cancel token, fired by the first SIGINT/SIGTERM. A second signal
// exits at once (code 130) and leaves the ledger for `lcake gc`.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "lcake/context.hpp"

namespace lcake::core {

class CancelSource : public lcake::CancelToken {
 public:
  bool cancelled() const override { return fired_.load(); }
  bool wait_for(std::chrono::milliseconds d) const override;
  void fire();

 private:
  std::atomic<bool> fired_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

// Blocks SIGINT/SIGTERM in the calling thread (call before starting others) and
// starts a thread that fires `source` on the first signal and calls
// on_second() then _exit(130) on the second.
void install_signal_cancel(CancelSource& source, std::function<void()> on_first,
                           std::function<void()> on_second);

}  // namespace lcake::core
