#include "file_schemas.h"

#include "config/core_schema.h"
#include "lcake/errors.hpp"

namespace lcake::cli {
namespace {

using json = nlohmann::json;

// Points a plugin schema's local references ("#", "#/definitions/x") at the place
// it is embedded ("#/definitions/<id>…"); remote references are left alone.
void rebase_refs(json& node, const std::string& base) {
  if (node.is_object()) {
    for (auto& [k, v] : node.items()) {
      if (k == "$ref" && v.is_string() && v.get<std::string>().rfind("#", 0) == 0)
        v = base + v.get<std::string>().substr(1);
      else
        rebase_refs(v, base);
    }
  } else if (node.is_array()) {
    for (auto& v : node) rebase_refs(v, base);
  }
}

// Stores a plugin's schema under definitions/<id> and returns a reference to it.
json embed(json schema, const std::string& id, json& defs) {
  schema.erase("$schema");
  schema.erase("$id");
  std::string base = "#/definitions/" + id;
  rebase_refs(schema, base);
  defs[id] = std::move(schema);
  return {{"$ref", base}};
}

// The names of the installed plugins with `role` (for editors' suggestions).
json plugin_names(const std::vector<core::PluginInfo>& plugins, const std::string& role) {
  json names = json::array();
  for (const auto& p : plugins)
    if (p.role.count(role)) names.push_back(p.name);
  return names;
}

// target.<role>: "plugin" suggests the installed names; "settings" must satisfy the
// schema of the plugin named.
void merge_settings(json& def, const std::string& role, const std::vector<core::PluginInfo>& plugins,
                    json& defs) {
  def["properties"]["plugin"]["examples"] = plugin_names(plugins, role);
  json all_of = json::array();
  for (const auto& p : plugins) {
    auto it = p.role.find(role);
    if (it == p.role.end() || it->second.settings.is_null()) continue;
    json ref = embed(it->second.settings, p.name + "." + role + ".settings", defs);
    all_of.push_back({{"if", {{"properties", {{"plugin", {{"const", p.name}}}}}, {"required", {"plugin"}}}},
                      {"then", {{"properties", {{"settings", ref}}}}}});
  }
  if (!all_of.empty()) def["allOf"] = all_of;
}

// layers.L.<key>: the options of one installed plugin with that role (a pipeline may
// be used with several targets, so any installed plugin's options are accepted).
void merge_layer_options(json& layer, const std::string& key, const std::string& role,
                         const std::vector<core::PluginInfo>& plugins, json& defs) {
  json any_of = json::array();
  for (const auto& p : plugins) {
    auto it = p.role.find(role);
    if (it == p.role.end()) continue;
    const json& schema = key == "publish" ? it->second.publish : it->second.options;
    if (schema.is_null()) continue;
    any_of.push_back(embed(schema, p.name + "." + role + "." + key, defs));
  }
  if (!any_of.empty()) layer["properties"][key] = {{"type", "object"}, {"anyOf", any_of}};
}

json with_plugins(const std::vector<core::PluginInfo>& plugins) {
  json root = json::parse(core::core_schema_text());
  json& defs = root["definitions"];
  merge_settings(defs["role"], "builder", plugins, defs);
  merge_settings(defs["uploader"], "uploader", plugins, defs);
  merge_settings(defs["verifier"], "verifier", plugins, defs);
  json& sources = defs["variant"]["properties"]["sources"];
  for (const auto& p : plugins)
    for (const auto& [role, ri] : p.role)
      if (!ri.source.is_null() && !sources["properties"].contains(p.name))
        sources["properties"][p.name] = embed(ri.source, p.name + "." + role + ".source", defs);
  json& layer = defs["layer"];
  for (const auto& key : {"builder", "uploader", "verifier"}) merge_layer_options(layer, key, key, plugins, defs);
  merge_layer_options(layer, "publish", "uploader", plugins, defs);
  return root;
}

// An overlay sets any part of the tree: nothing is required, and null deletes a value.
// Walks the schema keywords that hold schemas; "if" conditions stay as they are.
json relaxed(json schema);

json nullable(const json& schema) { return {{"anyOf", {relaxed(schema), {{"type", "null"}}}}}; }

json relaxed(json schema) {
  if (!schema.is_object()) return schema;
  schema.erase("required");
  schema.erase("minProperties");
  for (const char* map : {"properties", "patternProperties"})
    if (schema.contains(map) && schema[map].is_object())
      for (auto& [name, sub] : schema[map].items()) sub = nullable(sub);
  if (schema.contains("definitions") && schema["definitions"].is_object())
    for (auto& [name, sub] : schema["definitions"].items()) sub = relaxed(sub);
  if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object())
    schema["additionalProperties"] = nullable(schema["additionalProperties"]);
  if (schema.contains("items") && schema["items"].is_object()) schema["items"] = relaxed(schema["items"]);
  for (const char* list : {"allOf", "anyOf", "oneOf"})
    if (schema.contains(list) && schema[list].is_array())
      for (auto& sub : schema[list]) sub = relaxed(sub);
  for (const char* one : {"then", "else"})
    if (schema.contains(one)) schema[one] = relaxed(schema[one]);
  return schema;
}

// lcake substitutes ${…} in string values before it checks them, so wherever a value
// goes a string holding a ${…} reference may stand instead.
json interpolable(json schema);

json or_reference(const json& schema) {
  static const json reference = {{"type", "string"}, {"pattern", "\\$\\{[^}]+\\}"}};
  return {{"anyOf", {interpolable(schema), reference}}};
}

json interpolable(json schema) {
  if (!schema.is_object()) return schema;
  for (const char* map : {"properties", "patternProperties"})
    if (schema.contains(map) && schema[map].is_object())
      for (auto& [name, sub] : schema[map].items()) sub = or_reference(sub);
  if (schema.contains("definitions") && schema["definitions"].is_object())
    for (auto& [name, sub] : schema["definitions"].items()) sub = interpolable(sub);
  if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object())
    schema["additionalProperties"] = or_reference(schema["additionalProperties"]);
  if (schema.contains("items") && schema["items"].is_object()) schema["items"] = or_reference(schema["items"]);
  for (const char* list : {"allOf", "anyOf", "oneOf"})
    if (schema.contains(list) && schema[list].is_array())
      for (auto& sub : schema[list]) sub = interpolable(sub);
  for (const char* one : {"then", "else"})
    if (schema.contains(one)) schema[one] = interpolable(schema[one]);
  return schema;
}

}  // namespace

const std::vector<std::string>& file_schema_kinds() {
  static const std::vector<std::string> kinds = {"pipeline", "target", "overlay", "config"};
  return kinds;
}

nlohmann::json file_schema(const std::string& kind, const std::vector<core::PluginInfo>& plugins) {
  json root = interpolable(with_plugins(plugins));
  json out = {{"$schema", "http://json-schema.org/draft-07/schema#"},
              {"title", "lcake " + kind + " file"}};
  if (kind == "pipeline" || kind == "target") {
    out["$ref"] = "#/definitions/" + kind;
    out["definitions"] = root["definitions"];
  } else if (kind == "config" || kind == "overlay") {
    root.erase("$schema");
    out.update(root);
    if (kind == "overlay") out = relaxed(out);
  } else {
    throw InputError("lcake config schema: '" + kind + "' is not pipeline, target, overlay or config");
  }
  return out;
}

}  // namespace lcake::cli
