// The one implementation of Context::spawn, shared by the host and
// lcake/testing.hpp. Not part of the plugin API: include lcake/context.hpp.
//
// The child is put in its own process group and then waits on a pipe until the
// parent has recorded it (pid, pgid, start time) in the ledger, so no process
// ever runs unrecorded: if lcake dies in between, the child reads EOF and exits.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "lcake/context.hpp"

namespace lcake::detail {

// Field 22 of /proc/PID/stat (start time in clock ticks); "" when gone.
inline std::string process_start_time(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::size_t pos = close + 2;
  for (int field = 3; field < 22 && pos < stat.size(); ++field) pos = stat.find(' ', pos) + 1;
  return stat.substr(pos, stat.find(' ', pos) - pos);
}

// Is the process (pid, start time) still running? A zombie is not: it has
// exited and only waits for its parent to collect it.
inline bool process_alive(int pid, const std::string& start_time) {
  if (pid <= 0 || start_time.empty()) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z') return false;
  return process_start_time(pid) == start_time;
}

inline std::filesystem::path find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::filesystem::path cand = std::filesystem::path(dirs.substr(start, end - start)) / name;
    if (end > start && ::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return {};
}

struct ProcessHooks {
  const CancelToken* cancel = nullptr;
  CleanupLedger* ledger = nullptr;
  std::function<void(std::string_view line, bool is_stderr)> log;  // default output
  std::filesystem::path default_cwd;
};

class PosixProcess final : public Process {
 public:
  PosixProcess(const ProcessSpec& spec, ProcessHooks hooks)
      : hooks_(std::move(hooks)), on_output_(spec.on_output) {
    if (spec.argv.empty()) throw InputError("spawn: empty command line");
    std::filesystem::path exe = find_in_path(spec.argv[0]);
    if (exe.empty())
      throw InputError("'" + spec.argv[0] + "' not found in PATH: install it or give its full path");
    if (!on_output_) on_output_ = hooks_.log;
    if (spec.timeout.count() > 0) deadline_ = std::chrono::steady_clock::now() + spec.timeout;
    entry_ = hooks_.ledger ? hooks_.ledger->intend("process", spec.argv[0], {{"argv0", spec.argv[0]}}) : 0;

    int out_fd = -1, pipe_out[2] = {-1, -1}, pipe_err[2] = {-1, -1}, go[2];
    if (!spec.output_file.empty()) {
      out_fd = ::open(spec.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (out_fd < 0) fail_start("cannot open " + spec.output_file.string());
    } else if (::pipe2(pipe_out, O_CLOEXEC) != 0 || ::pipe2(pipe_err, O_CLOEXEC) != 0) {
      fail_start("pipe failed");
    }
    if (::pipe2(go, O_CLOEXEC) != 0) fail_start("pipe failed");
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
    for (const auto& [k, v] : spec.env) {
      std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(k + "=", 0) == 0; });
      env_strings.push_back(k + "=" + v);
    }
    std::vector<char*> argv, envp;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::filesystem::path cwd = spec.cwd.empty() ? hooks_.default_cwd : spec.cwd;

    pid_ = ::fork();
    if (pid_ < 0) fail_start(std::string("fork failed: ") + std::strerror(errno));
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::signal(SIGINT, SIG_DFL), ::signal(SIGTERM, SIG_DFL), ::signal(SIGPIPE, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::close(go[1]);
      char byte;
      if (::read(go[0], &byte, 1) != 1) ::_exit(127);  // parent gone before recording us
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::dup2(out_fd >= 0 ? out_fd : pipe_out[1], 1);
      ::dup2(out_fd >= 0 ? out_fd : pipe_err[1], 2);
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
      ::execve(exe.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);  // also in the parent: no race with the child's own call
    ::close(go[0]);
    if (out_fd >= 0) ::close(out_fd);
    if (pipe_out[1] >= 0) ::close(pipe_out[1]), ::close(pipe_err[1]);
    if (hooks_.ledger)
      hooks_.ledger->confirm(entry_, std::to_string(pid_),
                             {{"pid", pid_}, {"pgid", pid_}, {"start_time", process_start_time(pid_)},
                              {"argv0", spec.argv[0]}});
    char byte = 1;
    (void)!::write(go[1], &byte, 1);
    ::close(go[1]);
    if (pipe_out[0] >= 0) {
      pump_ = std::make_shared<PumpState>();
      pump_->on_output = on_output_;
      reader_ = std::thread([state = pump_, o = pipe_out[0], e = pipe_err[0]] { pump(*state, o, e); });
    }
  }

  ~PosixProcess() override {
    if (!kept_ && !exited()) kill_group();
    if (kept_ && reader_.joinable()) {
      // It outlives us: its output is drained and dropped from now on.
      std::lock_guard lock(pump_->mu);
      pump_->on_output = nullptr;
      reader_.detach();
    }
    if (reader_.joinable()) reader_.join();
    if (!kept_ && hooks_.ledger && entry_) hooks_.ledger->release(entry_);
  }

  int pid() const override { return pid_; }

  std::optional<int> poll() override {
    std::lock_guard lock(mu_);
    if (code_) return code_;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      // The leader is gone; anything it left in its group goes with it.
      ::kill(-pid_, SIGKILL);
    }
    return code_;
  }

  std::optional<int> wait_for(std::chrono::milliseconds d) override {
    auto until = std::chrono::steady_clock::now() + d;
    for (;;) {
      if (auto c = poll()) {
        if (reader_.joinable()) reader_.join();
        return c;
      }
      if (hooks_.cancel && hooks_.cancel->cancelled()) {
        kill();
        throw Cancelled();
      }
      if (deadline_ && std::chrono::steady_clock::now() > *deadline_) {
        kill();
        throw BuildError("timed out; killed");
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void signal(int signo) override {
    if (!exited()) ::kill(-pid_, signo);
  }
  void kill() override {
    kill_group();
    if (reader_.joinable()) reader_.join();
  }
  void keep() override { kept_ = true; }

 private:
  [[noreturn]] void fail_start(const std::string& why) {
    if (hooks_.ledger && entry_) hooks_.ledger->release(entry_);
    throw BuildError(why);
  }
  bool exited() { return poll().has_value(); }
  void kill_group() {
    ::kill(-pid_, SIGKILL);
    std::lock_guard lock(mu_);
    if (!code_) {
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_)
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  struct PumpState {
    std::mutex mu;
    std::function<void(std::string_view, bool)> on_output;
    void emit(std::string_view line, bool is_stderr) {
      std::lock_guard lock(mu);
      if (on_output) on_output(line, is_stderr);
    }
  };
  static void pump(PumpState& state, int out, int err) {
    std::string buf[2];
    pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    int open = 2;
    while (open > 0) {
      if (::poll(fds, 2, 500) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char chunk[4096];
        ssize_t n = ::read(fds[i].fd, chunk, sizeof chunk);
        if (n <= 0) {
          ::close(fds[i].fd), fds[i].fd = -1, --open;
          if (!buf[i].empty()) state.emit(buf[i], i == 1);
          continue;
        }
        buf[i].append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buf[i].find('\n')) != std::string::npos) {
          state.emit(std::string_view(buf[i]).substr(0, nl), i == 1);
          buf[i].erase(0, nl + 1);
        }
      }
    }
  }

  ProcessHooks hooks_;
  std::function<void(std::string_view, bool)> on_output_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::int64_t entry_ = 0;
  pid_t pid_ = -1;
  std::mutex mu_;
  std::optional<int> code_;
  std::shared_ptr<PumpState> pump_;
  std::thread reader_;
  bool kept_ = false;
};

}  // namespace lcake::detail
