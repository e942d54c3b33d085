// Plans and runs a pipeline on one target: for each variant (in parallel), for
// each layer in order: cache hit -> skip, else build -> upload -> verify; then
// publish only what verified. Roles come from a RoleFactory, everything that
// happens goes to an EventSink (and the run's manifest).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "events/event.h"
#include "lcake/context.hpp"
#include "plan/plan.h"
#include "role_factory.h"
#include "state/state_store.h"

namespace lcake::core {

enum class OnError { cleanup, abort };

struct RunOptions {
  std::vector<std::string> only;  // globs over "variant" or "variant/layer"
  bool force = false;             // rebuild selected layers even on a cache hit
  bool no_verify = false;         // skip verify steps; what is published is marked unverified
  bool no_publish = false;        // stop after verify: publish nothing (CI matrix jobs)
  OnError on_error = OnError::cleanup;
  int parallel = 0;               // variants at once; 0 = all
  std::optional<std::filesystem::path> manifest;  // also write the manifest here
};

// Exit codes of a run.
constexpr int kExitOk = 0, kExitFailed = 1, kExitInput = 2, kExitCancelled = 130;

class Runner {
 public:
  Runner(const LoadedConfig& loaded, const ResolvedConfig& config, RoleFactory& roles,
         StateStore& state, EventSink& events, const lcake::CancelToken& cancel);
  ~Runner();

  // Loads the target's plugins and validates their settings (InputError on problems).
  void prepare();
  std::vector<VariantPlan> plan(const RunOptions& options);
  int build(const RunOptions& options);
  int verify(const RunOptions& options);   // re-run verify steps on existing artifacts
  int publish(const RunOptions& options);  // publish verified, unpublished uploads
  // `lcake publish --hooks`: the after_publish hooks again, for the target's last
  // build or publish run (its manifest and the target's current outputs).
  int run_hooks_again();
  // Deletes build artifacts of this target whose key is no longer the current
  // key of their layer and that were never published. Returns how many.
  int remove_superseded();
  // Deletes the duplicates of each current upload key: the uploads of the key the
  // backend holds besides the one it names (Uploader::find_all), and this state's
  // uploads that lost a race for the key. Published ones and ones created less
  // than `grace_seconds` ago are kept (a runner may still be using them).
  // Returns how many were deleted.
  int remove_duplicates(std::int64_t grace_seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lcake::core
