// Parsing a config file's JSON text while remembering on which line each value
// sits, so every error (and `config show --origin`) can name file:line.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::core {

// JSON pointer (relative to the document root, "" for the root) -> 1-based line.
// For an object member it is the line of its key; for an array element, of its start.
using LineMap = std::map<std::string, int>;

struct JsonDocument {
  nlohmann::json value;
  LineMap lines;
};

// Deeper nesting is refused before parsing: recursive code (the line scanner,
// merge, schema checks) would run out of stack on `[` x 200000.
constexpr int kMaxJsonDepth = 256;

// Throws InputError "<display_name>:<line>: JSON nested deeper than 256 levels..."
// when text opens more than kMaxJsonDepth arrays/objects at once; without the
// line when `in_file` is false (a flag's value).
void check_json_depth(const std::string& text, const std::string& display_name, bool in_file = true);

// Throws InputError "<display_name>:<line>: invalid JSON: <what>".
JsonDocument parse_json_document(const std::string& text, const std::string& display_name);

// Reads and parses a file; a missing or unreadable file is an InputError too.
JsonDocument read_json_document(const std::filesystem::path& file, const std::string& display_name);

// Appends one reference token to a JSON pointer, escaping '~' and '/'.
std::string pointer_append(const std::string& pointer, const std::string& token);
std::string pointer_append(const std::string& pointer, size_t index);

}  // namespace lcake::core
