// Where the AWS CLI looks for its settings, read the same way: the shared
// config and credentials files (INI, `[profile x]` sections in config), the
// profile from AWS_PROFILE, the region and per-service endpoints from the
// environment or the profile.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace lcake::aws {

// Environment lookup; injectable so tests need not touch the process env.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// An INI file as botocore reads it: `[section]`, `key = value`, `#`/`;`
// comments, and nested blocks (`s3 =` followed by indented `key = value`
// lines), stored as "s3.key".
struct IniFile {
  std::map<std::string, std::map<std::string, std::string>> sections;
  static IniFile parse(const std::string& text, const std::string& origin);
  static IniFile load(const std::filesystem::path& file);  // missing file: empty
  const std::map<std::string, std::string>* section(const std::string& name) const;
};

// The services lcake signs for; their signing names and endpoint env suffixes.
enum class Service { ec2, ebs, s3, sts, ssm };
const char* signing_name(Service s);  // "ec2", "ebs", "s3", "sts", "ssm"

struct AwsConfig {
  std::string profile = "default";
  bool profile_explicit = false;  // named by AWS_PROFILE or the target
  std::filesystem::path config_file, credentials_file;
  IniFile config, credentials;
  std::string region;  // empty when nothing named one
  std::string region_source;  // "AWS_REGION", "profile default", "target setting"...
  EnvLookup env;

  // profile_name / region: from the target's settings (empty: not set). An
  // explicit region wins, like the CLI's --region.
  static AwsConfig load(EnvLookup env, const std::string& profile_name = "",
                        const std::string& region = "");

  // A profile's settings: config's `[profile x]` (or `[default]`) overlaid by
  // credentials' `[x]`. Empty map when the profile exists in neither.
  std::map<std::string, std::string> profile_values(const std::string& name) const;
  bool has_profile(const std::string& name) const;
  std::optional<std::string> value(const std::string& key) const;  // of the active profile

  // Endpoint URL for a service: AWS_ENDPOINT_URL_<SVC>, AWS_ENDPOINT_URL, the
  // profile's `services` section, its `endpoint_url`, else
  // https://<svc>.<region>.amazonaws.com. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS honoured.
  std::string endpoint(Service s, const std::string& region) const;
  std::string endpoint(Service s) const { return endpoint(s, region); }
  // Region, or an InputError naming where it was looked for.
  const std::string& require_region() const;
};

}  // namespace lcake::aws
