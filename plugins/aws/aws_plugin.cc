// The aws plugin's declaration: the uploader (modes ebs and import) and, from
// the verifier's own files, the EC2 verifier.
#include "aws_uploader.h"
#include "lcake/plugin.hpp"
#include "uploader_schema.h"

LCAKE_PLUGIN("aws", "0.1.0", "AWS AMIs: EBS direct snapshots (only changed blocks per layer) registered as AMIs",
             lcake::uploader<lcake::aws::AwsUploader>({.settings = lcake::aws::kUploaderSettingsSchema,
                                                       .options = lcake::aws::kUploaderOptionsSchema,
                                                       .accepts = "qcow2 raw",
                                                       .produces = "ami"}))
