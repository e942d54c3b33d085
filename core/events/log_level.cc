#include "log_level.h"

#include "lcake/errors.hpp"

namespace lcake::core {

const char* level_name(lcake::LogLevel level) {
  switch (level) {
    case lcake::LogLevel::trace: return "trace";
    case lcake::LogLevel::debug: return "debug";
    case lcake::LogLevel::info: return "info";
    case lcake::LogLevel::warn: return "warn";
    case lcake::LogLevel::error: return "error";
  }
  return "info";
}

lcake::LogLevel parse_log_level(const std::string& name) {
  for (auto l : {lcake::LogLevel::trace, lcake::LogLevel::debug, lcake::LogLevel::info,
                 lcake::LogLevel::warn, lcake::LogLevel::error})
    if (name == level_name(l)) return l;
  throw lcake::InputError("--log-level: unknown level '" + name +
                          "': use trace, debug, info, warn or error");
}

}  // namespace lcake::core
