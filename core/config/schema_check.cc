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

// Best-effort: the subschema that applies to `token` of `container` in `schema`.
const nlohmann::json* child_schema(const nlohmann::json& root, const nlohmann::json* schema,
                                   const nlohmann::json& container, const std::string& token) {
  schema = follow_local_refs(root, schema);
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

// Rewrites valijson's complaint about `place` into a short, specific one.
std::string complaint(const std::string& description, FailurePlace& place) {
  const nlohmann::json* schema = place.schema;
  if (description.starts_with("Value type not permitted")) {
    std::string expected = "another type";
    if (schema && schema->contains("type")) {
      const auto& type = (*schema)["type"];
      if (type.is_string()) {
        expected = type.get<std::string>();
      } else if (type.is_array()) {
        expected.clear();
        for (size_t i = 0; i < type.size(); ++i) {
          expected += (i == 0 ? "" : i + 1 == type.size() ? " or " : ", ") + type[i].get<std::string>();
        }
      }
    }
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

  const valijson::ValidationResults::Error* best = nullptr;
  for (const auto& error : results) {
    if (!best || specificity(error) > specificity(*best)) best = &error;
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
