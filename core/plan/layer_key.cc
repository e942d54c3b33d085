#include "plan/layer_key.h"

#include <openssl/evp.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

#include "lcake/errors.hpp"

namespace lcake::core {
namespace {

// Bump when what goes into a key changes: every key changes with it, on purpose.
constexpr const char* kKeyFormat = "lcake-layer-key/1";

using DigestCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestCtx new_sha256() {
  DigestCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: cannot start a sha256 digest");
  return ctx;
}

std::string finish_hex(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, md, &len) != 1) throw std::runtime_error("OpenSSL: sha256 digest failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

// Canonical JSON: nlohmann::json keeps objects in a std::map, so dump()
// writes keys sorted, with no whitespace and a fixed number format. The
// same value therefore always gives the same bytes, whatever order the
// config files wrote its keys in.
std::string canonical(const nlohmann::json& value) { return value.dump(); }

std::string hash_json(const nlohmann::json& value) { return sha256_hex(canonical(value)); }

const nlohmann::json& field(const nlohmann::json& obj, const char* name) {
  static const nlohmann::json null;
  if (!obj.is_object()) return null;
  auto it = obj.find(name);
  return it == obj.end() ? null : *it;
}

std::string text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump(); }

// Compares two {name: sha} maps: "<what> <name> added/removed/changed".
void diff_map(const nlohmann::json& before, const nlohmann::json& after, const std::string& what, bool quote,
              std::vector<std::string>& out) {
  std::set<std::string> names;
  for (const auto* m : {&before, &after})
    if (m->is_object())
      for (auto it = m->begin(); it != m->end(); ++it) names.insert(it.key());
  for (const auto& name : names) {
    const auto& b = field(before, name.c_str());
    const auto& a = field(after, name.c_str());
    if (b == a) continue;
    out.push_back(what + " " + (quote ? "'" + name + "'" : name) +
                  (b.is_null() ? " added" : a.is_null() ? " removed" : " changed"));
  }
}

}  // namespace

nlohmann::json mask_sensitive(const nlohmann::json& value, const std::vector<SensitiveVariable>& sensitive,
                              std::set<std::string>* used) {
  if (sensitive.empty()) return value;
  auto mask = [&](std::string text) {
    // Longest values first, so a value that contains another is replaced whole.
    std::vector<const SensitiveVariable*> order;
    for (const auto& s : sensitive) order.push_back(&s);
    std::stable_sort(order.begin(), order.end(),
                     [](const auto* a, const auto* b) { return a->value.size() > b->value.size(); });
    for (const auto* s : order) {
      if (s->value.empty()) continue;
      std::string marker = "${sensitive:" + s->name +
                           (s->key_value_hash ? ":sha256:" + sha256_hex(s->value) : std::string()) + "}";
      std::size_t pos = 0;
      while ((pos = text.find(s->value, pos)) != std::string::npos) {
        text.replace(pos, s->value.size(), marker);
        pos += marker.size();
        if (used) used->insert(s->name);
      }
    }
    return text;
  };
  if (value.is_string()) return mask(value.get<std::string>());
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it)
      out[mask(it.key())] = mask_sensitive(it.value(), sensitive, used);
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : value) out.push_back(mask_sensitive(v, sensitive, used));
    return out;
  }
  return value;
}

std::string sha256_hex(std::string_view bytes) {
  auto ctx = new_sha256();
  EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size());
  return finish_hex(ctx.get());
}

std::string sha256_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw lcake::InputError("input " + file.string() + " is a directory; list the files in it instead");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw lcake::InputError("cannot read input file " + file.string() + ": " + std::strerror(errno) +
                            "; fix the path in the layer's \"inputs\" or provisioners");
  auto ctx = new_sha256();
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad())
    throw lcake::InputError("cannot read input file " + file.string() + ": read error; check the file");
  return finish_hex(ctx.get());
}

LayerKey compute_layer_key(const KeyInputs& raw) {
  std::set<std::string> used;
  KeyInputs in = raw;
  in.recipe = mask_sensitive(raw.recipe, raw.sensitive, &used);
  in.source = mask_sensitive(raw.source, raw.sensitive, &used);
  in.plugin_settings = mask_sensitive(raw.plugin_settings, raw.sensitive, &used);
  nlohmann::json inputs = nlohmann::json::object();
  for (const auto& [name, path] : in.inputs) inputs[name] = sha256_file(path);

  nlohmann::json doc = {
      {"format", kKeyFormat},
      {"recipe", in.recipe},
      {"parent_key", in.parent_key},
      {"source", in.source},
      {"inputs", inputs},
      {"plugin", {{"name", in.plugin_name}, {"version", in.plugin_version}, {"settings", in.plugin_settings}}},
  };

  LayerKey key;
  key.hex = sha256_hex(canonical(doc));

  nlohmann::json recipe = nlohmann::json::object();
  if (in.recipe.is_object())
    for (auto it = in.recipe.begin(); it != in.recipe.end(); ++it) recipe[it.key()] = hash_json(it.value());
  else if (!in.recipe.is_null())
    recipe["(recipe)"] = hash_json(in.recipe);
  // Per source field, so the plan names the one that changed (append, kernel, disk, ...).
  nlohmann::json source = nlohmann::json::object();
  if (in.source.is_object())
    for (auto it = in.source.begin(); it != in.source.end(); ++it) source[it.key()] = hash_json(it.value());
  else if (!in.source.is_null())
    source = hash_json(in.source);
  key.components = {
      {"format", kKeyFormat},
      {"recipe", recipe},
      {"inputs", inputs},
      {"parent", in.parent_key},
      {"source", source},
      {"plugin", {{"name", in.plugin_name}, {"version", in.plugin_version}, {"settings", hash_json(in.plugin_settings)}}},
  };
  key.sensitive_used.assign(used.begin(), used.end());
  return key;
}

std::vector<std::string> explain_key_change(const nlohmann::json& before, const nlohmann::json& after) {
  std::vector<std::string> out;
  if (!before.is_object() || before.empty()) {
    out.push_back("no earlier key recorded for this layer");
    return out;
  }
  if (field(before, "format") != field(after, "format"))
    out.push_back("layer key format changed (" + text(field(before, "format")) + " -> " +
                  text(field(after, "format")) + ")");

  diff_map(field(before, "recipe"), field(after, "recipe"), "recipe field", true, out);
  diff_map(field(before, "inputs"), field(after, "inputs"), "input", false, out);

  const auto& parent_b = field(before, "parent");
  const auto& parent_a = field(after, "parent");
  if (parent_b != parent_a) out.push_back("parent layer changed");
  const auto& source_b = field(before, "source");
  const auto& source_a = field(after, "source");
  if (source_b.is_object() && source_a.is_object()) diff_map(source_b, source_a, "source field", true, out);
  else if (source_b != source_a) out.push_back("source changed");  // recorded by an older lcake, or none

  const auto& pb = field(before, "plugin");
  const auto& pa = field(after, "plugin");
  auto name_b = text(field(pb, "name")), name_a = text(field(pa, "name"));
  auto version_b = text(field(pb, "version")), version_a = text(field(pa, "version"));
  if (name_b != name_a)
    out.push_back("builder plugin " + name_b + " " + version_b + " -> " + name_a + " " + version_a);
  else if (version_b != version_a)
    out.push_back("builder plugin " + name_a + " " + version_b + " -> " + version_a);
  if (field(pb, "settings") != field(pa, "settings")) out.push_back("builder settings changed");
  return out;
}

}  // namespace lcake::core
