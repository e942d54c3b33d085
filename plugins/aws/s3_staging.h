// The S3 object an import reads its disk from: a parallel multipart upload with
// constant memory (one 1 MiB chunk per worker: each part is hashed, then streamed
// from the file), a Content-MD5 per part on top of the
// signed SHA-256 payload hash, progress in bytes. Both the multipart upload and
// the object are in the ledger before they exist (kinds s3-multipart, s3-object).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "aws_client.h"
#include "lcake/context.hpp"

namespace lcake::aws {

struct S3Location {
  std::string region, bucket, key;
  nlohmann::json how() const { return {{"region", region}, {"bucket", bucket}, {"key", key}}; }
};

struct MultipartOptions {
  std::uint64_t part_size = 16ull << 20;  // raised when the file needs more than 10000 parts
  int workers = 4;
};

// The part size for a file of `size` bytes: at least `wanted`, S3's 5 MiB
// minimum, and large enough for S3's limit of 10000 parts (whole MiB).
std::uint64_t choose_part_size(std::uint64_t size, std::uint64_t wanted);

// Fails with an InputError naming the bucket when it does not exist or is not ours to write.
void check_bucket(const AwsClient& client, const S3Location& where);

// Uploads `file` to `where`. On success the object exists and its ledger entry
// is returned still open (the caller deletes the object when done with it);
// on failure or cancel the multipart upload is aborted before the exception leaves.
std::int64_t upload_multipart(const AwsClient& client, const S3Location& where, const std::filesystem::path& file,
                              const MultipartOptions& options, Context& ctx);

// Idempotent deletes (a missing object/upload is success); each returns whether
// there was something to delete. Not cancellable: cleanup. `client` must be in where.region.
bool delete_object(const AwsClient& client, const S3Location& where);
bool abort_multipart(const AwsClient& client, const S3Location& where, const std::string& upload_id);
// Whether the object exists (ListObjectsV2 by prefix: s3:ListBucket is enough).
bool object_exists(const AwsClient& client, const S3Location& where);

}  // namespace lcake::aws
