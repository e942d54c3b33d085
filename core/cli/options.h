// Command-line options shared by lcake's subcommands.
#pragma once
#include <boost/program_options.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "runner/runner.h"

namespace lcake::cli {

namespace po = boost::program_options;

struct CommonOptions {
  core::LoadOptions load;
  std::vector<std::string> plugin_path;
  std::string state_dir;
  std::string log_level = "info";
  bool json = false;
  core::RunOptions run;
  std::string on_error = "cleanup";
  std::string manifest;
};

// Options that choose and shape the configuration (--target, --site, --var...).
po::options_description config_options(CommonOptions& o);
// Options of commands that run builds (--only, --parallel, --force...).
po::options_description run_options(CommonOptions& o);
// --state-dir, --plugin-path, --log-level, --json.
po::options_description global_options(CommonOptions& o);

// Fills defaults (config dirs, target from $LCAKE_TARGET) and checks values.
void finish_options(CommonOptions& o, bool needs_target);

}  // namespace lcake::cli
