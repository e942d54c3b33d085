// Loading the target's plugins, with errors that say where the name was given
// and which installed plugin was probably meant.
#include <algorithm>
#include <set>

#include "config/json_lines.h"
#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"

namespace lcake::core::input_check {
namespace fs = std::filesystem;
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// Plugin names in the search path, from the file names alone (no plugin code runs).
std::vector<std::string> installed_names(const PluginHost& plugins) {
  std::set<std::string> names;
  for (const auto& dir : plugins.search_path()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string file = entry.path().filename().string();
      if (file.starts_with("lcake-") && file.ends_with(".so") && file.size() > 9)
        names.insert(file.substr(6, file.size() - 9));
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace

std::string closest_name(const std::string& name, const std::vector<std::string>& names) {
  std::string best;
  std::size_t best_distance = 0;
  for (const auto& n : names) {
    std::size_t d = edit_distance(name, n);
    if (best.empty() || d < best_distance) best = n, best_distance = d;
  }
  // A guess that changes more than half the name is no help.
  return !best.empty() && best_distance * 2 <= std::max(name.size(), best.size()) ? best : "";
}

const LoadedPlugin& load_role_plugin(const LoadedConfig& loaded, PluginHost& plugins, const RoleConfig& rc,
                                     const std::string& role) {
  std::string field = rc.pointer + "/plugin";
  auto names = installed_names(plugins);
  if (std::find(names.begin(), names.end(), rc.plugin) == names.end()) {
    std::string list, dirs;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    for (const auto& d : plugins.search_path()) dirs += (dirs.empty() ? "" : ":") + d.string();
    std::string guess = closest_name(rc.plugin, names);
    throw InputError(where(loaded, field) + field + ": no plugin named '" + rc.plugin + "'" +
                     (guess.empty() ? "" : " (did you mean '" + guess + "'?)") + "; installed: " +
                     (list.empty() ? "none" : list) + " in " + (dirs.empty() ? "an empty plugin path" : dirs) +
                     " (add a directory with --plugin-path)");
  }
  const LoadedPlugin* p = nullptr;
  try {
    p = &plugins.load(rc.plugin);
  } catch (const InputError& e) {
    throw InputError(where(loaded, field) + field + ": " + e.what());
  }
  if (!p->has_role(role)) {
    std::string roles;
    for (const auto& r : p->info().roles) roles += (roles.empty() ? "" : ", ") + r;
    throw InputError(where(loaded, field) + field + ": plugin '" + rc.plugin + "' (" + p->info().file.string() +
                     ") provides no " + role + ", only " + roles +
                     ": choose a plugin that does (see `lcake plugins list`)");
  }
  return *p;
}

}  // namespace lcake::core::input_check
