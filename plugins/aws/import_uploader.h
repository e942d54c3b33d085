// Uploader mode `import` (the seed's path): the disk as RAW (or stream-optimized
// VMDK) → S3 multipart upload → ImportSnapshot with the VM Import service role →
// a snapshot, which the uploader then registers as an AMI. The S3 object is
// deleted when the import ends, on success, failure and Ctrl-C alike.
#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "aws_client.h"
#include "lcake/roles.hpp"
#include "s3_staging.h"

namespace lcake::aws {

// The uploader settings' properties this mode reads (merged into the uploader's schema).
extern const char* const kImportSettingsProperties;

struct ImportSettings {
  std::string bucket;                     // staging bucket; must exist
  std::string prefix = "lcake-import/";   // object key prefix
  std::string role_name = "vmimport";     // the VM Import service role
  std::string format = "raw";             // raw | vmdk (stream-optimized: only data is sent)
  MultipartOptions multipart;
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::seconds timeout{4 * 3600};
  static ImportSettings from_json(const nlohmann::json& settings);
};

struct ImportedSnapshot {
  std::string snapshot_id;
  std::uint64_t volume_gib = 0;
  // The open "import-task" ledger entry: its reaper deletes the snapshot. The
  // caller releases it once the snapshot belongs to a registered image.
  std::int64_t ledger_entry = 0;
};

// `client` is in the region the image is made in.
ImportedSnapshot import_snapshot(const AwsClient& client, const ImportSettings& settings,
                                 const UploadRequest& request, Context& ctx);

// Reaper of the kinds this mode records: "s3-object", "s3-multipart", "import-task".
// Returns false for any other kind; throws AlreadyGone when there was nothing left to delete.
bool reap_import_entry(const AwsClient& any_region, const LedgerEntry& entry, Context& ctx);

}  // namespace lcake::aws
