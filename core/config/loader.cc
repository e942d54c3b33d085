// load_config: reads and merges the config files and flags in the documented order.
#include <cstdlib>
#include <stdexcept>

#include "config/config.h"
#include "config/config_files.h"
#include "config/json_lines.h"
#include "config/merge.h"
#include "lcake/errors.hpp"

namespace lcake::core {
namespace fs = std::filesystem;
namespace {

const char* const kDefaultsSource = "built-in defaults";

// A config file read from disk, before it is merged.
struct ConfigFile {
  fs::path path;
  std::string name;  // as shown in messages
  JsonDocument doc;
};

ConfigFile read_object_file(const fs::path& path, const std::string& what) {
  ConfigFile file{fs::absolute(path).lexically_normal(), display_path(path), {}};
  file.doc = read_json_document(path, file.name);
  if (!file.doc.value.is_object()) {
    throw InputError(file.name + ":" + std::to_string(file.doc.lines[""]) + ": a " + what +
                     " must be a JSON object, not " + file.doc.value.type_name());
  }
  return file;
}

class Loader {
 public:
  explicit Loader(LoadedConfig& out) : out_(out) {}

  void merge_file(const ConfigFile& file, const std::string& at) {
    merge_document(out_.tree, out_.provenance, at, file.doc.value, file.name, file.doc.lines);
    out_.sources.push_back(file.name);
  }

  void merge_flag(const std::string& pointer, const nlohmann::json& value, const std::string& flag) {
    try {
      merge_at_pointer(out_.tree, out_.provenance, pointer, value, Origin{flag, 0});
    } catch (const std::invalid_argument& e) {
      throw InputError(flag + ": " + e.what());
    }
    out_.sources.push_back(flag);
  }

 private:
  LoadedConfig& out_;
};

ConfigFile load_target(const LoadOptions& options, const std::vector<fs::path>& dirs) {
  if (options.target.empty()) {
    std::string names;
    for (const auto& n : available_configs("targets", dirs)) names += (names.empty() ? "" : ", ") + n;
    throw InputError("no target given: pass --target NAME (available: " + (names.empty() ? "none" : names) + ")");
  }
  if (looks_like_path(options.target)) return read_object_file(options.target, "target");
  return read_object_file(find_named_config("targets", "target", options.target, dirs, "--target"), "target");
}

// --pipeline, else ./lcake.json, else the target's "pipeline", else "stack".
ConfigFile load_pipeline(const LoadOptions& options, const ConfigFile& target, const std::vector<fs::path>& dirs) {
  if (options.pipeline) return read_object_file(*options.pipeline, "pipeline");
  std::error_code ec;
  if (fs::is_regular_file("lcake.json", ec)) return read_object_file("lcake.json", "pipeline");
  auto named = target.doc.value.find("pipeline");
  if (named != target.doc.value.end()) {
    std::string where = target.name + ":" + std::to_string(target.doc.lines.at("/pipeline"));
    if (!named->is_string()) throw InputError(where + ": /pipeline must be a pipeline name or a path to a .json file");
    std::string name = named->get<std::string>();
    if (looks_like_path(name)) {
      fs::path path = fs::path(name).is_relative() ? target.path.parent_path() / name : fs::path(name);
      if (!fs::exists(path, ec)) throw InputError(where + ": pipeline file " + display_path(path) + " does not exist");
      return read_object_file(path, "pipeline");
    }
    return read_object_file(find_named_config("pipelines", "pipeline", name, dirs, where), "pipeline");
  }
  return read_object_file(find_named_config("pipelines", "pipeline", "stack", dirs,
                                            "no --pipeline, no ./lcake.json and no \"pipeline\" in " + target.name),
                          "pipeline");
}

std::pair<std::string, std::string> split_assignment(const std::string& text, const std::string& flag,
                                                     const std::string& shape) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError(flag + " " + text + ": expected " + shape + " (for example " + flag +
                     (flag == "--var" ? " TAG=w_2016_05)" : " /target/builder/settings/memory=4096)"));
  }
  return {text.substr(0, eq), text.substr(eq + 1)};
}

}  // namespace

LoadedConfig load_config(const LoadOptions& options) {
  std::vector<fs::path> dirs = options.config_dirs.empty() ? default_config_dirs() : options.config_dirs;
  LoadedConfig out;
  Loader loader(out);

  ConfigFile target = load_target(options, dirs);
  ConfigFile pipeline = load_pipeline(options, target, dirs);
  out.target_file = target.path;
  out.pipeline_file = pipeline.path;

  out.tree = nlohmann::json::object();
  merge_document(out.tree, out.provenance, "", nlohmann::json{{"vars", nlohmann::json::object()}}, kDefaultsSource, {});
  out.sources.push_back(kDefaultsSource);
  loader.merge_file(pipeline, "/pipeline");
  loader.merge_file(target, "/target");

  fs::path system_dir = options.system_overlay_dir.value_or("/etc/lcake");
  for (const auto& file : json_files_in(system_dir)) loader.merge_file(read_object_file(file, "system overlay"), "");
  fs::path user_dir = options.user_overlay_dir.value_or(default_user_overlay_dir());
  if (!user_dir.empty()) {
    for (const auto& file : json_files_in(user_dir)) loader.merge_file(read_object_file(file, "user overlay"), "");
  }
  for (const auto& site : options.sites) {
    fs::path file = looks_like_path(site) ? fs::path(site) : find_named_config("sites", "site", site, dirs, "--site");
    loader.merge_file(read_object_file(file, "site overlay"), "");
  }
  for (const auto& overlay : options.overlays) loader.merge_file(read_object_file(overlay, "overlay"), "");
  for (const auto& var_file : options.var_files) loader.merge_file(read_object_file(var_file, "var file"), "/vars");

  for (const auto& var : options.vars) {
    auto [name, value] = split_assignment(var, "--var", "NAME=VALUE");
    loader.merge_flag(pointer_append("/vars", name), value, "--var " + var);
  }
  for (const auto& set : options.sets) {
    auto [pointer, text] = split_assignment(set, "--set", "/json/pointer=VALUE");
    try {
      split_pointer(pointer);
    } catch (const std::invalid_argument& e) {
      throw InputError("--set " + set + ": malformed JSON pointer \"" + pointer + "\": " + e.what());
    }
    nlohmann::json value;
    check_json_depth(text, "--set " + pointer, false);
    try {
      value = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error&) {
      value = text;  // not JSON: a plain string, so --set /vars/TAG=w_2016_05 just works
    }
    loader.merge_flag(pointer, value, "--set " + pointer);
  }
  return out;
}

}  // namespace lcake::core
