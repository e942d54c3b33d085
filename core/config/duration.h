// Durations in config: "90s", "5m", "1h", or a number of seconds.
#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

namespace lcake::core {

// nullopt when value is not a duration (a negative number, "5 minutes", "1d").
std::optional<std::chrono::seconds> parse_duration(const nlohmann::json& value);

}  // namespace lcake::core
