// JSON Schemas (draft 7) of the aws uploader's settings and layer options; the
// host validates against them and injects the defaults (uploader_settings.h reads them).
#pragma once

namespace lcake::aws {

inline constexpr const char* kUploaderSettingsSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "aws uploader settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "mode": {"enum": ["ebs", "import"], "default": "ebs",
      "description": "ebs: EBS direct APIs, a child layer writes only its changed blocks; import: S3 + ImportSnapshot"},
    "region": {"type": "string", "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$",
      "description": "wins over AWS_REGION / AWS_DEFAULT_REGION / the profile's region, like --region"},
    "profile": {"type": "string", "minLength": 1,
      "description": "profile of ~/.aws/config and ~/.aws/credentials; wins over AWS_PROFILE, like --profile"},
    "workers": {"type": "integer", "minimum": 1, "maximum": 64, "default": 8,
      "description": "parallel PutSnapshotBlock calls"},
    "name_prefix": {"type": "string", "pattern": "^[A-Za-z0-9()\\[\\] ./'@_-]{1,40}$", "default": "lcake"},
    "description": {"type": "string", "maxLength": 255},
    "architecture": {"enum": ["x86_64", "arm64", "i386"], "default": "x86_64"},
    "boot_mode": {"enum": ["legacy-bios", "uefi", "uefi-preferred"], "default": "legacy-bios"},
    "volume_type": {"enum": ["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"], "default": "gp3"},
    "ena_support": {"type": "boolean", "default": true},
    "imds_support": {"enum": ["v2.0", null], "default": "v2.0",
      "description": "v2.0: instances from the AMI require IMDSv2 tokens; null: leave the account default"},
    "snapshot_timeout_minutes": {"type": "integer", "minimum": 10, "maximum": 4320, "default": 720,
      "description": "EBS abandons a snapshot still pending after this long"},
    "request_timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 120,
      "description": "limit on each try of one AWS request (and on a transfer that stalls); tries are retried"},
    "tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 256},
      "propertyNames": {"not": {"pattern": "^(aws|lcake):"}}, "default": {},
      "description": "added to every image and snapshot"}
  }
})schema";

inline constexpr const char* kUploaderOptionsSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "aws uploader layer options",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "description": {"type": "string", "maxLength": 255, "description": "this layer's AMI description"},
    "tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 256},
      "propertyNames": {"not": {"pattern": "^(aws|lcake):"}}, "description": "added to this layer's image and snapshot"}
  }
})schema";

}  // namespace lcake::aws
