// Plans and runs a pipeline on one target: for each variant (in parallel), for
// each layer in order: cache hit -> skip, else build -> upload -> verify; then
// publish only what verified. Writes a manifest of the run.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cancel.h"
#include "config/config.h"
#include "event_log.h"
#include "plan/layer_key.h"
#include "plugin_host/plugin_host.h"
#include "state/state_store.h"

namespace lcake::core {

enum class OnError { cleanup, abort };

struct RunOptions {
  std::vector<std::string> only;  // globs over "variant" or "variant/layer"
  bool force = false;             // rebuild selected layers even on a cache hit
  bool no_verify = false;         // --no-verify: skip verify steps (check_inputs allows a missing verifier)
  OnError on_error = OnError::cleanup;
  int parallel = 0;               // variants at once; 0 = all
  std::optional<std::filesystem::path> manifest;  // also write the manifest here
};

struct LayerPlan {
  std::string variant, layer, key, parent_key;
  LayerKey layer_key;
  bool selected = false;   // chosen by --only (or needed by a selected child)
  bool build_cached = false;
  bool upload_wanted = false, upload_cached = false;
  bool verify_wanted = false, verified = false, published = false;
  std::optional<std::string> previous_key;   // last key recorded for this layer
  std::vector<std::string> reasons;          // why the key changed
};

struct VariantPlan {
  std::string variant;
  std::vector<LayerPlan> layers;
};

// Exit codes of a run.
constexpr int kExitOk = 0, kExitFailed = 1, kExitInput = 2, kExitCancelled = 130;

class Runner {
 public:
  Runner(const LoadedConfig& loaded, const ResolvedConfig& config, PluginHost& plugins,
         StateStore& state, EventLog& log, CancelSource& cancel);
  ~Runner();

  // Loads the target's plugins and validates their settings (InputError on problems).
  void prepare();
  std::vector<VariantPlan> plan(const RunOptions& options);
  int build(const RunOptions& options);
  int verify(const RunOptions& options);   // re-run verify steps on existing artifacts
  int publish(const RunOptions& options);  // publish verified, unpublished uploads
  // Deletes build artifacts of this target whose key is no longer the current
  // key of their layer and that were never published. Returns how many.
  int remove_superseded();

  const std::string& run_id() const { return run_id_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string run_id_;
};

bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace lcake::core
