// The aws uploader's settings (target.uploader.settings) and per-layer options
// (pipeline layers.L.uploader), already validated against the schemas in
// aws_plugin.cc (with their defaults injected) by the host.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::aws {

struct UploaderSettings {
  std::string mode = "ebs";  // "ebs" | "import"
  std::string region;        // empty: AWS_REGION, AWS_DEFAULT_REGION, the profile
  std::string profile;       // empty: AWS_PROFILE or "default"
  int workers = 8;           // parallel PutSnapshotBlock calls
  std::string name_prefix = "lcake";
  std::string description;   // empty: "lcake <pipeline> <variant> <layer>"
  std::string architecture = "x86_64";
  std::string boot_mode = "legacy-bios";
  std::string volume_type = "gp3";
  bool ena_support = true;
  std::string imds_support = "v2.0";  // empty: not set
  int snapshot_timeout_minutes = 720;
  int request_timeout_seconds = 120;  // each try of one AWS request
  std::map<std::string, std::string> tags;
  nlohmann::json raw;  // everything, for the other modes' own settings

  static UploaderSettings from_json(const nlohmann::json& settings);
};

// Layer options: extra tags and a description for this layer's AMI.
struct UploadOptions {
  std::string description;
  std::map<std::string, std::string> tags;
  static UploadOptions from_json(const nlohmann::json& options);
};

}  // namespace lcake::aws
