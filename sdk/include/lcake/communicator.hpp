#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace lcake {

// A way into a machine being built or verified: SSH for VMs, exec for containers.
// Implementations honour the run's cancel token and throw lcake::Cancelled.
class Communicator {
 public:
  // Called with each chunk of output as it arrives (not necessarily whole lines).
  using OutputFn = std::function<void(std::string_view chunk, bool is_stderr)>;

  virtual ~Communicator() = default;

  // Runs `command` with /bin/sh -c semantics; returns its exit code. Throws
  // lcake::BuildError when it runs longer than `timeout` (zero: no limit).
  virtual int run(const std::string& command, const OutputFn& on_output,
                  std::chrono::seconds timeout) = 0;
  virtual void upload(const std::filesystem::path& local, const std::string& remote) = 0;
  virtual void download(const std::string& remote, const std::filesystem::path& local) = 0;
};

}  // namespace lcake
