#include "test_context.h"

#include <signal.h>

#include <iostream>
#include <thread>

#include "child_process.h"
#include "ssh/ssh.h"

namespace fs = std::filesystem;

namespace lcake::qemu::test {

bool TestCancel::wait_for(std::chrono::milliseconds d) const {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    if (cancelled()) return true;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(10)));
  }
  return cancelled();
}

std::int64_t MemoryLedger::intend(const std::string& kind, const std::string& resource_id, const nlohmann::json& how) {
  std::lock_guard lock(mutex_);
  LedgerEntry e;
  e.id = next_++;
  e.kind = kind, e.resource_id = resource_id, e.how = how;
  open_[e.id] = all_[e.id] = e;
  return e.id;
}

void MemoryLedger::confirm(std::int64_t entry, const std::string& resource_id, const nlohmann::json& how) {
  std::lock_guard lock(mutex_);
  if (!open_.count(entry)) throw std::logic_error("confirm of unknown ledger entry " + std::to_string(entry));
  open_[entry].resource_id = all_[entry].resource_id = resource_id;
  open_[entry].how = all_[entry].how = how;
}

void MemoryLedger::release(std::int64_t entry) {
  std::lock_guard lock(mutex_);
  if (!open_.erase(entry)) throw std::logic_error("release of unknown ledger entry " + std::to_string(entry));
}

std::vector<LedgerEntry> MemoryLedger::open_entries() const {
  std::lock_guard lock(mutex_);
  std::vector<LedgerEntry> out;
  for (auto& [id, e] : open_) out.push_back(e);
  return out;
}

std::vector<LedgerEntry> MemoryLedger::all_entries() const {
  std::lock_guard lock(mutex_);
  std::vector<LedgerEntry> out;
  for (auto& [id, e] : all_) out.push_back(e);
  return out;
}

bool process_alive(int pid, std::uint64_t start_time) {
  return pid > 0 && process_start_time(pid) == start_time && start_time != 0;
}

void MemoryLedger::reap_open() {
  for (auto& e : open_entries()) {
    if (e.kind == "process" && e.how.contains("pid")) {
      int pid = e.how["pid"];
      if (process_alive(pid, e.how["start_time"])) ::kill(pid, SIGKILL);
    } else if (e.kind == "path" && e.how.contains("path")) {
      std::error_code ec;
      fs::remove_all(e.how["path"].get<std::string>(), ec);
    }
    release(e.id);
  }
}

TestContext::TestContext(const fs::path& root, const std::string& step)
    : work_(root / "work" / step), store_(root / "store" / step) {
  fs::create_directories(work_);
  fs::create_directories(store_);
}

void TestContext::log(LogLevel level, std::string_view message) {
  static const char* names[] = {"trace", "debug", "info", "warn", "error"};
  std::lock_guard lock(log_mutex_);
  std::cerr << "[" << names[static_cast<int>(level)] << "] " << message << "\n";
  logs_.emplace_back(message);
}

bool TestContext::logged(std::string_view text) const {
  std::lock_guard lock(log_mutex_);
  for (auto& l : logs_)
    if (l.find(text) != std::string::npos) return true;
  return false;
}

std::string TestContext::generate_ssh_key(const fs::path& dir) { return core::generate_ed25519_key(dir); }

std::unique_ptr<SshCommunicator> TestContext::connect_ssh(const SshOptions& options) {
  return core::connect_ssh(options, cancel_, [this](std::string_view m) { log(LogLevel::debug, m); });
}

}  // namespace lcake::qemu::test
