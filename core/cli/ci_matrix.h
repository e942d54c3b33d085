// `lcake plan --emit FORMAT`: the build matrix for a CI system, one job per selected
// variant, each with the exact lcake command it runs.
#pragma once
#include <string>
#include <vector>

#include "plan/plan.h"

namespace lcake::cli {

struct MatrixInput {
  std::string target;
  // The flags that shape the configuration, as given (--config-dir, --site, --overlay,
  // --var-file, --var, --set, --pipeline), repeated verbatim in every job's command.
  std::vector<std::string> config_flags;
  bool no_verify = false;
};

// FORMAT is "json" (lcake's own, versioned), "github-actions" (the object for
// `strategy.matrix: ${{ fromJSON(...) }}`) or "gitlab" (a child pipeline in YAML).
// Throws InputError for another format.
std::string emit_matrix(const std::string& format, const MatrixInput& in,
                        const std::vector<core::VariantPlan>& plan);

// One word quoted for a POSIX shell ('…' unless it needs none).
std::string shell_quote(const std::string& word);

}  // namespace lcake::cli
