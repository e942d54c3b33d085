// Variables and string interpolation for one variant:
// ${var.NAME}, ${variant}, ${layer} (inside a layer only); $${ is a literal ${.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"

namespace lcake::core {

// Is a variable with this declaration sensitive? Its "sensitive" if given; else true
// when it reads a secret source: a "file", or an "env" on the well-known list
// (Redactor::known_secret_variables()).
bool declared_sensitive(const nlohmann::json& declaration);

class Interpolator {
 public:
  // Collects the variables declared in /pipeline/variables and their values
  // (default < $env < variants.V.variables < /vars). Throws InputError naming the
  // file when a variable is assigned but not declared. An empty variant is the
  // target's view: no variant variables, and ${variant} is an error.
  Interpolator(const LoadedConfig& loaded, const std::string& variant);

  // Every declared variable that has a value, substituted.
  std::map<std::string, std::string> values();
  // The sensitive variables that have a value. Each value is registered with the
  // Redactor when it is resolved; one shorter than Redactor::kMinLength is an
  // InputError naming the declaration.
  std::vector<SensitiveVariable> sensitive();

  // Substitutes every string in value (found at pointer of the merged tree).
  // layer is empty outside /pipeline/layers. Throws InputError naming the pointer
  // and file of a string that uses an undefined variable or a bad ${...}.
  nlohmann::json apply(const nlohmann::json& value, const std::string& pointer, const std::string& layer);
  std::string apply_string(const std::string& text, const std::string& pointer, const std::string& layer);

 private:
  struct RawValue {
    nlohmann::json value;
    std::string pointer;  // where it was set, for errors
    bool literal = false;  // environment values are taken as they are
  };
  std::string value_of(const std::string& name, const std::string& used_at);
  std::string where(const std::string& pointer) const;

  const LoadedConfig& loaded_;
  std::string variant_;
  std::map<std::string, nlohmann::json> declared_;  // name -> declaration
  std::set<std::string> sensitive_;
  std::map<std::string, RawValue> raw_;
  std::map<std::string, std::string> resolved_;
  std::set<std::string> resolving_;  // to catch ${var.A} in A's own value
};

}  // namespace lcake::core
