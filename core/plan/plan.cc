#include "plan.h"

#include <map>

#include "selection.h"

namespace lcake::core {

bool wants_upload(const Target& target, const Layer& layer) {
  if (!target.uploader) return false;
  if (target.upload_layers.empty()) return true;
  for (const auto& g : target.upload_layers)
    if (glob_match(g, layer.name)) return true;
  return false;
}

std::string upload_key(const std::string& layer_key, const PluginId& uploader,
                       const nlohmann::json& settings, const Layer& layer,
                       const std::vector<SensitiveVariable>& sensitive) {
  return sha256_hex(layer_key + "\n" + uploader.name + "\n" + uploader.version + "\n" +
                    mask_sensitive(settings, sensitive).dump() + "\n" +
                    mask_sensitive(layer.uploader_options, sensitive).dump());
}

ArtifactRecord found_upload_record(const std::string& target, const std::string& variant,
                                   const std::string& layer, const std::string& upload_key,
                                   const std::string& uploader, lcake::Artifact found) {
  ArtifactRecord r;
  r.target = target, r.variant = variant, r.layer = layer, r.key = upload_key;
  r.stage = "upload", r.artifact = std::move(found), r.artifact.plugin = uploader;
  r.run_id = "found";
  // What the backend remembers of the upload's verification and publication (a Glance
  // property, an EC2 tag): recorded as such, so it is neither verified nor published again.
  if (auto marks = r.artifact.metadata.find("lcake_found"); marks != r.artifact.metadata.end()) {
    if (marks->is_object()) {
      r.verified = marks->value("verified", false);
      r.published = marks->value("published", false);
    }
    r.artifact.metadata.erase(marks);
  }
  return r;
}

void record_duplicate(StateStore& state, ArtifactRecord loser) {
  loser.stage = "duplicate";
  loser.verified = false;
  state.record_artifact(loser);  // keeps created_at: gc's grace period counts from the upload
}

lcake::LayerInfo layer_info(const PlanInputs& in, const Variant& v, const Layer& l,
                            const LayerPlan& lp) {
  return {in.config->target.name, v.name, l.name, lp.key, in.lcake_version,
          in.config->pipeline_name, lp.upload_key};
}

namespace {

LayerKey key_of_layer(const PlanInputs& in, const Variant& v, const Layer& layer,
                      const std::string& parent_key) {
  KeyInputs ki;
  ki.recipe = layer.recipe;
  ki.parent_key = parent_key;
  ki.source = layer.from ? nlohmann::json() : v.source;
  for (std::size_t k = 0; k < layer.inputs.size(); ++k)
    ki.inputs.emplace_back(
        k < layer.input_names.size() ? layer.input_names[k] : layer.inputs[k].string(),
        layer.inputs[k]);
  ki.plugin_name = in.builder.name;
  ki.plugin_version = in.builder.version;
  ki.plugin_settings = in.config->target.builder.settings;
  ki.sensitive = v.sensitive;
  return compute_layer_key(ki);
}

// The upload for this layer: from the state, else from the backend itself. The
// backend's pick for the key wins over the state's record (unless that one was
// published here), so runners that raced on a key all end up using one upload.
void plan_upload(const PlanInputs& in, const Variant& v, const Layer& layer, LayerPlan& lp,
                 StateStore& state, BackendProbe& probe) {
  const std::string& target = in.config->target.name;
  auto rec = state.find_artifact(target, v.name, layer.name, lp.upload_key, "upload");
  if (rec) lp.upload_cached = probe.upload_exists(lp, rec->artifact);
  if (!lp.forced && (!rec || !rec->published)) {
    lcake::FindRequest req{layer_info(in, v, layer, lp), layer.uploader_options};
    auto found = probe.find_upload(lp, req);
    if (found && (!rec || found->id != rec->artifact.id)) {
      if (rec && lp.upload_cached) record_duplicate(state, *rec);
      ArtifactRecord r =
          found_upload_record(target, v.name, layer.name, lp.upload_key, in.uploader->name, *found);
      r.id = state.record_artifact(r);
      rec = r;
      lp.upload_cached = lp.upload_found = true;
    }
  }
  if (lp.upload_cached) {
    lp.upload_record = rec;
    lp.published = rec->published;
  }
}

// Can the builder build this layer's children from its upload (its build not being at hand)?
bool children_build_on_upload(const PlanInputs& in, const LayerPlan& lp) {
  return in.builder_declared.has_capability(kBuildsOnUpload) && !lp.forced && lp.upload_cached && lp.upload_record &&
         in.builder_declared.accepts_type(lp.upload_record->artifact.type);
}

}  // namespace

std::vector<LayerPlan> plan_variant(const PlanInputs& in, const Variant& v, StateStore& state,
                                    BackendProbe& probe) {
  const std::string& target = in.config->target.name;
  std::vector<LayerPlan> out;
  std::map<std::string, std::string> key_of;
  auto named = named_layers(v, in.only);
  auto sel = with_ancestors(v, named);
  for (std::size_t i = 0; i < v.layers.size(); ++i) {
    const Layer& layer = v.layers[i];
    LayerPlan lp;
    lp.variant = v.name;
    lp.layer = layer.name;
    lp.selected = sel[i];
    lp.forced = in.force && named[i];
    lp.parent_key = layer.from ? key_of[*layer.from] : "";
    lp.layer_key = key_of_layer(in, v, layer, lp.parent_key);
    lp.key = lp.layer_key.hex;
    lp.sensitive = lp.layer_key.sensitive_used;
    key_of[layer.name] = lp.key;
    if (auto last = state.last_key_components(target, v.name, layer.name)) {
      if (last->first != lp.key) {
        lp.previous_key = last->first;
        lp.reasons = explain_key_change(last->second, lp.layer_key.components);
      }
    }
    if (!lp.forced) {
      auto rec = state.find_artifact(target, v.name, layer.name, lp.key, "build");
      if (rec && probe.build_exists(lp, rec->artifact)) lp.build_cached = true, lp.build_record = rec;
    }
    lp.upload_wanted = wants_upload(in.config->target, layer);
    if (lp.upload_wanted) {
      lp.upload_key = upload_key(lp.key, *in.uploader, in.config->target.uploader->settings, layer, v.sensitive);
      plan_upload(in, v, layer, lp, state, probe);
    }
    lp.verify_wanted = in.has_verifier && !layer.verify.empty();
    // A candidate is verified when every artifact of it passed: the build and the upload.
    bool build_ok = !lp.build_record || lp.build_record->verified;
    bool upload_ok = !lp.upload_wanted || (lp.upload_record && lp.upload_record->verified);
    lp.verified = (lp.build_record || lp.upload_record) && build_ok && upload_ok;
    if (lp.forced) lp.build_cached = lp.upload_cached = lp.verified = lp.published = false;
    if (lp.forced) lp.build_record.reset(), lp.upload_record.reset();
    out.push_back(std::move(lp));
  }
  // A layer whose upload is at hand needs no build unless a child is built from it; a
  // builder that builds on uploads builds the child from the upload instead.
  for (std::size_t i = out.size(); i-- > 0;) {
    LayerPlan& lp = out[i];
    bool on_upload = !lp.build_cached && children_build_on_upload(in, lp);
    bool child_needs = false;
    for (std::size_t j = i + 1; j < out.size(); ++j)
      if (v.layers[j].from == v.layers[i].name && out[j].selected && out[j].build_needed) {
        if (on_upload) out[j].on_parent_upload = lp.children_on_upload = true;
        else child_needs = true;
      }
    lp.build_needed = !lp.build_cached && (!lp.upload_cached || child_needs);
  }
  return out;
}

}  // namespace lcake::core
