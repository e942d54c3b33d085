// The Glance uploader against real Keystone + Glance, every result read back with
// the independent client (`openstack image show/list/save`): qcow2 overlays and raw
// disks, find() from a fresh runner, cancel mid-upload, Glance answering 401/503
// (through a fault-injecting proxy), import, publish with moving names and members.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "glance_uploader.h"
#include "lcake/errors.hpp"
#include "lcake/files.hpp"
#include "lcake/testing.hpp"
#include "openstack_test_services.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake::openstack;
using namespace lcake::openstack::test;
using lcake::testing::FakeContext;
using nlohmann::json;

namespace {

std::string random_key() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  char b[16];
  in.read(b, sizeof b);
  return lcake::sha256_hex(std::string_view(b, sizeof b));
}

lcake::LayerInfo layer(const std::string& name) {
  lcake::LayerInfo l;
  l.target = "qemu-openstack", l.variant = "tiny", l.layer = name, l.pipeline = "stack";
  l.key = random_key(), l.upload_key = random_key(), l.lcake_version = "test";
  return l;
}

json show(const std::string& id, int* status = nullptr) {
  std::string out = openstack_cli(keystone_glance(), "image show " + id + " -f json", status);
  if (status && *status != 0) return nullptr;
  return json::parse(out);
}

std::string prop(const json& shown, const std::string& key) {
  const json& p = shown["properties"];
  return p.contains(key) ? p[key].get<std::string>() : "";
}

// Images of the demo project carrying this upload key, per the CLI.
// os_hash_* are top-level in Glance but under "properties" in some CLI versions.
json field(const json& shown, const std::string& key) {
  if (shown.contains(key) && !shown[key].is_null()) return shown[key];
  return shown["properties"].contains(key) ? shown["properties"][key] : json(nullptr);
}

json images_with_key(const std::string& key) {
  return json::parse(openstack_cli(keystone_glance(), "image list --property lcake_key=" + key + " -f json"));
}

struct Disks {
  lcake::test::TempDir tmp{"lcake-glance-disks"};
  fs::path base = tmp.path / "base.qcow2", overlay = tmp.path / "overlay.qcow2", raw = tmp.path / "disk.raw";
  Disks() {
    sh("qemu-img create -q -f qcow2 " + base.string() + " 64M");
    sh("qemu-io -f qcow2 -c 'write -P 0x5a 0 3M' " + base.string() + " >/dev/null");
    sh("qemu-img create -q -f qcow2 -b " + base.string() + " -F qcow2 " + overlay.string());
    sh("qemu-io -f qcow2 -c 'write -P 0xc3 1M 2M' " + overlay.string() + " >/dev/null");
    sh("head -c 6291456 /dev/urandom > " + raw.string());
  }
};

Disks& disks() {
  static Disks d;
  return d;
}

lcake::Artifact built(const fs::path& file, const std::string& type) {
  lcake::Artifact a;
  a.type = type, a.id = file.string(), a.plugin = "qemu";
  return a;
}

json settings(json extra = json::object()) {
  json s = {{"cloud", "lcake-test"}, {"properties", {{"os_distro", "debian"}, {"hw_disk_bus", "virtio"}}},
            {"tags", {"lcake-test"}}, {"min_ram", 128}};
  s.update(extra);
  return s;
}

void use_test_clouds() { set_os_env({{"OS_CLIENT_CONFIG_FILE", keystone_glance().clouds_yaml().string()}}); }

// The proxy in front of Glance (tests/services/openstack/glance-fault-proxy.py), and a clouds.yaml whose
// image_endpoint_override points at it.
struct FaultProxy {
  lcake::test::TempDir tmp{"lcake-glance-proxy"};
  int pid = 0;
  std::string url;
  fs::path log = tmp.path / "requests.log";
  FaultProxy() {
    auto& s = keystone_glance();
    fs::path port_file = tmp.path / "port";
    std::string script = std::string(LCAKE_TEST_SOURCE_DIR) + "/tests/services/openstack/glance-fault-proxy.py";
    pid = std::stoi(sh("env -u PYTHONPATH -u VIRTUAL_ENV /usr/bin/python3 " + script + " " + s.glance_url + " " +
                       port_file.string() + " " + log.string() + " >/dev/null 2>&1 & echo $!"));
    for (int i = 0; i < 100 && !fs::exists(port_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(fs::exists(port_file));
    std::ifstream in(port_file);
    std::string port;
    in >> port;
    url = "http://127.0.0.1:" + port;
    std::string yaml;
    std::ifstream y(s.clouds_yaml());
    std::getline(y, yaml, '\0');
    auto at = yaml.find("  lcake-test:\n");
    yaml.insert(at + 14, "    image_endpoint_override: " + url + "\n");
    std::ofstream(tmp.path / "clouds.yaml") << yaml;
    set_os_env({{"OS_CLIENT_CONFIG_FILE", (tmp.path / "clouds.yaml").string()}});
  }
  ~FaultProxy() {
    ::kill(pid, SIGTERM);
    use_test_clouds();
  }
  void inject(const std::string& method, const std::string& path, int status, int count) {
    sh("curl -sf -X POST " + url + "/_fault -d '" +
       json({{"method", method}, {"path", path}, {"status", status}, {"count", count}}).dump() + "'");
  }
  int count(const std::string& needle) {
    std::ifstream in(log);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
    return n;
  }
};

}  // namespace

TEST_CASE("a qcow2 overlay is flattened, uploaded private with its properties, and hash-checked") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  FakeContext ctx(tmp.path);
  GlanceUploader up(settings());
  lcake::UploadRequest req{layer("base"), built(disks().overlay, "qcow2"), std::nullopt,
                           {{"properties", {{"hw_qemu_guest_agent", "yes"}}}}};
  lcake::Artifact a = up.upload(req, ctx);
  CHECK(a.type == "glance-image");
  CHECK(a.metadata["name"] == "tiny-base-" + req.layer.upload_key.substr(0, 12));
  CHECK(ctx.memory_ledger.open_entries().empty());
  CHECK(ctx.memory_ledger.all_entries().size() >= 1);

  json shown = show(a.id);
  CHECK(shown["status"] == "active");
  CHECK(shown["visibility"] == "private");
  CHECK(shown["disk_format"] == "qcow2");
  CHECK(shown["container_format"] == "bare");
  CHECK(shown["min_disk"] == 1);
  CHECK(shown["min_ram"] == 128);
  CHECK(field(shown, "os_hash_algo") == "sha512");
  CHECK(field(shown, "os_hash_value") == a.metadata["sha512"]);
  CHECK(shown["checksum"] == a.metadata["checksum"]);
  CHECK(prop(shown, "lcake_key") == req.layer.upload_key);
  CHECK(prop(shown, "lcake_layer_key") == req.layer.key);
  CHECK(prop(shown, "lcake_variant") == "tiny");
  CHECK(prop(shown, "lcake_layer") == "base");
  CHECK(prop(shown, "lcake_pipeline") == "stack");
  CHECK(prop(shown, "os_distro") == "debian");
  CHECK(prop(shown, "hw_disk_bus") == "virtio");
  CHECK(prop(shown, "hw_qemu_guest_agent") == "yes");
  CHECK(shown["tags"].dump().find("lcake-test") != std::string::npos);

  // The bytes in Glance: a standalone qcow2 with the overlay's content.
  fs::path saved = tmp.path / "saved.qcow2";
  openstack_cli(keystone_glance(), "image save --file " + saved.string() + " " + a.id);
  CHECK(sh("sha512sum " + saved.string() + " | cut -d' ' -f1") == a.metadata["sha512"]);
  json info = json::parse(sh("qemu-img info --output=json " + saved.string()));
  CHECK(info["format"] == "qcow2");
  CHECK_FALSE(info.contains("backing-filename"));
  int rc = 0;
  sh("qemu-img compare -q " + saved.string() + " " + disks().overlay.string(), &rc);
  CHECK(rc == 0);

  // find(): a fresh runner (new context, new uploader) gets the same image.
  lcake::test::TempDir tmp2("lcake-glance");
  FakeContext fresh(tmp2.path);
  GlanceUploader other(settings());
  auto found = other.find({req.layer, {}}, fresh);
  REQUIRE(found);
  CHECK(found->id == a.id);
  CHECK(found->metadata["lcake_found"] == json({{"verified", false}, {"published", false}}));
  CHECK(other.exists(*found, fresh));
  lcake::FindRequest unknown{layer("base"), {}};
  CHECK_FALSE(other.find(unknown, fresh));

  other.remove(*found, fresh);
  show(a.id, &rc);
  CHECK(rc != 0);
  CHECK_FALSE(other.exists(*found, fresh));
  other.remove(*found, fresh);  // idempotent
}

TEST_CASE("a raw disk uploads as raw, or as qcow2 when disk_format says so") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  FakeContext ctx(tmp.path);
  std::string sha = sh("sha512sum " + disks().raw.string() + " | cut -d' ' -f1");

  GlanceUploader raw_up(settings({{"properties", json::object()}, {"min_disk", 2}}));
  lcake::UploadRequest req{layer("raw"), built(disks().raw, "raw"), std::nullopt, {}};
  lcake::Artifact a = raw_up.upload(req, ctx);
  json shown = show(a.id);
  CHECK(shown["disk_format"] == "raw");
  CHECK(field(shown, "os_hash_value") == sha);
  CHECK(shown["size"] == fs::file_size(disks().raw));
  CHECK(shown["min_disk"] == 2);
  bool byte_progress = false;
  for (const auto& p : ctx.progress_reports) byte_progress |= p.total_bytes == fs::file_size(disks().raw) && p.done_bytes > 0;
  CHECK(byte_progress);

  GlanceUploader as_qcow2(settings({{"disk_format", "qcow2"}}));
  lcake::UploadRequest req2{layer("raw"), built(disks().raw, "raw"), std::nullopt, {}};
  lcake::Artifact b = as_qcow2.upload(req2, ctx);
  json shown2 = show(b.id);
  CHECK(shown2["disk_format"] == "qcow2");
  CHECK(shown2["status"] == "active");
  CHECK(field(shown2, "os_hash_value") == b.metadata["sha512"]);
  CHECK(field(shown2, "os_hash_value") != sha);  // converted bytes
  CHECK(ctx.logged("converting disk.raw (raw) into a standalone qcow2"));
  CHECK(ctx.memory_ledger.open_entries().empty());
  raw_up.remove(a, ctx);
  as_qcow2.remove(b, ctx);

  GlanceUploader bad(settings());
  lcake::UploadRequest wrong{layer("x"), built(disks().raw, "oci-image"), std::nullopt, {}};
  CHECK_THROWS_WITH_AS(bad.upload(wrong, ctx), doctest::Contains("uploads qcow2 or raw disks, not 'oci-image'"),
                       lcake::InputError);
}

TEST_CASE("method import: staged, imported with glance-direct, hash-checked") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  FakeContext ctx(tmp.path);
  GlanceUploader up(settings({{"method", "import"}, {"active_timeout", 120}}));
  lcake::UploadRequest req{layer("import"), built(disks().raw, "raw"), std::nullopt, {}};
  lcake::Artifact a = up.upload(req, ctx);
  json shown = show(a.id);
  CHECK(shown["status"] == "active");
  CHECK(field(shown, "os_hash_value") == a.metadata["sha512"]);
  CHECK(ctx.memory_ledger.open_entries().empty());
  up.remove(a, ctx);
}

namespace {
// Fires the run's cancel token once an upload has sent `after` bytes.
struct CancelMidUpload : FakeContext {
  using FakeContext::FakeContext;
  using FakeContext::progress;
  std::uint64_t after = 16u << 20;
  void progress(const lcake::Progress& p) override {
    FakeContext::progress(p);
    if (p.total_bytes && p.done_bytes >= after) cancel_token.fire();
  }
};
}  // namespace

TEST_CASE("Ctrl-C in the middle of an upload leaves no image in Glance") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  CancelMidUpload ctx(tmp.path);
  fs::path big = tmp.path / "big.raw";
  sh("head -c 268435456 /dev/urandom > " + big.string());
  GlanceUploader up(settings());
  lcake::UploadRequest req{layer("big"), built(big, "raw"), std::nullopt, {}};
  CHECK_THROWS_AS(up.upload(req, ctx), lcake::Cancelled);
  CHECK(ctx.memory_ledger.open_entries().empty());  // deleted at once, not left for gc
  std::vector<lcake::LedgerEntry> images;
  for (const auto& e : ctx.memory_ledger.all_entries())
    if (e.kind == "glance-image") images.push_back(e);
  REQUIRE(images.size() == 1);
  int rc = 0;
  show(images[0].resource_id, &rc);
  CHECK(rc != 0);
  CHECK(images_with_key(req.layer.upload_key).empty());
}

TEST_CASE("Glance answering 503: retried, then a clean failure with nothing left; a 401 re-authenticates") {
  lcake::test::TempDir tmp("lcake-glance");
  FaultProxy proxy;
  GlanceUploader up(settings());
  up.retry.attempts = 3;
  up.retry.initial_delay = std::chrono::milliseconds(50);
  up.retry.max_delay = std::chrono::milliseconds(200);

  SUBCASE("a 503 twice, then success") {
    FakeContext ctx(tmp.path);
    proxy.inject("PUT", "/file", 503, 2);
    lcake::UploadRequest req{layer("r1"), built(disks().raw, "raw"), std::nullopt, {}};
    lcake::Artifact a = up.upload(req, ctx);
    CHECK(proxy.count("/file 503 injected") == 2);
    CHECK(proxy.count("/file 204 forwarded") == 1);
    CHECK(ctx.logged("Glance: "));
    CHECK(field(show(a.id), "os_hash_value") == a.metadata["sha512"]);
    up.remove(a, ctx);
  }
  SUBCASE("503 every time: a clean failure, the image deleted") {
    FakeContext ctx(tmp.path);
    proxy.inject("PUT", "/file", 503, 100);
    lcake::UploadRequest req{layer("r2"), built(disks().raw, "raw"), std::nullopt, {}};
    CHECK_THROWS_WITH_AS(up.upload(req, ctx), doctest::Contains("Glance answered 503"), lcake::BuildError);
    CHECK(proxy.count("/file 503 injected") == 3);
    CHECK(ctx.memory_ledger.open_entries().empty());
    CHECK(images_with_key(req.layer.upload_key).empty());
  }
  SUBCASE("a 500 on create: nothing was created, nothing left") {
    FakeContext ctx(tmp.path);
    proxy.inject("POST", "/v2/images", 500, 100);
    lcake::UploadRequest req{layer("r3"), built(disks().raw, "raw"), std::nullopt, {}};
    CHECK_THROWS_WITH_AS(up.upload(req, ctx), doctest::Contains("answered 500"), lcake::BuildError);
    CHECK(ctx.memory_ledger.open_entries().empty());
    CHECK(images_with_key(req.layer.upload_key).empty());
  }
  SUBCASE("a 401 (token expired or revoked): one re-authentication, then success") {
    FakeContext ctx(tmp.path);
    proxy.inject("POST", "/v2/images", 401, 1);
    lcake::UploadRequest req{layer("r4"), built(disks().raw, "raw"), std::nullopt, {}};
    lcake::Artifact a = up.upload(req, ctx);
    CHECK(ctx.logged("answered 401; re-authenticating"));
    CHECK(ctx.redacted.size() >= 3);  // the password and two tokens
    up.remove(a, ctx);
  }
}

// Two runners (their own uploader and context) uploading one upload key at the same time: both
// images end up active with the same lcake_key; every find() names the same one (created first,
// then the lowest id, per the CLI's created_at), find_all() lists it first and the other after it,
// and removing the other (what `lcake gc --target` does) leaves the winner.
TEST_CASE("two runners upload one key at once: find() and find_all() agree on the winner; the duplicate goes") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  auto key_layer = layer("race");
  lcake::Artifact ua, ub;
  {
    FakeContext ca(tmp.path / "a"), cb(tmp.path / "b");
    GlanceUploader a(settings()), b(settings());
    std::thread ta([&] { ua = a.upload({key_layer, built(disks().raw, "raw"), std::nullopt, {}}, ca); });
    std::thread tb([&] { ub = b.upload({key_layer, built(disks().raw, "raw"), std::nullopt, {}}, cb); });
    ta.join(), tb.join();
  }
  REQUIRE(!ua.id.empty());
  REQUIRE(!ub.id.empty());
  REQUIRE(ua.id != ub.id);
  REQUIRE(images_with_key(key_layer.upload_key).size() == 2);
  json sa = show(ua.id), sb = show(ub.id);
  CHECK(prop(sa, "lcake_key") == prop(sb, "lcake_key"));
  auto rank = [](const json& shown) { return std::make_pair(shown["created_at"].get<std::string>(), shown["id"].get<std::string>()); };
  std::string winner = rank(sa) < rank(sb) ? ua.id : ub.id, loser = winner == ua.id ? ub.id : ua.id;
  MESSAGE("created " << ua.id << " " << sa["created_at"] << ", " << ub.id << " " << sb["created_at"]);

  // Every runner, fresh or not, names the same one.
  for (int i = 0; i < 3; ++i) {
    FakeContext fresh(tmp.path / ("fresh" + std::to_string(i)));
    auto found = GlanceUploader(settings()).find({key_layer, {}}, fresh);
    REQUIRE(found);
    CHECK(found->id == winner);
    CHECK(fresh.logged("1 duplicate(s)"));
  }
  FakeContext ctx(tmp.path / "gc");
  GlanceUploader gc(settings());
  auto all = gc.find_all({key_layer, {}}, ctx);
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == winner);
  CHECK(all[1].id == loser);
  CHECK(all[1].metadata["lcake_created"] == (loser == ua.id ? sa : sb)["created_at"]);
  CHECK(all[1].metadata["lcake_found"]["published"] == false);

  // gc's part: the duplicate is removed, the winner stays and is still what find() names.
  gc.remove(all[1], ctx);
  int rc = 0;
  show(loser, &rc);
  CHECK(rc != 0);
  all = gc.find_all({key_layer, {}}, ctx);
  REQUIRE(all.size() == 1);
  CHECK(all[0].id == winner);
  CHECK(show(winner)["status"] == "active");

  // A published image of the key wins over an older unpublished one (never a duplicate to delete).
  lcake::Artifact later = gc.upload({key_layer, built(disks().raw, "raw"), std::nullopt, {}}, ctx);
  gc.publish(later, {key_layer, json::object()}, ctx);
  auto found = GlanceUploader(settings()).find({key_layer, {}}, ctx);
  REQUIRE(found);
  CHECK(found->id == later.id);
  all = gc.find_all({key_layer, {}}, ctx);
  REQUIRE(all.size() == 2);
  CHECK(all[1].id == winner);
  openstack_cli(keystone_glance(), "image delete " + winner + " " + later.id);
}

TEST_CASE("reap deletes a leftover image; a gone one is AlreadyGone") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  FakeContext ctx(tmp.path);
  GlanceUploader up(settings());
  lcake::UploadRequest req{layer("reap"), built(disks().raw, "raw"), std::nullopt, {}};
  lcake::Artifact a = up.upload(req, ctx);
  lcake::LedgerEntry e;
  e.kind = "glance-image", e.resource_id = a.id;
  up.reap(e, ctx);
  CHECK(ctx.logged("deleted leftover Glance image " + a.id));
  int rc = 0;
  show(a.id, &rc);
  CHECK(rc != 0);
  // Gone already (Glance answers 404): AlreadyGone, so gc counts it apart from what it deleted.
  CHECK_THROWS_WITH_AS(up.reap(e, ctx), doctest::Contains("is already gone"), lcake::AlreadyGone);
  e.kind = "nova-server";
  CHECK_THROWS(up.reap(e, ctx));
}

TEST_CASE("publish: moving name supersedes the old image, moving tags move, visibility and protection set") {
  use_test_clouds();
  lcake::test::TempDir tmp("lcake-glance");
  FakeContext ctx(tmp.path);
  GlanceUploader up(settings());
  std::string moving = "lcake-test-stack-" + std::to_string(::getpid());
  json opts = {{"moving_name", moving}, {"moving_tags", {moving + "-latest"}}, {"visibility", "community"}};
  auto first_layer = layer("stack"), second_layer = layer("stack");
  lcake::Artifact first = up.upload({first_layer, built(disks().raw, "raw"), std::nullopt, {}}, ctx);
  lcake::Artifact second = up.upload({second_layer, built(disks().raw, "raw"), std::nullopt, {}}, ctx);

  lcake::Artifact p1 = up.publish(first, {first_layer, opts}, ctx);
  CHECK(p1.metadata["name"] == moving);
  // A fresh runner finding the published image learns it was published (its lcake_published),
  // and verified once its lcake_verified is set (the Nova verifier sets it; here the CLI).
  auto found = GlanceUploader(settings()).find({first_layer, {}}, ctx);
  REQUIRE(found);
  CHECK(found->metadata["lcake_found"] == json({{"verified", false}, {"published", true}}));
  openstack_cli(keystone_glance(), "image set --property lcake_verified=2026-01-01T00:00:00Z " + first.id);
  found = GlanceUploader(settings()).find({first_layer, {}}, ctx);
  REQUIRE(found);
  CHECK(found->metadata["lcake_found"] == json({{"verified", true}, {"published", true}}));
  json s1 = show(first.id);
  CHECK(s1["visibility"] == "community");
  CHECK(s1["name"] == moving);

  json opts2 = opts;
  opts2["protected"] = true;
  lcake::Artifact p2 = up.publish(second, {second_layer, opts2}, ctx);
  json s2 = show(second.id);
  CHECK(s2["name"] == moving);
  CHECK(s2["protected"] == true);
  CHECK(s2["tags"].dump().find(moving + "-latest") != std::string::npos);
  s1 = show(first.id);  // superseded: renamed and tagged, not deleted
  CHECK(s1["name"].get<std::string>().find(moving + "-superseded-") == 0);
  CHECK(s1["tags"].dump().find("superseded") != std::string::npos);
  CHECK(s1["tags"].dump().find(moving + "-latest") == std::string::npos);
  CHECK(prop(s1, "lcake_superseded_by") == second.id);
  json named = json::parse(openstack_cli(keystone_glance(), "image list --name " + moving + " -f json"));
  REQUIRE(named.size() == 1);
  CHECK(named[0]["ID"] == second.id);

  // Published images are not removed by gc; a protected one only by hand.
  up.remove(p1, ctx);
  CHECK(show(first.id)["status"] == "active");
  openstack_cli(keystone_glance(), "image set --unprotected " + second.id);
  openstack_cli(keystone_glance(), "image delete " + first.id + " " + second.id);
}

TEST_CASE("publish shared: the member project is added and accepts with its own cloud") {
  auto& s = keystone_glance();
  lcake::test::TempDir tmp("lcake-glance");
  FakeContext ctx(tmp.path);
  std::string suffix = std::to_string(::getpid());
  std::string project = "lcake-member-" + suffix, user = "lcake-member-" + suffix, pw = "pw-" + suffix;
  std::string project_id = openstack_cli(keystone_glance(), "project create -f value -c id " + project, nullptr, true);
  openstack_cli(keystone_glance(), "user create -f value -c id --password " + pw + " " + user, nullptr, true);
  openstack_cli(keystone_glance(), "role add --user " + user + " --project " + project + " member", nullptr, true);
  std::string yaml;
  std::ifstream y(s.clouds_yaml());
  std::getline(y, yaml, '\0');
  yaml += "  member:\n    auth:\n      auth_url: " + s.env.at("OS_AUTH_URL") + "\n      username: " + user +
          "\n      password: " + pw + "\n      project_name: " + project +
          "\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n";
  std::ofstream(tmp.path / "clouds.yaml") << yaml;
  set_os_env({{"OS_CLIENT_CONFIG_FILE", (tmp.path / "clouds.yaml").string()}});

  GlanceUploader up(settings());
  auto l = layer("shared");
  lcake::Artifact a = up.upload({l, built(disks().raw, "raw"), std::nullopt, {}}, ctx);
  json opts = {{"visibility", "shared"}, {"members", {{{"project", project_id}, {"cloud", "member"}}}}};
  lcake::Artifact p = up.publish(a, {l, opts}, ctx);
  CHECK(p.metadata["members"][0]["status"] == "accepted");
  json members = json::parse(openstack_cli(keystone_glance(), "image member list " + a.id + " -f json"));
  REQUIRE(members.size() == 1);
  CHECK(members[0]["Member ID"] == project_id);
  CHECK(members[0]["Status"] == "accepted");
  CHECK(show(a.id)["visibility"] == "shared");

  json not_shared = {{"visibility", "community"}, {"members", {project_id}}};
  CHECK_THROWS_AS(up.publish(a, {l, not_shared}, ctx), lcake::ValueError);
  use_test_clouds();
  openstack_cli(keystone_glance(), "image delete " + a.id);
  openstack_cli(keystone_glance(), "user delete " + user, nullptr, true);
  openstack_cli(keystone_glance(), "project delete " + project, nullptr, true);
}

TEST_CASE("a property lcake sets itself is refused in the settings, naming it") {
  for (const char* own : {"lcake_key", "lcake_verified", "lcake_ssh_user"}) {
    json s = settings();
    s["properties"] = {{own, "mine"}};
    std::string where = std::string("property ") + own + " is lcake's own";  // the host adds /properties/<name>
    CHECK_THROWS_WITH_AS(GlanceUploader{s}, doctest::Contains(where.c_str()), lcake::ValueError);
  }
}
