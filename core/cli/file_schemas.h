// JSON Schemas of the files users write (pipeline, target, overlay), for editors
// and independent validators: the core schema cut per file kind, with the
// installed plugins' schemas merged in (`lcake config schema KIND`).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugin_host/plugin_host.h"

namespace lcake::cli {

// The kinds `file_schema` knows, in the order `lcake config schema` lists them.
const std::vector<std::string>& file_schema_kinds();

// A standalone draft-07 schema for one file kind:
//  - "pipeline": a pipeline file (configs/pipelines/*.json, ./lcake.json);
//  - "target": a target file (configs/targets/*.json);
//  - "overlay": a site, system, user or --overlay file (a whole tree, every key optional,
//    null deletes);
//  - "config": the merged tree `lcake config show` prints.
// Each plugin's settings schema applies where the role names that plugin; its source
// schema under variants.*.sources.<plugin>; layer options must match one installed
// plugin's options schema for that role. Throws InputError for an unknown kind.
nlohmann::json file_schema(const std::string& kind, const std::vector<core::PluginInfo>& plugins);

}  // namespace lcake::cli
