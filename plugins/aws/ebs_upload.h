// Uploader mode `ebs`: a built qcow2/raw disk → an EBS snapshot through the
// EBS direct APIs (a child layer writes only the blocks that differ from its
// parent's snapshot) → a registered AMI.
#pragma once
#include "aws_client.h"
#include "lcake/roles.hpp"
#include "uploader_settings.h"

namespace lcake::aws {

Artifact upload_ebs(const UploadRequest& request, const UploaderSettings& settings, const AwsClient& client);

}  // namespace lcake::aws
