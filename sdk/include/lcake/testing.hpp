// Fakes of the SDK's own interfaces for a plugin's unit tests: a cancel token
// you fire by hand, an in-memory ledger that can reap what was left open, and a
// Context with temp dirs that keeps every log line and progress report.
// Processes are real (the host's own spawn implementation); SSH is whatever
// `ssh_factory` says (none by default: connect_ssh throws).
#pragma once
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "lcake/context.hpp"
#include "lcake/detail/posix_process.hpp"

namespace lcake::testing {

class ManualCancel : public CancelToken {
 public:
  bool cancelled() const override { return fired.load(); }
  bool wait_for(std::chrono::milliseconds d) const override {
    auto end = std::chrono::steady_clock::now() + d;
    while (!cancelled() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::min(d, std::chrono::milliseconds(10)));
    return cancelled();
  }
  void fire() { fired = true; }
  // Fires after `d` from a background thread (cancel in the middle of a wait).
  // The thread is joined by the destructor, so it never outlives the token.
  void fire_after(std::chrono::milliseconds d) {
    timers_.emplace_back([this, d] { std::this_thread::sleep_for(d), fire(); });
  }
  ~ManualCancel() override {
    for (auto& t : timers_) t.join();
  }
  std::atomic<bool> fired{false};

 private:
  std::vector<std::thread> timers_;
};

class MemoryLedger : public CleanupLedger {
 public:
  std::int64_t intend(const std::string& kind, const std::string& resource_id,
                      const nlohmann::json& how) override {
    std::lock_guard lock(mu_);
    LedgerEntry e;
    e.id = next_++, e.kind = kind, e.resource_id = resource_id, e.how = how;
    open_[e.id] = all_[e.id] = e;
    return e.id;
  }
  void confirm(std::int64_t id, const std::string& resource_id, const nlohmann::json& how) override {
    std::lock_guard lock(mu_);
    if (!open_.count(id)) throw std::logic_error("confirm of unknown ledger entry " + std::to_string(id));
    open_[id].resource_id = all_[id].resource_id = resource_id;
    open_[id].how = all_[id].how = how;
  }
  void release(std::int64_t id) override {
    std::lock_guard lock(mu_);
    if (!open_.erase(id)) throw std::logic_error("release of unknown ledger entry " + std::to_string(id));
  }
  std::vector<LedgerEntry> open_entries() const { return values(open_); }
  std::vector<LedgerEntry> all_entries() const { return values(all_); }  // released ones too
  // What the host does with entries left open: kills "process" groups, removes
  // "path"s, hands every other kind to `reap` (e.g. the role's reap()).
  void reap_open(const std::function<void(const LedgerEntry&)>& reap = {}) {
    for (const LedgerEntry& e : open_entries()) {
      if (e.kind == "process" && e.how.contains("pid")) {
        int pid = e.how["pid"], pgid = e.how.value("pgid", pid);
        if (detail::process_start_time(pid) == e.how.value("start_time", std::string()))
          ::kill(-pgid, SIGKILL);
      } else if (e.kind == "path" && e.how.contains("path")) {
        std::error_code ec;
        std::filesystem::remove_all(e.how["path"].get<std::string>(), ec);
      } else if (reap) {
        reap(e);
      }
      release(e.id);
    }
  }

 private:
  static std::vector<LedgerEntry> values(const std::map<std::int64_t, LedgerEntry>& m) {
    std::vector<LedgerEntry> out;
    for (const auto& [id, e] : m) out.push_back(e);
    return out;
  }
  mutable std::mutex mu_;
  std::int64_t next_ = 1;
  std::map<std::int64_t, LedgerEntry> open_, all_;
};

class FakeContext : public Context {
 public:
  // work_dir = root/work, store_dir = root/store (created).
  explicit FakeContext(const std::filesystem::path& root)
      : work_(root / "work"), store_(root / "store") {
    std::filesystem::create_directories(work_);
    std::filesystem::create_directories(store_);
  }

  void log(LogLevel level, std::string_view message) override {
    static const char* names[] = {"trace", "debug", "info", "warn", "error"};
    std::lock_guard lock(mu_);
    if (echo) std::cerr << "[" << names[static_cast<int>(level)] << "] " << message << "\n";
    logs.emplace_back(message);
  }
  using Context::progress;
  void progress(const Progress& p) override {
    std::lock_guard lock(mu_);
    progress_reports.push_back({p.fraction, std::string(p.what), p.done_bytes, p.total_bytes});
  }
  const CancelToken& cancel() const override { return cancel_token; }
  CleanupLedger& ledger() override { return memory_ledger; }
  const std::filesystem::path& work_dir() const override { return work_; }
  const std::filesystem::path& store_dir() const override { return store_; }
  std::optional<std::string> secret(const std::string& name) override {
    if (auto it = secrets.find(name); it != secrets.end()) return it->second;
    return std::nullopt;
  }
  void redact(const std::string& value) override {
    std::lock_guard lock(mu_);
    redacted.push_back(value);
  }
  std::string generate_ssh_key(const std::filesystem::path& dir) override {
    std::filesystem::create_directories(dir);
    std::filesystem::remove(dir / "id_ed25519");
    std::filesystem::remove(dir / "id_ed25519.pub");
    ProcessSpec keygen;  // not a designated initializer: -Wextra warns about the members left out
    keygen.argv = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lcake-test", "-f", (dir / "id_ed25519").string()};
    run_checked(keygen);
    std::ifstream in(dir / "id_ed25519.pub");
    std::string line;
    std::getline(in, line);
    return line;
  }
  std::unique_ptr<SshCommunicator> connect_ssh(const SshOptions& options) override {
    if (!ssh_factory) throw BuildError("FakeContext: no ssh_factory set");
    return ssh_factory(options, *this);
  }
  std::unique_ptr<Process> spawn(const ProcessSpec& spec) override {
    detail::ProcessHooks hooks{&cancel_token, &memory_ledger,
                               [this](std::string_view line, bool) { log(LogLevel::debug, line); },
                               work_};
    return std::make_unique<detail::PosixProcess>(spec, std::move(hooks));
  }

  bool logged(std::string_view text) const {
    std::lock_guard lock(mu_);
    for (const auto& l : logs)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }

  struct ProgressReport {
    double fraction;
    std::string what;
    std::uint64_t done_bytes, total_bytes;
  };
  ManualCancel cancel_token;
  MemoryLedger memory_ledger;
  std::map<std::string, std::string> secrets;
  std::function<std::unique_ptr<SshCommunicator>(const SshOptions&, FakeContext&)> ssh_factory;
  bool echo = true;  // copy log lines to stderr
  std::vector<std::string> logs, redacted;
  std::vector<ProgressReport> progress_reports;

 private:
  std::filesystem::path work_, store_;
  mutable std::mutex mu_;
};

}  // namespace lcake::testing
