// Writing an EBS snapshot through the EBS direct APIs: StartSnapshot (with a
// parent, ClientToken recorded in the ledger first), parallel
// PutSnapshotBlock workers with SHA-256 checksums, CompleteSnapshot with the
// changed-block count and the LINEAR aggregate checksum, then waiting for
// EC2 to show it completed.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aws_client.h"
#include "disk_blocks.h"

namespace lcake::aws {

struct SnapshotPlan {
  std::uint64_t volume_size_gib = 1;
  std::string parent_snapshot_id;  // empty: a first layer
  std::string description;
  int timeout_minutes = 720;
  int workers = 8;
  std::vector<std::pair<std::string, std::string>> tags;
  std::string image_name;  // recorded so a reaper can deregister an image using the snapshot
};

// Block source: the candidate indices in order, and for each whether it must be
// sent (fills `block` with its bytes): a first layer skips all-zero blocks, a
// child skips blocks equal to its parent's.
struct BlockSource {
  std::vector<std::uint64_t> candidates;
  std::function<bool(std::uint64_t index, std::string& block, std::string& scratch)> wanted;
};

struct SnapshotResult {
  std::string snapshot_id;
  std::uint64_t blocks_written = 0;
  std::uint64_t blocks_examined = 0;
};

// The ledger kind of a pending (or finished, not yet promoted) EBS snapshot.
inline constexpr const char* kSnapshotKind = "ebs-snapshot";

// Writes the snapshot. `scope` receives the ledger entry, open until the
// caller promotes it (the snapshot became part of an artifact).
SnapshotResult write_snapshot(const AwsClient& client, const SnapshotPlan& plan, const BlockSource& source,
                              std::unique_ptr<LedgerScope>& scope);

// Deletes a snapshot (deregistering images named how.image_name that use it
// first); resource_id empty: found again through its ClientToken. Idempotent:
// throws AlreadyGone when neither snapshot nor image was there any more.
void delete_snapshot(const AwsClient& client, const LedgerEntry& entry);

// EC2 DescribeSnapshots state ("pending", "completed", "error"), "" when gone.
std::string snapshot_state(const AwsClient& client, const std::string& snapshot_id);

}  // namespace lcake::aws
