// Every value a plugin receives is checked against the schema it declared,
// then completed with that schema's defaults, so plugins read what they
// documented and never see a value they did not promise to handle.
#include "config/json_lines.h"
#include "config/schema_check.h"
#include "config/schema_walk.h"
#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"

namespace lcake::core::input_check {
namespace fs = std::filesystem;
namespace {

bool empty_value(const nlohmann::json& v) { return v.is_null() || (v.is_object() && v.empty()); }

// Checks `value` (at pointer) against one of a role's schemas and fills in its defaults.
void check_part(const LoadedConfig& loaded, const LoadedPlugin& plugin, const std::string& role,
                const std::string& part, const nlohmann::json& schema, const std::string& pointer,
                nlohmann::json& value, bool check_files = true) {
  const std::string& name = plugin.info().name;
  if (schema.is_null()) {
    // One pipeline serves several targets, so a layer may carry options for
    // another backend: a role that declares no schema for a part reads none of it.
    if (part == "settings" && !empty_value(value))
      throw InputError(where(loaded, pointer) + pointer + ": plugin '" + name + "' " + role +
                       " takes no settings: remove them");
    value = part == "source" && value.is_null() ? value : nlohmann::json::object();
    return;
  }
  if (value.is_null()) value = nlohmann::json::object();
  check_against_schema(loaded.provenance, pointer, value, schema,
                       "plugin '" + name + "' " + role + " " + part);
  inject_defaults(value, schema);
  if (!check_files) return;
  for_each_local_path(value, schema, [&](const std::string& at, const std::string& path, const std::string& kind) {
    std::error_code ec;
    bool ok = kind == "dir" ? fs::is_directory(path, ec) : fs::is_regular_file(path, ec);
    if (!ok)
      throw InputError(where(loaded, pointer + at) + pointer + at + ": no such " +
                       (kind == "dir" ? "directory " : "file ") + path + ": fix the path");
  });
}

}  // namespace

void check_plugin_values(const LoadedConfig& loaded, ResolvedConfig& config, const TargetPlugins& p,
                         const Selected& check_files) {
  auto& t = config.target;
  const auto& b = p.builder->info().role.at("builder");
  check_part(loaded, *p.builder, "builder", "settings", b.settings, t.builder.pointer + "/settings", t.builder.settings);
  if (p.uploader)
    check_part(loaded, *p.uploader, "uploader", "settings", p.uploader->info().role.at("uploader").settings,
               t.uploader->pointer + "/settings", t.uploader->settings);
  if (p.verifier)
    check_part(loaded, *p.verifier, "verifier", "settings", p.verifier->info().role.at("verifier").settings,
               t.verifier->pointer + "/settings", t.verifier->settings);
  for (auto& v : config.variants) {
    std::string sources = pointer_append(pointer_append("/pipeline/variants", v.name), "sources");
    check_part(loaded, *p.builder, "builder", "source", b.source, pointer_append(sources, t.builder.plugin), v.source,
               check_files(v));
    for (auto& layer : v.layers) {
      std::string at = pointer_append("/pipeline/layers", layer.name);
      check_part(loaded, *p.builder, "builder", "options", b.options, at + "/builder", layer.builder_options);
      if (p.uploader) {
        const auto& u = p.uploader->info().role.at("uploader");
        check_part(loaded, *p.uploader, "uploader", "options", u.options, at + "/uploader", layer.uploader_options);
        check_part(loaded, *p.uploader, "uploader", "publish options", u.publish, at + "/publish",
                   layer.publish_options);
      }
      if (p.verifier)
        check_part(loaded, *p.verifier, "verifier", "options", p.verifier->info().role.at("verifier").options,
                   at + "/verifier", layer.verifier_options);
    }
  }
}

}  // namespace lcake::core::input_check
