// A layer's key: sha256 over the canonical resolved recipe, the parent's key,
// the bytes of its declared inputs, and the builder plugin's name, version and
// settings. Same key + artifact still exists = cache hit.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace lcake::core {

std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::filesystem::path& file);  // throws InputError naming the file

struct KeyInputs {
  nlohmann::json recipe;       // the resolved layer object
  std::string parent_key;      // empty for the first layer
  nlohmann::json source;       // first layer: the variant's resolved source; else null
  std::vector<std::pair<std::string, std::filesystem::path>> inputs;  // (name as written, absolute path)
  std::string plugin_name, plugin_version;
  nlohmann::json plugin_settings;
  // Sensitive values: in the recipe, source and settings each is replaced by
  // "${sensitive:NAME}" (or "${sensitive:NAME:sha256:<hash of the value>}" for
  // "key": "value-hash") before anything is hashed.
  std::vector<SensitiveVariable> sensitive;
};

struct LayerKey {
  std::string hex;
  // What went into the key, each part hashed separately:
  // {"recipe": {"<top-level field>": sha, ...}, "inputs": {"<name>": sha, ...},
  //  "parent": key, "source": sha, "plugin": {"name":…, "version":…, "settings": sha}}
  nlohmann::json components;
  std::vector<std::string> sensitive_used;  // sensitive variables the layer uses, by name
};

// value with every sensitive value in its strings (and keys) replaced as described
// for KeyInputs::sensitive; the names replaced are added to used.
nlohmann::json mask_sensitive(const nlohmann::json& value, const std::vector<SensitiveVariable>& sensitive,
                              std::set<std::string>* used = nullptr);

LayerKey compute_layer_key(const KeyInputs& inputs);

// Human-readable reasons why the key changed, e.g.
// "input files/newinstall.sh changed", "recipe field 'provisioners' changed",
// "parent layer changed", "builder plugin qemu 1.0.0 -> 1.1.0", "builder settings changed".
std::vector<std::string> explain_key_change(const nlohmann::json& before, const nlohmann::json& after);

}  // namespace lcake::core
