#include "config/schema_check.h"

#include <regex>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "config/json_lines.h"
#include "config/schema_walk.h"
#include "lcake/errors.hpp"

namespace lcake::core {
namespace {

std::string type_name(const nlohmann::json& value) {
  return value.is_number_integer() ? "integer" : value.type_name();
}

// `got string "2G"`; containers by type only, long values cut short.
std::string describe_value(const nlohmann::json& value) {
  if (value.is_object() || value.is_array()) return type_name(value);
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return type_name(value) + " " + text;
}

bool type_matches(const nlohmann::json& type, const nlohmann::json& value) {
  auto one = [&](const nlohmann::json& t) {
    return t.is_string() && (t == type_name(value) || (t == "number" && value.is_number()));
  };
  if (type.is_array()) {
    for (const auto& t : type)
      if (one(t)) return true;
    return false;
  }
  return one(type);
}

// A schema without a type of its own whose oneOf/anyOf has exactly one branch of the value's
// type stands for that branch (cloud_init: a boolean, or an object with these keys).
const nlohmann::json* branch_for(const nlohmann::json& root, const nlohmann::json* schema, const nlohmann::json& value) {
  if (!schema || !schema->is_object() || schema->contains("type")) return schema;
  const nlohmann::json* found = nullptr;
  for (const char* key : {"oneOf", "anyOf"}) {
    auto branches = schema->find(key);
    if (branches == schema->end() || !branches->is_array()) continue;
    for (const auto& b : *branches) {
      const nlohmann::json* branch = follow_local_refs(root, &b);
      if (branch && branch->is_object() && branch->contains("type") && type_matches((*branch)["type"], value)) {
        if (found) return schema;  // more than one: no telling which was meant
        found = branch;
      }
    }
  }
  return found ? found : schema;
}

// Best-effort: the subschema that applies to `token` of `container` in `schema`.
const nlohmann::json* child_schema(const nlohmann::json& root, const nlohmann::json* schema,
                                   const nlohmann::json& container, const std::string& token) {
  schema = branch_for(root, follow_local_refs(root, schema), container);
  if (!schema || !schema->is_object()) return nullptr;
  if (container.is_array()) {
    auto items = schema->find("items");
    if (items == schema->end()) return nullptr;
    if (items->is_array()) {
      size_t index = std::stoul(token);
      return index < items->size() ? &(*items)[index] : nullptr;
    }
    return &*items;
  }
  if (auto props = schema->find("properties"); props != schema->end() && props->contains(token)) return &(*props)[token];
  if (auto patterns = schema->find("patternProperties"); patterns != schema->end()) {
    for (const auto& [pattern, sub] : patterns->items()) {
      try {
        if (std::regex_search(token, std::regex(pattern))) return &sub;
      } catch (const std::regex_error&) {
      }
    }
  }
  if (auto extra = schema->find("additionalProperties"); extra != schema->end() && extra->is_object()) return &*extra;
  return nullptr;
}

// Walks valijson's context ("<root>", "[memory]", "[0]") through value and schema.
struct FailurePlace {
  std::string pointer;  // relative to the validated value
  const nlohmann::json* value = nullptr;
  const nlohmann::json* schema = nullptr;
};

FailurePlace locate(const std::vector<std::string>& context, const nlohmann::json& value, const nlohmann::json& schema) {
  FailurePlace place{"", &value, &schema};
  for (size_t i = 1; i < context.size(); ++i) {
    std::string token = context[i];
    if (token.size() >= 2 && token.front() == '[' && token.back() == ']') token = token.substr(1, token.size() - 2);
    const nlohmann::json* next = nullptr;
    if (place.value && place.value->is_array()) {
      place.pointer = pointer_append(place.pointer, token);
      size_t index = std::stoul(token);
      if (index < place.value->size()) next = &(*place.value)[index];
    } else if (place.value && place.value->is_object()) {
      place.pointer = pointer_append(place.pointer, token);
      if (place.value->contains(token)) next = &(*place.value)[token];
    } else {
      place.pointer = pointer_append(place.pointer, token);
    }
    place.schema = place.value ? child_schema(schema, place.schema, *place.value, token) : nullptr;
    place.value = next;
  }
  place.schema = place.schema ? follow_local_refs(schema, place.schema) : nullptr;
  if (place.value) place.schema = branch_for(schema, place.schema, *place.value);
  return place;
}

std::string between_quotes(const std::string& text) {
  auto close = text.rfind('\'');
  auto open = close == std::string::npos || close == 0 ? std::string::npos : text.rfind('\'', close - 1);
  return open == std::string::npos ? std::string() : text.substr(open + 1, close - open - 1);
}

std::string join_keys(const nlohmann::json& object) {
  std::string out;
  for (const auto& [key, _] : object.items()) out += (out.empty() ? "" : ", ") + key;
  return out;
}

// The types a schema allows: its own "type", or those of its oneOf/anyOf branches.
std::vector<std::string> allowed_types(const nlohmann::json* schema) {
  std::vector<std::string> out;
  if (!schema || !schema->is_object()) return out;
  auto add = [&](const nlohmann::json& type) {
    if (type.is_string()) out.push_back(type.get<std::string>());
    if (type.is_array())
      for (const auto& t : type)
        if (t.is_string()) out.push_back(t.get<std::string>());
  };
  if (schema->contains("type")) {
    add((*schema)["type"]);
    return out;
  }
  for (const char* key : {"oneOf", "anyOf"})
    if (auto branches = schema->find(key); branches != schema->end() && branches->is_array())
      for (const auto& branch : *branches)
        if (branch.is_object() && branch.contains("type")) add(branch["type"]);
  return out;
}

bool type_allowed(const std::vector<std::string>& types, const nlohmann::json& value) {
  return type_matches(nlohmann::json(types), value);
}

// Rewrites valijson's complaint about `place` into a short, specific one.
std::string complaint(const std::string& description, FailurePlace& place) {
  const nlohmann::json* schema = place.schema;
  if (description.starts_with("Value type not permitted")) {
    auto types = allowed_types(schema);
    std::string expected = types.empty() ? "another type" : "";
    for (size_t i = 0; i < types.size(); ++i)
      expected += (i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + types[i];
    return "expected " + expected + ", got " + (place.value ? describe_value(*place.value) : "something else");
  }
  if (description.starts_with("Object contains a property")) {
    std::string key = between_quotes(description);
    place.pointer = pointer_append(place.pointer, key);
    std::string allowed = schema && schema->contains("properties") ? join_keys((*schema)["properties"]) : "";
    return "unknown key \"" + key + "\"" + (allowed.empty() ? "" : " (allowed: " + allowed + ")");
  }
  if (description.starts_with("Missing required property")) {
    return "missing required key \"" + between_quotes(description) + "\"";
  }
  if (description.starts_with("Failed to match against any enum values") && schema && schema->contains("enum")) {
    std::string options;
    for (const auto& option : (*schema)["enum"]) options += (options.empty() ? "" : ", ") + option.dump();
    return "got " + (place.value ? place.value->dump() : "a value") + ", expected one of " + options;
  }
  std::string text = description;
  if (!text.empty() && text.back() == '.') text.pop_back();
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  if (place.value && !place.value->is_object() && !place.value->is_array()) text += " (got " + place.value->dump() + ")";
  return text;
}

// valijson reports the cause first and then one summary per enclosing schema;
// the deepest failure is the useful one, and a wrong type explains the rest.
int specificity(const valijson::ValidationResults::Error& error) {
  int rank = error.description.starts_with("Failed to") ? 0
             : error.description.starts_with("Value type") ? 3
                                                            : 2;
  return static_cast<int>(error.context.size()) * 4 + rank;
}

}  // namespace

std::string origin_prefix(const Provenance& provenance, const std::string& pointer) {
  auto origin = provenance.origin_of(pointer);
  return origin ? origin->describe() + ": " : std::string();
}

void check_against_schema(const Provenance& provenance, const std::string& pointer, const nlohmann::json& value,
                          const nlohmann::json& schema, const std::string& schema_owner) {
  valijson::Schema parsed;
  try {
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
    parser.populateSchema(schema_adapter, parsed);
  } catch (const std::exception& e) {
    throw InputError((schema_owner.empty() ? "core schema" : schema_owner) + ": invalid JSON Schema: " + e.what() +
                     " (fix the plugin's schema)");
  }
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(value);
  try {
    if (validator.validate(parsed, target, &results)) return;
  } catch (const std::exception& e) {
    // valijson compiles "pattern" regexes only when a string meets them.
    throw InputError((schema_owner.empty() ? "core schema" : schema_owner) + ": invalid JSON Schema: " + e.what() +
                     " (fix the plugin's schema)");
  }

  // A wrong type explains the rest, except where the value has the type of another branch of a
  // oneOf/anyOf: then that branch's complaint (an unknown key, say) is the one to show.
  auto rank = [&](const valijson::ValidationResults::Error& error) {
    int r = specificity(error);
    if (error.description.starts_with("Value type not permitted")) {
      FailurePlace at = locate(error.context, value, schema);
      if (at.value && type_allowed(allowed_types(at.schema), *at.value)) r -= 4;
    }
    return r;
  };
  const valijson::ValidationResults::Error* best = nullptr;
  int best_rank = 0;
  for (const auto& error : results) {
    int r = rank(error);
    if (!best || r > best_rank) best = &error, best_rank = r;
  }
  FailurePlace place = locate(best->context, value, schema);
  std::string message = complaint(best->description, place);
  std::string full_pointer = pointer + place.pointer;
  throw InputError(origin_prefix(provenance, full_pointer) + (full_pointer.empty() ? "/" : full_pointer) + ": " +
                   message + (schema_owner.empty() ? "" : " (schema of " + schema_owner + ")"));
}

void validate_against_schema(const LoadedConfig& loaded, const std::string& pointer, const nlohmann::json& value,
                             const std::string& schema_text, const std::string& schema_owner) {
  nlohmann::json schema;
  try {
    schema = nlohmann::json::parse(schema_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(schema_owner + ": its settings schema is not valid JSON (" + std::string(e.what()) +
                     "); fix or rebuild the plugin");
  }
  check_against_schema(loaded.provenance, pointer, value, schema, schema_owner);
}

}  // namespace lcake::core
