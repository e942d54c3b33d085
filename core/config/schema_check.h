// Checking a part of the merged tree against a JSON Schema (valijson), with
// errors that name the failing pointer and the file:line that set it.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"

namespace lcake::core {

// Throws InputError "<file:line>: <pointer>: <complaint>[ (schema of <owner>)]" for
// the most specific failure. `schema` must be a valid schema (see parse in
// validate_against_schema); `schema_owner` is empty for the core's own schema.
void check_against_schema(const Provenance& provenance, const std::string& pointer,
                          const nlohmann::json& value, const nlohmann::json& schema,
                          const std::string& schema_owner);

// "file:line: " for the value at pointer, or "" when nothing recorded it.
std::string origin_prefix(const Provenance& provenance, const std::string& pointer);

}  // namespace lcake::core
