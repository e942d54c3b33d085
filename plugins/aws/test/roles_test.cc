// The aws backend's import mode, EC2 verifier, publish and gc against the AWS
// test services (moto with signature checks + aws-sim, started once for this
// binary); every result checked with Debian's awscli, an independent client.
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <thread>

#include "aws_client.h"
#include "ec2_instance.h"
#include "ec2_verifier.h"
#include "image_cleanup.h"
#include "import_uploader.h"
#include "lcake/testing.hpp"
#include "publish.h"
#include "aws_services.h"
#include "ssh/ssh.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

namespace lcake::aws {
namespace {

Artifact artifact(const std::string& type, const std::string& id, const json& metadata) {
  Artifact a;
  a.type = type, a.id = id, a.metadata = metadata;
  return a;
}

const std::string kBucket = "lcake-import-staging";

json aws_json(const std::vector<std::string>& args, const std::string& region = "") {
  std::string out = aws_test::admin_aws(args, region);
  return out.empty() ? json::object() : json::parse(out);
}

void ensure_bucket() {
  static bool made = [] {
    aws_test::admin_aws({"s3api", "create-bucket", "--bucket", kBucket});
    return true;
  }();
  (void)made;
}

// The staging bucket holds no object and no unfinished multipart upload.
void check_bucket_empty() {
  auto objects = aws_json({"s3api", "list-objects-v2", "--bucket", kBucket});
  CHECK(objects.value("KeyCount", 0) == 0);
  CHECK_FALSE(objects.contains("Contents"));
  auto uploads = aws_json({"s3api", "list-multipart-uploads", "--bucket", kBucket});
  CHECK_FALSE(uploads.contains("Uploads"));
}

// Listing every snapshot is no use here (moto holds over a thousand of its own and
// pages them loosely): ask for one ID, or for what one import task wrote.
bool snapshot_exists(const std::string& id) {
  std::string out;
  if (aws_test::admin_aws_status({"ec2", "describe-snapshots", "--snapshot-ids", id}, out) != 0) return false;
  return !json::parse(out)["Snapshots"].empty();
}
std::size_t snapshots_of_task(const std::string& task) {
  return aws_json({"ec2", "describe-snapshots", "--filters",
                   "Name=description,Values=Created by AWS-VMImport service for " + task})["Snapshots"].size();
}

struct Fixture {
  Fixture() : ctx(tmp.path) {
    aws_test::services();
    ensure_bucket();
    ctx.ssh_factory = [](const SshOptions& o, testing::FakeContext& c) {
      return core::connect_ssh(o, c.cancel(), [&c](std::string_view m) { c.log(LogLevel::debug, m); });
    };
  }
  AwsClient client(const std::string& region = "") {
    AwsConfig config = AwsConfig::load(process_env(), "", region);
    auto credentials = default_credentials(config, ctx);
    return AwsClient(std::move(config), std::move(credentials), ctx);
  }
  json import_settings(json extra = json::object()) {
    json s = {{"bucket", kBucket}, {"part_size_mib", 5}, {"upload_workers", 3}, {"import_poll_seconds", 0.2}};
    s.update(extra);
    return s;
  }
  UploadRequest upload_request(const fs::path& disk, const std::string& format, std::uint64_t virtual_size,
                               const std::string& layer = "base") {
    UploadRequest r;
    r.layer = {.target = "aws-ami-import", .variant = "tiny", .layer = layer, .key = std::string(64, 'a'),
               .lcake_version = "test", .pipeline = "stack", .upload_key = std::string(64, 'b')};
    r.built = artifact("qcow2", disk.string(), {{"format", format}, {"virtual_size", virtual_size}});
    return r;
  }
  std::vector<LedgerEntry> open_entries() { return ctx.memory_ledger.open_entries(); }

  lcake::test::TempDir tmp{"aws-roles"};
  testing::FakeContext ctx;
};

// A 24 MiB disk as qcow2 with random data in two places; returns its raw bytes' first block.
std::string make_disk(const fs::path& dir, fs::path& qcow2) {
  fs::create_directories(dir);
  fs::path raw = dir / "disk.raw";
  std::mt19937_64 rng(42);
  std::string data(1 << 20, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  {
    std::ofstream out(raw, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.seekp(12 << 20);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  fs::resize_file(raw, 24 << 20);
  qcow2 = dir / "disk.qcow2";
  REQUIRE(std::system(("qemu-img convert -f raw -O qcow2 '" + raw.string() + "' '" + qcow2.string() + "'").c_str()) == 0);
  return data.substr(0, 524288);
}

// One block of a snapshot, read back through the EBS direct API by awscli.
std::string snapshot_block(const std::string& snapshot, int index, const fs::path& dir) {
  auto blocks = aws_json({"ebs", "list-snapshot-blocks", "--snapshot-id", snapshot});
  for (auto& b : blocks["Blocks"]) {
    if (b["BlockIndex"] != index) continue;
    fs::path out = dir / ("block-" + std::to_string(index));
    aws_json({"ebs", "get-snapshot-block", "--snapshot-id", snapshot, "--block-index", std::to_string(index),
              "--block-token", b["BlockToken"].get<std::string>(), out.string()});
    std::ifstream in(out, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  return {};
}

void reap_all(Fixture& f, AwsClient& client) {
  f.ctx.memory_ledger.reap_open([&](const LedgerEntry& e) {
    try {
      if (!reap_import_entry(client, e, f.ctx) && !reap_instance_entry(client, e, f.ctx) &&
          !reap_publish_entry(client, e, f.ctx))
        FAIL("no reaper for " << e.kind);
    } catch (const AlreadyGone&) {
      // released as the host does
    }
  });
}

// One reap by whichever of the role's reapers takes the kind: true when it deleted
// something, false when it said AlreadyGone.
bool reaped(Fixture& f, AwsClient& client, const LedgerEntry& e) {
  try {
    bool known = reap_import_entry(client, e, f.ctx) || reap_instance_entry(client, e, f.ctx) ||
                 reap_publish_entry(client, e, f.ctx);
    REQUIRE_MESSAGE(known, "no reaper for " << e.kind);
    return true;
  } catch (const AlreadyGone& gone) {
    MESSAGE(e.kind << ": " << gone.what());
    return false;
  }
}

}  // namespace

TEST_CASE("import mode: the disk goes through S3 multipart into ImportSnapshot; the bucket is empty afterwards") {
  Fixture f;
  fs::path disk;
  std::string first_block = make_disk(f.tmp.path / "disk", disk);
  auto client = f.client();
  auto imported = import_snapshot(client, ImportSettings::from_json(f.import_settings()),
                                  f.upload_request(disk, "qcow2", 24 << 20), f.ctx);
  CHECK(imported.snapshot_id.rfind("snap-", 0) == 0);
  CHECK(imported.volume_gib == 1);
  check_bucket_empty();
  CHECK(snapshot_exists(imported.snapshot_id));
  // What the import wrote is the disk, block for block.
  CHECK(snapshot_block(imported.snapshot_id, 0, f.tmp.path) == first_block);
  CHECK(snapshot_block(imported.snapshot_id, 24, f.tmp.path) == first_block);  // 12 MiB in
  // Five parts of 5 MiB, reported in bytes; the import reported fractions.
  bool bytes = false, fraction = false;
  for (auto& p : f.ctx.progress_reports) {
    if (p.total_bytes == (24u << 20) && p.done_bytes == p.total_bytes) bytes = true;
    if (p.what.find("importing snapshot") != std::string::npos) fraction = true;
  }
  CHECK(bytes);
  CHECK(fraction);
  CHECK(f.ctx.logged("5 parts"));

  // Only the import task is still open: its reaper deletes the snapshot it made.
  auto open = f.open_entries();
  REQUIRE(open.size() == 1);
  CHECK(open[0].kind == "import-task");
  CHECK(snapshots_of_task(open[0].resource_id) == 1);  // the filter the failure cases rely on finds it
  reap_all(f, client);
  CHECK_FALSE(snapshot_exists(imported.snapshot_id));
}

TEST_CASE("an import that fails (a disk that is not what it says) is a clear error and leaves nothing") {
  Fixture f;
  fs::path disk;
  make_disk(f.tmp.path / "disk", disk);
  auto client = f.client();
  // Declared raw, really qcow2: the bytes are sent as they are and the import's validation refuses them.
  std::string error;
  try {
    import_snapshot(client, ImportSettings::from_json(f.import_settings()), f.upload_request(disk, "raw", 24 << 20), f.ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  INFO(error);
  CHECK(error.find("import task import-snap-") != std::string::npos);
  CHECK(error.find("Disk validation failed") != std::string::npos);
  check_bucket_empty();
  auto at = error.find("import-snap-");
  REQUIRE(at != std::string::npos);
  CHECK(snapshots_of_task(error.substr(at, 29)) == 0);
  CHECK(f.open_entries().empty());
}

TEST_CASE("Ctrl-C during the import cancels the task and deletes the staged object") {
  Fixture f;
  fs::path disk;
  make_disk(f.tmp.path / "disk", disk);
  auto client = f.client();
  std::thread ctrl_c([&] {
    for (int i = 0; i < 3000 && !f.ctx.logged("started (role vmimport)"); ++i) std::this_thread::sleep_for(5ms);
    f.ctx.cancel_token.fire();
  });
  CHECK_THROWS_AS(import_snapshot(client, ImportSettings::from_json(f.import_settings()),
                                  f.upload_request(disk, "qcow2", 24 << 20), f.ctx),
                  Cancelled);
  ctrl_c.join();
  check_bucket_empty();
  auto tasks = aws_json({"ec2", "describe-import-snapshot-tasks"})["ImportSnapshotTasks"];
  REQUIRE_FALSE(tasks.empty());
  auto status = tasks.back()["SnapshotTaskDetail"].value("Status", "");
  CHECK((status == "deleted" || status == "deleting"));
  CHECK(f.open_entries().empty());
  std::this_thread::sleep_for(1500ms);  // a cancelled task must not produce a snapshot later
  CHECK(snapshots_of_task(tasks.back()["ImportTaskId"]) == 0);
}

TEST_CASE("a missing staging bucket is an input error naming the setting") {
  Fixture f;
  fs::path disk;
  make_disk(f.tmp.path / "disk", disk);
  auto client = f.client();
  std::string error;
  try {
    import_snapshot(client, ImportSettings::from_json(f.import_settings({{"bucket", "no-such-bucket-here"}})),
                    f.upload_request(disk, "qcow2", 24 << 20), f.ctx);
  } catch (const InputError& e) {
    error = e.what();
  }
  CHECK(error.find("no-such-bucket-here (uploader.settings.bucket) does not exist") != std::string::npos);
  CHECK(f.open_entries().empty());
}

TEST_CASE("import mode: S3 SlowDown and 500s on parts and a throttled task poll are retried, then it succeeds") {
  Fixture f;
  aws_test::clear_faults();
  fs::path disk;
  make_disk(f.tmp.path / "disk", disk);
  auto client = f.client();
  aws_test::add_fault({{"operation", "UploadPart"}, {"kind", "throttle"}, {"after", 1}, {"count", 2}});
  aws_test::add_fault({{"operation", "UploadPart"}, {"kind", "error"}, {"after", 2}, {"count", 1}});
  aws_test::add_fault({{"operation", "DescribeImportSnapshotTasks"}, {"kind", "throttle"}, {"count", 1}});
  auto imported = import_snapshot(client, ImportSettings::from_json(f.import_settings()),
                                  f.upload_request(disk, "qcow2", 24 << 20), f.ctx);
  auto rules = aws_test::faults();
  aws_test::clear_faults();
  for (const auto& r : rules) CHECK_MESSAGE(r["remaining"] == 0, r.dump());
  CHECK(f.ctx.logged("aws s3 UploadPart s3://" + kBucket + "/"));  // the retries were said, naming the object
  CHECK(f.ctx.logged("aws ec2 DescribeImportSnapshotTasks import-snap-"));
  CHECK(snapshot_block(imported.snapshot_id, 24, f.tmp.path).size() == 524288);
  check_bucket_empty();
  reap_all(f, client);
  CHECK_FALSE(snapshot_exists(imported.snapshot_id));
}

TEST_CASE("import mode: a part that keeps failing ends in one line naming the part's object; the upload is aborted") {
  Fixture f;
  aws_test::clear_faults();
  fs::path disk;
  make_disk(f.tmp.path / "disk", disk);
  auto client = f.client();
  aws_test::add_fault({{"operation", "UploadPart"}, {"kind", "error"}, {"after", 1}, {"count", -1}});
  std::string error;
  try {
    import_snapshot(client, ImportSettings::from_json(f.import_settings({{"upload_workers", 1}})),
                    f.upload_request(disk, "qcow2", 24 << 20), f.ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  aws_test::clear_faults();
  INFO(error);
  CHECK(error.find("aws s3 UploadPart s3://" + kBucket + "/") == 0);
  CHECK(error.find(": InternalError: ") != std::string::npos);
  CHECK(error.find("(HTTP 500)") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  check_bucket_empty();  // the multipart upload was aborted, no object
  // Only the converted disk in the work dir is left, to the host's reaper (kind "path").
  for (const auto& e : f.open_entries()) CHECK_MESSAGE(e.kind == "path", e.kind << " " << e.resource_id);
  f.ctx.memory_ledger.reap_open();
  CHECK(f.open_entries().empty());
}

TEST_CASE("reap of a resource that is already gone throws AlreadyGone; of one still there, deletes it") {
  Fixture f;
  auto client = f.client();
  const std::string region = client.region();
  std::string suffix = std::to_string(::getpid());
  // Made here as the services' admin; reaped as lcake (the minimal policy).
  std::string key = "lcake-verify-gone-" + suffix;
  aws_json({"ec2", "create-key-pair", "--key-name", key});
  std::string group = aws_json({"ec2", "create-security-group", "--group-name", key, "--description", "gone test"})["GroupId"];
  std::string object = "lcake-import/gone-" + suffix + ".raw";
  fs::path body = f.tmp.path / "body";
  { std::ofstream(body) << "x"; }
  aws_json({"s3api", "put-object", "--bucket", kBucket, "--key", object, "--body", body.string()});
  std::string upload = aws_json({"s3api", "create-multipart-upload", "--bucket", kBucket, "--key", object + ".mp"})["UploadId"];

  LedgerEntry key_entry{1, "aws", "verifier", "ec2-key-pair", key, {{"region", region}, {"name", key}}};
  LedgerEntry group_entry{2, "aws", "verifier", "ec2-security-group", group, {{"region", region}, {"group_id", group}}};
  LedgerEntry object_entry{3, "aws", "uploader", "s3-object", "", {{"region", region}, {"bucket", kBucket}, {"key", object}}};
  LedgerEntry upload_entry{4, "aws", "uploader", "s3-multipart", upload,
                           {{"region", region}, {"bucket", kBucket}, {"key", object + ".mp"}, {"upload_id", upload}}};
  for (const auto& e : {key_entry, group_entry, object_entry, upload_entry}) {
    CHECK_MESSAGE(reaped(f, client, e), e.kind << " was there: deleted");
    CHECK_FALSE_MESSAGE(reaped(f, client, e), e.kind << " again: already gone");
  }
  check_bucket_empty();
  // Never there at all.
  LedgerEntry instance{5, "aws", "verifier", "ec2-instance", "i-0123456789abcdef0",
                       {{"region", region}, {"instance_id", "i-0123456789abcdef0"}}};
  // (An instance entry with only a client token is not tried: moto answers the client-token filter with 500.)
  LedgerEntry no_group{7, "aws", "verifier", "ec2-security-group", "", {{"region", region}, {"name", "lcake-verify-none"}}};
  LedgerEntry task{8, "aws", "uploader", "import-task", "", {{"region", region}}};
  LedgerEntry copy{9, "aws", "uploader", "ami-copy", "ami-0123456789abcdef0",
                   {{"region", "us-west-2"}, {"image_id", "ami-0123456789abcdef0"}}};
  for (const auto& e : {instance, no_group, task, copy}) CHECK_FALSE_MESSAGE(reaped(f, client, e), e.kind);
}

TEST_CASE("the verifier refuses settings that open SSH to the world, or none") {
  CHECK_THROWS_AS(Ec2Verifier(json{{"ssh_cidr", "0.0.0.0/0"}}), ValueError);
  CHECK_THROWS_AS(Ec2Verifier(json::object()), ValueError);
}

}  // namespace lcake::aws
