#include "plan/input_check.h"

#include <fnmatch.h>

#include "config/json_lines.h"
#include "config/schema_check.h"
#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"

namespace lcake::core {
namespace input_check {

std::string where(const LoadedConfig& loaded, const std::string& pointer) {
  return origin_prefix(loaded.provenance, pointer);
}

}  // namespace input_check

namespace {

using namespace input_check;

bool glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

void check_only(const ResolvedConfig& config, const std::vector<std::string>& only) {
  if (only.empty()) return;
  std::vector<std::string> unmatched;
  for (const auto& g : only) {
    bool hit = false;
    for (const auto& v : config.variants) {
      hit = hit || glob(g, v.name);
      for (const auto& l : v.layers) hit = hit || glob(g, v.name + "/" + l.name);
    }
    if (!hit) unmatched.push_back(g);
  }
  if (unmatched.empty()) return;
  std::string globs, variants, layers;
  for (const auto& g : unmatched) globs += (globs.empty() ? "" : ", ") + g;
  for (const auto& v : config.variants) variants += (variants.empty() ? "" : ", ") + v.name;
  if (!config.variants.empty())
    for (const auto& l : config.variants[0].layers) layers += (layers.empty() ? "" : ", ") + l.name;
  throw InputError("--only " + globs + ": matches no variant or variant/layer; variants: " + variants +
                   "; layers: " + layers + " (say --only VARIANT or --only VARIANT/LAYER)");
}

std::string part_pointer(const ResolvedConfig& config, const std::string& role, const std::string& part,
                         const std::string& variant, const std::string& layer) {
  std::string role_pointer = "/target/" + role;
  if (part == "settings") return role_pointer + "/settings";
  if (part == "source")
    return pointer_append(pointer_append(pointer_append("/pipeline/variants", variant), "sources"),
                          config.target.builder.plugin);
  if (layer.empty()) return "";
  std::string layer_pointer = pointer_append("/pipeline/layers", layer);
  return pointer_append(layer_pointer, part == "publish" ? "publish" : role);
}

}  // namespace

void check_inputs(const LoadedConfig& loaded, ResolvedConfig& config, PluginHost& plugins,
                  const InputCheckOptions& options) {
  TargetPlugins p;
  p.builder = &load_role_plugin(loaded, plugins, config.target.builder, "builder");
  if (config.target.uploader) p.uploader = &load_role_plugin(loaded, plugins, *config.target.uploader, "uploader");
  if (config.target.verifier) p.verifier = &load_role_plugin(loaded, plugins, *config.target.verifier, "verifier");
  check_only(config, options.only);
  Selected selected = [&](const Variant& v) {
    if (options.only.empty()) return true;
    for (const auto& g : options.only) {
      if (glob(g, v.name)) return true;
      for (const auto& l : v.layers)
        if (glob(g, v.name + "/" + l.name)) return true;
    }
    return false;
  };
  apply_cloud_defaults(config, p);
  check_plugin_values(loaded, config, p, selected);
  check_artifact_types(loaded, config, p, options.no_verify);
  check_local_files(loaded, config, selected);
}

std::string describe_plugin_error(const LoadedConfig& loaded, const ResolvedConfig& config,
                                  const std::string& role, const std::string& variant,
                                  const std::string& layer, const std::exception& error) {
  auto* value = dynamic_cast<const lcake::ValueError*>(&error);
  if (!value) return error.what();
  auto* constructing = dynamic_cast<const RoleValueError*>(&error);
  std::string base = part_pointer(config, constructing ? constructing->role : role, value->part, variant, layer);
  if (base.empty()) return error.what();
  std::string pointer = base + value->pointer;
  return where(loaded, pointer) + pointer + ": " + value->what();
}

}  // namespace lcake::core
