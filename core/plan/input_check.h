// Everything about a run's inputs that can be known before anything runs:
// the plugins exist and have the roles asked of them; each value a plugin
// receives (settings, the variant's source, layer options, publish options)
// passes the plugin's JSON Schema, with the schema's defaults then filled in;
// the artifact types fit (builder -> its children, builder -> uploader, and
// what the verifier boots); a pipeline with verify steps has a verifier
// (unless --no-verify); local files named by the config exist; --only matches.
// Called by `config validate`, `plan`, `build`, `verify`, `publish` and
// `gc --target` before the runner starts.
#pragma once
#include <exception>
#include <string>
#include <vector>

#include "config/config.h"
#include "plugin_host/plugin_host.h"

namespace lcake::core {

struct InputCheckOptions {
  bool no_verify = false;         // --no-verify: verify steps without a verifier are allowed
  std::vector<std::string> only;  // --only globs: must match some variant or variant/layer
};

// Throws lcake::InputError (one line, naming file:line and the JSON pointer)
// on the first problem. On success `config` holds the values with the schema
// defaults injected and target.verifier_boots chosen ("upload" or "build").
void check_inputs(const LoadedConfig& loaded, ResolvedConfig& config, PluginHost& plugins,
                  const InputCheckOptions& options);

// The message to show for an error a plugin raised while it ran `role` for
// variant/layer (empty when not about one): an lcake::ValueError, which names a
// key relative to the role's own settings/source/options/publish, becomes
// "<file:line>: <full JSON pointer>: <message>"; any other error its what().
std::string describe_plugin_error(const LoadedConfig& loaded, const ResolvedConfig& config,
                                  const std::string& role, const std::string& variant,
                                  const std::string& layer, const std::exception& error);

}  // namespace lcake::core
