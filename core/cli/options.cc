#include "options.h"

#include <cstdlib>

#include "lcake/errors.hpp"

namespace lcake::cli {

po::options_description config_options(CommonOptions& o) {
  po::options_description d("Configuration");
  d.add_options()
    ("target,t", po::value(&o.load.target), "target name (configs/targets/NAME.json) or file")
    ("pipeline,p", po::value<std::string>()->notifier([&o](const std::string& s) { o.load.pipeline = s; }),
     "pipeline file (default ./lcake.json, else the target's pipeline)")
    ("site", po::value(&o.load.sites)->composing(), "site overlay NAME (configs/sites/NAME.json); repeatable")
    ("overlay", po::value<std::vector<std::string>>()->composing()->notifier([&o](const std::vector<std::string>& v) {
       for (auto& s : v) o.load.overlays.emplace_back(s); }), "overlay FILE; repeatable")
    ("var-file", po::value<std::vector<std::string>>()->composing()->notifier([&o](const std::vector<std::string>& v) {
       for (auto& s : v) o.load.var_files.emplace_back(s); }), "JSON file of variable values; repeatable")
    ("var", po::value(&o.load.vars)->composing(), "NAME=VALUE; repeatable")
    ("set", po::value(&o.load.sets)->composing(), "/json/pointer=VALUE into the merged config; repeatable")
    ("config-dir", po::value<std::vector<std::string>>()->composing()->notifier([&o](const std::vector<std::string>& v) {
       for (auto& s : v) o.load.config_dirs.emplace_back(s); }), "search DIR for targets/, sites/, pipelines/ first; repeatable");
  return d;
}

po::options_description run_options(CommonOptions& o) {
  po::options_description d("Running");
  d.add_options()
    ("only", po::value(&o.run.only)->composing(), "only variants or variant/layer matching GLOB; repeatable")
    ("parallel", po::value<int>()->notifier([&o](int n) {
       if (n < 1) throw lcake::InputError("--parallel " + std::to_string(n) + ": must be 1 or more (leave it out to build every variant at once)");
       o.run.parallel = n; }), "variants built at once (default: all)")
    ("force", po::bool_switch(&o.run.force), "rebuild even when cached")
    ("no-verify", po::bool_switch(&o.run.no_verify), "run no verify steps; a target without a verifier may then publish (unverified)")
    ("no-publish", po::bool_switch(&o.run.no_publish), "build, upload and verify, publish nothing (a later `lcake build` or `lcake publish` does)")
    ("on-error", po::value(&o.on_error), "cleanup (default): delete what a failed step created; abort: keep it for inspection")
    ("manifest", po::value(&o.manifest), "also write the run's manifest to FILE");
  return d;
}

po::options_description global_options(CommonOptions& o) {
  po::options_description d("General");
  d.add_options()
    ("help,h", "show help")
    ("state-dir", po::value(&o.state_dir), "state directory (default $XDG_STATE_HOME/lcake)")
    ("plugin-path", po::value(&o.plugin_path)->composing(), "search DIR for plugins first; repeatable")
    ("log-level", po::value(&o.log_level), "trace, debug, info (default), warn, error")
    ("json", po::bool_switch(&o.json), "print a JSON event stream instead of text");
  return d;
}

void finish_options(CommonOptions& o, bool needs_target) {
  auto dirs = core::default_config_dirs();
  o.load.config_dirs.insert(o.load.config_dirs.end(), dirs.begin(), dirs.end());
  if (o.load.target.empty())
    if (const char* t = std::getenv("LCAKE_TARGET")) o.load.target = t;
  if (needs_target && o.load.target.empty())
    throw lcake::InputError("--target is required (e.g. --target qemu); targets are the files in <config dir>/targets/");
  if (o.on_error == "cleanup") o.run.on_error = core::OnError::cleanup;
  else if (o.on_error == "abort") o.run.on_error = core::OnError::abort;
  else throw lcake::InputError("--on-error: '" + o.on_error + "' is not cleanup or abort");
  if (!o.manifest.empty()) o.run.manifest = o.manifest;
}

}  // namespace lcake::cli
