// The final image of a target that publishes to a cloud boots as many new machines, so a
// builder can mark options (e.g. qemu's "generalize") that should then be on by default:
// "x-lcake-cloud-default": VALUE on a property of its layer options schema. The host gives
// the option that value on each variant's last layer (no layer is built from it) that the
// target uploads, when the uploader declares the capability "publishes-to-cloud" and the
// layer does not set the option itself. The value goes into the layer's recipe, so the key
// of such a layer differs from the same layer built for a target that does not publish to
// a cloud, and a cached artifact of one is never taken for the other.
#include <set>

#include "plan/input_check_parts.h"
#include "plan/plan.h"

namespace lcake::core::input_check {

void apply_cloud_defaults(ResolvedConfig& config, const TargetPlugins& p) {
  if (!p.uploader || !p.builder) return;
  if (!p.uploader->info().role.at("uploader").has_capability(kPublishesToCloud)) return;
  const auto& schema = p.builder->info().role.at("builder").options;
  if (!schema.is_object() || !schema.contains("properties") || !schema["properties"].is_object()) return;
  std::vector<std::pair<std::string, nlohmann::json>> marked;
  for (const auto& [name, property] : schema["properties"].items())
    if (property.is_object() && property.contains("x-lcake-cloud-default"))
      marked.emplace_back(name, property["x-lcake-cloud-default"]);
  if (marked.empty()) return;
  const std::string why = "the last layer, uploaded by '" + config.target.uploader->plugin +
                          "', which publishes to a cloud";
  for (auto& v : config.variants) {
    std::set<std::string> parents;
    for (const auto& l : v.layers)
      if (l.from) parents.insert(*l.from);
    for (auto& l : v.layers) {
      if (parents.contains(l.name) || !wants_upload(config.target, l)) continue;
      for (const auto& [option, value] : marked) {
        if (l.builder_options.is_object() && l.builder_options.contains(option)) continue;  // the layer says
        if (!l.builder_options.is_object()) l.builder_options = nlohmann::json::object();
        l.builder_options[option] = value;
        if (!l.recipe.contains("builder") || !l.recipe["builder"].is_object())
          l.recipe["builder"] = nlohmann::json::object();
        l.recipe["builder"][option] = value;
        l.host_defaults.push_back({option, value, why});
      }
    }
  }
}

}  // namespace lcake::core::input_check
