#include "outputs.h"

#include <cctype>
#include <map>
#include <set>
#include <tuple>

#include "lcake/errors.hpp"

namespace lcake::core {
namespace {

nlohmann::json string_or_null(const nlohmann::json& metadata, const char* key) {
  auto it = metadata.find(key);
  if (it != metadata.end() && it->is_string() && !it->get<std::string>().empty()) return *it;
  return nullptr;
}

std::string shell_name(const std::string& text) {
  std::string out;
  for (unsigned char c : text) out += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
  return out;
}

std::string shell_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

nlohmann::json output_entry(const ArtifactRecord& rec) {
  const auto& m = rec.artifact.metadata;
  nlohmann::json region = string_or_null(m, "region");
  nlohmann::json by_region = nlohmann::json::object();
  if (m.contains("regions") && m["regions"].is_object()) {
    for (auto it = m["regions"].begin(); it != m["regions"].end(); ++it)
      if (it.value().is_string()) by_region[it.key()] = it.value();
  } else if (region.is_string()) {
    by_region[region.get<std::string>()] = rec.artifact.id;
  }
  nlohmann::json names = nlohmann::json::array();
  if (m.contains("moving_names") && m["moving_names"].is_array())
    for (const auto& n : m["moving_names"])
      if (n.is_string()) names.push_back(n);
  return {{"variant", rec.variant},
          {"layer", rec.layer},
          {"key", rec.key},
          {"type", rec.artifact.type},
          {"id", rec.artifact.id},
          {"plugin", rec.artifact.plugin},
          {"region", region},
          {"registry", string_or_null(m, "registry")},
          {"ids_by_region", by_region},
          {"moving_names", names},
          {"verified", !m.contains("lcake_unverified")}};
}

nlohmann::json collect_outputs(StateStore& state, const ResolvedConfig& config, const std::string& run_id,
                               const std::vector<std::string>& published) {
  std::set<std::string> wanted;
  for (const auto& v : config.variants)
    for (const auto& l : v.layers) wanted.insert(v.name + "/" + l.name);
  // Newest published upload per layer (created_at, then id: the later record).
  std::map<std::string, ArtifactRecord> newest;
  for (const auto& rec : state.list_artifacts(config.target.name)) {
    if (rec.target != config.target.name || rec.stage != "upload" || !rec.published) continue;
    std::string name = rec.variant + "/" + rec.layer;
    if (!wanted.count(name)) continue;
    auto it = newest.find(name);
    if (it == newest.end() || std::tie(rec.created_at, rec.id) > std::tie(it->second.created_at, it->second.id))
      newest[name] = rec;
  }
  nlohmann::json outputs = nlohmann::json::object();
  for (const auto& [name, rec] : newest) outputs[name] = output_entry(rec);
  return {{"schema", kOutputsSchema},
          {"target", config.target.name},
          {"run_id", run_id.empty() ? nlohmann::json() : nlohmann::json(run_id)},
          {"published", published},
          {"outputs", outputs}};
}

std::string outputs_as_shell(const nlohmann::json& doc) {
  std::string text;
  std::map<std::string, std::string> owner;  // shell prefix -> variant/layer
  for (const auto& [name, e] : doc.at("outputs").items()) {
    std::string prefix = "LCAKE_" + shell_name(e.at("variant").get<std::string>()) + "_" +
                         shell_name(e.at("layer").get<std::string>());
    auto [it, fresh] = owner.emplace(prefix, name);
    if (!fresh)
      throw InputError("lcake outputs --format shell: layers " + it->second + " and " + name + " both map to " +
                       prefix + "_*: use --format json or tfvars");
    auto line = [&](const std::string& field, const std::string& value) {
      text += prefix + "_" + field + "=" + shell_quote(value) + "\n";
    };
    auto opt = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
    line("ID", e.at("id").get<std::string>());
    line("TYPE", e.at("type").get<std::string>());
    line("REGION", opt(e.at("region")));
    line("REGISTRY", opt(e.at("registry")));
    std::string names;
    for (const auto& n : e.at("moving_names")) names += (names.empty() ? "" : " ") + n.get<std::string>();
    line("MOVING_NAMES", names);
  }
  return text;
}

nlohmann::json outputs_as_tfvars(const nlohmann::json& doc) {
  nlohmann::json map = nlohmann::json::object();
  for (const auto& [name, e] : doc.at("outputs").items())
    map[name] = {{"id", e["id"]},
                 {"type", e["type"]},
                 {"key", e["key"]},
                 {"region", e["region"]},
                 {"registry", e["registry"]},
                 {"ids_by_region", e["ids_by_region"]},
                 {"moving_names", e["moving_names"]},
                 {"verified", e["verified"]}};
  return {{"lcake_outputs", map}};
}

}  // namespace lcake::core
