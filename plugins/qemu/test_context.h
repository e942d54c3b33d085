// A small lcake::Context for driving the plugin's classes without the host:
// logs to stderr (and keeps them), an in-memory ledger, dirs under a temp root,
// SSH through the host's libssh communicator.
#pragma once
#include "lcake/detail/posix_process.hpp"
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "lcake/context.hpp"

namespace lcake::qemu::test {

class TestCancel : public CancelToken {
 public:
  bool cancelled() const override { return flag.load(); }
  bool wait_for(std::chrono::milliseconds d) const override;
  std::atomic<bool> flag{false};
};

class MemoryLedger : public CleanupLedger {
 public:
  std::int64_t intend(const std::string& kind, const std::string& resource_id, const nlohmann::json& how) override;
  void confirm(std::int64_t entry, const std::string& resource_id, const nlohmann::json& how) override;
  void release(std::int64_t entry) override;
  std::vector<LedgerEntry> open_entries() const;
  std::vector<LedgerEntry> all_entries() const;  // including released ones (last known state)
  // What the host does with entries left open: kill processes, remove paths.
  void reap_open();

 private:
  mutable std::mutex mutex_;
  std::int64_t next_ = 1;
  std::map<std::int64_t, LedgerEntry> open_, all_;
};

class TestContext : public Context {
 public:
  // work_dir = root/work/<step>, store_dir = root/store/<step>
  TestContext(const std::filesystem::path& root, const std::string& step);
  void log(LogLevel level, std::string_view message) override;
  using lcake::Context::progress;
  void progress(const lcake::Progress&) override {}
  std::unique_ptr<Process> spawn(const ProcessSpec& spec) override {
    return std::make_unique<detail::PosixProcess>(spec, detail::ProcessHooks{&cancel_, &ledger_, {}, work_});
  }

  const CancelToken& cancel() const override { return cancel_; }
  CleanupLedger& ledger() override { return ledger_; }
  const std::filesystem::path& work_dir() const override { return work_; }
  const std::filesystem::path& store_dir() const override { return store_; }
  std::optional<std::string> secret(const std::string&) override { return std::nullopt; }
  void redact(const std::string&) override {}
  std::string generate_ssh_key(const std::filesystem::path& dir) override;
  std::unique_ptr<SshCommunicator> connect_ssh(const SshOptions& options) override;

  bool logged(std::string_view text) const;

  TestCancel cancel_;
  MemoryLedger ledger_;
  std::filesystem::path work_, store_;
  mutable std::mutex log_mutex_;
  std::vector<std::string> logs_;
};

// Does a process with this pid and /proc start time still exist?
bool process_alive(int pid, std::uint64_t start_time);

}  // namespace lcake::qemu::test
