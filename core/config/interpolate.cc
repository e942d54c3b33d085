#include "config/interpolate.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/json_lines.h"
#include "config/schema_check.h"
#include "events/redactor.h"
#include "lcake/errors.hpp"

namespace lcake::core {
namespace {

std::string scalar_text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

const nlohmann::json& member_or_empty(const nlohmann::json& object, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!object.is_object()) return empty;
  auto it = object.find(key);
  return it == object.end() || !it->is_object() ? empty : *it;
}

// A "file" declaration is relative to the directory of the file that wrote it
// (the working directory for a flag). Trailing line ends are not part of the value.
std::optional<std::string> read_secret_file(const LoadedConfig& loaded, const std::string& pointer,
                                            const std::string& name) {
  namespace fs = std::filesystem;
  fs::path path(name);
  if (path.is_relative()) {
    auto origin = loaded.provenance.origin_of(pointer);
    if (origin && origin->line > 0) path = fs::path(origin->source).parent_path() / path;
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    throw InputError(origin_prefix(loaded.provenance, pointer) + pointer + ": cannot read the secret file " +
                     path.string() + ": check its permissions");
  }
  std::string value = text.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

}  // namespace

bool declared_sensitive(const nlohmann::json& declaration) {
  if (!declaration.is_object()) return false;
  if (auto it = declaration.find("sensitive"); it != declaration.end() && it->is_boolean()) return it->get<bool>();
  if (declaration.contains("file")) return true;
  auto env = declaration.find("env");
  return env != declaration.end() && env->is_string() && Redactor::is_known_secret_variable(env->get<std::string>());
}

std::string Interpolator::where(const std::string& pointer) const {
  return origin_prefix(loaded_.provenance, pointer) + pointer;
}

Interpolator::Interpolator(const LoadedConfig& loaded, const std::string& variant)
    : loaded_(loaded), variant_(variant) {
  const auto& pipeline = member_or_empty(loaded.tree, "pipeline");
  std::string declared_names;
  for (const auto& [name, declaration] : member_or_empty(pipeline, "variables").items()) {
    declared_[name] = declaration;
    declared_names += (declared_names.empty() ? "" : ", ") + name;
    std::string at = pointer_append("/pipeline/variables", name);
    if (declaration.contains("default")) raw_[name] = {declaration["default"], pointer_append(at, "default"), false};
    if (declaration.contains("env") && declaration["env"].is_string()) {
      std::string env = declaration["env"].get<std::string>();
      if (const char* text = std::getenv(env.c_str())) raw_[name] = {text, pointer_append(at, "env"), true};
    }
    if (declaration.contains("file") && declaration["file"].is_string()) {
      std::string file_at = pointer_append(at, "file");
      if (auto text = read_secret_file(loaded, file_at, declaration["file"].get<std::string>()))
        raw_[name] = {*text, file_at, true};
    }
    if (declared_sensitive(declaration)) sensitive_.insert(name);
  }
  auto assign = [&](const nlohmann::json& values, const std::string& at) {
    for (const auto& [name, value] : values.items()) {
      std::string pointer = pointer_append(at, name);
      if (!declared_.contains(name)) {
        throw InputError(where(pointer) + ": variable \"" + name + "\" is not declared in /pipeline/variables (declared: " +
                         (declared_names.empty() ? "none" : declared_names) + "); declare it or fix the name");
      }
      raw_[name] = {value, pointer, false};
    }
  };
  std::string variant_at = pointer_append("/pipeline/variants", variant);
  if (!variant.empty()) assign(member_or_empty(member_or_empty(member_or_empty(pipeline, "variants"), variant.c_str()), "variables"),
         pointer_append(variant_at, "variables"));
  assign(member_or_empty(loaded.tree, "vars"), "/vars");
}

std::map<std::string, std::string> Interpolator::values() {
  std::map<std::string, std::string> out;
  for (const auto& [name, raw] : raw_) out[name] = value_of(name, raw.pointer);
  return out;
}

std::vector<SensitiveVariable> Interpolator::sensitive() {
  std::vector<SensitiveVariable> out;
  for (const auto& name : sensitive_) {
    if (!raw_.contains(name)) continue;
    out.push_back({name, value_of(name, raw_[name].pointer), declared_[name].value("key", "used") == "value-hash"});
  }
  return out;
}

std::string Interpolator::value_of(const std::string& name, const std::string& used_at) {
  if (auto it = resolved_.find(name); it != resolved_.end()) return it->second;
  auto raw = raw_.find(name);
  if (raw == raw_.end()) {
    if (!declared_.contains(name)) {
      std::string names;
      for (const auto& [n, _] : declared_) names += (names.empty() ? "" : ", ") + n;
      throw InputError(where(used_at) + ": ${var." + name + "} is not declared in /pipeline/variables (declared: " +
                       (names.empty() ? "none" : names) + ")");
    }
    const auto& declaration = declared_[name];
    std::string env = declaration.contains("env") ? " or set $" + scalar_text(declaration["env"]) : "";
    if (declaration.contains("file")) env += " or create the file " + scalar_text(declaration["file"]);
    throw InputError(where(used_at) + ": ${var." + name + "} has no value" + (variant_.empty() ? "" : " for variant " + variant_) +
                     ": give /pipeline/variables/" + name + " a \"default\"" + env + ", or pass --var " + name + "=VALUE");
  }
  if (resolving_.contains(name)) {
    throw InputError(where(used_at) + ": variable \"" + name + "\" refers to itself through ${var...}");
  }
  std::string text = scalar_text(raw->second.value);
  if (!raw->second.literal) {
    resolving_.insert(name);
    text = apply_string(text, raw->second.pointer, "");
    resolving_.erase(name);
  }
  if (sensitive_.contains(name)) {
    if (text.size() < Redactor::kMinLength) {
      std::string at = pointer_append("/pipeline/variables", name);
      const auto& declaration = declared_[name];
      const std::string& from_at = raw->second.pointer;
      std::string from = from_at == pointer_append(at, "env")    ? "$" + scalar_text(declaration["env"])
                         : from_at == pointer_append(at, "file") ? "the file " + scalar_text(declaration["file"])
                                                      : where(from_at);
      throw InputError(where(at) + ": variable \"" + name + "\" is sensitive but its value (from " + from + ") is " +
                       std::to_string(text.size()) +
                       " character(s) long; lcake redacts only values of at least " +
                       std::to_string(Redactor::kMinLength) +
                       " characters: use a longer secret, or declare it \"sensitive\": false");
    }
    Redactor::instance().add(text);
  }
  resolved_[name] = text;
  return text;
}

std::string Interpolator::apply_string(const std::string& text, const std::string& pointer, const std::string& layer) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 2;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      throw InputError(where(pointer) + ": unterminated \"${\" (write $${ for a literal ${)");
    }
    std::string expr = text.substr(i + 2, close - i - 2);
    if (expr.starts_with("var.") && expr.size() > 4) {
      out += value_of(expr.substr(4), pointer);
    } else if (expr == "variant") {
      if (variant_.empty()) {
        throw InputError(where(pointer) + ": ${variant} is not available here: the target is shared by all variants");
      }
      out += variant_;
    } else if (expr == "layer") {
      if (layer.empty()) throw InputError(where(pointer) + ": ${layer} is only available inside /pipeline/layers");
      out += layer;
    } else {
      throw InputError(where(pointer) + ": unknown reference ${" + expr +
                       "}: use ${var.NAME}, ${variant} or ${layer} (or $${ for a literal ${)");
    }
    i = close;
  }
  return out;
}

nlohmann::json Interpolator::apply(const nlohmann::json& value, const std::string& pointer, const std::string& layer) {
  if (value.is_string()) return apply_string(value.get<std::string>(), pointer, layer);
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, child] : value.items()) out[key] = apply(child, pointer_append(pointer, key), layer);
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < value.size(); ++i) out.push_back(apply(value[i], pointer_append(pointer, i), layer));
    return out;
  }
  return value;
}

}  // namespace lcake::core
