// The runner's internals, shared by runner.cc (the run), run_variant.cc (the
// rules for one variant) and layer_steps.cc (one build, upload, verify or
// publish step of a layer).
#pragma once
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "events/manifest_writer.h"
#include "lcake/errors.hpp"
#include "runner.h"
#include "step_context.h"

#ifndef LCAKE_VERSION
#define LCAKE_VERSION "0.0.0"
#endif

namespace lcake::core {

namespace runner_detail {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Roles {
  std::unique_ptr<lcake::Builder> builder;
  std::unique_ptr<lcake::Uploader> uploader;
  std::unique_ptr<lcake::Verifier> verifier;
};

// The worst outcome wins: input error > cancelled > failed > ok.
struct Outcome {
  std::atomic<int> code{kExitOk};
  void raise(int c) {
    auto rank = [](int x) {
      return x == kExitInput ? 3 : x == kExitCancelled ? 2 : x == kExitFailed ? 1 : 0;
    };
    int cur = code.load();
    while (rank(c) > rank(cur) && !code.compare_exchange_weak(cur, c)) {
    }
  }
};

inline std::string short_key(const std::string& key) { return key.substr(0, 12); }

// What one variant's run holds per layer.
struct LayerRun {
  std::optional<ArtifactRecord> built, uploaded;
  bool verified = false;
  bool unverified_by_flag = false;  // verify steps skipped under --no-verify
  bool forced = false;              // --force: this run's own upload, whatever the backend names
};

}  // namespace runner_detail
using namespace runner_detail;

struct Runner::Impl {
  const LoadedConfig& loaded;
  const ResolvedConfig& cfg;
  RoleFactory& factory;
  StateStore& state;
  ManifestWriter manifest;
  EventTee events;  // the caller's sink and the manifest
  const lcake::CancelToken& cancel;
  std::string run_id;
  Outcome outcome;
  RunOptions options;
  std::mutex published_mu;
  std::vector<std::string> published;  // "variant/layer" published by this run (after_publish)
  std::atomic<bool> kept_work{false};  // a step's work dir was kept (--on-error abort)

  Impl(const LoadedConfig& l, const ResolvedConfig& c, RoleFactory& f, StateStore& s, EventSink& e,
       const lcake::CancelToken& x)
      : loaded(l), cfg(c), factory(f), state(s), events({&e, &manifest}), cancel(x) {}

  const std::string& target() const { return cfg.target.name; }
  enum class Mode { build, verify, publish };

  // Planning (runner.cc).
  Roles make_roles();
  PlanInputs plan_inputs() const;
  std::vector<LayerPlan> plan_variant(const Variant& v, Roles& roles);

  // The run (runner.cc, run_variant.cc).
  Event event(EventType type, const Variant& v, const Layer& l, const std::string& stage) const;
  std::string by(const std::string& stage) const;  // " (qemu builder)"
  int fail(const std::string& scope, int code, const std::string& what, const std::string& msg);
  int run_variant(const Variant& v, Mode mode);
  void run_layer(const Variant& v, const Layer& layer, const LayerPlan& lp, Mode mode,
                 Roles& roles, std::map<std::string, LayerRun>& runs);
  int publish_variant(const Variant& v, const std::vector<std::size_t>& done, Roles& roles,
                      std::map<std::string, LayerRun>& runs);
  int run_all(Mode mode, const std::string& command);
  // Writes <state>/runs/<run>.outputs.json and runs the target's after_publish hooks.
  int after_publish(const std::string& for_run, const std::filesystem::path& manifest_path,
                    const std::string& status, const std::vector<std::string>& published_by_run);

  // One step of one layer (layer_steps.cc).
  std::filesystem::path store_dir(const std::string& variant, const std::string& layer,
                                  const std::string& key, const std::string& stage);
  std::filesystem::path work_dir(const std::string& variant, const std::string& layer,
                                 const std::string& stage);
  std::unique_ptr<StepContext> context(const Variant& v, const Layer& l, const std::string& stage,
                                       const RoleConfig& rc, const std::string& role,
                                       std::filesystem::path work, std::filesystem::path store);
  // What a step left in the ledger is deleted when it ends, unless
  // --on-error=abort asked to keep a failed step's resources for inspection.
  void end_step(StepContext& ctx, bool failed);
  template <class Session>
  void keep_session(Session* session, StepContext& ctx);
  lcake::LayerInfo layer_info(const Variant& v, const Layer& l, const LayerPlan& lp);
  ArtifactRecord do_build(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                          const std::optional<lcake::Artifact>& parent);
  ArtifactRecord do_upload(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                           const ArtifactRecord& built,
                           const std::optional<lcake::Artifact>& parent_upload);
  void do_verify(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                 const std::optional<ArtifactRecord>& built,
                 const std::optional<ArtifactRecord>& uploaded);
  void do_publish(const Variant& v, const Layer& layer, Roles& roles, const LayerRun& run);
};

}  // namespace lcake::core
