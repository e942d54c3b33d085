#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace lcake {

// What a builder or uploader produced. `id` is what a consumer uses to find it:
// a file path, an image digest, a Glance UUID, `ami-...`.
struct Artifact {
  std::string type{};  // "qcow2", "raw", "oci-image", "glance-image", "ami", ...
  std::string id{};
  nlohmann::json metadata = nlohmann::json::object();
  std::string plugin{};  // filled in by the host
};

inline void to_json(nlohmann::json& j, const Artifact& a) {
  j = {{"type", a.type}, {"id", a.id}, {"metadata", a.metadata}, {"plugin", a.plugin}};
}
inline void from_json(const nlohmann::json& j, Artifact& a) {
  a.type = j.at("type").get<std::string>();
  a.id = j.at("id").get<std::string>();
  a.metadata = j.value("metadata", nlohmann::json::object());
  a.plugin = j.value("plugin", std::string());
}

}  // namespace lcake
