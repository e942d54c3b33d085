// An AMI over EBS snapshots: RegisterImage with the block device mapping and
// the boot settings, lcake's tags on the image and its snapshot, looking
// images up by their lcake:key tag (deleting them: image_cleanup.h).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "aws_client.h"
#include "lcake/artifact.hpp"
#include "lcake/roles.hpp"
#include "uploader_settings.h"

namespace lcake::aws {

inline constexpr const char* kImageKind = "ec2-image";
// Marks an AMI carries for a fresh runner that finds it (find_image → metadata.lcake_found):
// set by the verifier once the verify steps passed (UTC time), and by publish ("true").
inline constexpr const char* kVerifiedTag = "lcake:verified";
inline constexpr const char* kPublishedTag = "lcake:published";

struct ImageSpec {
  std::string name;
  std::string description;
  std::string snapshot_id;
  std::uint64_t volume_size_gib = 1;
  std::vector<std::pair<std::string, std::string>> tags;  // image and snapshot
};

// "lcake-<pipeline>-<variant>-<layer>-<first 16 of the upload key>", in AMI name characters.
std::string image_name(const UploaderSettings& settings, const LayerInfo& layer);
// lcake:key, lcake:layer-key, lcake:variant, lcake:layer, lcake:pipeline, lcake:target, Name, then the config's.
std::vector<std::pair<std::string, std::string>> image_tags(const UploaderSettings& settings,
                                                            const UploadOptions& options, const LayerInfo& layer,
                                                            const std::string& name);

// RegisterImage (recorded in the ledger first: `scope`), then the tags on the
// image and the snapshot. Returns the AMI id. When the name is taken in the region
// (InvalidAMIName.Duplicate: another upload of the key), it registers under
// another_name and updates spec.name and its Name tag.
std::string register_image(const AwsClient& client, const UploaderSettings& settings, ImageSpec& spec,
                           std::unique_ptr<LedgerScope>& scope);

// The artifact for a registered image ("ami", id, metadata region/snapshot_id/name/...).
Artifact ami_artifact(const std::string& image_id, const std::string& region, const ImageSpec& spec);

// The available images of ours tagged lcake:key=upload_key, as artifacts, the
// winner first (published, then created first, then lowest id); each with
// metadata lcake_created (creationDate) and lcake_found (whether it carries
// kVerifiedTag / kPublishedTag).
std::vector<Artifact> find_images(const AwsClient& client, const std::string& upload_key);
// The winner of find_images, if any.
std::optional<Artifact> find_image(const AwsClient& client, const std::string& upload_key);
// "available", "pending", ... ; "" when it does not exist.
std::string image_state(const AwsClient& client, const std::string& image_id);
// Reaps a kImageKind ledger entry: found by id, or by how.name when the id never came back
// (then only an image of how.snapshot_id: the name may be another upload's).
// Throws AlreadyGone when there is no such image any more.
void reap_image(const AwsClient& client, const LedgerEntry& entry);

}  // namespace lcake::aws
