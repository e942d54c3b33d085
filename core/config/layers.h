// Building a variant's layers: order (parents before children), provisioners,
// inputs and verify steps, with paths resolved against the pipeline's directory.
#pragma once
#include <vector>

#include "config/config.h"
#include "config/interpolate.h"

namespace lcake::core {

// Throws InputError naming the layer for an unknown `from`, a cycle, or other
// than exactly one root layer.
std::vector<Layer> build_layers(const LoadedConfig& loaded, Interpolator& interpolator);

}  // namespace lcake::core
