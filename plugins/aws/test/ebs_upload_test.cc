// The ebs uploader end to end against aws-sim (moto with signature checks and
// the minimal IAM policy, EBS direct rules enforced): a sparse first layer, a
// child overlay sending only changed blocks, RegisterImage, find() from a fresh
// context, Ctrl-C in the middle of an upload reaped to nothing, a wrong secret.
// Every result is checked with awscli and the simulator's log, not lcake's code.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "aws_services.h"
#include "ami_image.h"
#include "aws_uploader.h"
#include "disk_blocks.h"
#include "lcake/testing.hpp"
#include "test_support.h"

namespace fs = std::filesystem;
using lcake::aws::AwsUploader;
using lcake::aws::kEbsBlockSize;
using lcake::testing::FakeContext;
using lcake::test::TempDir;

namespace {

void run(const std::string& cmd) {
  std::string out;
  int rc = aws_test::shell(cmd + " 2>&1", &out);
  REQUIRE_MESSAGE(rc == 0, cmd << ": " << out);
}

lcake::LayerInfo layer(const std::string& name, const std::string& key) {
  lcake::LayerInfo l;
  l.target = "aws-ami";
  l.variant = "test";
  l.layer = name;
  l.key = lcake::aws::sha256_hex("layer " + key);
  l.pipeline = "ebs-test";
  l.upload_key = lcake::aws::sha256_hex("upload " + key + std::to_string(::getpid()) + std::to_string(std::time(nullptr)));
  return l;
}

lcake::Artifact disk_artifact(const fs::path& disk) {
  lcake::Artifact a;
  a.type = "qcow2";
  a.id = disk.string();
  return a;
}

std::set<std::uint64_t> blocks_written(const std::string& snapshot) {
  std::set<std::uint64_t> out;
  for (const auto& e : aws_test::sim_events("block-written"))
    if (e.value("snapshot", "") == snapshot) out.insert(e.value("index", std::uint64_t{0}));
  return out;
}

// A context that fires its own cancel token once `after` bytes were reported.
struct CancellingContext : FakeContext {
  using FakeContext::FakeContext;
  using FakeContext::progress;
  std::uint64_t after = 0;
  void progress(const lcake::Progress& p) override {
    FakeContext::progress(p);
    if (after && p.done_bytes >= after) cancel_token.fire();
  }
};

nlohmann::json images_named(const std::string& name) {
  return aws_test::awscli({"ec2", "describe-images", "--owners", "self", "--filters", "Name=name,Values=" + name})["Images"];
}

// By id: moto gives EBS-direct snapshots its default account as owner, so `--owner-ids self` misses them.
bool snapshot_listed(const std::string& id) {
  try {
    return !aws_test::awscli({"ec2", "describe-snapshots", "--snapshot-ids", id})["Snapshots"].empty();
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find("InvalidSnapshot.NotFound") != std::string::npos) return false;
    throw;
  }
}

}  // namespace

TEST_CASE("ebs uploader: first layer sparse, child layer only its changed blocks, find from a fresh runner") {
  aws_test::services();
  TempDir tmp;
  fs::path base = tmp.path / "base.qcow2", child = tmp.path / "child.qcow2";
  // 64 MiB virtual; 3 MiB of data at 1 MiB (6 blocks) and 100 KiB inside block 80.
  run("qemu-img create -q -f qcow2 " + base.string() + " 64M");
  run("qemu-io -c 'write -P 0xab 1M 3M' -c 'write -P 0x11 40100K 100K' " + base.string() + " >/dev/null");

  FakeContext ctx(tmp.path / "ctx1");
  AwsUploader uploader(nlohmann::json{{"workers", 4}, {"tags", {{"team", "images"}}}});
  lcake::UploadRequest req;
  req.layer = layer("base", "base");
  req.built = disk_artifact(base);
  lcake::Artifact up = uploader.upload(req, ctx);
  CHECK(up.type == "ami");
  CHECK(up.id.rfind("ami-", 0) == 0);
  std::string base_snap = up.metadata.value("snapshot_id", "");
  auto written = blocks_written(base_snap);
  std::set<std::uint64_t> want = {2, 3, 4, 5, 6, 7, 78};
  CHECK(written == want);  // 40100K / 512K = block 78; all-zero blocks skipped
  CHECK(up.metadata["blocks_written"] == 7);
  CHECK(ctx.memory_ledger.open_entries().empty());
  bool progress_bytes = false;
  for (const auto& p : ctx.progress_reports) progress_bytes = progress_bytes || p.total_bytes > 0;
  CHECK(progress_bytes);

  // awscli sees the image as registered, with its mapping and tags.
  auto img = aws_test::awscli({"ec2", "describe-images", "--image-ids", up.id})["Images"][0];
  CHECK(img["Name"] == up.metadata["name"]);
  CHECK(img["RootDeviceName"] == "/dev/xvda");
  CHECK(img["Architecture"] == "x86_64");
  CHECK(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == base_snap);
  CHECK(img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 1);
  CHECK(img["BlockDeviceMappings"][0]["Ebs"]["VolumeType"] == "gp3");
  std::map<std::string, std::string> tags;
  for (const auto& t : img.value("Tags", nlohmann::json::array())) tags[t["Key"]] = t["Value"];
  CHECK(tags["lcake:key"] == req.layer.upload_key);
  CHECK(tags["lcake:layer"] == "base");
  CHECK(tags["lcake:variant"] == "test");
  CHECK(tags["team"] == "images");
  auto blocks = aws_test::awscli({"ebs", "list-snapshot-blocks", "--snapshot-id", base_snap})["Blocks"];
  CHECK(blocks.size() == 7);

  // Child: one block changed, one rewritten with the same bytes, one zeroed.
  run("qemu-img create -q -f qcow2 -b " + base.string() + " -F qcow2 " + child.string());
  run("qemu-io -c 'write -P 0xcd 2M 512K' -c 'write -P 0xab 1M 512K' -c 'write -z 3M 512K' " + child.string() +
      " >/dev/null");
  FakeContext ctx2(tmp.path / "ctx2");
  lcake::UploadRequest creq;
  creq.layer = layer("child", "child");
  creq.built = disk_artifact(child);
  creq.parent_upload = up;
  lcake::Artifact cup = uploader.upload(creq, ctx2);
  std::string child_snap = cup.metadata.value("snapshot_id", "");
  CHECK(cup.metadata["parent_snapshot_id"] == base_snap);
  std::set<std::uint64_t> child_want = {4, 6};  // 2M → block 4 changed, 3M → block 6 zeroed; block 2 equal
  CHECK(blocks_written(child_snap) == child_want);
  bool parent_used = false;
  for (const auto& e : aws_test::sim_events("snapshot-started"))
    if (e.value("snapshot", "") == child_snap) parent_used = e.dump().find(base_snap) != std::string::npos;
  CHECK(parent_used);
  // The child snapshot shows its parent's blocks plus its own.
  auto cblocks = aws_test::awscli({"ebs", "list-snapshot-blocks", "--snapshot-id", child_snap})["Blocks"];
  CHECK(cblocks.size() == 7);

  // A fresh runner (empty state) finds both by their upload keys.
  FakeContext fresh(tmp.path / "ctx3");
  lcake::FindRequest f;
  f.layer = creq.layer;
  auto found = AwsUploader(nlohmann::json::object()).find(f, fresh);
  REQUIRE(found.has_value());
  CHECK(found->id == cup.id);
  CHECK(found->metadata["snapshot_id"] == child_snap);
  CHECK(uploader.exists(*found, fresh));
  f.layer = layer("nothing", "never-uploaded");
  CHECK_FALSE(AwsUploader(nlohmann::json::object()).find(f, fresh).has_value());

  // gc: remove() deregisters the image and deletes its snapshot.
  uploader.remove(cup, fresh);
  CHECK(images_named(cup.metadata["name"]).empty());
  CHECK_FALSE(uploader.exists(cup, fresh));
  uploader.remove(cup, fresh);  // idempotent
  uploader.remove(up, fresh);
  CHECK(images_named(up.metadata["name"]).empty());
  CHECK_FALSE(snapshot_listed(child_snap));
  CHECK_FALSE(snapshot_listed(base_snap));
}

// Two runners (their own uploader and context) uploading one upload key at the same time, as in
// docs/ci.md: AMI names are unique per region, so the second RegisterImage is refused
// (InvalidAMIName.Duplicate, which aws-sim enforces as AWS does) and that runner registers under
// another name. Both AMIs carry the key; every find() names the same one (created first, then the
// lowest id), find_all() lists it first; removing the other (what `lcake gc --target` does)
// leaves the winner; a published AMI of the key wins over an older unpublished one.
TEST_CASE("ebs uploader: two runners upload one key at once; find() and find_all() agree on the winner; the duplicate goes") {
  aws_test::services();
  TempDir tmp;
  fs::path disk = tmp.path / "race.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 16M");
  run("qemu-io -c 'write -P 0x5a 1M 1M' " + disk.string() + " >/dev/null");
  lcake::UploadRequest req;
  req.layer = layer("race", "race");
  req.built = disk_artifact(disk);
  lcake::Artifact ua, ub;
  {
    FakeContext ca(tmp.path / "a"), cb(tmp.path / "b");
    AwsUploader a(nlohmann::json{{"workers", 2}}), b(nlohmann::json{{"workers", 2}});
    std::string ea, eb;
    std::thread ta([&] {
      try { ua = a.upload(req, ca); } catch (const std::exception& e) { ea = e.what(); }
    });
    std::thread tb([&] {
      try { ub = b.upload(req, cb); } catch (const std::exception& e) { eb = e.what(); }
    });
    ta.join(), tb.join();
    REQUIRE_MESSAGE(ea.empty(), ea);
    REQUIRE_MESSAGE(eb.empty(), eb);
    CHECK(ca.memory_ledger.open_entries().empty());
    CHECK(cb.memory_ledger.open_entries().empty());
    CHECK((ca.logged("is taken") || cb.logged("is taken")));
  }
  REQUIRE(ua.id != ub.id);
  auto keyed = aws_test::awscli({"ec2", "describe-images", "--owners", "self", "--filters",
                                 "Name=tag:lcake:key,Values=" + req.layer.upload_key})["Images"];
  REQUIRE(keyed.size() == 2);
  CHECK(keyed[0]["Name"] != keyed[1]["Name"]);
  std::map<std::string, nlohmann::json> shown;
  for (const auto& img : keyed) {
    shown[img["ImageId"]] = img;
    std::map<std::string, std::string> tags;
    for (const auto& t : img.value("Tags", nlohmann::json::array())) tags[t["Key"]] = t["Value"];
    CHECK(tags["Name"] == img["Name"]);  // the Name tag follows the name it was registered under
  }
  auto rank = [&](const std::string& id) {
    return std::make_pair(shown[id]["CreationDate"].get<std::string>(), id);
  };
  std::string winner = rank(ua.id) < rank(ub.id) ? ua.id : ub.id, loser = winner == ua.id ? ub.id : ua.id;

  lcake::FindRequest f;
  f.layer = req.layer;
  for (int i = 0; i < 3; ++i) {
    FakeContext fresh(tmp.path / ("fresh" + std::to_string(i)));
    auto found = AwsUploader(nlohmann::json::object()).find(f, fresh);
    REQUIRE(found.has_value());
    CHECK(found->id == winner);
  }
  FakeContext ctx(tmp.path / "gc");
  AwsUploader gc(nlohmann::json::object());
  // The loser's first RegisterImage was refused before it had an id: a ledger entry holding only
  // that name (a crash right then) must not deregister the winner, which holds the name.
  lcake::LedgerEntry by_name;
  by_name.kind = lcake::aws::kImageKind;
  by_name.how = {{"region", ua.metadata.value("region", "")},
                 {"name", shown[winner]["Name"]}, {"snapshot_id", "snap-0123456789abcdef0"}};
  CHECK_THROWS_AS(gc.reap(by_name, ctx), lcake::AlreadyGone);
  CHECK(gc.exists(ua.id == winner ? ua : ub, ctx));
  auto all = gc.find_all(f, ctx);
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == winner);
  CHECK(all[1].id == loser);
  CHECK(all[1].metadata["lcake_found"]["published"] == false);
  // gc's part: the duplicate goes with its snapshot, the winner stays.
  std::string loser_snap = all[1].metadata.value("snapshot_id", "");
  gc.remove(all[1], ctx);
  CHECK_FALSE(snapshot_listed(loser_snap));
  all = gc.find_all(f, ctx);
  REQUIRE(all.size() == 1);
  CHECK(all[0].id == winner);

  // A published AMI of the key wins over the older unpublished one: a later upload (its name
  // taken by the winner's, so registered under another), then published.
  lcake::Artifact later = gc.upload(req, ctx);
  CHECK(later.metadata["name"] != shown[winner]["Name"]);
  gc.publish(later, {req.layer, nlohmann::json::object()}, ctx);  // tags it lcake:published
  auto found = AwsUploader(nlohmann::json::object()).find(f, ctx);
  REQUIRE(found.has_value());
  CHECK(found->id == later.id);
  all = gc.find_all(f, ctx);
  REQUIRE(all.size() == 2);
  CHECK(all[1].id == winner);
  gc.remove(all[1], ctx);
  gc.remove(later, ctx);  // published: never touched
  CHECK(gc.exists(later, ctx));
  aws_test::awscli({"ec2", "deregister-image", "--image-id", later.id});
  aws_test::awscli({"ec2", "delete-snapshot", "--snapshot-id", later.metadata.value("snapshot_id", "")});
}

TEST_CASE("ebs uploader: cancelled in the middle, the reaper leaves nothing") {
  aws_test::services();
  TempDir tmp;
  fs::path disk = tmp.path / "big.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 128M");
  run("qemu-io -c 'write -P 0x5a 0 48M' " + disk.string() + " >/dev/null");
  CancellingContext ctx(tmp.path / "ctx");
  ctx.after = 8 * kEbsBlockSize;
  AwsUploader uploader(nlohmann::json{{"workers", 2}});
  lcake::UploadRequest req;
  req.layer = layer("base", "cancel");
  req.built = disk_artifact(disk);
  CHECK_THROWS_AS(uploader.upload(req, ctx), lcake::Cancelled);
  auto open = ctx.memory_ledger.open_entries();
  REQUIRE(open.size() == 1);
  CHECK(open[0].kind == "ebs-snapshot");
  std::string snap = open[0].resource_id;
  REQUIRE(snap.rfind("snap-", 0) == 0);
  CHECK(blocks_written(snap).size() < 96);  // stopped before the end
  CHECK(snapshot_listed(snap));
  FakeContext reaper(tmp.path / "reaper");
  ctx.memory_ledger.reap_open([&](const lcake::LedgerEntry& e) { uploader.reap(e, reaper); });
  CHECK_FALSE(snapshot_listed(snap));
  CHECK(images_named(lcake::aws::image_name(uploader.settings(), req.layer)).empty());
  // reap is idempotent, and says when there was nothing left to delete.
  CHECK_THROWS_AS(uploader.reap(open[0], reaper), lcake::AlreadyGone);
}

TEST_CASE("ebs uploader: a wrong secret is one clear error, without the secret, and nothing is left") {
  const auto& s = aws_test::services();
  TempDir tmp;
  fs::path disk = tmp.path / "d.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 8M");
  run("qemu-io -c 'write -P 0x01 0 1M' " + disk.string() + " >/dev/null");
  std::string wrong = "wrongSecretValue0123456789abcdefghijklmn";
  ::setenv("AWS_SECRET_ACCESS_KEY", wrong.c_str(), 1);
  FakeContext ctx(tmp.path / "ctx");
  AwsUploader uploader(nlohmann::json::object());
  lcake::UploadRequest req;
  req.layer = layer("base", "wrong-secret");
  req.built = disk_artifact(disk);
  std::string what;
  try {
    uploader.upload(req, ctx);
  } catch (const lcake::BuildError& e) {
    what = e.what();
  }
  ::setenv("AWS_SECRET_ACCESS_KEY", s.get("AWS_SECRET_ACCESS_KEY").c_str(), 1);
  INFO(what);
  CHECK(what.find("aws ebs StartSnapshot") != std::string::npos);
  CHECK(what.find("HTTP 403") != std::string::npos);
  CHECK(what.find(wrong) == std::string::npos);
  CHECK(what.find('\n') == std::string::npos);
  for (const auto& e : ctx.memory_ledger.open_entries()) uploader.reap(e, ctx);
  CHECK(images_named(lcake::aws::image_name(uploader.settings(), req.layer)).empty());
}

namespace {

std::size_t faults_injected(const std::string& operation) {
  std::size_t n = 0;
  for (const auto& e : aws_test::sim_events("fault-injected")) n += e.value("operation", "") == operation;
  return n;
}

// Nothing of this upload is left once the open ledger entries are reaped (as the runner and
// `lcake gc` do): no image by its name, no snapshot it started (checked with awscli).
void check_reaped_to_nothing(lcake::testing::FakeContext& ctx, AwsUploader& uploader, const lcake::LayerInfo& layer,
                             const fs::path& dir) {
  std::vector<std::string> snapshots;
  for (const auto& e : ctx.memory_ledger.open_entries())
    if (e.kind == "ebs-snapshot" && !e.resource_id.empty()) snapshots.push_back(e.resource_id);
  REQUIRE(snapshots.size() == 1);  // the failed upload's pending snapshot, left to the reaper
  CHECK(snapshot_listed(snapshots[0]));
  FakeContext reaper(dir / "reaper");
  ctx.memory_ledger.reap_open([&](const lcake::LedgerEntry& e) { uploader.reap(e, reaper); });
  CHECK(ctx.memory_ledger.open_entries().empty());
  CHECK(images_named(lcake::aws::image_name(uploader.settings(), layer)).empty());
  CHECK_FALSE(snapshot_listed(snapshots[0]));
}

}  // namespace

TEST_CASE("ebs uploader: throttling and 5xx mid-upload are retried with backoff, then the upload succeeds") {
  aws_test::services();
  aws_test::clear_faults();
  TempDir tmp;
  fs::path disk = tmp.path / "t.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 16M");
  run("qemu-io -c 'write -P 0x42 0 4M' " + disk.string() + " >/dev/null");  // blocks 0..7
  // EBS's own throttling (400 RequestThrottledException) and 500 in the middle of the blocks,
  // 503 on CompleteSnapshot, EC2's RequestLimitExceeded on RegisterImage.
  aws_test::add_fault({{"operation", "PutSnapshotBlock"}, {"kind", "throttle"}, {"after", 3}, {"count", 3}});
  aws_test::add_fault({{"operation", "PutSnapshotBlock"}, {"kind", "error"}, {"after", 5}, {"count", 1}});
  aws_test::add_fault({{"operation", "CompleteSnapshot"}, {"kind", "unavailable"}, {"count", 1}});
  aws_test::add_fault({{"operation", "RegisterImage"}, {"kind", "throttle"}, {"count", 2}});
  FakeContext ctx(tmp.path / "ctx");
  AwsUploader uploader(nlohmann::json{{"workers", 2}});
  lcake::UploadRequest req;
  req.layer = layer("base", "throttled");
  req.built = disk_artifact(disk);
  lcake::Artifact up = uploader.upload(req, ctx);
  auto rules = aws_test::faults();
  aws_test::clear_faults();
  for (const auto& r : rules) CHECK_MESSAGE(r["remaining"] == 0, r.dump());  // every fault was hit
  CHECK(faults_injected("PutSnapshotBlock") >= 4);
  CHECK(faults_injected("CompleteSnapshot") >= 1);
  CHECK(faults_injected("RegisterImage") >= 2);
  // Every block arrived in the end, and the image is registered on the completed snapshot.
  std::string snap = up.metadata.value("snapshot_id", "");
  std::set<std::uint64_t> want = {0, 1, 2, 3, 4, 5, 6, 7};
  CHECK(blocks_written(snap) == want);
  auto img = aws_test::awscli({"ec2", "describe-images", "--image-ids", up.id})["Images"];
  REQUIRE(img.size() == 1);
  CHECK(img[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap);
  CHECK(ctx.memory_ledger.open_entries().empty());
  // Each retry was said, with its wait (backoff with jitter).
  CHECK(ctx.logged("aws ebs PutSnapshotBlock " + snap + " block"));
  CHECK(ctx.logged("aws ec2 RegisterImage: HTTP 503; retry 2 in "));
  CHECK(ctx.logged("aws ebs CompleteSnapshot " + snap + ": HTTP 503; retry 1 in "));
  uploader.remove(up, ctx);
}

TEST_CASE("ebs uploader: a persistent 500 fails with one line naming the action and the block; nothing is left") {
  aws_test::services();
  aws_test::clear_faults();
  TempDir tmp;
  fs::path disk = tmp.path / "p.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 16M");
  run("qemu-io -c 'write -P 0x43 0 4M' " + disk.string() + " >/dev/null");
  aws_test::add_fault({{"operation", "PutSnapshotBlock"}, {"kind", "error"}, {"after", 2}, {"count", -1}});
  FakeContext ctx(tmp.path / "ctx");
  AwsUploader uploader(nlohmann::json{{"workers", 1}});
  lcake::UploadRequest req;
  req.layer = layer("base", "persistent-500");
  req.built = disk_artifact(disk);
  std::string what;
  try {
    uploader.upload(req, ctx);
  } catch (const lcake::BuildError& e) {
    what = e.what();
  }
  aws_test::clear_faults();
  INFO(what);
  CHECK(what.find("aws ebs PutSnapshotBlock snap-") == 0);
  CHECK(what.find(" block 2: InternalServerException: ") != std::string::npos);
  CHECK(what.find("(HTTP 500)") != std::string::npos);
  CHECK(what.find('\n') == std::string::npos);
  CHECK(faults_injected("PutSnapshotBlock") >= 5);  // 5 tries of that block, then it gave up
  check_reaped_to_nothing(ctx, uploader, req.layer, tmp.path);
}

TEST_CASE("ebs uploader: a call that hangs past request_timeout_seconds fails the upload, naming it; nothing is left") {
  aws_test::services();
  aws_test::clear_faults();
  TempDir tmp;
  fs::path disk = tmp.path / "h.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 16M");
  run("qemu-io -c 'write -P 0x44 0 2M' " + disk.string() + " >/dev/null");
  aws_test::add_fault({{"operation", "PutSnapshotBlock"}, {"kind", "hang"}, {"after", 1}, {"count", -1},
                       {"seconds", 120}});
  FakeContext ctx(tmp.path / "ctx");
  AwsUploader uploader(nlohmann::json{{"workers", 1}, {"request_timeout_seconds", 1}});
  lcake::UploadRequest req;
  req.layer = layer("base", "hang");
  req.built = disk_artifact(disk);
  std::string what;
  auto started = std::chrono::steady_clock::now();
  try {
    uploader.upload(req, ctx);
  } catch (const lcake::BuildError& e) {
    what = e.what();
  }
  auto took = std::chrono::steady_clock::now() - started;
  aws_test::clear_faults();  // releases the held requests
  INFO(what);
  CHECK(what.find("aws ebs PutSnapshotBlock snap-") == 0);
  CHECK(what.find(" block 1: cannot reach ") != std::string::npos);
  CHECK(what.find("(5 tries)") != std::string::npos);
  CHECK(what.find('\n') == std::string::npos);
  CHECK(took < std::chrono::seconds(60));  // 5 tries of 3 s plus backoff, not the 120 s hang
  check_reaped_to_nothing(ctx, uploader, req.layer, tmp.path);
}

TEST_CASE("ebs uploader: reaping what is already gone says so (lcake::AlreadyGone)") {
  aws_test::services();
  TempDir tmp;
  fs::path disk = tmp.path / "g.qcow2";
  run("qemu-img create -q -f qcow2 " + disk.string() + " 8M");
  run("qemu-io -c 'write -P 0x45 0 1M' " + disk.string() + " >/dev/null");
  FakeContext ctx(tmp.path / "ctx");
  AwsUploader uploader(nlohmann::json::object());
  lcake::UploadRequest req;
  req.layer = layer("base", "gone");
  req.built = disk_artifact(disk);
  lcake::Artifact up = uploader.upload(req, ctx);
  std::string snap = up.metadata["snapshot_id"], region = up.metadata["region"];
  lcake::LedgerEntry image{1, "aws", "uploader", "ec2-image", up.id, {{"region", region}, {"name", up.metadata["name"]}}};
  lcake::LedgerEntry snapshot{2, "aws", "uploader", "ebs-snapshot", snap, {{"region", region}, {"snapshot_id", snap}}};
  // Present: deleted without AlreadyGone (the image first: the snapshot is in use until then).
  CHECK_NOTHROW(uploader.reap(image, ctx));
  CHECK_NOTHROW(uploader.reap(snapshot, ctx));
  CHECK_FALSE(snapshot_listed(snap));
  // Gone now: each says so.
  CHECK_THROWS_AS(uploader.reap(image, ctx), lcake::AlreadyGone);
  CHECK_THROWS_AS(uploader.reap(snapshot, ctx), lcake::AlreadyGone);
  lcake::LedgerEntry by_name{3, "aws", "uploader", "ec2-image", "", {{"region", region}, {"name", up.metadata["name"]}}};
  CHECK_THROWS_AS(uploader.reap(by_name, ctx), lcake::AlreadyGone);
  lcake::LedgerEntry never{4, "aws", "uploader", "ebs-snapshot", "", {{"region", region}}};
  CHECK_THROWS_AS(uploader.reap(never, ctx), lcake::AlreadyGone);
  lcake::LedgerEntry unknown{5, "aws", "uploader", "ebs-snapshot", "snap-0123456789abcdef0", {{"region", region}}};
  CHECK_THROWS_AS(uploader.reap(unknown, ctx), lcake::AlreadyGone);
}
