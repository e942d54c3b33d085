// Variant and layer names: they appear in `--only V/L` globs and store paths,
// so they cannot hold '/' or glob characters.
#pragma once
#include <string>

#include "config/config.h"

namespace lcake::core {

// Throws InputError "<file:line>: <pointer>: <what> name "x/y" contains '/'..."
// when `name` (the key at pointer) is empty or holds one of / * ? [ ].
void check_name(const Provenance& provenance, const std::string& pointer, const std::string& name,
                const std::string& what);

}  // namespace lcake::core
