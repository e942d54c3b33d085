// The JSON Schema of the merged tree that the core itself reads (plugin
// settings are left open here; each plugin's schema checks them).
#pragma once
#include <string>

namespace lcake::core {

const std::string& core_schema_text();

}  // namespace lcake::core
