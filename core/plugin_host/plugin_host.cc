#include "plugin_host/plugin_host.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstdlib>
#include <set>

#include "lcake/errors.hpp"

namespace fs = std::filesystem;

namespace lcake::core {
namespace {

constexpr const char* kFilePrefix = "lcake-";
constexpr const char* kFileSuffix = ".so";

// Errors must stay one line even when a plugin's text (schema, factory error) has newlines.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw lcake::InputError(one_line(file.string() + ": " + what));
}

// "lcake-foo.so" -> "foo"; empty when the file is not named like a plugin.
std::string name_from_file(const fs::path& file) {
  std::string base = file.filename().string();
  std::string prefix = kFilePrefix, suffix = kFileSuffix;
  if (base.size() <= prefix.size() + suffix.size() || base.rfind(prefix, 0) != 0 ||
      base.compare(base.size() - suffix.size(), suffix.size(), suffix) != 0)
    return {};
  return base.substr(prefix.size(), base.size() - prefix.size() - suffix.size());
}

// A plugin runs with lcake's privileges, so anyone who can replace it owns lcake.
void check_not_writable_by_others(const fs::path& file) {
  for (const fs::path& p : {file, file.parent_path()}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) fail(file, "cannot stat " + p.string());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
      fail(file, p.string() + " is writable by others; fix with chmod go-w " + p.string());
  }
}

// Reads the entry point's name from the symbol table without running plugin code.
std::string find_entry_symbol(const fs::path& file) {
  std::vector<std::string> symbols;
  try {
    boost::dll::library_info info(boost::dll::fs::path(file.string()), true);
    symbols = info.symbols();
  } catch (const std::exception& e) {
    fail(file, std::string("not a shared library (") + e.what() + "): is it an lcake plugin?");
  }
  const std::string prefix = LCAKE_ENTRY_PREFIX;
  const std::string wanted = prefix + std::to_string(LCAKE_API_VERSION);
  std::set<unsigned long> other_versions;
  for (const std::string& s : symbols) {
    if (s == wanted) return s;
    if (s.rfind(prefix, 0) != 0 || s.size() == prefix.size()) continue;
    std::string digits = s.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") == std::string::npos)
      other_versions.insert(std::stoul(digits));
  }
  if (!other_versions.empty())
    fail(file, "built for lcake plugin API " + std::to_string(*other_versions.rbegin()) +
                   ", this lcake has API " + std::to_string(LCAKE_API_VERSION) +
                   " (versions must match exactly): rebuild it against this lcake's SDK");
  fail(file, "no lcake entry point (" + wanted +
                 "): is it an lcake plugin? rebuild with LCAKE_PLUGIN(...)");
}

// Boost wraps dlerror() as "...load() failed (dlerror system message: FILE: WHY): ...".
std::string dlopen_reason(const fs::path& file, const std::string& what) {
  const std::string marker = "dlerror system message: ";
  std::size_t start = what.find(marker), end = what.rfind("): ");
  if (start == std::string::npos || end == std::string::npos || end < start) return what;
  std::string reason = what.substr(start + marker.size(), end - start - marker.size());
  if (reason.rfind(file.string() + ": ", 0) == 0) reason.erase(0, file.string().size() + 2);
  return reason;
}

// The library stays loaded until the process exits: role objects, their vtables
// and static data live in it, and unloading would run its destructors early.
std::shared_ptr<void> load_forever(const fs::path& file, boost::dll::shared_library*& lib) {
  try {
    lib = new boost::dll::shared_library(boost::dll::fs::path(file.string()),
                                         boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    fail(file, "cannot load it: " + dlopen_reason(file, e.what()) +
                   ": install what it needs or rebuild it on this system");
  }
  return std::shared_ptr<void>(lib, [](void*) {});  // deliberately never deleted
}

struct RoleSlot {
  const char* role;
  lcake_role_spec lcake_plugin_descriptor::*spec;
};
constexpr RoleSlot kRoles[] = {
    {"builder", &lcake_plugin_descriptor::builder},
    {"uploader", &lcake_plugin_descriptor::uploader},
    {"verifier", &lcake_plugin_descriptor::verifier},
};

const RoleSlot* find_role(const std::string& role) {
  for (const RoleSlot& r : kRoles)
    if (role == r.role) return &r;
  return nullptr;
}

nlohmann::json parse_schema(const fs::path& file, const std::string& plugin, const std::string& what,
                            const char* text) {
  if (!text) return nullptr;
  nlohmann::json schema;
  try {
    schema = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(file, "plugin '" + plugin + "' has a bad " + what + " schema (" + e.what() +
                   "): fix the JSON Schema text in the plugin");
  }
  if (!schema.is_object() && !schema.is_boolean())
    fail(file, "plugin '" + plugin + "' has a bad " + what +
                   " schema (not a JSON object): fix the JSON Schema text in the plugin");
  return schema;
}

std::vector<std::string> split_types(const char* text) {
  std::vector<std::string> out;
  std::string s = text ? text : "";
  for (std::size_t i = 0; i < s.size();) {
    std::size_t j = s.find_first_of(" ,", i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Checks the descriptor a plugin returned and turns it into a PluginInfo.
PluginInfo read_descriptor(const fs::path& file, const lcake_plugin_descriptor* d) {
  if (!d) fail(file, "its entry point returned no descriptor; fix the plugin");
  if (d->api_version != LCAKE_API_VERSION)
    fail(file, "built for lcake plugin API " + std::to_string(d->api_version) +
                   ", this lcake has API " + std::to_string(LCAKE_API_VERSION) +
                   " (versions must match exactly): rebuild it against this lcake's SDK");
  std::string abi = d->abi ? d->abi : "";
  if (abi != LCAKE_ABI_TAG)
    fail(file, "built with C++ ABI '" + abi + "', this lcake was built with '" LCAKE_ABI_TAG
               "' (C++ objects cross the plugin boundary, so they must match): rebuild it with "
               "the same compiler and nlohmann/json as lcake");
  PluginInfo info;
  info.file = file;
  info.api_version = d->api_version;
  info.abi = abi;
  info.name = d->name ? d->name : "";
  info.version = d->version ? d->version : "";
  info.summary = d->summary ? d->summary : "";
  std::string expected = name_from_file(file);
  if (info.name.empty()) fail(file, "the plugin has no name; give one in LCAKE_PLUGIN(...)");
  if (expected.empty())
    fail(file, "a plugin file must be named lcake-NAME.so: rename it to lcake-" + info.name + ".so");
  if (info.name != expected)
    fail(file, "the plugin calls itself '" + info.name + "' but the file is named for '" +
                   expected + "': rename it to lcake-" + info.name + ".so");
  for (const RoleSlot& r : kRoles) {
    const lcake_role_spec& spec = d->*r.spec;
    if (!spec.factory) continue;
    std::string role = r.role;
    RoleInfo ri;
    ri.settings = parse_schema(file, info.name, role + " settings", spec.settings);
    ri.options = parse_schema(file, info.name, role + " layer options", spec.options);
    if (role == "builder") ri.source = parse_schema(file, info.name, "builder source", spec.source);
    if (role == "uploader") ri.publish = parse_schema(file, info.name, "publish options", spec.publish);
    ri.accepts = split_types(spec.accepts);
    ri.produces = split_types(spec.produces);
    if (role != "verifier" && ri.produces.empty())
      fail(file, "plugin '" + info.name + "' declares a " + role +
                     " that produces no artifact type; say which in its RoleSpec (.produces)");
    ri.capabilities = split_types(spec.capabilities);
    for (const auto& c : ri.capabilities) {
      const auto& known = known_capabilities(role);
      if (std::find(known.begin(), known.end(), c) != known.end()) continue;
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(file, "plugin '" + info.name + "' declares an unknown " + role + " capability '" + c + "' (known: " +
                     (list.empty() ? "none" : list) + "): fix its RoleSpec (.capabilities)");
    }
    info.roles.push_back(role);
    info.role[role] = std::move(ri);
  }
  if (info.roles.empty())
    fail(file, "plugin '" + info.name + "' provides no role; name one in LCAKE_PLUGIN(...)");
  return info;
}

}  // namespace

const std::vector<std::string>& known_capabilities(const std::string& role) {
  static const std::vector<std::string> uploader = {std::string(kPublishesToCloud)},
                                        builder = {std::string(kBuildsOnUpload)}, none;
  return role == "uploader" ? uploader : role == "builder" ? builder : none;
}

bool RoleInfo::has_capability(const std::string& word) const {
  return std::find(capabilities.begin(), capabilities.end(), word) != capabilities.end();
}

bool RoleInfo::accepts_type(const std::string& type) const {
  return accepts.empty() || std::find(accepts.begin(), accepts.end(), type) != accepts.end();
}

bool LoadedPlugin::has_role(const std::string& role) const {
  return info_.role.count(role) != 0;
}

std::unique_ptr<lcake::Role> LoadedPlugin::make_role(const std::string& role,
                                                     const nlohmann::json& settings) const {
  if (role == "builder") return make_builder(settings);
  if (role == "uploader") return make_uploader(settings);
  if (role == "verifier") return make_verifier(settings);
  throw lcake::InputError("unknown plugin role '" + role +
                          "': use builder, uploader or verifier");
}

namespace {
// The factory returns the role's concrete base (Builder*, ...) cast to void*.
void* call_factory(const LoadedPlugin& plugin, const lcake_plugin_descriptor* d,
                   const std::string& role, const nlohmann::json& settings) {
  const PluginInfo& info = plugin.info();
  std::string where = "plugin '" + info.name + "' (" + info.file.string() + ")";
  const RoleSlot* slot = find_role(role);
  if (!plugin.has_role(role) || !slot)
    throw lcake::InputError(where + " has no " + role + ": choose a plugin that provides one");
  char err[1024] = {0};
  void* made = nullptr;
  std::string text = settings.is_null() ? "{}" : settings.dump();
  try {  // factories must not throw, but a hand-written one might
    made = (d->*(slot->spec)).factory(text.c_str(), err, sizeof err);
  } catch (const std::exception& e) {
    std::snprintf(err, sizeof err, "%s", e.what());
  } catch (...) {
    std::snprintf(err, sizeof err, "unknown exception");
  }
  if (!made) {
    err[sizeof err - 1] = '\0';
    if (err[0] == '\x1f') {  // an lcake::ValueError, encoded by detail::construct
      std::string coded(err + 1);
      auto a = coded.find('\x1f'), b = a == std::string::npos ? a : coded.find('\x1f', a + 1);
      if (b != std::string::npos)
        throw RoleValueError(role, lcake::ValueError(coded.substr(0, a), coded.substr(a + 1, b - a - 1),
                                                     one_line(coded.substr(b + 1))));
    }
    throw lcake::InputError(one_line(where + " failed to create its " + role + ": " +
                                     (err[0] ? err : "no reason given")));
  }
  return made;
}
}  // namespace

std::unique_ptr<lcake::Builder> LoadedPlugin::make_builder(const nlohmann::json& settings) const {
  return std::unique_ptr<lcake::Builder>(
      static_cast<lcake::Builder*>(call_factory(*this, descriptor_, "builder", settings)));
}
std::unique_ptr<lcake::Uploader> LoadedPlugin::make_uploader(const nlohmann::json& settings) const {
  return std::unique_ptr<lcake::Uploader>(
      static_cast<lcake::Uploader*>(call_factory(*this, descriptor_, "uploader", settings)));
}
std::unique_ptr<lcake::Verifier> LoadedPlugin::make_verifier(const nlohmann::json& settings) const {
  return std::unique_ptr<lcake::Verifier>(
      static_cast<lcake::Verifier*>(call_factory(*this, descriptor_, "verifier", settings)));
}

PluginHost::PluginHost(std::vector<fs::path> search_path) {
  // The same dir twice (--plugin-path and $LCAKE_PLUGIN_PATH) would look like duplicates.
  std::set<fs::path> seen;
  for (fs::path& dir : search_path) {
    if (dir.empty()) continue;
    std::error_code ec;
    fs::path key = fs::weakly_canonical(fs::absolute(dir), ec);
    if (seen.insert(ec ? dir : key).second) search_path_.push_back(std::move(dir));
  }
}

std::vector<fs::path> PluginHost::default_search_path(const std::vector<fs::path>& cli_paths) {
  std::vector<fs::path> out(cli_paths.begin(), cli_paths.end());
  if (const char* env = std::getenv("LCAKE_PLUGIN_PATH")) {
    std::string s = env;
    for (std::size_t start = 0; start <= s.size();) {
      std::size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back(exe.parent_path().parent_path() / LCAKE_PLUGIN_RELDIR);
  return out;
}

const LoadedPlugin& PluginHost::load(const std::string& name) {
  std::lock_guard lock(mu_);
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw lcake::InputError("'" + name + "' is not a plugin name: use the NAME of lcake-NAME.so");
  std::string file_name = kFilePrefix + name + kFileSuffix;
  std::string dirs;
  for (const fs::path& dir : search_path_) {
    std::error_code ec;
    if (fs::exists(dir / file_name, ec)) return load_file(dir / file_name);
    dirs += (dirs.empty() ? "" : ":") + dir.string();
  }
  throw lcake::InputError("plugin '" + name + "' not found: no " + file_name + " in " +
                          (dirs.empty() ? "an empty plugin path" : dirs) +
                          "; install it there or pass --plugin-path DIR");
}

const LoadedPlugin& PluginHost::load_file(const fs::path& given) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::path file = fs::weakly_canonical(fs::absolute(given), ec);
  if (ec) file = fs::absolute(given);
  if (auto it = by_file_.find(file.string()); it != by_file_.end()) return *it->second;

  if (!fs::exists(file, ec)) fail(given, "no such file");
  if (!fs::is_regular_file(file, ec)) fail(given, "not a regular file");
  check_not_writable_by_others(file);
  std::string entry = find_entry_symbol(file);

  auto plugin = std::make_unique<LoadedPlugin>();
  boost::dll::shared_library* lib = nullptr;
  plugin->library_ = load_forever(file, lib);
  const lcake_plugin_descriptor* descriptor = nullptr;
  try {
    descriptor = lib->get<const lcake_plugin_descriptor*()>(entry)();
  } catch (const std::exception& e) {
    fail(file, std::string("its entry point failed (") + e.what() + "); fix the plugin");
  } catch (...) {
    fail(file, "its entry point threw; fix the plugin");
  }
  plugin->info_ = read_descriptor(file, descriptor);
  plugin->descriptor_ = descriptor;

  LoadedPlugin* raw = plugin.get();
  auto [it, fresh] = by_name_.try_emplace(raw->info_.name, nullptr);
  if (fresh)
    it->second = std::move(plugin);
  else
    shadowed_.push_back(std::move(plugin));  // same name from another file (`plugins inspect`)
  by_file_[file.string()] = raw;
  return *raw;
}

PluginHost::Discovered PluginHost::discover() {
  std::lock_guard lock(mu_);
  Discovered out;
  std::map<std::string, fs::path> first_file;  // plugin name -> first file that has it
  for (const fs::path& dir : search_path_) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (!name_from_file(e.path()).empty()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      std::string name = name_from_file(file);
      if (auto it = first_file.find(name); it != first_file.end()) {
        out.errors.emplace_back(file, file.string() + ": plugin '" + name + "' is also in " +
                                          it->second.string() +
                                          ", which comes first in the plugin path and is used; "
                                          "remove one of them");
        continue;
      }
      first_file.emplace(name, file);
      try {
        out.plugins.push_back(load_file(file).info());
      } catch (const lcake::InputError& e) {
        out.errors.emplace_back(file, e.what());
      }
    }
  }
  return out;
}

}  // namespace lcake::core
