#include "cancel.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

namespace lcake::core {

bool CancelSource::wait_for(std::chrono::milliseconds d) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, d, [&] { return fired_.load(); });
}

void CancelSource::fire() {
  {
    std::lock_guard lock(mu_);
    fired_ = true;
  }
  cv_.notify_all();
}

void install_signal_cancel(CancelSource& source, std::function<void()> on_first,
                           std::function<void()> on_second) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, &source, on_first = std::move(on_first), on_second = std::move(on_second)] {
    int count = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (++count == 1) {
        source.fire();
        if (on_first) on_first();
      } else {
        if (on_second) on_second();
        _exit(130);
      }
    }
  }).detach();
}

}  // namespace lcake::core
