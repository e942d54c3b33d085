// Finds, checks and loads backend plugins (lcake-<name>.so). The entry point's
// name (lcake_plugin_entry_v<MAJOR>) is read from the symbol table with
// Boost.DLL library_info before any plugin code runs; then the library is
// loaded rtld_now and its descriptor checked. Libraries are never unloaded.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lcake/errors.hpp"
#include "lcake/plugin.hpp"

namespace lcake::core {

// What one role of a plugin declares (lcake_role_spec, parsed and checked).
struct RoleInfo {
  // JSON Schemas; null when the plugin gave none (settings must then be absent or {};
  // a source/options/publish it declares no schema for is not passed to it).
  nlohmann::json settings, source, options, publish;
  std::vector<std::string> accepts, produces;  // artifact types
  bool accepts_type(const std::string& type) const;  // true when `accepts` is empty (anything)
  std::vector<std::string> capabilities;  // RoleSpec .capabilities, each one known_capabilities(role) has
  bool has_capability(const std::string& word) const;
};

// An uploader whose published images boot as new machines in a cloud (lcake_role_spec.capabilities).
inline constexpr const char* kPublishesToCloud = "publishes-to-cloud";
// A builder that can build a child layer from the parent layer's upload artifact when the
// parent's build is not at hand (the Nova builder boots the parent's Glance image either way),
// so a parent whose upload is cached or found in the backend is not rebuilt for its children.
inline constexpr const char* kBuildsOnUpload = "builds-on-upload";
// The capability words lcake knows for a role; a plugin declaring another is refused at load.
const std::vector<std::string>& known_capabilities(const std::string& role);

// A ValueError a role's constructor raised about its settings, with the role named
// (so the host can point at /target/<role>/settings/...).
struct RoleValueError : lcake::ValueError {
  RoleValueError(std::string role_, const lcake::ValueError& e)
      : lcake::ValueError(e.part, e.pointer, e.what()), role(std::move(role_)) {}
  std::string role;
};

struct PluginInfo {
  std::string name, version, summary;
  unsigned api_version = 0;
  std::string abi;
  std::vector<std::string> roles;        // "builder", "uploader", "verifier"
  std::map<std::string, RoleInfo> role;  // by role name
  std::filesystem::path file;
};

class LoadedPlugin {
 public:
  const PluginInfo& info() const { return info_; }
  bool has_role(const std::string& role) const;
  // Settings must already be validated against the role's schema. Throw
  // lcake::InputError naming the plugin file when the role is missing or the
  // factory fails ("plugin 'x' (/p/lcake-x.so) failed to create its builder: <why>"),
  // a RoleValueError when the constructor raised an lcake::ValueError.
  std::unique_ptr<lcake::Builder> make_builder(const nlohmann::json& settings) const;
  std::unique_ptr<lcake::Uploader> make_uploader(const nlohmann::json& settings) const;
  std::unique_ptr<lcake::Verifier> make_verifier(const nlohmann::json& settings) const;
  std::unique_ptr<lcake::Role> make_role(const std::string& role, const nlohmann::json& settings) const;

 private:
  friend class PluginHost;
  PluginInfo info_;
  const lcake_plugin_descriptor* descriptor_ = nullptr;
  std::shared_ptr<void> library_;  // keeps the library loaded for the life of the process
};

class PluginHost {
 public:
  explicit PluginHost(std::vector<std::filesystem::path> search_path);

  // --plugin-path entries, then $LCAKE_PLUGIN_PATH (colon-separated), then the
  // installed plugin dir (<dir of the lcake executable>/../lib/lcake/plugins).
  static std::vector<std::filesystem::path> default_search_path(
      const std::vector<std::filesystem::path>& cli_paths);

  const std::vector<std::filesystem::path>& search_path() const { return search_path_; }

  // Loads lcake-<name>.so from the first search-path dir that has it. Throws
  // lcake::InputError (one line: file, what is wrong, what to do) when it is
  // missing, unsafe (writable by others), not a shared library, lacks the entry
  // point, has a wrong API major or a newer minor, or a different name inside.
  // Cached: loading the same name twice returns the same plugin.
  const LoadedPlugin& load(const std::string& name);

  struct Discovered {
    std::vector<PluginInfo> plugins;
    std::vector<std::pair<std::filesystem::path, std::string>> errors;  // file, one-line error
  };
  // Every lcake-*.so in the search path. A name found twice is an error for the later file.
  Discovered discover();

  // Checks and loads one file (`lcake plugins inspect FILE`).
  const LoadedPlugin& load_file(const std::filesystem::path& file);

 private:
  std::vector<std::filesystem::path> search_path_;
  std::map<std::string, std::unique_ptr<LoadedPlugin>> by_name_;
  std::map<std::string, LoadedPlugin*> by_file_;
  // Plugins whose name was already taken by another file (load_file of a file
  // outside the search path); kept alive like the rest.
  std::vector<std::unique_ptr<LoadedPlugin>> shadowed_;
  std::recursive_mutex mu_;  // load/load_file/discover may be called from parallel variants
};

}  // namespace lcake::core
