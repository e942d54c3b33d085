// Publishing a verified AMI (Uploader::publish of the aws uploader calls
// publish_image): CopyImage into each configured region (encrypted with that
// region's KMS key when one is given), the source's tags copied onto each copy
// and its snapshots, wait until available; then in every region the launch
// permissions, optional snapshot createVolumePermission, optional deprecation
// time, the tag lcake:published (gc never touches such an image) and an SSM
// parameter per moving tag pointing at the region's AMI.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aws_client.h"
#include "lcake/roles.hpp"

namespace lcake::aws {

// The uploader settings' properties publish reads (merged into the uploader's schema).
extern const char* const kPublishSettingsProperties;
// The schema of a pipeline layer's `publish` object for this uploader.
extern const char* const kPublishOptionsSchema;

struct PublishSettings {
  std::vector<std::string> regions;              // besides the image's own
  std::map<std::string, std::string> kms_keys;   // region → KMS key for an encrypted copy
  std::vector<std::string> launch_permission;    // "public", account IDs, organization / OU ARNs
  bool snapshot_permission = false;              // createVolumePermission for the same accounts
  int deprecate_after_days = 0;                  // 0: no deprecation time
  std::string ssm_prefix = "/lcake/";
  std::chrono::seconds copy_timeout{3600};
  std::chrono::milliseconds poll_interval{5000};
  static PublishSettings from_json(const nlohmann::json& settings);
};

// `client` is in the region of `uploaded` (metadata.region). Returns the
// artifact with metadata.published, metadata.regions {region: ami} and
// metadata.ssm_parameters. Copies are in the ledger (kind "ami-copy") until
// they are published, so a failed or cancelled publish deletes them.
Artifact publish_image(const AwsClient& client, const PublishSettings& settings, const Artifact& uploaded,
                       const PublishRequest& request, Context& ctx);

// Reaper of "ami-copy" entries; false for any other kind; AlreadyGone when the copy was gone.
bool reap_publish_entry(const AwsClient& any_region, const LedgerEntry& entry, Context& ctx);

}  // namespace lcake::aws
