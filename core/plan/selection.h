// --only: globs over "variant" or "variant/layer", chosen once for the plan.
#pragma once
#include <string>
#include <vector>

#include "config/config.h"

namespace lcake::core {

bool glob_match(const std::string& pattern, const std::string& text);

// Which layers of a variant --only names (all of them without globs).
std::vector<bool> named_layers(const Variant& v, const std::vector<std::string>& only);
// Those plus the ancestors they are built from.
std::vector<bool> with_ancestors(const Variant& v, std::vector<bool> named);
// Variants with at least one named layer, in config order. Throws InputError
// when globs are given and match nothing, naming the globs and what exists.
std::vector<const Variant*> selected_variants(const std::vector<Variant>& variants,
                                              const std::vector<std::string>& only);

}  // namespace lcake::core
