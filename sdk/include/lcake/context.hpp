#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lcake/communicator.hpp"
#include "lcake/errors.hpp"

namespace lcake {

enum class LogLevel { trace, debug, info, warn, error };

// One token per run; every wait loop and long transfer checks it.
class CancelToken {
 public:
  virtual ~CancelToken() = default;
  virtual bool cancelled() const = 0;
  // Sleeps up to `d`; returns true (early) if the run was cancelled meanwhile.
  virtual bool wait_for(std::chrono::milliseconds d) const = 0;
  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled();
  }
};

// An external resource a plugin created or is about to create.
struct LedgerEntry {
  std::int64_t id = 0;
  std::string plugin{};  // owning plugin, filled in by the host
  std::string role{};    // "builder" | "uploader" | "verifier"
  std::string kind{};    // plugin-defined, e.g. "container", "ebs-snapshot"
  std::string resource_id{};
  nlohmann::json how = nlohmann::json::object();  // whatever is needed to delete it
};

// Record every external resource *before* creating it, confirm it once it
// exists, release it when deleted or promoted to an artifact. Entries left
// unreleased are deleted by the host on error, Ctrl-C, or `lcake gc`.
//
// Two kinds are handled by the host itself, for any plugin:
//   "process": how = {"pid": N, "pgid": G, "start_time": T}: Context::spawn records
//              these for you; the host kills the whole process group G.
//   "path":    how = {"path": "/abs/path"}         (file or directory, removed recursively)
// Every other kind is passed to the owning role's reap().
class CleanupLedger {
 public:
  virtual ~CleanupLedger() = default;
  virtual std::int64_t intend(const std::string& kind, const std::string& resource_id,
                              const nlohmann::json& how) = 0;
  virtual void confirm(std::int64_t entry, const std::string& resource_id,
                       const nlohmann::json& how) = 0;
  virtual void release(std::int64_t entry) = 0;
};

// One resource in the ledger for the length of a scope: intends on construction;
// call confirmed() once it exists, then either promote() it (it became the
// artifact: the entry is released), deleted() (you removed it yourself), or let
// it go out of scope: the entry stays open and the host's reaper deletes the
// resource when the step ends (or `lcake gc` after a crash).
class LedgerScope {
 public:
  LedgerScope(CleanupLedger& ledger, const std::string& kind, const std::string& resource_id,
              const nlohmann::json& how = nlohmann::json::object())
      : ledger_(&ledger), id_(ledger.intend(kind, resource_id, how)), how_(how) {}
  LedgerScope(const LedgerScope&) = delete;
  LedgerScope& operator=(const LedgerScope&) = delete;
  ~LedgerScope() = default;  // deliberately nothing: an open entry is the reaper's to delete

  // The resource exists now, under this id (e.g. the UUID a server returned).
  void confirmed(const std::string& resource_id, const nlohmann::json& how) {
    how_ = how;
    ledger_->confirm(id_, resource_id, how);
  }
  void confirmed(const std::string& resource_id) { ledger_->confirm(id_, resource_id, how_); }
  void promote() { release(); }
  void deleted() { release(); }
  bool open() const { return !released_; }
  std::int64_t entry() const { return id_; }

 private:
  void release() {
    if (!released_) ledger_->release(id_), released_ = true;
  }
  CleanupLedger* ledger_;
  std::int64_t id_;
  nlohmann::json how_;
  bool released_ = false;
};

// A local command run by the host for a plugin (qemu-img, qemu-system, mkfs...).
// Like every SDK struct, all members have default initializers, so `ctx.run({.argv = {...}})`
// builds clean under -Wextra (g++ warns about designated initializers that leave out a member
// without one).
struct ProcessSpec {
  std::vector<std::string> argv{};  // argv[0] is looked up in PATH unless it holds a '/'
  std::vector<std::pair<std::string, std::string>> env{};  // added to lcake's environment
  std::filesystem::path cwd{};                             // empty: the step's work dir
  // Where stdout and stderr go: a file (appended), else `on_output` per whole
  // line, else the step's log at debug level. Secrets are redacted in the log.
  std::filesystem::path output_file{};
  std::function<void(std::string_view line, bool is_stderr)> on_output{};
  // Killed (with its process group) after this long; zero: no limit.
  std::chrono::seconds timeout{0};
};

// A child in its own process group, recorded in the ledger (kind "process")
// before it starts. Cancelling the run kills the group. The destructor kills
// the group if it is still running and releases the ledger entry, unless
// keep() was called (then the entry stays for `lcake gc`).
class Process {
 public:
  virtual ~Process() = default;
  virtual int pid() const = 0;
  // The exit code once it exited (128+N for signal N), else nullopt. Never blocks.
  virtual std::optional<int> poll() = 0;
  // Waits up to `d`; throws Cancelled (after killing the group) if the run is
  // cancelled, BuildError if the spec's timeout passed (after killing it).
  virtual std::optional<int> wait_for(std::chrono::milliseconds d) = 0;
  int wait() {
    for (;;)
      if (auto code = wait_for(std::chrono::milliseconds(200))) return *code;
  }
  virtual void signal(int signo) = 0;  // to the whole group
  virtual void kill() = 0;             // SIGKILL to the group, then reaps it
  virtual void keep() = 0;             // leave it running (--on-error abort)
};

struct ProcessResult {
  int exit_code = -1;
  std::string output{};  // stdout and stderr, interleaved by line
};

// Progress of a step. Use the bytes form for transfers (the view shows bytes
// and a rate) and the fraction form for waits ("waiting for snapshot 40 %").
struct Progress {
  double fraction = -1;   // [0,1]; negative: unknown
  std::string_view what{};  // "uploading disk.raw", "waiting for image active"
  std::uint64_t done_bytes = 0, total_bytes = 0;  // both zero: not a transfer
};

struct SshOptions {
  std::string host = "127.0.0.1";
  int port = 22;
  std::string user = "root";
  std::filesystem::path private_key{};  // OpenSSH private key file
  // Expected host key ("ssh-ed25519 AAAA..."). Empty: accept the first key seen
  // (read it back with host_key()) and enforce it on every later reconnect.
  std::string expected_host_key{};
  // Keep retrying the connection until this deadline (the guest may be booting).
  std::chrono::seconds connect_timeout{300};
  // Called when connecting finally fails; its text is appended to the error
  // (e.g. the tail of a serial console).
  std::function<std::string()> diagnostics{};
  // Called between connection attempts; throwing aborts the wait (e.g. the VM exited).
  std::function<void()> still_alive{};
};

class SshCommunicator : public Communicator {
 public:
  virtual std::string host_key() const = 0;  // "ssh-ed25519 AAAA..."
};

// Everything the host offers a plugin while one of its roles runs.
class Context {
 public:
  virtual ~Context() = default;

  virtual void log(LogLevel level, std::string_view message) = 0;
  void debug(std::string_view m) { log(LogLevel::debug, m); }
  void info(std::string_view m) { log(LogLevel::info, m); }
  void warn(std::string_view m) { log(LogLevel::warn, m); }

  virtual void progress(const Progress& p) = 0;
  // fraction in [0,1], or negative when unknown.
  void progress(double fraction, std::string_view what) { progress(Progress{fraction, what}); }
  void progress_bytes(std::uint64_t done, std::uint64_t total, std::string_view what) {
    double f = total ? static_cast<double>(done) / static_cast<double>(total) : -1;
    progress(Progress{f, what, done, total});
  }
  virtual const CancelToken& cancel() const = 0;
  virtual CleanupLedger& ledger() = 0;

  // Scratch directory for this step; removed by the host afterwards.
  virtual const std::filesystem::path& work_dir() const = 0;
  // Persistent directory owned by this (target, variant, layer, key); a place
  // for local artifacts such as disk images.
  virtual const std::filesystem::path& store_dir() const = 0;

  // A secret from the environment (or the host's secret sources). Its value is
  // redacted from every log line, event, manifest and error message.
  virtual std::optional<std::string> secret(const std::string& name) = 0;
  // Marks a value (e.g. a token obtained at run time) for redaction.
  virtual void redact(const std::string& value) = 0;

  // Writes a fresh ed25519 key pair to dir/id_ed25519{,.pub}; returns the public key line.
  virtual std::string generate_ssh_key(const std::filesystem::path& dir) = 0;
  virtual std::unique_ptr<SshCommunicator> connect_ssh(const SshOptions& options) = 0;

  // Starts a local command (see Process). Throws InputError when argv[0] is not
  // found, BuildError when it cannot start.
  virtual std::unique_ptr<Process> spawn(const ProcessSpec& spec) = 0;
  // Runs a command to completion and collects its output.
  ProcessResult run(ProcessSpec spec) {
    ProcessResult result;
    auto user = spec.on_output;
    spec.output_file.clear();
    spec.on_output = [&](std::string_view line, bool is_stderr) {
      result.output.append(line).push_back('\n');
      if (user) user(line, is_stderr);
    };
    auto p = spawn(spec);
    result.exit_code = p->wait();
    return result;
  }
  // Same; a non-zero exit is a BuildError naming the command and its last line.
  std::string run_checked(const ProcessSpec& spec) {
    ProcessResult r = run(spec);
    if (r.exit_code != 0) {
      std::string out = r.output;
      while (!out.empty() && out.back() == '\n') out.pop_back();
      std::size_t nl = out.rfind('\n');
      std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
      throw BuildError((spec.argv.empty() ? std::string("command") : spec.argv[0]) +
                       " exited with " + std::to_string(r.exit_code) +
                       (last.empty() ? std::string() : ": " + last));
    }
    return r.output;
  }
};

}  // namespace lcake
