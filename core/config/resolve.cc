// resolve_config: core schema check, then the typed model for each variant.
#include "config/config.h"
#include "config/core_schema.h"
#include "config/duration.h"
#include "config/interpolate.h"
#include "config/json_lines.h"
#include "config/layers.h"
#include "config/names.h"
#include "config/schema_check.h"
#include "lcake/errors.hpp"

namespace lcake::core {
namespace {

RoleConfig build_role(const nlohmann::json& role, const std::string& pointer) {
  return RoleConfig{role.at("plugin").get<std::string>(), role.value("settings", nlohmann::json::object()), pointer};
}

// The target is shared by every variant, so it sees variable defaults, $env and
// /vars, but no variant's variables and no ${variant}.
Target build_target(const LoadedConfig& loaded, const ResolveOptions& options) {
  Interpolator interpolator(loaded, "");
  nlohmann::json raw = loaded.tree.at("target");
  if (options.without_verifier) raw.erase("verifier");
  nlohmann::json target = interpolator.apply(raw, "/target", "");
  Target out;
  out.name = target.value("name", loaded.target_file.stem().string());
  out.builder = build_role(target.at("builder"), "/target/builder");
  if (target.contains("uploader")) {
    out.uploader = build_role(target["uploader"], "/target/uploader");
    out.upload_layers = target["uploader"].value("layers", std::vector<std::string>{"*"});
  } else {
    out.upload_layers = {"*"};
  }
  if (target.contains("verifier")) {
    out.verifier = build_role(target["verifier"], "/target/verifier");
    out.verifier_boots = target["verifier"].value("boots", "");
  }
  const auto hooks = target.value("after_publish", nlohmann::json::array());
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    Hook hook;
    hook.pointer = "/target/after_publish/" + std::to_string(i);
    hook.run = hooks[i].at("run").get<std::string>();
    hook.always = hooks[i].value("on", "published") == "always";
    if (hooks[i].contains("timeout")) {
      auto d = parse_duration(hooks[i]["timeout"]);
      std::string at = hook.pointer + "/timeout";
      if (!d || d->count() == 0)
        throw InputError(origin_prefix(loaded.provenance, at) + at +
                         ": expected a duration like \"90s\", \"5m\", \"1h\" or a number of seconds above 0, got " +
                         hooks[i]["timeout"].dump());
      hook.timeout = *d;
    }
    out.after_publish.push_back(std::move(hook));
  }
  return out;
}

}  // namespace

ResolvedConfig resolve_config(const LoadedConfig& loaded, const ResolveOptions& options) {
  static const nlohmann::json core_schema = nlohmann::json::parse(core_schema_text());
  check_against_schema(loaded.provenance, "", loaded.tree, core_schema, "");

  ResolvedConfig out;
  const auto& pipeline = loaded.tree.at("pipeline");
  out.pipeline_name = pipeline.at("name").get<std::string>();
  out.target = build_target(loaded, options);

  // A pipeline without variants still builds: one column named "default".
  std::vector<std::string> names;
  const nlohmann::json variants = pipeline.value("variants", nlohmann::json::object());
  for (const auto& [name, _] : variants.items()) {
    check_name(loaded.provenance, pointer_append("/pipeline/variants", name), name, "variant");
    names.push_back(name);
  }
  if (names.empty()) names.push_back("default");

  for (const auto& name : names) {
    Interpolator interpolator(loaded, name);
    Variant variant;
    variant.name = name;
    variant.variables = interpolator.values();
    variant.sensitive = interpolator.sensitive();
    std::string source_at = pointer_append(pointer_append(pointer_append("/pipeline/variants", name), "sources"),
                                           out.target.builder.plugin);
    nlohmann::json::json_pointer where(source_at);
    variant.source = loaded.tree.contains(where) ? interpolator.apply(loaded.tree[where], source_at, "") : nullptr;
    variant.layers = build_layers(loaded, interpolator);
    out.variants.push_back(std::move(variant));
  }
  return out;
}

}  // namespace lcake::core
