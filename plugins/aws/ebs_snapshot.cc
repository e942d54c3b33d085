#include "ebs_snapshot.h"

#include <openssl/rand.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "worker_threads.h"

namespace lcake::aws {
namespace {

std::string random_token() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw BuildError("OpenSSL RAND_bytes failed");
  return "lcake-" + hex(std::string(reinterpret_cast<char*>(b), sizeof b));
}

nlohmann::json start_body(const SnapshotPlan& plan, const std::string& token) {
  nlohmann::json body = {{"VolumeSize", plan.volume_size_gib},
                         {"Timeout", plan.timeout_minutes},
                         {"ClientToken", token},
                         {"Description", plan.description.substr(0, 255)}};
  if (!plan.parent_snapshot_id.empty()) body["ParentSnapshotId"] = plan.parent_snapshot_id;
  nlohmann::json tags = nlohmann::json::array();
  for (const auto& [k, v] : plan.tags) tags.push_back({{"Key", k}, {"Value", v}});
  if (!tags.empty()) body["Tags"] = tags;
  return body;
}

// A bounded queue between the reader and the PutSnapshotBlock workers: memory
// stays at (capacity + workers) blocks whatever the disk's size.
struct BlockQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::uint64_t, std::string>> items;
  std::size_t capacity = 16;
  bool closed = false, failed = false;
  std::exception_ptr error;
};

void put_block(const AwsClient& client, const std::string& snapshot, std::uint64_t index, const std::string& data,
               const std::string& checksum_b64, int progress) {
  AwsRequest r;
  r.service = Service::ebs;
  r.action = "PutSnapshotBlock";
  r.method = "PUT";
  r.path = "/snapshots/" + snapshot + "/blocks/" + std::to_string(index);
  r.body = data;
  r.headers = {{"content-type", "application/octet-stream"},
               {"x-amz-Data-Length", std::to_string(data.size())},
               {"x-amz-Checksum", checksum_b64},
               {"x-amz-Checksum-Algorithm", "SHA256"},
               {"x-amz-Progress", std::to_string(progress)}};
  r.timeout = std::chrono::milliseconds(120000);
  client.send(std::move(r));
}

}  // namespace

std::string snapshot_state(const AwsClient& client, const std::string& snapshot_id) {
  try {
    auto doc = client.ec2("DescribeSnapshots", {{"SnapshotId.1", snapshot_id}}, false);
    auto item = doc.select_node("//*[local-name()='snapshotSet']/*[local-name()='item']");
    return item ? xml_text(item.node(), "status") : "";
  } catch (const AwsError& e) {
    if (e.code == "InvalidSnapshot.NotFound") return "";
    throw;
  }
}

SnapshotResult write_snapshot(const AwsClient& client, const SnapshotPlan& plan, const BlockSource& source,
                              std::unique_ptr<LedgerScope>& scope) {
  Context& ctx = client.context();
  const std::string token = random_token();
  const nlohmann::json body = start_body(plan, token);
  nlohmann::json how = {{"region", client.region()}, {"start", body}, {"image_name", plan.image_name}};
  scope = std::make_unique<LedgerScope>(ctx.ledger(), kSnapshotKind, "", how);
  auto started = client.rest_json(Service::ebs, "StartSnapshot", "POST", "/snapshots", body);
  SnapshotResult result;
  result.snapshot_id = started.value("SnapshotId", "");
  if (result.snapshot_id.empty()) throw BuildError("aws ebs StartSnapshot: the answer has no SnapshotId");
  if (started.value("BlockSize", kEbsBlockSize) != kEbsBlockSize)
    throw BuildError("aws ebs StartSnapshot: block size " + std::to_string(started.value("BlockSize", 0)) +
                     " is not 524288");
  how["snapshot_id"] = result.snapshot_id;
  scope->confirmed(result.snapshot_id, how);
  ctx.info("aws: snapshot " + result.snapshot_id + " started" +
           (plan.parent_snapshot_id.empty() ? "" : " on parent " + plan.parent_snapshot_id));

  BlockQueue q;
  q.capacity = static_cast<std::size_t>(plan.workers) * 2;
  std::mutex sums_mu;
  std::map<std::uint64_t, std::string> checksums;  // index -> raw SHA-256 (32 bytes each)
  std::atomic<std::uint64_t> sent_bytes{0};
  const std::uint64_t total = source.candidates.size();
  std::atomic<std::uint64_t> examined{0};

  auto worker = [&] {
    for (;;) {
      std::pair<std::uint64_t, std::string> item;
      {
        std::unique_lock lock(q.mu);
        q.cv.wait(lock, [&] { return !q.items.empty() || q.closed || q.failed; });
        if (q.failed || (q.items.empty() && q.closed)) return;
        item = std::move(q.items.front());
        q.items.pop_front();
      }
      q.cv.notify_all();
      try {
        std::string raw = sha256_bytes(item.second);
        int progress = total ? static_cast<int>(100 * examined.load() / total) : 100;
        put_block(client, result.snapshot_id, item.first, item.second, lcake::http::base64_encode(raw),
                  std::min(progress, 100));
        {
          std::lock_guard lock(sums_mu);
          checksums[item.first] = raw;
        }
        sent_bytes += item.second.size();
      } catch (...) {
        std::lock_guard lock(q.mu);
        if (!q.failed) q.error = std::current_exception();
        q.failed = true;
        q.cv.notify_all();
        return;
      }
    }
  };
  // A thread that cannot start stops and joins the others; the snapshot stays in the ledger.
  WorkerThreads threads(plan.workers, worker, [&] {
    {
      std::lock_guard lock(q.mu);
      q.failed = true;
    }
    q.cv.notify_all();
  });

  std::exception_ptr reader_error;
  try {
    std::string block, scratch;
    auto last_report = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    for (std::uint64_t index : source.candidates) {
      ctx.cancel().throw_if_cancelled();
      bool send = source.wanted(index, block, scratch);
      ++examined;
      if (send) {
        std::unique_lock lock(q.mu);
        q.cv.wait(lock, [&] { return q.items.size() < q.capacity || q.failed; });
        if (q.failed) break;
        q.items.emplace_back(index, std::move(block));
        block = std::string();
        lock.unlock();
        q.cv.notify_all();
      }
      if (auto now = std::chrono::steady_clock::now(); now - last_report > std::chrono::milliseconds(250)) {
        last_report = now;
        ctx.progress_bytes(examined.load() * kEbsBlockSize, total * kEbsBlockSize, "writing EBS snapshot blocks");
      }
    }
  } catch (...) {
    reader_error = std::current_exception();
  }
  {
    std::lock_guard lock(q.mu);
    q.closed = true;
    if (reader_error) q.failed = true;
  }
  q.cv.notify_all();
  threads.join();
  if (reader_error) std::rethrow_exception(reader_error);
  if (q.error) std::rethrow_exception(q.error);
  ctx.progress_bytes(total * kEbsBlockSize, total * kEbsBlockSize, "writing EBS snapshot blocks");

  result.blocks_written = checksums.size();
  result.blocks_examined = examined.load();
  std::string concatenated;
  concatenated.reserve(checksums.size() * 32);
  for (const auto& [index, sum] : checksums) concatenated += sum;
  Pairs headers = {{"x-amz-ChangedBlocksCount", std::to_string(checksums.size())}};
  if (!checksums.empty()) {
    headers.emplace_back("x-amz-Checksum", sha256_base64(concatenated));
    headers.emplace_back("x-amz-Checksum-Algorithm", "SHA256");
    headers.emplace_back("x-amz-Checksum-Aggregation-Method", "LINEAR");
  }
  client.rest_json(Service::ebs, "CompleteSnapshot", "POST", "/snapshots/completion/" + result.snapshot_id,
                   nullptr, headers);
  // EBS finishes asynchronously; EC2 shows the state.
  for (int i = 0;; ++i) {
    std::string state = snapshot_state(client, result.snapshot_id);
    if (state == "completed") break;
    if (state == "error" || state.empty())
      throw BuildError("aws: snapshot " + result.snapshot_id + " ended in state '" +
                       (state.empty() ? std::string("gone") : state) + "' after CompleteSnapshot");
    ctx.progress(-1, "waiting for snapshot " + result.snapshot_id);
    if (ctx.cancel().wait_for(std::chrono::milliseconds(std::min(200 * (i + 1), 5000)))) throw Cancelled();
  }
  ctx.info("aws: snapshot " + result.snapshot_id + " completed: " + std::to_string(result.blocks_written) + " of " +
           std::to_string(result.blocks_examined) + " candidate blocks written (" +
           std::to_string(sent_bytes.load() >> 20) + " MiB)");
  return result;
}

void delete_snapshot(const AwsClient& client, const LedgerEntry& entry) {
  std::string id = entry.resource_id;
  if (id.empty()) id = entry.how.value("snapshot_id", "");
  auto gone = [&] {
    return AlreadyGone("snapshot " + (id.empty() ? std::string("(never started)") : id) + " in " + client.region() +
                       " is already gone");
  };
  bool deleted = false;
  if (id.empty() && entry.how.contains("start")) {
    // Crashed between recording and StartSnapshot's answer: the same ClientToken
    // names the same snapshot (or makes one, which goes the same way).
    try {
      id = client.rest_json(Service::ebs, "StartSnapshot", "POST", "/snapshots", entry.how["start"], {}, false)
               .value("SnapshotId", "");
    } catch (const AwsError& e) {
      if (e.code == "ConflictException" || e.code == "ResourceNotFoundException" || e.code == "ValidationException")
        throw gone();  // nothing was made under this token that we can still name
      throw;
    }
  }
  if (id.empty()) throw gone();
  std::string image_name = entry.how.value("image_name", "");
  if (!image_name.empty()) {
    auto doc = client.ec2("DescribeImages", {{"Owner.1", "self"}, {"Filter.1.Name", "name"},
                                             {"Filter.1.Value.1", image_name}}, false);
    for (auto n : doc.select_nodes("//*[local-name()='imagesSet']/*[local-name()='item']")) {
      std::string ami = xml_text(n.node(), "imageId");
      if (ami.empty()) continue;
      client.ec2("DeregisterImage", {{"ImageId", ami}}, false);
      deleted = true;
    }
  }
  try {
    client.ec2("DeleteSnapshot", {{"SnapshotId", id}}, false);
    deleted = true;
  } catch (const AwsError& e) {
    if (e.code != "InvalidSnapshot.NotFound") throw;
  }
  if (!deleted) throw gone();
}

}  // namespace lcake::aws
