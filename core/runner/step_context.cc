#include "step_context.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "lcake/detail/posix_process.hpp"
#include "ssh/ssh.h"

namespace lcake::core {

StepContext::StepContext(StepScope scope, StateStore& state, EventLog& log,
                         const lcake::CancelToken& cancel)
    : scope_(std::move(scope)), state_(state), log_(log), cancel_(cancel) {
  if (!scope_.work_dir.empty()) std::filesystem::create_directories(scope_.work_dir);
  if (!scope_.store_dir.empty()) std::filesystem::create_directories(scope_.store_dir);
}

StepContext::~StepContext() {
  std::error_code ec;
  if (!scope_.work_dir.empty()) std::filesystem::remove_all(scope_.work_dir, ec);
}

void StepContext::log(lcake::LogLevel level, std::string_view message) {
  log_.log(level, scope_.scope, message);
}

void StepContext::progress(const lcake::Progress& p) {
  nlohmann::json f = {{"what", p.what}};
  if (p.fraction >= 0) f["fraction"] = p.fraction;
  if (p.total_bytes || p.done_bytes) f["done_bytes"] = p.done_bytes, f["total_bytes"] = p.total_bytes;
  std::string text;
  if (log_.min_level() <= lcake::LogLevel::debug) {
    text = std::string(p.what);
    if (p.fraction >= 0) text += " (" + std::to_string(static_cast<int>(std::lround(p.fraction * 100))) + "%)";
  }
  log_.event("progress", f, scope_.scope, text);
}

std::unique_ptr<lcake::Process> StepContext::spawn(const lcake::ProcessSpec& spec) {
  lcake::detail::ProcessHooks hooks{&cancel_, static_cast<lcake::CleanupLedger*>(this),
                                    [this](std::string_view line, bool) {
                                      log_.log(lcake::LogLevel::debug, scope_.scope, line);
                                    },
                                    scope_.work_dir};
  return std::make_unique<lcake::detail::PosixProcess>(spec, std::move(hooks));
}

std::optional<std::string> StepContext::secret(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  Redactor::instance().add(v);
  return std::string(v);
}

void StepContext::redact(const std::string& value) { Redactor::instance().add(value); }

std::string StepContext::generate_ssh_key(const std::filesystem::path& dir) {
  return generate_ed25519_key(dir);
}

std::unique_ptr<lcake::SshCommunicator> StepContext::connect_ssh(const lcake::SshOptions& options) {
  return core::connect_ssh(options, cancel_, [this](std::string_view m) {
    log_.log(lcake::LogLevel::debug, scope_.scope, m);
  });
}

std::int64_t StepContext::intend(const std::string& kind, const std::string& resource_id,
                                 const nlohmann::json& how) {
  auto id = state_.ledger_intend(scope_.run_id, scope_.plugin, scope_.role, scope_.settings, kind,
                                 resource_id, how);
  std::lock_guard lock(mu_);
  entries_.push_back(id);
  return id;
}

void StepContext::confirm(std::int64_t entry, const std::string& resource_id,
                          const nlohmann::json& how) {
  state_.ledger_confirm(entry, resource_id, how);
}

void StepContext::release(std::int64_t entry) {
  state_.ledger_release(entry);
  std::lock_guard lock(mu_);
  entries_.erase(std::remove(entries_.begin(), entries_.end(), entry), entries_.end());
}

std::vector<std::int64_t> StepContext::open_entries() const {
  std::lock_guard lock(mu_);
  return entries_;
}

}  // namespace lcake::core
