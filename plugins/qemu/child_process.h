// Child processes (qemu-system, qemu-img, mkfs.vfat, mcopy) via Boost.Process v2,
// behind a small interface so no other file sees Boost.
#pragma once
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lcake/context.hpp"

namespace lcake::qemu {

// Looks `name` up in PATH (or takes it as is when it contains a '/').
// Throws InputError naming `setting` when it is not found.
// `setting`: the settings key that named the program ("/qemu_binary"), blamed in an
// lcake::ValueError when it is missing; empty when no setting named it.
std::filesystem::path find_program(const std::string& name, const std::string& setting);

// A running child whose stdout and stderr go to `output_file`.
// The destructor kills it (SIGKILL) if it is still running.
class ChildProcess {
 public:
  ChildProcess(const std::filesystem::path& exe, const std::vector<std::string>& args,
               const std::filesystem::path& output_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const;
  // Field 22 of /proc/PID/stat: with the pid, identifies this process for the ledger.
  std::uint64_t start_time() const { return start_time_; }
  bool running();
  std::optional<int> exit_code();  // once it exited
  // Waits up to `d` for the exit; true when it exited. Throws Cancelled.
  bool wait_for(std::chrono::milliseconds d, const CancelToken& cancel);
  void send_signal(int signo);
  void kill_and_wait();  // SIGKILL, then reap

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint64_t start_time_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};

// Runs a command to completion, checking `cancel`; kills it after `timeout`
// (zero: no limit) and throws BuildError.
CommandResult run_command(const std::vector<std::string>& argv, const CancelToken& cancel,
                          std::chrono::seconds timeout = std::chrono::seconds{0});
// Same, but a non-zero exit is a BuildError quoting the command's last output line.
std::string run_checked(const std::vector<std::string>& argv, const CancelToken& cancel,
                        std::chrono::seconds timeout = std::chrono::seconds{0});

// Field 22 of /proc/PID/stat; 0 when the process is gone.
std::uint64_t process_start_time(int pid);

// The last `lines` non-blank lines of a text file, control characters removed.
std::string file_tail(const std::filesystem::path& file, int lines);
// The last line of a text file containing `needle` ("" when none), cleaned like file_tail.
std::string last_line_with(const std::filesystem::path& file, const std::string& needle);

}  // namespace lcake::qemu
