// The Context a plugin role sees while one step (build, upload, verify, publish,
// reap) runs: logging under the step's scope, the run's cancel token, a ledger
// bound to the run, plugin and role, scratch and store dirs, secrets, SSH.
#pragma once
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "events/event.h"
#include "lcake/context.hpp"
#include "state/state_store.h"

namespace lcake::core {

struct StepScope {
  std::string run_id;
  std::string scope;   // "tiny-dropbear/stack" (log prefix)
  std::string variant, layer, stage;  // for the events of this step
  std::string plugin;  // owning plugin of the ledger entries
  std::string role;    // "builder" | "uploader" | "verifier"
  nlohmann::json settings = nlohmann::json::object();  // the role's settings, kept for gc
  std::filesystem::path work_dir;   // created now, removed by the destructor
  std::filesystem::path store_dir;  // created now, kept
};

class StepContext : public lcake::Context, private lcake::CleanupLedger {
 public:
  StepContext(StepScope scope, StateStore& state, EventSink& events, const lcake::CancelToken& cancel);
  ~StepContext() override;

  void log(lcake::LogLevel level, std::string_view message) override;
  using lcake::Context::progress;
  void progress(const lcake::Progress& p) override;
  const lcake::CancelToken& cancel() const override { return cancel_; }
  lcake::CleanupLedger& ledger() override { return *this; }
  const std::filesystem::path& work_dir() const override { return scope_.work_dir; }
  const std::filesystem::path& store_dir() const override { return scope_.store_dir; }
  std::optional<std::string> secret(const std::string& name) override;
  void redact(const std::string& value) override;
  std::string generate_ssh_key(const std::filesystem::path& dir) override;
  std::unique_ptr<lcake::SshCommunicator> connect_ssh(const lcake::SshOptions& options) override;
  std::unique_ptr<lcake::Process> spawn(const lcake::ProcessSpec& spec) override;

  // Ledger entries this context created that are not released yet.
  std::vector<std::int64_t> open_entries() const;
  // --on-error abort: the work dir outlives this context (a kept VM uses it);
  // recorded in the ledger, so `lcake gc` removes it.
  void keep_work_dir();
  bool work_dir_kept() const { return keep_work_; }
  // A provisioner or verify step starts (the `step` event).
  void step(const std::string& stage, const std::string& what);

 private:
  std::int64_t intend(const std::string& kind, const std::string& resource_id,
                      const nlohmann::json& how) override;
  void confirm(std::int64_t entry, const std::string& resource_id, const nlohmann::json& how) override;
  void release(std::int64_t entry) override;

  StepScope scope_;
  StateStore& state_;
  EventSink& events_;
  const lcake::CancelToken& cancel_;
  mutable std::mutex mu_;
  std::vector<std::int64_t> entries_;
  std::chrono::steady_clock::time_point last_progress_{};
  std::string last_progress_what_;
  bool keep_work_ = false;
};

}  // namespace lcake::core
