#include "step_context.h"

#include <algorithm>
#include <cstdlib>

#include "events/redactor.h"
#include "lcake/detail/posix_process.hpp"
#include "ssh/ssh.h"

namespace lcake::core {

StepContext::StepContext(StepScope scope, StateStore& state, EventSink& events,
                         const lcake::CancelToken& cancel)
    : scope_(std::move(scope)), state_(state), events_(events), cancel_(cancel) {
  if (!scope_.work_dir.empty()) std::filesystem::create_directories(scope_.work_dir);
  if (!scope_.store_dir.empty()) std::filesystem::create_directories(scope_.store_dir);
}

StepContext::~StepContext() {
  std::error_code ec;
  if (!scope_.work_dir.empty() && !keep_work_) std::filesystem::remove_all(scope_.work_dir, ec);
}

void StepContext::keep_work_dir() {
  if (keep_work_ || scope_.work_dir.empty()) return;
  auto dir = std::filesystem::absolute(scope_.work_dir).string();
  intend("path", dir, {{"path", dir}});
  keep_work_ = true;
}

void StepContext::log(lcake::LogLevel level, std::string_view message) {
  events_.log(level, scope_.scope, message);
}

// Bytes make a transfer (the view shows a rate); anything else is a wait.
void StepContext::progress(const lcake::Progress& p) {
  // Plugins may report on every chunk; the stream carries at most ~10 reports a
  // second per step, plus every change of what is done and the end.
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    bool done = p.fraction >= 1 || (p.total_bytes && p.done_bytes >= p.total_bytes);
    if (p.what == last_progress_what_ && !done && now - last_progress_ < std::chrono::milliseconds(100))
      return;
    last_progress_ = now, last_progress_what_ = std::string(p.what);
  }
  Event e;
  e.type = p.total_bytes || p.done_bytes ? EventType::transfer : EventType::wait;
  e.scope = scope_.scope, e.variant = scope_.variant, e.layer = scope_.layer, e.stage = scope_.stage;
  e.message = std::string(p.what);
  e.fraction = p.fraction;
  e.done_bytes = p.done_bytes, e.total_bytes = p.total_bytes;
  events_.emit(e);
}

void StepContext::step(const std::string& stage, const std::string& what) {
  Event e;
  e.type = EventType::step;
  e.scope = scope_.scope, e.variant = scope_.variant, e.layer = scope_.layer, e.stage = stage;
  e.message = what;
  events_.emit(e);
}

std::unique_ptr<lcake::Process> StepContext::spawn(const lcake::ProcessSpec& spec) {
  lcake::detail::ProcessHooks hooks{&cancel_, static_cast<lcake::CleanupLedger*>(this),
                                    [this](std::string_view line, bool) {
                                      events_.log(lcake::LogLevel::debug, scope_.scope, line);
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
    events_.log(lcake::LogLevel::debug, scope_.scope, m);
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
