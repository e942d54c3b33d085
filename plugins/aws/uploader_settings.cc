#include "uploader_settings.h"

#include "lcake/errors.hpp"

namespace lcake::aws {
namespace {

std::map<std::string, std::string> tag_map(const nlohmann::json& j, const std::string& part) {
  std::map<std::string, std::string> out;
  if (j.is_null()) return out;
  if (!j.is_object()) throw ValueError(part, "/tags", "tags must be an object of strings");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) throw ValueError(part, "/tags/" + k, "tag values must be strings");
    if (k.rfind("aws:", 0) == 0 || k.rfind("lcake:", 0) == 0)
      throw ValueError(part, "/tags/" + k, "tag keys starting with aws: or lcake: are reserved");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

UploaderSettings UploaderSettings::from_json(const nlohmann::json& j) {
  UploaderSettings s;
  if (!j.is_object() && !j.is_null()) throw ValueError("settings", "", "the aws uploader's settings must be an object");
  nlohmann::json v = j.is_null() ? nlohmann::json::object() : j;
  s.raw = v;
  s.mode = v.value("mode", s.mode);
  s.region = v.value("region", s.region);
  s.profile = v.value("profile", s.profile);
  s.workers = v.value("workers", s.workers);
  s.name_prefix = v.value("name_prefix", s.name_prefix);
  s.description = v.value("description", s.description);
  s.architecture = v.value("architecture", s.architecture);
  s.boot_mode = v.value("boot_mode", s.boot_mode);
  s.volume_type = v.value("volume_type", s.volume_type);
  s.ena_support = v.value("ena_support", s.ena_support);
  if (v.contains("imds_support")) s.imds_support = v["imds_support"].is_null() ? "" : v["imds_support"].get<std::string>();
  s.snapshot_timeout_minutes = v.value("snapshot_timeout_minutes", s.snapshot_timeout_minutes);
  s.request_timeout_seconds = v.value("request_timeout_seconds", s.request_timeout_seconds);
  if (s.request_timeout_seconds < 1 || s.request_timeout_seconds > 3600)
    throw ValueError("settings", "/request_timeout_seconds", "request_timeout_seconds must be 1..3600");
  s.tags = tag_map(v.value("tags", nlohmann::json()), "settings");
  if (s.mode != "ebs" && s.mode != "import") throw ValueError("settings", "/mode", "mode must be \"ebs\" or \"import\"");
  if (s.workers < 1 || s.workers > 64) throw ValueError("settings", "/workers", "workers must be 1..64");
  if (s.snapshot_timeout_minutes < 10 || s.snapshot_timeout_minutes > 4320)
    throw ValueError("settings", "/snapshot_timeout_minutes", "snapshot_timeout_minutes must be 10..4320 (EBS limits)");
  return s;
}

UploadOptions UploadOptions::from_json(const nlohmann::json& j) {
  UploadOptions o;
  if (j.is_null()) return o;
  o.description = j.value("description", "");
  o.tags = tag_map(j.value("tags", nlohmann::json()), "options");
  return o;
}

}  // namespace lcake::aws
