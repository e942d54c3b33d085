#include "config/duration.h"

#include <cmath>
#include <string>

namespace lcake::core {

std::optional<std::chrono::seconds> parse_duration(const nlohmann::json& value) {
  if (value.is_number()) {
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < 0) return std::nullopt;
    return std::chrono::seconds(static_cast<long long>(std::ceil(seconds)));  // 0.5 s is not "no timeout"
  }
  if (!value.is_string()) return std::nullopt;
  const std::string text = value.get<std::string>();
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  long long count = std::stoll(text.substr(0, digits));
  std::string unit = text.substr(digits);
  if (unit.empty() || unit == "s") return std::chrono::seconds(count);
  if (unit == "m") return std::chrono::minutes(count);
  if (unit == "h") return std::chrono::hours(count);
  return std::nullopt;
}

}  // namespace lcake::core
