// The parts of check_inputs (input_check.h), one file each.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "plugin_host/plugin_host.h"

namespace lcake::core::input_check {

// The plugins of the target's roles, loaded (null when the target has no such role).
struct TargetPlugins {
  const LoadedPlugin* builder = nullptr;
  const LoadedPlugin* uploader = nullptr;
  const LoadedPlugin* verifier = nullptr;
};

// plugin_choice.cc: loads rc.plugin for `role`; an unknown name names the
// file:line of rc.pointer/plugin and the closest installed plugin.
const LoadedPlugin& load_role_plugin(const LoadedConfig& loaded, PluginHost& plugins,
                                     const RoleConfig& rc, const std::string& role);
// The installed name nearest to `name` by edit distance, or "" when none is close.
std::string closest_name(const std::string& name, const std::vector<std::string>& names);

// Variants whose local files are checked: those --only selects (all without it),
// so a run of one variant does not need another's source disk.
using Selected = std::function<bool(const Variant&)>;

// plugin_values.cc: schema checks and defaults of every value a plugin receives.
void check_plugin_values(const LoadedConfig& loaded, ResolvedConfig& config, const TargetPlugins& p,
                         const Selected& check_files);

// cloud_defaults.cc: when the uploader publishes to a cloud, the builder's options marked
// "x-lcake-cloud-default" get that value on the last layer of each variant it uploads,
// unless the layer sets them (Layer::host_defaults). Before check_plugin_values.
void apply_cloud_defaults(ResolvedConfig& config, const TargetPlugins& p);

// verify_gate.cc: artifact types and the verifier's presence; sets verifier_boots.
void check_artifact_types(const LoadedConfig& loaded, ResolvedConfig& config, const TargetPlugins& p,
                          bool no_verify);

// local_files.cc: inputs, provisioner sources/scripts and compare.expected exist.
void check_local_files(const LoadedConfig& loaded, const ResolvedConfig& config, const Selected& selected);

// "file:line: " of pointer (or of the nearest recorded ancestor).
std::string where(const LoadedConfig& loaded, const std::string& pointer);

}  // namespace lcake::core::input_check
