// `lcake --target aws-ami` (and aws-ami-import) end to end through the real
// CLI on the bundled example pipeline: the qemu builder under TCG, moto_server
// with signature checks behind the aws-sim simulator (tests/services/aws), which
// boots the uploaded AMI under qemu on 127.0.0.N. Every result is checked with
// awscli against the services and with the simulator's request log, not with
// lcake's own state. Skipped (77) without moto_server or without root.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "aws_services.h"
#include "lcake_process.h"
#include "test_support.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace lcake::test;

namespace {

constexpr const char* kRegion2 = "eu-west-1";
constexpr const char* kVariant = "tiny-dropbear";
constexpr const char* kBucket = "lcake-e2e-staging";

void require_environment() {
  static bool checked = [] {
    if (::geteuid() != 0) {
      std::cout << "SKIPPED: aws_e2e_test needs root (aws-sim forwards 127.0.0.N:22 to the booted AMI; the "
                   "test guest is built as root)\n"
                << std::flush;
      std::_Exit(77);
    }
    aws_test::services();  // exits 77 without moto_server
    return true;
  }();
  (void)checked;
}

fs::path guest_parent() {
  static fs::path dir = lcake::test::test_guest("dropbear").parent_path();
  return dir;
}

// A private copy of the bundled configs and example files (same layout), one state dir per project.
struct AwsProject {
  fs::path dir = make_temp_dir("lcake-aws-e2e");
  std::string target;
  fs::path state_dir;
  explicit AwsProject(std::string t) : target(std::move(t)), state_dir(dir / "state") {
    fs::copy(source_dir() / "configs", dir / "configs", fs::copy_options::recursive);
    fs::create_directories(dir / "examples");
    fs::copy(source_dir() / "examples/stack", dir / "examples/stack", fs::copy_options::recursive);
    // What a user adds for a real account, here for the services: TCG, a second region,
    // public launch permission, fast polling; the staging bucket of import mode. One
    // variant (tiny-dropbear) keeps the run short: the other is deleted from the pipeline.
    json overlay = {{"pipeline", {{"variants", {{"tiny-openssh", nullptr}}}}},
                    {"target",
                     {{"builder", {{"settings", {{"accelerator", "tcg"}}}}},
                      {"uploader", {{"settings", {{"regions", {kRegion2}}, {"launch_permission", {"public"}},
                                                  {"publish_poll_seconds", 0.5}}}}},
                      {"verifier", {{"settings", {{"poll_seconds", 0.5}, {"boot_timeout_minutes", 5}}}}}}}};
    if (target == "aws-ami-import") {
      overlay["target"]["uploader"]["settings"]["bucket"] = kBucket;
      overlay["target"]["uploader"]["settings"]["import_poll_seconds"] = 0.5;
      // Stream-optimized VMDK: only the disk's data goes through S3, not its whole 1 GiB.
      overlay["target"]["uploader"]["settings"]["import_format"] = "vmdk";
    }
    write_file(dir / "overlay.json", overlay.dump(2));
  }
  ~AwsProject() {
    std::error_code ec;
    if (!std::getenv("LCAKE_KEEP_AWS_SIM")) fs::remove_all(dir, ec);
  }

  // `signal`: sent once stderr shows `when` (Ctrl-C = SIGINT, kill -9 = SIGKILL).
  ProcessResult lcake(std::vector<std::string> args, bool config = true, std::optional<int> signal = {},
                      const std::string& when = "") {
    std::string command = !args.empty() && args[0].rfind("-", 0) != 0 ? args[0] : "";
    if (!command.empty()) args.erase(args.begin());
    std::vector<std::string> all;
    if (!command.empty()) all.push_back(command);
    all.insert(all.end(), {"--state-dir", state_dir.string()});
    if (config)
      all.insert(all.end(), {"--config-dir", (dir / "configs").string(), "--target", target, "--overlay",
                             (dir / "overlay.json").string(), "--var", "GUEST_DIR=" + guest_parent().string(),
                             "--var", "SSH_CIDR=127.0.0.1/32"});
    all.insert(all.end(), args.begin(), args.end());
    RunSpec spec;
    spec.args = all;
    spec.cwd = dir;
    spec.env["XDG_CONFIG_HOME"] = (dir / "xdg").string();
    spec.timeout = std::chrono::seconds(600);
    spec.signal = signal;
    spec.signal_when = when;
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_process(lcake_binary().string(), spec);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("lcake " << command << " -> " << r.exit_code << " in " << secs << " s\n"
                     << r.err.substr(r.err.size() > 8000 ? r.err.size() - 8000 : 0));
    return r;
  }
  ProcessResult build(std::vector<std::string> extra = {}) {
    return lcake(std::move(extra));
  }
  // The newest upload record of a layer (`lcake artifacts --json`).
  json upload(const std::string& layer) {
    json found;
    for (auto& a : json::parse(lcake({"artifacts", "--json"}, false).out))
      if (a["variant"] == kVariant && a["layer"] == layer && a["stage"] == "upload" &&
          (found.is_null() || a["created"].get<std::string>() >= found["created"].get<std::string>()))
        found = a;
    return found;
  }
};

// ---- independent checks: awscli (as the services' admin) and the simulator's log ----

// Images by id in `region` (one call); missing ones are left out.
std::map<std::string, json> images(const std::vector<std::string>& ids, const std::string& region = "") {
  std::map<std::string, json> out;
  std::vector<std::string> args = {"ec2", "describe-images", "--image-ids"};
  args.insert(args.end(), ids.begin(), ids.end());
  std::string text;
  if (aws_test::admin_aws_status(args, text, region) != 0) {  // one unknown id fails the call: ask one by one
    if (ids.size() == 1) return out;
    for (const auto& id : ids) out.merge(images({id}, region));
    return out;
  }
  json answer = json::parse(text);  // (a range-for over a temporary's member would dangle)
  for (const auto& i : answer["Images"]) out[i["ImageId"].get<std::string>()] = i;
  return out;
}
json image(const std::string& id, const std::string& region = "") {
  auto found = images({id}, region);
  return found.count(id) ? found[id] : json();
}

// Which of these snapshots exist (one call, or one each when one is missing).
std::set<std::string> snapshots(const std::vector<std::string>& ids, const std::string& region = "") {
  std::set<std::string> out;
  std::vector<std::string> args = {"ec2", "describe-snapshots", "--snapshot-ids"};
  args.insert(args.end(), ids.begin(), ids.end());
  std::string text;
  if (aws_test::admin_aws_status(args, text, region) != 0) {
    if (ids.size() == 1) return out;
    for (const auto& id : ids) out.merge(snapshots({id}, region));
    return out;
  }
  json answer = json::parse(text);
  for (const auto& sn : answer["Snapshots"]) out.insert(sn["SnapshotId"].get<std::string>());
  return out;
}

std::string root_snapshot(const json& img) { return img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]; }

// Images in `region` that lcake copied from one of `sources`: source -> copies.
std::map<std::string, std::vector<json>> copies_of(const std::vector<std::string>& sources, const std::string& region) {
  std::string values;
  for (const auto& s : sources) values += (values.empty() ? "" : ",") + s;
  std::map<std::string, std::vector<json>> out;
  json answer = aws_test::admin_awscli({"ec2", "describe-images", "--filters", "Name=tag:lcake:source-image,Values=" + values},
                                      region);
  for (const auto& i : answer["Images"])
    for (const auto& t : i.value("Tags", json::array()))
      if (t["Key"] == "lcake:source-image") out[t["Value"].get<std::string>()].push_back(i);
  return out;
}

// SSM parameters' values in `region` (one call); missing names are left out.
std::map<std::string, std::string> ssm_values(const std::vector<std::string>& names, const std::string& region = "") {
  std::vector<std::string> args = {"ssm", "get-parameters", "--names"};
  args.insert(args.end(), names.begin(), names.end());
  std::map<std::string, std::string> out;
  json answer = aws_test::admin_awscli(args, region);
  for (const auto& p : answer["Parameters"]) out[p["Name"].get<std::string>()] = p["Value"].get<std::string>();
  return out;
}

std::size_t events(const std::string& kind) { return aws_test::sim_events(kind).size(); }

// The blocks the simulator accepted for a snapshot: index -> checksum.
std::map<long, std::string> written_blocks(const std::string& snapshot) {
  std::map<long, std::string> out;
  for (const auto& e : aws_test::sim_events("block-written"))
    if (e.value("snapshot", "") == snapshot) out[e["index"].get<long>()] = e["checksum"];
  return out;
}

std::string started_parent(const std::string& snapshot) {
  for (const auto& e : aws_test::sim_events("snapshot-started"))
    if (e.value("snapshot", "") == snapshot) return e["parent"].is_string() ? e["parent"].get<std::string>() : "";
  return "<not started through EBS direct>";
}

// Nothing of a verify run left: instances terminated, no lcake-verify key pair or group;
// with `staging`, the import mode's bucket holds no object and no multipart upload.
void check_nothing_leaked(bool staging = false) {
  json instances = aws_test::admin_awscli({"ec2", "describe-instances"});
  for (const auto& r : instances["Reservations"])
    for (const auto& i : r["Instances"]) CHECK_MESSAGE(i["State"]["Name"] == "terminated", i["InstanceId"]);
  json keys = aws_test::admin_awscli({"ec2", "describe-key-pairs"});
  for (const auto& k : keys["KeyPairs"])
    CHECK_MESSAGE(k["KeyName"].get<std::string>().rfind("lcake-verify", 0) != 0, k["KeyName"]);
  json groups = aws_test::admin_awscli({"ec2", "describe-security-groups"});
  for (const auto& g : groups["SecurityGroups"])
    CHECK_MESSAGE(g["GroupName"].get<std::string>().rfind("lcake-verify", 0) != 0, g["GroupName"]);
  if (!staging) return;
  std::string out;
  if (aws_test::admin_aws_status({"s3api", "list-objects-v2", "--bucket", kBucket}, out) == 0 &&
      out.find_first_not_of(" \n") != std::string::npos)
    CHECK_MESSAGE(json::parse(out).value("KeyCount", 0) == 0, out);
  if (aws_test::admin_aws_status({"s3api", "list-multipart-uploads", "--bucket", kBucket}, out) == 0 &&
      out.find_first_not_of(" \n") != std::string::npos)
    CHECK_MESSAGE(!json::parse(out).contains("Uploads"), out);
}

}  // namespace

TEST_CASE("lcake --target aws-ami: parent-relative snapshots, verified on EC2, published; cached; gc") {
  require_environment();
  AwsProject p("aws-ami");
  const std::size_t boots_before = events("instance-booted");

  // ---- cold run ----
  auto cold = p.build();
  REQUIRE(cold.exit_code == 0);

  const std::vector<std::string> layers = {"base", "newinstall", "stack"};
  std::map<std::string, std::string> ami;  // layer -> its AMI (lcake's record)
  std::vector<std::string> amis;
  for (const auto& layer : layers) {
    json up = p.upload(layer);
    REQUIRE_MESSAGE(up.is_object(), layer);
    // Only the stack layer has verify steps; the layers under it publish with it.
    CHECK(up["verified"] == (layer == "stack"));
    CHECK(up["published"] == true);
    ami[layer] = up["artifact"]["id"];
    amis.push_back(ami[layer]);
  }
  auto img = images(amis);  // awscli's view of them
  for (const auto& id : amis) {
    REQUIRE_MESSAGE(img.count(id), id);
    CHECK(img[id]["State"] == "available");
  }
  // Each child's snapshot was started on its parent's, and sent only blocks that differ from it.
  std::map<std::string, std::string> snap;  // layer -> root snapshot
  for (const auto& layer : layers) snap[layer] = root_snapshot(img[ami[layer]]);
  CHECK(started_parent(snap["base"]) == "");
  auto base_blocks = written_blocks(snap["base"]);
  CHECK(base_blocks.size() > 10);
  std::map<long, std::string> chain = base_blocks;  // the blocks a snapshot sees, by index
  std::string parent = snap["base"];
  for (std::string layer : {"newinstall", "stack"}) {
    CAPTURE(layer);
    CHECK(started_parent(snap[layer]) == parent);
    auto blocks = written_blocks(snap[layer]);
    CHECK(!blocks.empty());
    CHECK(blocks.size() * 4 < base_blocks.size());  // a few changed blocks, not the disk
    for (const auto& [index, sum] : blocks) {
      auto was = chain.find(index);
      CHECK_MESSAGE((was == chain.end() || was->second != sum), "block " << index << " sent unchanged");
      chain[index] = sum;
    }
    // EBS itself sees the lineage: ListChangedBlocks between parent and child.
    auto changed = aws_test::admin_awscli(
        {"ebs", "list-changed-blocks", "--first-snapshot-id", parent, "--second-snapshot-id", snap[layer]});
    CHECK(changed["ChangedBlocks"].size() == blocks.size());
    parent = snap[layer];
  }
  // The candidate (the stack AMI) booted in aws-sim, the demo ran in it, and it was torn down.
  const std::string stack_ami = ami["stack"];
  CHECK(cold.err.find("Processing completed successfully") != std::string::npos);
  auto booted = aws_test::sim_events("instance-booted");
  REQUIRE(booted.size() == boots_before + 1);
  CHECK(booted.back()["image"] == stack_ami);
  // Published: a copy in the second region, launchable by all in both, SSM → the newest AMI.
  auto copies = copies_of(amis, kRegion2);
  std::map<std::string, std::string> copy;  // layer -> its copy in kRegion2
  for (const auto& layer : layers) {
    CAPTURE(layer);
    REQUIRE(copies[ami[layer]].size() == 1);
    const json& c = copies[ami[layer]][0];
    copy[layer] = c["ImageId"];
    CHECK(c["State"] == "available");
    CHECK(c["Public"] == true);
    CHECK(img[ami[layer]]["Public"] == true);
  }
  const std::vector<std::string> names = {"/lcake/tiny-dropbear-stack", "/lcake/tiny-dropbear-stack-w_2016_05",
                                          "/lcake/tiny-dropbear-newinstall"};
  auto ssm1 = ssm_values(names), ssm2 = ssm_values(names, kRegion2);
  CHECK(ssm1[names[0]] == stack_ami);
  CHECK(ssm1[names[1]] == stack_ami);
  CHECK(ssm1[names[2]] == ami["newinstall"]);
  CHECK(ssm2[names[0]] == copy["stack"]);
  CHECK(ssm2[names[1]] == copy["stack"]);
  CHECK(ssm2[names[2]] == copy["newinstall"]);
  check_nothing_leaked();

  // ---- second run: all cache hits, nothing new ----
  auto count_created = [] {
    return events("snapshot-started") + events("image-registered") + events("image-copied") + events("instance-booted");
  };
  std::size_t created = count_created();
  auto again = p.build();
  REQUIRE(again.exit_code == 0);
  CHECK(count(again.err, ": cached") == 3);
  CHECK(count_created() == created);
  CHECK(again.err.find("booting") == std::string::npos);

  // ---- a fresh state dir: the AMIs are found by their lcake:key tags ----
  {
    AwsProject fresh("aws-ami");
    std::size_t snaps = events("snapshot-started"), registered = events("image-registered");
    std::size_t copied = events("image-copied"), booted_before = events("instance-booted");
    // The verifier marked the candidate it booted (awscli sees the tag); publish copied it along.
    auto tag_of = [](const json& i, const std::string& key) {
      for (const auto& t : i.value("Tags", json::array()))
        if (t["Key"] == key) return t["Value"].get<std::string>();
      return std::string();
    };
    CHECK(tag_of(image(stack_ami), "lcake:verified").size() == 20);
    CHECK(tag_of(image(copy["stack"], kRegion2), "lcake:verified").size() == 20);
    CHECK(tag_of(image(ami["base"]), "lcake:verified").empty());  // not booted itself
    auto found = fresh.build();
    REQUIRE(found.exit_code == 0);
    CHECK(found.err.find("building") == std::string::npos);  // no layer built again
    CHECK(events("snapshot-started") == snaps);
    CHECK(events("image-registered") == registered);
    CHECK(events("image-copied") == copied);  // the earlier copies are reused
    // Found verified (lcake:verified) and published (lcake:published): not booted or published again.
    CHECK(events("instance-booted") == booted_before);
    for (const auto& layer : layers) {
      json up = fresh.upload(layer);
      CHECK(up["artifact"]["id"] == ami[layer]);
      CHECK(up["published"] == true);
    }
    CHECK(fresh.upload("stack")["verified"] == true);
    check_nothing_leaked();
  }

  // ---- an unverified AMI is never published or copied ----
  std::size_t copied = events("image-copied");
  auto bad = p.build({"--set", R"(/pipeline/layers/stack/provisioners/12={"type":"shell","inline":["touch /etc/lcake-broken"]})",
                      "--set", R"(/pipeline/verify/3={"name":"not-broken","run":"test ! -f /etc/lcake-broken"})"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("verify step 'not-broken' exited with status 1") != std::string::npos);
  json failed = p.upload("stack");
  REQUIRE(failed.is_object());
  const std::string failed_ami = failed["artifact"]["id"];
  REQUIRE(failed_ami != stack_ami);
  CHECK(failed["verified"] == false);
  CHECK(failed["published"] == false);
  json failed_img = image(failed_ami);
  REQUIRE(failed_img.is_object());  // left unpublished (docs: gc removes it once superseded)
  const std::string failed_snap = root_snapshot(failed_img);
  CHECK(started_parent(failed_snap) == snap["newinstall"]);
  CHECK(failed_img["Public"] == false);
  CHECK(events("image-copied") == copied);
  CHECK(copies_of({failed_ami}, kRegion2).empty());
  CHECK(ssm_values({names[0]})[names[0]] == stack_ami);
  CHECK(ssm_values({names[0]}, kRegion2)[names[0]] == copy["stack"]);
  CHECK(aws_test::sim_events("instance-booted").back()["image"] == failed_ami);
  check_nothing_leaked();

  // ---- gc: the superseded unpublished AMI and its snapshot go; published ones stay ----
  auto gc = p.lcake({"gc"});
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("2 superseded artifact(s)") != std::string::npos);  // the AMI and its build
  CHECK(image(failed_ami).is_null());
  CHECK(snapshots({failed_snap}).empty());
  auto kept = images(amis);
  std::vector<std::string> snaps, copy_ids;
  for (const auto& layer : layers) {
    CHECK(kept[ami[layer]].value("State", "") == "available");
    snaps.push_back(snap[layer]);
    copy_ids.push_back(copy[layer]);
  }
  CHECK(snapshots(snaps).size() == 3);
  auto kept2 = images(copy_ids, kRegion2);
  for (const auto& id : copy_ids) CHECK(kept2[id].value("State", "") == "available");
  CHECK(ssm_values({names[0]})[names[0]] == stack_ami);
  // The published stack is still a cache hit afterwards.
  std::size_t before = count_created();
  CHECK(p.build().exit_code == 0);
  CHECK(count_created() == before);
}

// Snapshots started (EBS direct) since the log had `since` of them.
std::vector<std::string> snapshots_started_since(std::size_t since) {
  std::vector<std::string> out;
  auto started = aws_test::sim_events("snapshot-started");
  for (std::size_t i = since; i < started.size(); ++i) out.push_back(started[i]["snapshot"]);
  return out;
}

// gc's "gc: N deleted, M already gone, F failed, …" line as {N, M, F}.
std::array<int, 3> gc_counts(const std::string& out) {
  std::array<int, 3> c{-1, -1, -1};
  auto at = out.find("gc: ");
  if (at != std::string::npos) std::sscanf(out.c_str() + at, "gc: %d deleted, %d already gone, %d failed", &c[0], &c[1], &c[2]);
  return c;
}

// EBS volumes still attached to an instance (a root volume the instance's termination did not delete).
// (moto also keeps a stand-in volume for each registered image, never attached: not counted.)
std::size_t attached_volumes() {
  std::size_t n = 0;
  json answer = aws_test::admin_awscli({"ec2", "describe-volumes"});
  for (const auto& v : answer["Volumes"]) n += !v.value("Attachments", json::array()).empty();
  return n;
}

TEST_CASE("lcake --target aws-ami: Ctrl-C and kill -9 during upload and during verify; lcake gc leaves nothing") {
  require_environment();
  aws_test::clear_faults();
  AwsProject p("aws-ami");
  // One layer with verify steps of its own keeps each run short; a tag of its own gives it an upload
  // key of its own (the first case's base AMI is not found and reused).
  const std::vector<std::string> only = {
      "--only", std::string(kVariant) + "/base", "--set",
      R"(/pipeline/layers/base/verify=[{"name":"release","run":"cat /etc/lcake-release","expect_output":["tiny-dropbear"]}])",
      "--set", R"(/pipeline/layers/base/uploader={"tags":{"lcake-test":"interrupted"}})"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> all = only;
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };
  // gc with the same configuration (not --only), so the candidate's upload key is the current one.
  const std::vector<std::string> gc = {"gc", only[2], only[3], only[4], only[5]};
  REQUIRE(attached_volumes() == 0);
  // The upload hangs after a few blocks (aws-sim holds PutSnapshotBlock), so the signal lands mid-upload.
  const json hang = {{"operation", "PutSnapshotBlock"}, {"kind", "hang"}, {"after", 4}, {"count", -1}, {"seconds", 600}};
  auto pending_snapshots_gone = [&](std::size_t since, const char* when) {
    auto started = snapshots_started_since(since);
    CHECK_MESSAGE(!started.empty(), when);
    for (const auto& snap : started) CHECK_MESSAGE(snapshots({snap}).empty(), when << ": " << snap << " left");
  };
  auto no_image_of_base = [&](const char* when) {
    json found = aws_test::admin_awscli({"ec2", "describe-images", "--owners", "self", "--filters",
                                        "Name=tag:lcake:variant,Values=" + std::string(kVariant),
                                        "Name=tag:lcake:layer,Values=base", "Name=tag:lcake:target,Values=aws-ami"});
    for (const auto& i : found["Images"])
      CHECK_MESSAGE(i.value("Public", false), when << ": unpublished " << i["ImageId"] << " left");
  };

  // ---- Ctrl-C during the upload: lcake cleans up itself ----
  std::size_t since = events("snapshot-started");
  aws_test::add_fault(hang);
  auto ctrl_c = p.lcake(with({}), true, SIGINT, "aws: snapshot snap-");
  aws_test::clear_faults();
  CHECK(ctrl_c.exit_code == 130);
  pending_snapshots_gone(since, "Ctrl-C during upload");
  no_image_of_base("Ctrl-C during upload");
  auto gc0 = p.lcake(gc);
  CHECK(gc_counts(gc0.out) == std::array<int, 3>{0, 0, 0});  // nothing was left for gc

  // ---- kill -9 during the upload: the pending snapshot stays until lcake gc ----
  since = events("snapshot-started");
  aws_test::add_fault(hang);
  auto killed = p.lcake(with({}), true, SIGKILL, "aws: snapshot snap-");
  aws_test::clear_faults();
  CHECK(killed.exit_code == 128 + SIGKILL);
  auto left = snapshots_started_since(since);
  REQUIRE(left.size() == 1);
  CHECK(snapshots({left[0]}).size() == 1);  // still there: nobody cleaned up
  auto gc1 = p.lcake(gc);
  CHECK(gc1.exit_code == 0);
  auto c1 = gc_counts(gc1.out);
  CHECK(c1[0] >= 1);  // the pending snapshot (and the work files it was read from)
  CHECK(c1[2] == 0);
  pending_snapshots_gone(since, "kill -9 during upload, then gc");
  no_image_of_base("kill -9 during upload, then gc");

  // ---- Ctrl-C during verify: instance, key pair and group torn down by lcake ----
  std::size_t boots = events("instance-booted");
  auto ctrl_c_verify = p.lcake(with({}), true, SIGINT, "connecting over SSH");
  CHECK(ctrl_c_verify.exit_code == 130);
  CHECK(events("instance-booted") == boots + 1);
  check_nothing_leaked();
  json candidate = p.upload("base");
  REQUIRE(candidate.is_object());
  CHECK(candidate["verified"] == false);  // kept, private, to be verified by the next run
  CHECK(image(candidate["artifact"]["id"]).value("Public", true) == false);

  // ---- kill -9 during verify: what the verifier made stays until lcake gc ----
  boots = events("instance-booted");
  auto killed_verify = p.lcake(with({}), true, SIGKILL, "connecting over SSH");
  CHECK(killed_verify.exit_code == 128 + SIGKILL);
  REQUIRE(events("instance-booted") == boots + 1);
  json running = aws_test::admin_awscli({"ec2", "describe-instances", "--filters", "Name=instance-state-name,Values=running,pending"});
  CHECK(running["Reservations"].size() == 1);  // the killed run's instance is still up
  auto gc2 = p.lcake(gc);
  CHECK(gc2.exit_code == 0);
  auto c2 = gc_counts(gc2.out);
  CHECK(c2[0] >= 3);  // instance, security group, key pair (and the private key's files)
  CHECK(c2[2] == 0);
  check_nothing_leaked();
  CHECK(attached_volumes() == 0);

  // ---- the next run verifies the same candidate (no new upload) and publishes it ----
  std::size_t snaps = events("snapshot-started");
  auto done = p.lcake(with({}));
  REQUIRE(done.exit_code == 0);
  CHECK(events("snapshot-started") == snaps);
  CHECK(p.upload("base")["artifact"]["id"] == candidate["artifact"]["id"]);
  CHECK(p.upload("base")["published"] == true);
  auto gc3 = p.lcake(gc);
  CHECK(gc3.exit_code == 0);
  CHECK(gc_counts(gc3.out) == std::array<int, 3>{0, 0, 0});
  check_nothing_leaked();
  CHECK(attached_volumes() == 0);
}

TEST_CASE("lcake --target aws-ami-import: S3 staging + ImportSnapshot, verified, published, bucket left empty") {
  require_environment();
  aws_test::admin_aws({"s3api", "create-bucket", "--bucket", kBucket});
  AwsProject p("aws-ami-import");
  std::size_t imports = events("import-completed");
  // One layer, with verify steps of its own: import, register, boot, check, publish.
  auto r = p.lcake({"--only", std::string(kVariant) + "/base", "--set",
                    R"(/pipeline/layers/base/verify=[{"name":"release","run":"cat /etc/lcake-release","expect_output":["tiny-dropbear"]}])"});
  REQUIRE(r.exit_code == 0);
  CHECK(events("import-completed") == imports + 1);
  json up = p.upload("base");
  REQUIRE(up.is_object());
  const std::string ami = up["artifact"]["id"];
  CHECK(up["verified"] == true);
  CHECK(up["published"] == true);
  json img = image(ami);
  REQUIRE(img.is_object());
  CHECK(img["Public"] == true);
  CHECK(aws_test::sim_events("instance-booted").back()["image"] == ami);
  CHECK(copies_of({ami}, kRegion2)[ami].size() == 1);
  check_nothing_leaked(true);  // and the staging bucket is empty, no multipart upload left
}
