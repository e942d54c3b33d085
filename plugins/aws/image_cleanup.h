// Deleting an AMI lcake made: deregister it, then delete the snapshots its block
// device mapping named (DeregisterImage leaves them). Published images (tag
// lcake:published, or launchable by anyone) are never touched by gc.
#pragma once
#include <string>
#include <vector>

#include "aws_client.h"

namespace lcake::aws {

struct AmiFacts {
  bool found = false;
  std::string state, name, owner;
  std::vector<std::string> snapshots;
  std::vector<std::pair<std::string, std::string>> tags;
  bool is_public = false;
  std::string tag(const std::string& key) const;
};

AmiFacts describe_image(const AwsClient& client, const std::string& image_id, bool cancellable = true);

// Deregisters the image (in the client's region) and deletes the snapshots its
// mapping names plus `known_snapshots` (e.g. the artifact's snapshot_id, still
// deleted when an earlier attempt deregistered the image already); a missing
// image or snapshot is success. Returns whether anything was deleted.
bool deregister_with_snapshots(const AwsClient& client, const std::string& image_id,
                               const std::vector<std::string>& known_snapshots = {});

// `lcake gc` (Uploader::remove): the same, unless the image was published;
// returns whether anything was deleted.
bool remove_unpublished_image(const AwsClient& client, const std::string& image_id,
                              const std::vector<std::string>& known_snapshots = {});

}  // namespace lcake::aws
