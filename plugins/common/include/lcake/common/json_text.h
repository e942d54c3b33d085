// Reading another plugin's artifact metadata: a value may be missing, or null where that plugin
// records "not known" (the qemu builder's host_key after generalize, ssh_user of an image without one).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::common {

// The string at `key`, else `fallback` (missing, null or not a string).
inline std::string text_or(const nlohmann::json& object, const std::string& key, std::string fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace lcake::common
