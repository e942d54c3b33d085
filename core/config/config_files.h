// Finding config files: the config dirs, named targets/sites/pipelines in them,
// overlay dirs, and how a file's name is shown in messages.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace lcake::core {

// Relative to the working directory when the file is under it, else absolute:
// "configs/sites/ncsa.json" rather than "/home/me/lcake/configs/sites/ncsa.json".
std::string display_path(const std::filesystem::path& file);

// A --target/--site value that is a path rather than a name.
bool looks_like_path(const std::string& name);

// <dir>/<kind>/<name>.json from the first config dir that has it. Throws InputError
// "<what> "<name>" not found: searched <dirs>; available: <names>" otherwise.
// `where` prefixes the message (e.g. the flag or the file:line that named it).
std::filesystem::path find_named_config(const std::string& kind, const std::string& what,
                                        const std::string& name,
                                        const std::vector<std::filesystem::path>& dirs,
                                        const std::string& where);

// Names (file stems) of <dir>/<kind>/*.json across the dirs, sorted, unique.
std::vector<std::string> available_configs(const std::string& kind,
                                           const std::vector<std::filesystem::path>& dirs);

// The *.json files directly in dir, sorted by name; none when dir does not exist.
std::vector<std::filesystem::path> json_files_in(const std::filesystem::path& dir);

// $XDG_CONFIG_HOME/lcake, else ~/.config/lcake; empty when neither is known.
std::filesystem::path default_user_overlay_dir();

}  // namespace lcake::core
