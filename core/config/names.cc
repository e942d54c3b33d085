#include "config/names.h"

#include "config/schema_check.h"
#include "lcake/errors.hpp"

namespace lcake::core {

void check_name(const Provenance& provenance, const std::string& pointer, const std::string& name,
                const std::string& what) {
  auto bad = name.find_first_of("/*?[]");
  if (!name.empty() && bad == std::string::npos) return;
  std::string why = name.empty() ? "is empty"
                                 : "contains '" + std::string(1, name[bad]) +
                                       "', which `--only " + (what == "layer" ? "V/L" : "V") +
                                       "` and store paths cannot tell apart from a separator or glob";
  throw InputError(origin_prefix(provenance, pointer) + pointer + ": " + what + " name \"" + name +
                   "\" " + why + ": rename it (letters, digits, '-', '_', '.')");
}

}  // namespace lcake::core
