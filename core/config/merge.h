// Deep merge of config documents with provenance: objects merge key by key,
// scalars and arrays replace, null deletes the key (and records who deleted it).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/json_lines.h"

namespace lcake::core {

// Merges the object `doc` into `tree` at pointer `at` ("" for the root, or e.g.
// "/pipeline"); each leaf's origin is `source` and its line from `lines`
// (pointers relative to doc; missing -> line 0).
void merge_document(nlohmann::json& tree, Provenance& provenance, const std::string& at,
                    const nlohmann::json& doc, const std::string& source, const LineMap& lines);

// Splits a JSON pointer into unescaped reference tokens. Throws std::invalid_argument
// with a reason when it is malformed (no leading '/', a '~' not followed by 0 or 1).
std::vector<std::string> split_pointer(const std::string& pointer);

// Merges `value` at `pointer` (creating missing objects on the way; array elements
// may be addressed by index) as if an overlay held only that path. Throws
// std::invalid_argument with a reason when the path runs through a scalar.
void merge_at_pointer(nlohmann::json& tree, Provenance& provenance, const std::string& pointer,
                      const nlohmann::json& value, const Origin& origin);

}  // namespace lcake::core
