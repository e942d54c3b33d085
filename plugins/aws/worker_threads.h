// Starting a pool of worker threads without std::terminate: when a thread cannot
// be started (std::system_error: no more threads), the ones already running are
// told to stop, joined, and the error is rethrown. The EBS block writers and the
// S3 part uploaders use it.
#pragma once
#include <functional>
#include <thread>
#include <vector>

namespace lcake::aws {

class WorkerThreads {
 public:
  using Starter = std::function<std::thread(const std::function<void()>&)>;

  // Starts `count` threads running `body`. `stop` must make running bodies return
  // soon (set a failed flag, notify a condition variable); it is called only when
  // a start fails. `starter` is for tests.
  WorkerThreads(int count, const std::function<void()>& body, const std::function<void()>& stop,
                const Starter& starter = default_starter) {
    threads_.reserve(static_cast<std::size_t>(count > 0 ? count : 0));
    try {
      for (int i = 0; i < count; ++i) threads_.push_back(starter(body));
    } catch (...) {
      stop();
      join();
      throw;
    }
  }
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;
  // Joins whatever is still running (the caller normally joins first, after telling them to end).
  ~WorkerThreads() { join(); }

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::size_t size() const { return threads_.size(); }

  static std::thread default_starter(const std::function<void()>& body) { return std::thread(body); }

 private:
  std::vector<std::thread> threads_;
};

}  // namespace lcake::aws
