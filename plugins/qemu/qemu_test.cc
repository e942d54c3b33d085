// Drives the qemu plugin's roles against real guests under QEMU (TCG here):
// the guest is a tiny Debian-package system built once into tests/guest.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "accelerator.h"
#include "host_tools.h"
#include "lcake/files.hpp"
#include "lcake/detail/posix_process.hpp"
#include "cloud_init_seed.h"
#include "disk_image.h"
#include "lcake/plugin.hpp"
#include "lcake/testing.hpp"
#include "qemu_builder.h"
#include "qemu_machine.h"
#include "qemu_uploader.h"
#include "qemu_verifier.h"
#include "source_fetch.h"
#include "test_context.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake;
using namespace lcake::qemu;
using TestCancel = lcake::testing::ManualCancel;
using lcake::qemu::test::TestContext;
using nlohmann::json;

namespace {

fs::path env_dir(const char* name, const fs::path& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? fs::path(v) : fallback;
}

struct Guest {
  fs::path dir;
  bool seeded = true;  // reads SSH keys from a NoCloud seed (scripts/build-guest.sh)
};

// Built once per build tree; rebuilt when scripts/build-guest.sh changed (its --reuse).
const Guest& test_guest() {
  static Guest guest = [] {
    Guest g;
    g.dir = lcake::test::test_guest("dropbear");
    // The reference recipe bakes a key in instead of reading a seed.
    g.seeded = !fs::exists(g.dir / "id_ed25519") || fs::exists(g.dir / "host_key.pub");
    return g;
  }();
  return guest;
}

const fs::path& temp_root() {
  static lcake::test::TempDir root("lcake-qemu-test");
  return root.path;
}

// The guest's whole disk, booted by the firmware and the disk's own bootloader.
json source_for(const Guest& g) {
  TestCancel cancel;
  json s = {{"disk", (g.dir / "base.qcow2").string()},
            {"checksum", "sha256:" + sha256_file(g.dir / "base.qcow2", &cancel)}};
  if (fs::exists(g.dir / "base.qcow2.sha256")) s["checksum"] = "file:" + (g.dir / "base.qcow2.sha256").string();
  if (fs::exists(g.dir / "host_key.pub")) s["host_key"] = (g.dir / "host_key.pub").string();
  if (!g.seeded) {
    s["cloud_init"] = false;
    s["ssh_private_key"] = (g.dir / "id_ed25519").string();
  }
  return s;
}

// The same disk with QEMU's direct kernel boot of the guest's vmlinuz and initrd.img.
json direct_boot_source_for(const Guest& g, const std::string& append) {
  auto s = source_for(g);
  s["kernel"] = (g.dir / "vmlinuz").string();
  s["initrd"] = (g.dir / "initrd.img").string();
  s["append"] = append;
  return s;
}

const json kSettings = {{"accelerator", "auto"}, {"memory", 256}, {"ssh_timeout", 60}, {"shutdown_timeout", 30}};

LayerInfo layer_info(const std::string& layer) { return {"qemu", "test", layer, "key-" + layer, "0.1.0"}; }

std::string run_in(Communicator& c, const std::string& command, int* exit_code = nullptr) {
  std::string out;
  int rc = c.run(command, [&](std::string_view chunk, bool) { out += chunk; }, std::chrono::seconds(60));
  if (exit_code) *exit_code = rc;
  else CHECK_MESSAGE(rc == 0, command << ": " << out);
  return out;
}

// A context for running qemu-img in checks outside any role.
TestContext& tools() {
  static TestContext ctx(temp_root(), "tools");
  return ctx;
}

// Nothing of ours still runs, and every ledger entry was released.
void check_nothing_left(const TestContext& ctx) {
  CHECK(ctx.memory_ledger.open_entries().empty());
  for (auto& e : ctx.memory_ledger.all_entries())
    if (e.kind == "process" && e.how.contains("pid"))
      CHECK_MESSAGE(!lcake::detail::process_alive(e.how["pid"], e.how["start_time"]), "qemu pid " << e.how["pid"] << " still runs");
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct BuiltLayer {
  Artifact artifact;
  std::string provision_output;
};

BuiltLayer build_layer(const std::string& layer, const json& source, const std::optional<Artifact>& parent,
                       const std::string& provision, const json& options = json::object()) {
  TestContext ctx(temp_root(), layer);
  QemuBuilder builder(kSettings);
  BuildRequest request{layer_info(layer), source, parent, options};
  auto session = builder.start(request, ctx);
  BuiltLayer built;
  try {
    built.provision_output = run_in(session->communicator(), provision);
    built.artifact = session->finish(ctx);
  } catch (...) {
    session->abort(ctx);  // as the host does
    throw;
  }
  check_nothing_left(ctx);
  return built;
}

const BuiltLayer& first_layer() {
  static BuiltLayer built = build_layer("base", source_for(test_guest()), std::nullopt,
                                        "echo layer-one > /root/layer1 && sync && cat /root/layer1 /proc/cmdline");
  return built;
}

}  // namespace

TEST_CASE("the probe boot sector exits QEMU with code 3 under TCG; auto falls back to TCG here") {
  TestContext ctx(temp_root(), "accel");
  CHECK(probe_boot_sector().size() == 512);
  CHECK(boot_probe("qemu-system-x86_64", "tcg", ctx.work_dir(), std::chrono::seconds(10), ctx));
  auto accel = choose_accelerator("auto", "qemu-system-x86_64", ctx.work_dir(), ctx);
  // This machine's KVM hangs silently (or has no vmx/svm): auto must not pick it.
  CHECK(accel == "tcg");
  CHECK(ctx.logged("accelerator auto:"));
  CHECK(ctx.logged("using TCG"));
  CHECK(choose_accelerator("kvm", "qemu-system-x86_64", ctx.work_dir(), ctx) == "kvm");  // trusted
  check_nothing_left(ctx);
}

TEST_CASE("NoCloud seed: vfat labelled cidata with user-data and meta-data") {
  TestContext ctx(temp_root(), "seed");
  auto image = ctx.work_dir() / "seed.img";
  write_nocloud_seed(image, {"ssh-ed25519 AAAATEST lcake", "root", "lcake-1"}, ctx);
  auto label = stdout_of(ctx, {"blkid", "-o", "value", "-s", "LABEL", image.string()});
  CHECK(label.find("cidata") != std::string::npos);
  auto user_data = stdout_of(ctx, {"mtype", "-i", image.string(), "::user-data"});
  CHECK(user_data.rfind("#cloud-config", 0) == 0);
  CHECK(user_data.find("ssh-ed25519 AAAATEST lcake") != std::string::npos);
  CHECK(stdout_of(ctx, {"mtype", "-i", image.string(), "::meta-data"}).find("instance-id: lcake-1") !=
        std::string::npos);
}

TEST_CASE("first layer: boots from the verified source, provisions over SSH, yields a checked qcow2") {
  const auto& built = first_layer();
  const auto& a = built.artifact;
  CHECK(built.provision_output.find("layer-one") != std::string::npos);
  // The kernel command line syslinux passes (from the disk's syslinux.cfg), not QEMU's -append.
  CHECK(built.provision_output.find("BOOT_IMAGE=/vmlinuz") != std::string::npos);
  CHECK(built.provision_output.find("root=LABEL=lcake-root") != std::string::npos);
  CHECK(a.type == "qcow2");
  CHECK(fs::path(a.id).is_absolute());
  CHECK(a.id.find((temp_root() / "base" / "store").string()) == 0);
  TestCancel cancel;
  CHECK(tools().run({.argv = {"qemu-img", "check", a.id}}).exit_code == 0);
  // The overlay sits on the copy of the source in the store, not the user's file.
  REQUIRE(a.metadata["backing"].is_string());
  CHECK(a.metadata["backing"].get<std::string>().find((temp_root() / "base" / "store").string()) == 0);
  CHECK(disk_info(a.id, tools()).backing == a.metadata["backing"].get<std::string>());
  CHECK(a.metadata["host_key"].get<std::string>().rfind("ssh-", 0) == 0);
  CHECK(a.metadata["kernel"].is_null());  // booted by its own bootloader
  CHECK(a.metadata["virtual_size"].get<std::uint64_t>() > 0);
  QemuBuilder builder(kSettings);
  TestContext ctx(temp_root(), "exists");
  CHECK(builder.exists(a, ctx));
}

struct ChildBuild {
  BuiltLayer child;
  std::string parent_sum_before;
};
const ChildBuild& child_layer() {
  static ChildBuild built = [] {
    const auto& parent = first_layer().artifact;
    TestCancel cancel;
    ChildBuild b;
    b.parent_sum_before = sha256_file(parent.id, &cancel);
    b.child = build_layer("child", nullptr, parent,
                          "cat /root/layer1 && dd if=/dev/urandom of=/root/blob bs=1M count=8 2>/dev/null && sync");
    return b;
  }();
  return built;
}

TEST_CASE("child layer: an overlay on the parent; the parent is never written") {
  const auto& parent = first_layer().artifact;
  TestCancel cancel;
  const auto& child = child_layer().child;
  const auto& parent_sum = child_layer().parent_sum_before;
  CHECK(child.provision_output.find("layer-one") != std::string::npos);  // sees the parent's files
  CHECK(child.artifact.metadata["backing"] == parent.id);
  CHECK(disk_info(child.artifact.id, tools()).backing == parent.id);
  CHECK(sha256_file(parent.id, &cancel) == parent_sum);
  CHECK(child.artifact.metadata["host_key"] == parent.metadata["host_key"]);
  CHECK(child.artifact.metadata["kernel"] == parent.metadata["kernel"]);
  // The overlay holds what changed (8 MiB plus filesystem metadata), not the whole disk.
  auto bytes = child.artifact.metadata["disk_bytes"].get<std::uint64_t>();
  MESSAGE("child overlay after writing 8 MiB: " << bytes << " bytes");
  CHECK(bytes >= 8u << 20);
  CHECK(bytes < 24u << 20);
  CHECK(bytes < child.artifact.metadata["virtual_size"].get<std::uint64_t>() / 20);
}

TEST_CASE("verifier boots a throwaway overlay; the candidate is unchanged") {
  const auto& child = child_layer().child;
  TestCancel cancel;
  {
    auto child_sum = sha256_file(child.artifact.id, &cancel);
    TestContext ctx(temp_root(), "verify");
    QemuVerifier verifier(json{{"accelerator", "tcg"}, {"memory", 256}, {"ssh_timeout", 60}});
    auto session = verifier.start({layer_info("child"), child.artifact, child.artifact, json::object()}, ctx);
    CHECK(run_in(session->communicator(), "cat /root/layer1; ls -l /root/blob").find("layer-one") != std::string::npos);
    run_in(session->communicator(), "echo scribble > /root/verify-was-here; sync");
    session->finish(ctx);
    CHECK(!fs::exists(ctx.work_dir() / "verify.qcow2"));
    CHECK(sha256_file(child.artifact.id, &cancel) == child_sum);
    check_nothing_left(ctx);
  }
}

// What the host passes for the last layer of a cloud target ("generalize": true, the
// schema's x-lcake-cloud-default; core/plan/input_check_test checks the host side).
TEST_CASE("generalize: the builder clears what makes the image one machine before it becomes the artifact") {
  const auto& parent = first_layer().artifact;
  TestContext ctx(temp_root(), "general");
  QemuBuilder builder(kSettings);
  BuildRequest request{layer_info("general"), nullptr, parent, {{"generalize", true}}};
  auto session = builder.start(request, ctx);
  Artifact a;
  try {
    // The identity a machine gathers while it runs (the tiny guest has no systemd or cloud-init).
    run_in(session->communicator(),
           "echo 0123456789abcdef0123456789abcdef > /etc/machine-id && mkdir -p /etc/ssh /var/lib/cloud/instances/i-1 "
           "/var/log && echo key > /etc/ssh/ssh_host_rsa_key && echo lines > /var/log/build.log && "
           "echo lines > /var/log/build.log.1 && echo 'ls' > /root/.ash_history && echo scratch > /tmp/scratch && "
           "echo kept > /root/kept && sync");
    a = session->finish(ctx);
  } catch (...) {
    session->abort(ctx);
    throw;
  }
  check_nothing_left(ctx);
  CHECK(ctx.logged("generalizing the image"));
  // New host keys on the next boot: learned on first contact.
  CHECK((!a.metadata.contains("host_key") || a.metadata["host_key"].is_null() || a.metadata["host_key"] == ""));
  // Boot the artifact (the verifier's throwaway overlay) and look.
  TestContext vctx(temp_root(), "general-verify");
  QemuVerifier verifier(json{{"accelerator", "tcg"}, {"memory", 256}, {"ssh_timeout", 60}});
  auto check = verifier.start({layer_info("general"), a, a, json::object()}, vctx);
  std::string out = run_in(check->communicator(),
                           "printf 'machine-id=[%s]\\n' \"$(cat /etc/machine-id)\"; "
                           "for f in /etc/ssh/ssh_host_rsa_key /var/lib/cloud/instances /var/log/build.log.1 "
                           "/root/.ash_history /tmp/scratch; do [ -e $f ] && echo \"left $f\"; done; "
                           "printf 'log=[%s]\\n' \"$(cat /var/log/build.log)\"; cat /root/kept");
  check->finish(vctx);
  check_nothing_left(vctx);
  INFO(out);
  CHECK(out.find("machine-id=[]") != std::string::npos);
  CHECK(out.find("left ") == std::string::npos);
  CHECK(out.find("log=[]") != std::string::npos);  // truncated, not removed
  CHECK(out.find("kept") != std::string::npos);    // the layer's own files stay
}

TEST_CASE("uploader writes a standalone copy with its boot files and a description") {
  const auto& child = child_layer().child;
  TestCancel cancel;
  {
    TestContext ctx(temp_root(), "upload");
    auto out = temp_root() / "published";
    QemuUploader uploader(json{{"output_directory", out.string()}});
    auto up = uploader.upload({layer_info("child"), child.artifact, std::nullopt, json::object()}, ctx);
    CHECK(up.id == (out / "test" / "child.qcow2").string());
    CHECK(!disk_info(up.id, tools()).backing);
    CHECK(tools().run({.argv = {"qemu-img", "check", up.id}}).exit_code == 0);
    CHECK(fs::exists(out / "test" / "child.json"));
    CHECK(json::parse(file_text(out / "test" / "child.json"))["disk"] == up.id);
    CHECK(up.metadata["kernel"].is_null());
    CHECK(uploader.exists(up, ctx));
    uploader.remove(up, ctx);
    CHECK(!uploader.exists(up, ctx));
    CHECK(!fs::exists(out / "test" / "child.json"));
    check_nothing_left(ctx);

    QemuUploader passthrough(json::object());
    CHECK(passthrough.upload({layer_info("child"), child.artifact, std::nullopt, json::object()}, ctx).id ==
          child.artifact.id);
  }
}

TEST_CASE("a forced rebuild in the same store dir never overwrites the artifact it replaces") {
  const auto& old = first_layer().artifact;
  TestCancel cancel;
  auto old_sum = sha256_file(old.id, &cancel);
  auto again = build_layer("base", source_for(test_guest()), std::nullopt, "echo again > /root/again");
  CHECK(again.artifact.id != old.id);
  CHECK(fs::path(again.artifact.id).parent_path() == fs::path(old.id).parent_path());
  CHECK(sha256_file(old.id, &cancel) == old_sum);
  TestContext ctx(temp_root(), "rebuild");
  QemuBuilder builder(kSettings);
  CHECK(builder.exists(child_layer().child.artifact, ctx));  // the old chain is intact
  builder.remove(again.artifact, ctx);  // superseded: shared store files stay for the other one
  CHECK(!fs::exists(again.artifact.id));
  CHECK(builder.exists(old, ctx));
  CHECK(builder.exists(child_layer().child.artifact, ctx));
}

TEST_CASE("a flattened, compressed layer is a standalone qcow2") {
  const auto& parent = first_layer().artifact;
  auto flat = build_layer("flat", nullptr, parent, "cat /root/layer1", {{"flatten", true}, {"compress", true}});
  TestCancel cancel;
  CHECK(flat.artifact.metadata["backing"].is_null());
  CHECK(!disk_info(flat.artifact.id, tools()).backing);
  CHECK(tools().run({.argv = {"qemu-img", "check", flat.artifact.id}}).exit_code == 0);
}

TEST_CASE("wrong source checksum: one clear error, nothing left behind") {
  auto source = source_for(test_guest());
  source["checksum"] = "sha256:" + std::string(64, '0');
  TestContext ctx(temp_root(), "badsum");
  QemuBuilder builder(kSettings);
  std::string error;
  try {
    builder.start({layer_info("badsum"), source, std::nullopt, json::object()}, ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  CHECK(error.find("checksum mismatch") != std::string::npos);
  CHECK(error.find("base.qcow2") != std::string::npos);
  CHECK(error.find(std::string(64, '0')) != std::string::npos);
  TestCancel cancel;
  CHECK(error.find(sha256_file(test_guest().dir / "base.qcow2", &cancel)) != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  CHECK(fs::is_empty(ctx.store_dir()));
  check_nothing_left(ctx);

  source.erase("checksum");
  CHECK_THROWS_AS(builder.start({layer_info("badsum"), source, std::nullopt, json::object()}, ctx), InputError);
}

TEST_CASE("a guest that never boots: error with the console tail, no qemu left, ledger clean") {
  auto source = direct_boot_source_for(test_guest(), "rdinit=/nonexistent root=/dev/nonexistent panic=1 console=ttyS0");
  source.erase("initrd");  // not needed to panic, and unpacking it costs seconds on a busy host
  TestContext ctx(temp_root(), "noboot");
  auto settings = kSettings;
  settings["ssh_timeout"] = 15;
  QemuBuilder builder(settings);
  std::string error;
  try {
    builder.start({layer_info("noboot"), source, std::nullopt, json::object()}, ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  MESSAGE(error);
  CHECK(error.find("serial console") != std::string::npos);
  CHECK((error.find("Kernel panic") != std::string::npos || error.find("VFS") != std::string::npos));
  CHECK(!fs::exists(ctx.store_dir() / "noboot.qcow2"));
  // The fresh source copy and kernel are the host's to delete (they are in the ledger until they
  // are part of an artifact): a failed first layer leaks no copy of the source.
  bool copy_open = false;
  for (auto& e : ctx.memory_ledger.open_entries()) copy_open = copy_open || e.resource_id.find("source-") != std::string::npos;
  CHECK(copy_open);
  ctx.memory_ledger.reap_open();  // what the host does
  check_nothing_left(ctx);
  for (auto& e : fs::directory_iterator(ctx.store_dir()))
    CHECK_MESSAGE(e.path().filename().string().rfind("source-", 0) != 0, e.path());
}

TEST_CASE("dead ends on the serial console are recognised") {
  CHECK(dead_end_kind("[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs") == "kernel panic");
  CHECK(!dead_end_kind("ALERT!  /dev/vdz does not exist.  Dropping to a shell!").empty());
  CHECK(!dead_end_kind("Give root password for maintenance").empty());
  CHECK(!dead_end_kind("You are in emergency mode. After logging in, type \"journalctl -xb\"").empty());
  CHECK(dead_end_kind("[  OK  ] Reached target multi-user.target").empty());
  CHECK(dead_end_kind("cloud-init[341]: Cloud-init v. 22.4.2 finished").empty());
}

TEST_CASE("a dead-end guest fails within seconds, not after ssh_timeout") {
  // The tiny guest's initramfs says "... dropping to a shell" after its 30 s root wait.
  auto source = direct_boot_source_for(test_guest(), "root=/dev/nonexistent console=ttyS0 quiet");
  TestContext ctx(temp_root(), "deadend");
  auto settings = kSettings;
  settings["ssh_timeout"] = 300;
  QemuBuilder builder(settings);
  std::string error;
  auto t0 = std::chrono::steady_clock::now();
  try {
    builder.start({layer_info("deadend"), source, std::nullopt, json::object()}, ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE(error << "\nafter " << secs << " s");
  CHECK(error.find("the guest will not boot") != std::string::npos);
  CHECK(error.find("dropping to a shell") != std::string::npos);
  CHECK(secs < 120);
  ctx.memory_ledger.reap_open();
  check_nothing_left(ctx);
}

TEST_CASE("the seed: user_data merged with lcake's key, meta_data's hostname, network-config") {
  SeedContent c{"ssh-ed25519 AAAATEST lcake", "debian", "lcake-0123-build"};
  c.user_data = {{"ssh_authorized_keys", {"ssh-ed25519 AAAAMINE me"}}, {"packages", {"jq"}}};
  c.meta_data = {{"hostname", "builder"}};
  c.network_config = {{"version", 2}, {"ethernets", {{"eth0", {{"dhcp4", true}}}}}};
  auto user = seed_user_data(c);
  CHECK(user.rfind("#cloud-config\n", 0) == 0);
  CHECK(user.find("\"packages\": [\"jq\"]") != std::string::npos);
  CHECK(user.find("\"ssh_deletekeys\": false") != std::string::npos);
  CHECK(user.find("disable_root") == std::string::npos);  // not root
  CHECK(user.find("ssh_authorized_keys:\n  - ssh-ed25519 AAAAMINE me\n  - ssh-ed25519 AAAATEST lcake\n") !=
        std::string::npos);
  auto meta = seed_meta_data(c);
  CHECK(meta.find("instance-id: lcake-0123-build\n") != std::string::npos);
  CHECK(meta.find("local-hostname: builder\n") != std::string::npos);
  CHECK(meta.find("hostname: builder\nlocal") == std::string::npos);
  TestContext ctx(temp_root(), "seed2");
  auto image = ctx.work_dir() / "seed.img";
  write_nocloud_seed(image, c, ctx);
  auto net = stdout_of(ctx, {"mtype", "-i", image.string(), "::network-config"});
  CHECK(json::parse(net)["ethernets"]["eth0"]["dhcp4"] == true);
  SeedContent plain{"ssh-ed25519 AAAATEST lcake", "root", "x"};
  CHECK(seed_meta_data(plain).find("local-hostname: lcake\n") != std::string::npos);
  CHECK(seed_user_data(plain).find("\"disable_root\": false") != std::string::npos);
}

TEST_CASE("direct kernel boot: the source's kernel and initrd go into the store and travel with uploads") {
  // No root= in append: the initramfs finds the root file system by its label.
  auto direct = build_layer("direct", direct_boot_source_for(test_guest(), "quiet"), std::nullopt, "cat /proc/cmdline");
  const auto& a = direct.artifact;
  CHECK(direct.provision_output.find("console=ttyS0") != std::string::npos);  // added by the plugin
  CHECK(direct.provision_output.find("BOOT_IMAGE=") == std::string::npos);    // syslinux not involved
  REQUIRE(a.metadata["kernel"].is_string());
  CHECK(fs::path(a.metadata["kernel"].get<std::string>()).filename().string().rfind("vmlinuz-", 0) == 0);
  CHECK(a.metadata["kernel"].get<std::string>().find(temp_root().string()) == 0);  // in the step's store
  CHECK(fs::exists(a.metadata["initrd"].get<std::string>()));
  TestContext ctx(temp_root(), "direct-upload");
  QemuUploader uploader(json{{"output_directory", (temp_root() / "published-direct").string()}});
  auto up = uploader.upload({layer_info("direct"), a, std::nullopt, json::object()}, ctx);
  CHECK(up.metadata["kernel"] == (temp_root() / "published-direct" / "test" / "direct.vmlinuz").string());
  CHECK(fs::exists(up.metadata["kernel"].get<std::string>()));
  uploader.remove(up, ctx);
  CHECK(!fs::exists(up.metadata["kernel"].get<std::string>()));
  check_nothing_left(ctx);
}

TEST_CASE("append or initrd without kernel: an input error naming the field, before anything boots") {
  TestContext ctx(temp_root(), "nokernel");
  QemuBuilder builder(kSettings);
  for (auto key : {"append", "initrd"}) {
    auto source = source_for(test_guest());
    source[key] = key == std::string("append") ? "quiet" : (test_guest().dir / "initrd.img").string();
    std::string error, pointer;
    try {
      builder.start({layer_info("nokernel"), source, std::nullopt, json::object()}, ctx);
    } catch (const lcake::ValueError& e) {
      error = e.what(), pointer = e.part + e.pointer;
    }
    CHECK(pointer == std::string("source/") + key);  // the host adds the full pointer and file:line
    CHECK(error.find(std::string(key) + " needs kernel") != std::string::npos);
  }
  CHECK(fs::is_empty(ctx.store_dir()));
  check_nothing_left(ctx);
}

TEST_CASE("format raw: a standalone raw disk") {
  auto raw = build_layer("rawlayer", nullptr, first_layer().artifact, "cat /root/layer1", {{"format", "raw"}});
  TestCancel cancel;
  CHECK(raw.artifact.type == "raw");
  CHECK(raw.artifact.id.size() > 4);
  CHECK(raw.artifact.id.substr(raw.artifact.id.size() - 4) == ".raw");
  CHECK(disk_info(raw.artifact.id, tools()).format == "raw");
  CHECK(raw.artifact.metadata["backing"].is_null());
}

TEST_CASE("bad layer options are input errors before anything boots") {
  TestContext ctx(temp_root(), "badopts");
  QemuBuilder builder(kSettings);
  // Unknown keys ("flaten") are the host's to refuse, against the options schema (input_check_test).
  CHECK_THROWS_AS(builder.start({layer_info("badopts"), nullptr, first_layer().artifact,
                                 {{"format", "raw"}, {"compress", true}}}, ctx),
                  InputError);
  check_nothing_left(ctx);
}

TEST_CASE("a guest whose qemu exits fails at once, not after ssh_timeout") {
  auto source = direct_boot_source_for(test_guest(), "rdinit=/nonexistent root=/dev/nonexistent panic=1 console=ttyS0");
  source.erase("initrd");  // not needed to panic, and unpacking it costs seconds on a busy host
  TestContext ctx(temp_root(), "exits");
  auto settings = kSettings;
  settings["ssh_timeout"] = 120;
  settings["qemuargs"] = json::array({"-no-reboot"});  // the panic's reboot ends qemu
  QemuBuilder builder(settings);
  auto t0 = std::chrono::steady_clock::now();
  std::string error;
  try {
    builder.start({layer_info("exits"), source, std::nullopt, json::object()}, ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  MESSAGE(error.substr(0, error.find('\n')));
  CHECK(error.find("qemu exited") != std::string::npos);
  CHECK(error.find("Kernel panic") != std::string::npos);
  CHECK(took < std::chrono::seconds(60));
  ctx.memory_ledger.reap_open();  // the fresh source copy and kernel: the host deletes them
  check_nothing_left(ctx);
  for (auto& e : fs::directory_iterator(ctx.store_dir()))
    CHECK_MESSAGE(e.path().filename().string().rfind("source-", 0) != 0, e.path());
}

TEST_CASE("cancel during boot: Cancelled, nothing left") {
  TestContext ctx(temp_root(), "cancel");
  QemuBuilder builder(kSettings);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ctx.cancel_token.fire();
  });
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(builder.start({layer_info("cancel"), nullptr, first_layer().artifact, json::object()}, ctx),
                  Cancelled);
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  CHECK(!fs::exists(ctx.store_dir() / "cancel.qcow2"));
  check_nothing_left(ctx);
}

TEST_CASE("the built lcake-qemu.so declares three roles with valid JSON Schemas") {
  auto so = env_dir("LCAKE_BINARY_DIR", fs::current_path()) / "lib" / "lcake" / "plugins" / "lcake-qemu.so";
  void* handle = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE_MESSAGE(handle, ::dlerror());
  auto entry = reinterpret_cast<lcake_plugin_entry>(
      ::dlsym(handle, LCAKE_ENTRY_PREFIX LCAKE_DETAIL_STR(LCAKE_API_VERSION)));
  REQUIRE(static_cast<bool>(entry));
  const auto* d = entry();
  CHECK(std::string(d->name) == "qemu");
  CHECK(d->api_version == LCAKE_API_VERSION);
  CHECK(std::string(d->abi) == LCAKE_ABI_TAG);
  for (const lcake_role_spec* spec : {&d->builder, &d->uploader, &d->verifier}) {
    REQUIRE(static_cast<bool>(spec->factory));
    auto j = json::parse(spec->settings);
    CHECK(j["type"] == "object");
    CHECK(std::string(spec->accepts).find("qcow2") != std::string::npos);
  }
  CHECK(json::parse(d->builder.settings)["properties"]["accelerator"]["default"] == "auto");
  char err[256] = "";
  void* builder = d->builder.factory(R"({"accelerator": "tcg", "memory": 256})", err, sizeof err);
  REQUIRE(builder);
  delete static_cast<Builder*>(builder);
  CHECK(d->verifier.factory("{not json", err, sizeof err) == nullptr);
  CHECK(std::string(err).size() > 0);
  // Plugins are never unloaded.
}

TEST_CASE("http source: downloaded with libcurl, verified, cached by checksum") {
  const auto& g = test_guest();
  TestContext ctx(temp_root(), "http");
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  ProcessSpec http;
  http.argv = {"python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1", "--directory",
               g.dir.string()};
  http.output_file = ctx.work_dir() / "http.log";
  auto server = ctx.spawn(http);
  auto base = "http://127.0.0.1:" + std::to_string(port) + "/";
  for (int i = 0; i < 100; ++i) {  // until the server answers
    try {
      download(base, ctx.work_dir() / "index.html", ctx);
      break;
    } catch (const BuildError&) {
      ctx.cancel().wait_for(std::chrono::milliseconds(100));
    }
  }
  auto want = sha256_file(g.dir / "base.qcow2", &ctx.cancel());
  json source = {{"disk", base + "base.qcow2"}, {"checksum", "sha256:" + want}};
  auto disk = fetch_source_disk(source, "variants.test.sources.qemu", ctx.store_dir(), ctx);
  CHECK(disk.sha256 == want);
  CHECK(disk.format == "qcow2");
  CHECK(sha256_file(disk.path, &ctx.cancel()) == want);
  CHECK(disk.entry != 0);  // a fresh copy: in the ledger until the caller makes it part of an artifact
  ctx.ledger().release(disk.entry);

  json missing = {{"disk", base + "nope.qcow2"}, {"checksum", "sha256:" + std::string(64, 'a')}};
  std::string error;
  try {
    fetch_source_disk(missing, "variants.test.sources.qemu", ctx.store_dir() / "missing", ctx);
  } catch (const BuildError& e) {
    error = e.what();
  }
  CHECK(error.find(base + "nope.qcow2") != std::string::npos);
  CHECK(error.find("404") != std::string::npos);

  server.reset();  // stops the server: the second fetch must come from the cache
  auto cached = fetch_source_disk(source, "variants.test.sources.qemu", ctx.store_dir(), ctx);
  CHECK(cached.path == disk.path);
  CHECK(cached.entry == 0);  // not made by this call
  check_nothing_left(ctx);
}
