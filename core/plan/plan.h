// What a run will do, layer by layer: the keys, what is cached (in the local
// state, or found in the backend by the uploader's find()), what must be built,
// uploaded, verified and published. The plan keeps the artifact records it
// found, so the run never looks them up again.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "lcake/roles.hpp"
#include "layer_key.h"
#include "plugin_host/plugin_host.h"
#include "state/state_store.h"

namespace lcake::core {

struct PluginId {
  std::string name, version;
};

struct LayerPlan {
  std::string variant, layer, key, parent_key, upload_key;
  LayerKey layer_key;
  bool selected = false;   // chosen by --only (or needed by a selected child)
  bool forced = false;     // --force and named by --only: rebuilt even when cached
  bool build_cached = false;
  bool build_needed = true;  // false when cached, or when its upload was found and no child needs the build
  bool upload_wanted = false, upload_cached = false;
  bool upload_found = false;  // the upload came from the backend (find), not the local state
  // builds-on-upload: this layer is built from its parent's upload (the parent's build is not
  // at hand, and not made for it); and: this layer's children are built from its upload.
  bool on_parent_upload = false, children_on_upload = false;
  bool verify_wanted = false, verified = false, published = false;
  std::optional<ArtifactRecord> build_record, upload_record;  // what the cache holds
  std::optional<std::string> previous_key;   // last key recorded for this layer
  std::vector<std::string> reasons;          // why the key changed
  std::vector<std::string> sensitive;        // sensitive variables the layer uses (layer_key.sensitive_used)
};

struct VariantPlan {
  std::string variant;
  std::vector<LayerPlan> layers;
};

// What the planner asks the backends.
class BackendProbe {
 public:
  virtual ~BackendProbe() = default;
  virtual bool build_exists(const LayerPlan& lp, const lcake::Artifact& a) = 0;
  virtual bool upload_exists(const LayerPlan& lp, const lcake::Artifact& a) = 0;
  virtual std::optional<lcake::Artifact> find_upload(const LayerPlan& lp,
                                                     const lcake::FindRequest& request) = 0;
};

// What the target's builder declares in its RoleSpec; planning uses its accepts_type and
// has_capability(kBuildsOnUpload).
using BuilderDeclared = RoleInfo;

struct PlanInputs {
  const ResolvedConfig* config = nullptr;
  PluginId builder;
  BuilderDeclared builder_declared;
  std::optional<PluginId> uploader;  // none: nothing is uploaded
  bool has_verifier = false;
  std::vector<std::string> only;
  bool force = false;
  std::string lcake_version;
};

// Does the target upload this layer (target.upload_layers globs; all by default)?
bool wants_upload(const Target& target, const Layer& layer);

// The key of an upload: the layer key plus the uploader and its settings and the
// layer's uploader options, so a re-upload with other settings is a new upload.
// Sensitive values in the settings and options count as "used" only (mask_sensitive).
std::string upload_key(const std::string& layer_key, const PluginId& uploader,
                       const nlohmann::json& settings, const Layer& layer,
                       const std::vector<SensitiveVariable>& sensitive = {});

lcake::LayerInfo layer_info(const PlanInputs& in, const Variant& v, const Layer& l,
                            const LayerPlan& lp);

// An upload the uploader's find() returned, as the state records it (run "found"):
// verified/published as the backend remembers it (metadata.lcake_found, then dropped).
ArtifactRecord found_upload_record(const std::string& target, const std::string& variant,
                                   const std::string& layer, const std::string& upload_key,
                                   const std::string& uploader, lcake::Artifact found);

// Keeps an upload that lost the race for its key (find() names another runner's
// upload of the same key) in the state as stage "duplicate", so `lcake gc
// --target` deletes it once it is old enough (docs/ci.md, "Two runners, one key").
void record_duplicate(StateStore& state, ArtifactRecord loser);

// Plans one variant. A layer whose upload is at hand (cached or found) is built only
// when a selected child must be built from its build; a builder that builds on uploads
// (builds-on-upload, accepting the upload's type) builds that child from the upload
// instead, so the parent is not rebuilt for it. An upload the backend finds (and the state did not know) is
// recorded in the state as an upload of this layer, not verified. When the state's
// own upload of a key is not the one the backend names for it (another runner
// uploaded the same key and won), the backend's is used and the state's becomes a
// duplicate: every runner uses the same upload.
std::vector<LayerPlan> plan_variant(const PlanInputs& in, const Variant& v, StateStore& state,
                                    BackendProbe& probe);

}  // namespace lcake::core
