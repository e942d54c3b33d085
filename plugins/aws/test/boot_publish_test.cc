// A bootable disk imported into an AMI, booted by the EC2 verifier (aws-sim runs
// it under QEMU on 127.0.0.N:22), then published into a second region with a
// public launch permission and an SSM parameter; gc keeps it and deletes an
// unpublished one. Checked with awscli.
#include <doctest/doctest.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <set>
#include <tuple>

#include "ami_image.h"
#include "aws_client.h"
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

json cli(const std::vector<std::string>& args, const std::string& region = "") {
  std::string out = aws_test::admin_aws(args, region);
  return out.empty() ? json::object() : json::parse(out);
}

struct BootDisk {
  fs::path disk;      // whole BIOS-bootable disk (raw)
  std::string host_key;
};

// AWS_SIM_BOOT_DISK, else the test guest of this build tree: its base.qcow2 is a whole
// BIOS-bootable disk that reads its keys from a config drive.
const BootDisk& boot_disk() {
  static lcake::test::TempDir dir{"aws-boot-disk"};
  static BootDisk d = [] {
    BootDisk b;
    fs::path source;
    if (const char* given = std::getenv("AWS_SIM_BOOT_DISK")) {
      source = given;
    } else {
      auto guest = lcake::test::test_guest("dropbear");
      source = guest / "base.qcow2";
      if (std::ifstream in(guest / "host_key.pub"); in) std::getline(in, b.host_key);
    }
    // Raw, as the import takes it here; -U: another test's qemu may have the guest open.
    b.disk = dir.path / "disk.raw";
    std::string cmd = "qemu-img convert -U -O raw '" + source.string() + "' '" + b.disk.string() + "'";
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
    return b;
  }();
  return d;
}

struct Fixture {
  Fixture() : ctx(tmp.path) {
    aws_test::services();
    static bool bucket = [] {
      std::string out;
      aws_test::admin_aws_status({"s3api", "create-bucket", "--bucket", "lcake-boot-staging"}, out);
      return true;
    }();
    (void)bucket;
    ctx.ssh_factory = [](const SshOptions& o, testing::FakeContext& c) {
      return core::connect_ssh(o, c.cancel(), [&c](std::string_view m) { c.log(LogLevel::debug, m); });
    };
  }
  AwsClient client(const std::string& region = "") {
    AwsConfig config = AwsConfig::load(process_env(), "", region);
    auto credentials = default_credentials(config, ctx);
    return AwsClient(std::move(config), std::move(credentials), ctx);
  }
  LayerInfo layer{.target = "aws-ami-import", .variant = "tiny", .layer = "stack", .key = std::string(64, 'c'),
                  .lcake_version = "test", .pipeline = "stack", .upload_key = std::string(64, 'd')};
  lcake::test::TempDir tmp{"aws-boot"};
  testing::FakeContext ctx;
};

// Import `disk` and register it the way the uploader's RegisterImage does (here
// through awscli, the independent client); the snapshot then belongs to the image.
std::string import_and_register(Fixture& f, const fs::path& disk, const std::string& format, const std::string& name) {
  auto client = f.client();
  UploadRequest r;
  r.layer = f.layer;
  r.built = artifact(format, disk.string(), {{"format", format}, {"virtual_size", fs::file_size(disk)}});
  json settings = {{"bucket", "lcake-boot-staging"}, {"import_format", "vmdk"}, {"import_poll_seconds", 0.2}};
  auto imported = import_snapshot(client, ImportSettings::from_json(settings), r, f.ctx);
  json mapping = json::array({{{"DeviceName", "/dev/xvda"},
                               {"Ebs", {{"SnapshotId", imported.snapshot_id}, {"VolumeSize", imported.volume_gib},
                                        {"DeleteOnTermination", true}, {"VolumeType", "gp3"}}}}});
  auto reg = cli({"ec2", "register-image", "--name", name, "--architecture", "x86_64", "--root-device-name", "/dev/xvda",
                  "--virtualization-type", "hvm", "--boot-mode", "legacy-bios", "--ena-support",
                  "--block-device-mappings", mapping.dump()});
  f.ctx.ledger().release(imported.ledger_entry);
  std::string ami = reg["ImageId"];
  cli({"ec2", "create-tags", "--resources", ami, "--tags", "Key=lcake:key,Value=" + f.layer.key, "Key=Name,Value=" + name});
  return ami;
}

bool any_named(const json& list, const char* field, const std::string& prefix) {
  for (auto& item : list)
    if (item.value(field, "").rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace

TEST_CASE("verify, publish, gc: the AMI boots and answers over SSH, is copied, made public, named in SSM") {
  Fixture f;
  const auto& boot = boot_disk();
  std::string ami = import_and_register(f, boot.disk, "raw", "lcake-tiny-stack-boot");
  auto client = f.client();

  // ---- verify: boots on 127.0.0.N, a command runs over SSH, nothing is left
  Ec2Verifier verifier({{"ssh_cidr", "127.0.0.1/32"}, {"poll_seconds", 0.5}, {"boot_timeout_minutes", 5}});
  VerifyRequest vr;
  vr.layer = f.layer;
  vr.candidate = artifact("ami", ami, {{"region", "us-east-1"}});
  vr.built = artifact("raw", boot.disk.string(), {{"host_key", boot.host_key}});
  {
    auto session = verifier.start(vr, f.ctx);
    std::string out;
    int rc = session->communicator().run("echo verified-$((6*7)); cat /etc/hostname",
                                         [&](std::string_view c, bool) { out.append(c); }, 60s);
    CHECK(rc == 0);
    CHECK(out.find("verified-42") != std::string::npos);
    session->finish(f.ctx);
  }
  CHECK(f.ctx.memory_ledger.open_entries().empty());
  // The AMI remembers that it passed (tag lcake:verified, UTC time): a fresh runner's find says so.
  std::map<std::string, std::string> verified_tags;
  for (auto& t : cli({"ec2", "describe-images", "--image-ids", ami})["Images"][0].value("Tags", json::array()))
    verified_tags[t["Key"]] = t["Value"];
  CHECK(verified_tags["lcake:verified"].size() == 20);  // 2026-01-01T00:00:00Z
  auto found = find_image(client, f.layer.key);
  REQUIRE(found);
  CHECK(found->id == ami);
  CHECK(found->metadata["lcake_found"] == json({{"verified", true}, {"published", false}}));
  json reservations = cli({"ec2", "describe-instances"})["Reservations"];
  for (auto& r : reservations)
    for (auto& i : r["Instances"]) CHECK(i["State"]["Name"] == "terminated");
  CHECK_FALSE(any_named(cli({"ec2", "describe-key-pairs"})["KeyPairs"], "KeyName", "lcake-verify-"));
  CHECK_FALSE(any_named(cli({"ec2", "describe-security-groups"})["SecurityGroups"], "GroupName", "lcake-verify-"));

  // ---- publish into a second region, public, with an SSM name per region
  json settings = {{"regions", {"us-west-2"}}, {"launch_permission", {"public"}}, {"snapshot_permission", true},
                   {"publish_poll_seconds", 0.5}};
  PublishRequest pr{.layer = f.layer, .options = {{"moving_tags", {"tiny-stack"}}}};
  Artifact uploaded = artifact("ami", ami, {{"region", "us-east-1"}});
  Artifact published = publish_image(client, PublishSettings::from_json(settings), uploaded, pr, f.ctx);
  CHECK(published.metadata["published"] == true);
  std::string copy = published.metadata["regions"].value("us-west-2", "");
  REQUIRE(copy.rfind("ami-", 0) == 0);
  CHECK(copy != ami);
  CHECK(f.ctx.memory_ledger.open_entries().empty());

  auto copied = cli({"ec2", "describe-images", "--image-ids", copy}, "us-west-2")["Images"];
  REQUIRE(copied.size() == 1);
  CHECK(copied[0]["State"] == "available");
  std::map<std::string, std::string> tags;
  for (auto& t : copied[0].value("Tags", json::array())) tags[t["Key"]] = t["Value"];
  CHECK(tags["lcake:key"] == f.layer.key);  // the source's tags, copied
  CHECK(tags["lcake:source-image"] == ami);
  CHECK(tags["lcake:published"] == "true");
  CHECK(find_image(client, f.layer.key)->metadata["lcake_found"] == json({{"verified", true}, {"published", true}}));
  for (auto [region, image] : {std::pair{std::string("us-east-1"), ami}, std::pair{std::string("us-west-2"), copy}}) {
    CAPTURE(region);
    auto perms = cli({"ec2", "describe-image-attribute", "--image-id", image, "--attribute", "launchPermission"}, region);
    REQUIRE(perms["LaunchPermissions"].size() == 1);
    CHECK(perms["LaunchPermissions"][0]["Group"] == "all");
    auto param = cli({"ssm", "get-parameter", "--name", "/lcake/tiny-stack"}, region)["Parameter"];
    CHECK(param["Value"] == image);
    CHECK(param.value("DataType", "") == "aws:ec2:image");
  }

  // ---- gc: the published AMI stays; an unpublished one goes with its snapshot
  CHECK_FALSE(remove_unpublished_image(client, ami));
  CHECK(cli({"ec2", "describe-images", "--image-ids", ami})["Images"].size() == 1);
  fs::path small = f.tmp.path / "small.raw";
  { std::ofstream(small, std::ios::binary) << std::string(1 << 20, 'x'); }
  fs::resize_file(small, 8 << 20);
  std::string stale = import_and_register(f, small, "raw", "lcake-tiny-stack-stale");
  auto stale_snaps = describe_image(client, stale).snapshots;
  REQUIRE(stale_snaps.size() == 1);
  CHECK(remove_unpublished_image(client, stale));
  std::string out;
  aws_test::admin_aws_status({"ec2", "describe-images", "--image-ids", stale}, out);
  CHECK((out.empty() || json::parse(out)["Images"].empty()));
  CHECK(aws_test::admin_aws_status({"ec2", "describe-snapshots", "--snapshot-ids", stale_snaps[0]}, out) != 0);
}

TEST_CASE("publish: a KMS-encrypted copy, snapshot volume permissions, a deprecation time in every region") {
  Fixture f;
  fs::path disk = f.tmp.path / "pub.raw";
  { std::ofstream(disk, std::ios::binary) << std::string(1 << 20, 'p'); }
  fs::resize_file(disk, 8 << 20);
  std::string ami = import_and_register(f, disk, "raw", "lcake-tiny-stack-kms");
  auto client = f.client();
  // A customer-managed key in the destination region, made by the admin (the test user may not).
  std::string key = cli({"kms", "create-key", "--description", "lcake publish test"}, "us-west-2")["KeyMetadata"]["Arn"];
  REQUIRE(key.rfind("arn:aws:kms:us-west-2:", 0) == 0);
  const std::string account = "111122223333";
  json settings = {{"regions", {"us-west-2"}}, {"kms_key_ids", {{"us-west-2", key}}},
                   {"launch_permission", {"public", account}}, {"snapshot_permission", true},
                   {"deprecate_after_days", 30}, {"publish_poll_seconds", 0.2}};
  PublishRequest pr{.layer = f.layer, .options = json::object()};
  auto before = std::chrono::system_clock::now();
  Artifact published = publish_image(client, PublishSettings::from_json(settings), artifact("ami", ami, {{"region", "us-east-1"}}),
                                     pr, f.ctx);
  std::string copy = published.metadata["regions"].value("us-west-2", "");
  REQUIRE(copy.rfind("ami-", 0) == 0);
  CHECK(f.ctx.memory_ledger.open_entries().empty());

  // CopyImage was asked for encryption with that key (moto ignores it; aws-sim keeps it, awscli shows it).
  auto copied = cli({"ec2", "describe-images", "--image-ids", copy}, "us-west-2")["Images"];
  REQUIRE(copied.size() == 1);
  const json& copy_ebs = copied[0]["BlockDeviceMappings"][0]["Ebs"];
  CHECK(copy_ebs.value("Encrypted", false) == true);
  CHECK(copy_ebs.value("KmsKeyId", "") == key);
  std::string copy_snap = copy_ebs["SnapshotId"];
  auto snap_info = cli({"ec2", "describe-snapshots", "--snapshot-ids", copy_snap}, "us-west-2")["Snapshots"];
  REQUIRE(snap_info.size() == 1);
  CHECK(snap_info[0].value("Encrypted", false) == true);
  CHECK(snap_info[0].value("KmsKeyId", "") == key);
  auto source = cli({"ec2", "describe-images", "--image-ids", ami})["Images"];
  REQUIRE(source.size() == 1);
  std::string source_snap = source[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"];
  CHECK_FALSE(source[0]["BlockDeviceMappings"][0]["Ebs"].value("Encrypted", false));  // only the copy was asked

  auto days30 = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::hours(24 * 30)).count();
  for (auto [region, image, snap] : {std::tuple{std::string("us-east-1"), ami, source_snap},
                                     std::tuple{std::string("us-west-2"), copy, copy_snap}}) {
    CAPTURE(region);
    // Launch permission for all and the account; createVolumePermission on the snapshot for the same two.
    std::set<std::string> launch, volume;
    json launch_doc = cli({"ec2", "describe-image-attribute", "--image-id", image, "--attribute", "launchPermission"},
                          region);
    for (const auto& p : launch_doc["LaunchPermissions"]) launch.insert(p.value("Group", p.value("UserId", "")));
    CHECK_MESSAGE((launch == std::set<std::string>{"all", account}), launch_doc.dump());
    json volume_doc = cli({"ec2", "describe-snapshot-attribute", "--snapshot-id", snap, "--attribute",
                           "createVolumePermission"}, region);
    for (const auto& p : volume_doc["CreateVolumePermissions"]) volume.insert(p.value("Group", p.value("UserId", "")));
    CHECK_MESSAGE((volume == std::set<std::string>{"all", account}), volume_doc.dump());
    // Deprecation 30 days after publishing (to the minute).
    std::string at = cli({"ec2", "describe-images", "--image-ids", image}, region)["Images"][0].value("DeprecationTime", "");
    REQUIRE(at.size() >= 19);
    std::tm tm{};
    REQUIRE(strptime(at.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
    auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
    auto off = std::chrono::duration_cast<std::chrono::seconds>(when - before).count() - days30;
    CHECK_MESSAGE((off > -120 && off < 180), at << " is not 30 days after publishing");
  }
  auto deprecations = aws_test::sim_events("image-deprecation");
  CHECK(std::count_if(deprecations.begin(), deprecations.end(), [&](const json& e) {
          return e.value("image", "") == ami || e.value("image", "") == copy;
        }) == 2);
}

}  // namespace lcake::aws
