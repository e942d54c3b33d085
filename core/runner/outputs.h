// What a target has published, per variant and layer, in one shape for every
// backend: the LCAKE_OUTPUTS file of after_publish hooks and `lcake outputs`.
// Schema "lcake-outputs/1": docs/configuration.md ("lcake outputs").
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "state/state_store.h"

namespace lcake::core {

constexpr const char* kOutputsSchema = "lcake-outputs/1";

// One published upload as an outputs entry: variant, layer, key, type, id, plugin,
// region, registry, ids_by_region, moving_names, verified. Read from what the uploader
// recorded: metadata.region, .registry, .regions ({region: id}), .moving_names.
nlohmann::json output_entry(const ArtifactRecord& published);

// The newest published upload of every layer of the config's variants, as
// {"schema", "target", "run_id" (null when empty), "published": [names], "outputs": {"variant/layer": entry}}.
// `published` lists what the run `run_id` published ("variant/layer").
nlohmann::json collect_outputs(StateStore& state, const ResolvedConfig& config, const std::string& run_id,
                               const std::vector<std::string>& published);

// `lcake outputs --format shell`: LCAKE_<VARIANT>_<LAYER>_<FIELD>='value' lines (names
// upper-cased, other characters as _). Throws InputError when two layers map to one name.
std::string outputs_as_shell(const nlohmann::json& outputs);
// `--format tfvars`: {"lcake_outputs": {"variant/layer": {id, type, region, registry,
// ids_by_region, moving_names, key, verified}}} for a *.auto.tfvars.json file.
nlohmann::json outputs_as_tfvars(const nlohmann::json& outputs);

}  // namespace lcake::core
