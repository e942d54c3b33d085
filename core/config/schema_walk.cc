#include "config/schema_walk.h"

#include "config/json_lines.h"

namespace lcake::core {
namespace {

const nlohmann::json* resolve_ref(const nlohmann::json& root, const nlohmann::json* schema) {
  schema = follow_local_refs(root, schema);
  return schema && schema->is_object() ? schema : nullptr;
}

// The schema for each child present in value (properties, then additionalProperties; items).
template <typename Value, typename Fn>
void for_children(Value& value, const nlohmann::json& root, const nlohmann::json* schema, Fn&& fn) {
  schema = resolve_ref(root, schema);
  if (!schema) return;
  if (value.is_object()) {
    auto props = schema->find("properties");
    auto extra = schema->find("additionalProperties");
    for (auto& [key, child] : value.items()) {
      const nlohmann::json* sub = nullptr;
      if (props != schema->end() && props->contains(key)) sub = &(*props)[key];
      else if (extra != schema->end() && extra->is_object()) sub = &*extra;
      if (sub) fn(pointer_append("", key), child, sub);
    }
  } else if (value.is_array()) {
    auto items = schema->find("items");
    if (items == schema->end() || !items->is_object()) return;
    for (size_t i = 0; i < value.size(); ++i) fn(pointer_append("", i), value[i], &*items);
  }
}

void inject(nlohmann::json& value, const nlohmann::json& root, const nlohmann::json* schema) {
  schema = resolve_ref(root, schema);
  if (!schema) return;
  if (value.is_object()) {
    if (auto props = schema->find("properties"); props != schema->end() && props->is_object())
      for (const auto& [key, sub] : props->items()) {
        const nlohmann::json* s = resolve_ref(root, &sub);
        if (s && s->contains("default") && !value.contains(key)) value[key] = (*s)["default"];
      }
  }
  for_children(value, root, schema,
               [&](const std::string&, nlohmann::json& child, const nlohmann::json* sub) { inject(child, root, sub); });
}

void files(const nlohmann::json& value, const nlohmann::json& root, const nlohmann::json* schema,
           const std::string& at, const LocalPathVisitor& visit) {
  schema = resolve_ref(root, schema);
  if (!schema) return;
  std::string kind = schema->value("x-lcake-path", "");
  if (value.is_string() && (kind == "file" || kind == "dir")) {
    std::string path = value.get<std::string>();
    if (path.starts_with("http://") || path.starts_with("https://")) return;
    if (path.starts_with("file://")) path = path.substr(7);
    visit(at, path, kind);
    return;
  }
  for_children(value, root, schema, [&](const std::string& token, const nlohmann::json& child, const nlohmann::json* sub) {
    files(child, root, sub, at + token, visit);
  });
}

}  // namespace

const nlohmann::json* follow_local_refs(const nlohmann::json& root, const nlohmann::json* schema) {
  for (int hops = 0; schema && schema->is_object() && schema->contains("$ref") && hops < 16; ++hops) {
    const auto& ref = (*schema)["$ref"];
    if (!ref.is_string() || !ref.get<std::string>().starts_with("#")) return schema;
    nlohmann::json::json_pointer where(ref.get<std::string>().substr(1));
    schema = root.contains(where) ? &root[where] : nullptr;
  }
  return schema;
}

void inject_defaults(nlohmann::json& value, const nlohmann::json& schema) { inject(value, schema, &schema); }

void for_each_local_path(const nlohmann::json& value, const nlohmann::json& schema, const LocalPathVisitor& visit) {
  files(value, schema, &schema, "", visit);
}

}  // namespace lcake::core
