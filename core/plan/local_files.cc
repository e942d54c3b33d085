// Local files the config names must exist before anything runs; the error
// names the file:line that named them.
#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"

namespace lcake::core::input_check {
namespace fs = std::filesystem;
namespace {

void must_exist(const LoadedConfig& loaded, const std::string& pointer, const fs::path& path, const std::string& what) {
  std::error_code ec;
  if (fs::exists(path, ec)) return;
  throw InputError(where(loaded, pointer) + pointer + ": " + what + " " + path.string() +
                   " does not exist: fix the path (relative paths are from the pipeline file's directory)");
}

}  // namespace

void check_local_files(const LoadedConfig& loaded, const ResolvedConfig& config, const Selected& selected) {
  for (const auto& v : config.variants)
    for (const auto& layer : v.layers) {
      if (!selected(v)) continue;
      for (std::size_t k = 0; k < layer.inputs.size(); ++k)
        must_exist(loaded, k < layer.input_pointers.size() ? layer.input_pointers[k] : "", layer.inputs[k], "input");
      for (const auto& p : layer.provisioners)  // sensitive sources are not key inputs
        if (p.type == "file" && p.sensitive) must_exist(loaded, p.pointer + "/source", p.source, "sensitive file");
      for (const auto& step : layer.verify)
        if (step.compare) must_exist(loaded, step.pointer + "/compare/expected", step.compare->expected, "expected file");
    }
}

}  // namespace lcake::core::input_check
