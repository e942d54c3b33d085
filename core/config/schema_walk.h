// Walking a value together with the JSON Schema it passed: filling in the
// schema's defaults, and finding the strings it marks as local files.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::core {

// Follows a local "$ref" ("#/definitions/x") within the root schema; a remote
// one is left as is. Null when the reference points nowhere.
const nlohmann::json* follow_local_refs(const nlohmann::json& root, const nlohmann::json* schema);

// Adds each "default" of an object schema's "properties" the value lacks, and
// recurses into the properties and array items present ("$ref"s within the
// schema are followed). Run after validation: a default is not checked again.
void inject_defaults(nlohmann::json& value, const nlohmann::json& schema);

// Calls visit(pointer relative to value, path, kind) for every string the
// schema marks with "x-lcake-path": "file" or "dir" (a local file or directory
// that must exist). "file://" is stripped; http(s):// URLs are skipped.
using LocalPathVisitor = std::function<void(const std::string&, const std::string&, const std::string&)>;
void for_each_local_path(const nlohmann::json& value, const nlohmann::json& schema, const LocalPathVisitor& visit);

}  // namespace lcake::core
