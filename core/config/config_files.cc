#include "config/config_files.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "config/config.h"
#include "lcake/errors.hpp"

namespace lcake::core {
namespace fs = std::filesystem;

std::string display_path(const fs::path& file) {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  fs::path absolute = (file.is_absolute() || ec ? file : cwd / file).lexically_normal();
  if (!ec) {
    fs::path relative = absolute.lexically_relative(cwd);
    if (!relative.empty() && *relative.begin() != "..") return relative.string();
  }
  return absolute.string();
}

bool looks_like_path(const std::string& name) {
  return name.find('/') != std::string::npos || name.ends_with(".json");
}

std::vector<std::string> available_configs(const std::string& kind, const std::vector<fs::path>& dirs) {
  std::set<std::string> names;
  for (const auto& dir : dirs) {
    for (const auto& file : json_files_in(dir / kind)) names.insert(file.stem().string());
  }
  return {names.begin(), names.end()};
}

fs::path find_named_config(const std::string& kind, const std::string& what, const std::string& name,
                           const std::vector<fs::path>& dirs, const std::string& where) {
  std::string searched;
  for (const auto& dir : dirs) {
    fs::path candidate = dir / kind / (name + ".json");
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
    searched += (searched.empty() ? "" : ", ") + display_path(dir / kind);
  }
  std::string available;
  for (const auto& n : available_configs(kind, dirs)) available += (available.empty() ? "" : ", ") + n;
  throw InputError(where + ": " + what + " \"" + name + "\" not found: searched " +
                   (searched.empty() ? "no config dirs" : searched) + "; available: " +
                   (available.empty() ? "none" : available) + " (add --config-dir DIR or pass a path to a .json file)");
}

std::vector<fs::path> json_files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json" && entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

fs::path default_user_overlay_dir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg) return fs::path(xdg) / "lcake";
  const char* home = std::getenv("HOME");
  if (home && *home) return fs::path(home) / ".config" / "lcake";
  return {};
}

std::vector<fs::path> default_config_dirs() {
  std::vector<fs::path> dirs;
  if (const char* path = std::getenv("LCAKE_CONFIG_PATH")) {
    std::string list = path;
    for (size_t start = 0; start <= list.size();) {
      size_t colon = std::min(list.find(':', start), list.size());
      if (colon > start) dirs.emplace_back(list.substr(start, colon - start));
      start = colon + 1;
    }
  }
  dirs.emplace_back("configs");
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path() / ".." / "share" / "lcake" / "configs").lexically_normal());
  return dirs;
}

}  // namespace lcake::core
