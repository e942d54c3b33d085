// The Nova builder and verifier end to end against real Keystone + Glance and
// the Nova simulator (tests/services/openstack/nova-sim.sh), which boots Glance
// images under QEMU with the key pair on a config drive and SSH on 127.0.0.N:22.
// Every result is checked with the independent `openstack` client or the
// simulator's own state, never with lcake's.
#include <doctest/doctest.h>

#include <fstream>
#include <thread>
#include <unistd.h>

#include "lcake/testing.hpp"
#include "auth.h"
#include "glance_uploader.h"
#include "nova_builder.h"
#include "nova_client.h"
#include "nova_server.h"
#include "openstack_test_services.h"
#include "nova_verifier.h"
#include "neutron_client.h"
#include "ssh/ssh.h"
#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lcake;
using namespace lcake::openstack;
using namespace std::chrono_literals;

namespace {

const openstack::test::Stack& sim() { return openstack::test::stack(openstack::test::Nova::simulator); }

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string upload(const openstack::test::Stack& s, const fs::path& file, const std::string& format, const std::string& name) {
  return trim(openstack::test::openstack_cli(s, "image create --disk-format " + format + " --container-format bare --file " +
                                         file.string() + " " + name + " -f value -c id"));
}

// The bootable guest disk in Glance, uploaded once (the simulator's own boot disk recipe).
const std::string& base_image() {
  static std::string id = [] {
    const auto& s = sim();
    if (::geteuid() != 0) openstack::test::skip("building the test guest needs root");
    // The guest's base.qcow2 is a whole BIOS-bootable disk that reads an OpenStack config drive.
    auto disk = (lcake::test::test_guest("dropbear") / "base.qcow2").string();
    // One image of this name (a reused stack may hold one from an earlier run).
    for (auto& old : json::parse(openstack::test::openstack_cli(s, "image list --name lcake-sim-base -f json")))
      openstack::test::openstack_cli(s, "image delete " + old.value("ID", std::string()));
    return upload(s, disk, "qcow2", "lcake-sim-base");
  }();
  return id;
}

json settings(json extra = json::object()) {
  json j = {{"cloud", "lcake-test"}, {"flavor", "ds512M"}, {"networks", "auto"}, {"ssh_timeout", 120},
            {"boot_timeout", 300}, {"stop_timeout", 120}, {"image_timeout", 600}, {"poll_interval", 0.5}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

struct Ctx : testing::FakeContext {
  explicit Ctx(const std::string& name) : FakeContext(sim().root / ("ctx-" + name)) {
    ssh_factory = [](const SshOptions& o, testing::FakeContext& c) {
      return core::connect_ssh(o, c.cancel(), [&c](std::string_view m) { c.debug(m); });
    };
  }
};

LayerInfo layer(const std::string& name) {
  LayerInfo l;
  l.target = "openstack";
  l.variant = "v1";
  l.layer = name;
  l.key = std::string(64, name[0] == 'b' ? 'b' : 'c');
  l.lcake_version = "test";
  return l;
}

// Nothing of the run is left: no open ledger entry, no server in the
// simulator, no key pair in Nova (as the openstack CLI sees it).
void check_nothing_left(Ctx& ctx) {
  CHECK(ctx.memory_ledger.open_entries().empty());
  auto servers = openstack::test::sim_control(sim(), "GET", "/_sim/servers").at("servers");
  CHECK_MESSAGE(servers.empty(), "servers left: " << servers.dump());
  auto keypairs = json::parse(openstack::test::openstack_cli(sim(), "keypair list -f json"));
  CHECK_MESSAGE(keypairs.empty(), "key pairs left: " << keypairs.dump());
  auto fips = openstack::test::sim_control(sim(), "GET", "/_sim/floatingips").at("floatingips");
  CHECK_MESSAGE(fips.empty(), "floating IPs left: " << fips.dump());
}

// The simulator's events of one kind (its request log), e.g. "floating-connection".
std::vector<json> sim_events(const std::string& event) {
  std::vector<json> out;
  std::ifstream in(sim().nova_dir / "requests.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto e = json::parse(line, nullptr, false);
    if (e.is_object() && e.value("kind", "") == "event" && e.value("event", "") == event) out.push_back(e);
  }
  return out;
}

std::size_t connections_to(const std::string& floating_ip_id) {
  std::size_t n = 0;
  for (auto& e : sim_events("floating-connection")) n += e.value("floatingip", "") == floating_ip_id;
  return n;
}

std::string run(Communicator& c, const std::string& command) {
  std::string out;
  int rc = c.run(command, [&](std::string_view chunk, bool) { out.append(chunk); }, 60s);
  REQUIRE_MESSAGE(rc == 0, command << " exited " << rc << ": " << out);
  return out;
}

}  // namespace

TEST_CASE("build a layer and a child on Nova, snapshot to Glance, verify the child") {
  auto base = base_image();
  Ctx ctx("build");
  NovaBuilder builder(settings());

  BuildRequest first;
  first.layer = layer("base");
  first.source = {{"image", "lcake-sim-base"}};
  auto session = builder.start(first, ctx);
  run(session->communicator(), "echo provisioned-by-lcake > /root/provisioned && sync");
  auto built = session->finish(ctx);
  CHECK(built.type == "glance-image");
  auto shown = json::parse(openstack::test::openstack_cli(sim(), "image show -f json " + built.id));
  CHECK(shown.value("status", "") == "active");
  CHECK(shown.at("properties").value("lcake_key", "") == first.layer.key);
  CHECK(shown.at("properties").value("lcake_base_image", "") == base);
  check_nothing_left(ctx);

  BuildRequest child;
  child.layer = layer("child");
  child.parent = built;
  auto session2 = builder.start(child, ctx);
  CHECK(run(session2->communicator(), "cat /root/provisioned").find("provisioned-by-lcake") != std::string::npos);
  run(session2->communicator(), "echo child-layer > /root/child && sync");
  auto built2 = session2->finish(ctx);
  auto shown2 = json::parse(openstack::test::openstack_cli(sim(), "image show -f json " + built2.id));
  CHECK(shown2.value("status", "") == "active");
  CHECK(shown2.at("properties").value("lcake_base_image", "") == built.id);  // booted from its parent
  check_nothing_left(ctx);

  NovaVerifier verifier(settings());
  VerifyRequest v;
  v.layer = child.layer;
  v.candidate = v.built = built2;
  auto vs = verifier.start(v, ctx);
  auto out = run(vs->communicator(), "cat /root/provisioned /root/child");
  CHECK(out.find("provisioned-by-lcake") != std::string::npos);
  CHECK(out.find("child-layer") != std::string::npos);
  CHECK_FALSE(json::parse(openstack::test::openstack_cli(sim(), "image show -f json " + built2.id))
                  .at("properties").contains("lcake_verified"));
  vs->finish(ctx);
  check_nothing_left(ctx);
  // The image remembers that it passed (for find() by a runner with an empty state).
  CHECK(json::parse(openstack::test::openstack_cli(sim(), "image show -f json " + built2.id))
            .at("properties").value("lcake_verified", "").size() == 20);

  // lcake gc of the artifacts: remove() deletes the images, twice is fine.
  builder.remove(built2, ctx);
  builder.remove(built2, ctx);
  CHECK_FALSE(builder.exists(built2, ctx));
  builder.remove(built, ctx);
}

TEST_CASE("builds-on-upload: a child boots the parent's upload as a fresh runner's find() gives it, with its SSH user") {
  base_image();
  Ctx ctx("on-upload");
  NovaBuilder builder(settings());
  BuildRequest first;
  first.layer = layer("base");
  // An upload key of this run only (a reused stack may hold earlier runs' images).
  first.layer.upload_key = std::string(48, 'u') + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 10000000000000000);
  first.source = {{"image", "lcake-sim-base"}};
  auto session = builder.start(first, ctx);
  run(session->communicator(), "echo provisioned-by-lcake > /root/provisioned && sync");
  auto built = session->finish(ctx);
  REQUIRE(built.metadata.value("ssh_user", "") == "root");
  json glance_settings = {{"cloud", "lcake-test"}};
  GlanceUploader(glance_settings).upload({first.layer, built, std::nullopt, {}}, ctx);  // adopted in place

  // A runner with an empty state: its uploader finds the image by the upload key; the SSH user
  // comes from the image (lcake_ssh_user), not from a build record it does not have.
  Ctx fresh("on-upload-fresh");
  auto found = GlanceUploader(glance_settings).find({first.layer, {}}, fresh);
  REQUIRE(found);
  CHECK(found->id == built.id);
  CHECK(found->type == "glance-image");
  CHECK(found->metadata.value("ssh_user", "") == "root");

  // The child's builder would log in as someone else without it.
  NovaBuilder child_builder(settings({{"ssh_user", "nobody-logs-in-as-me"}, {"ssh_timeout", 60}}));
  BuildRequest child;
  child.layer = layer("child");
  child.parent = *found;
  auto child_session = child_builder.start(child, fresh);
  CHECK(run(child_session->communicator(), "cat /root/provisioned").find("provisioned-by-lcake") != std::string::npos);
  child_session->abort(fresh);
  check_nothing_left(fresh);
  builder.remove(built, ctx);
  check_nothing_left(ctx);
}

TEST_CASE("a server that goes to ERROR: the fault in one line, nothing left") {
  base_image();
  Ctx ctx("error");
  openstack::test::sim_control(sim(), "POST", "/_sim/fail", {{"op", "create"}, {"mode", "error"}});
  NovaBuilder builder(settings());
  BuildRequest first;
  first.layer = layer("base");
  first.source = {{"image", "lcake-sim-base"}};
  try {
    builder.start(first, ctx);
    FAIL("start succeeded on a server in ERROR");
  } catch (const BuildError& e) {
    std::string what = e.what();
    CHECK(what.find("went to ERROR") != std::string::npos);
    CHECK(what.find("no fault recorded") == std::string::npos);
    CHECK(what.find('\n') == std::string::npos);
  }
  openstack::test::sim_control(sim(), "DELETE", "/_sim/fail");
  check_nothing_left(ctx);
}

TEST_CASE("SSH that never comes up: a timeout error, nothing left") {
  Ctx ctx("nossh");
  auto blank = sim().root / "blank.raw";
  { std::ofstream(blank) << std::string(1 << 20, '\0'); }
  auto image = upload(sim(), blank, "raw", "lcake-sim-blank");
  NovaBuilder builder(settings({{"ssh_timeout", 8}}));
  BuildRequest first;
  first.layer = layer("base");
  first.source = {{"image", image}};
  auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(builder.start(first, ctx), BuildError);
  CHECK(std::chrono::steady_clock::now() - started < 90s);
  check_nothing_left(ctx);
  openstack::test::openstack_cli(sim(), "image delete " + image);
}

TEST_CASE("cancel during boot: Cancelled, nothing left") {
  base_image();
  Ctx ctx("cancel");
  openstack::test::sim_control(sim(), "POST", "/_sim/fail", {{"op", "create"}, {"mode", "slow"}, {"seconds", 30}});
  NovaVerifier verifier(settings());
  VerifyRequest v;
  v.layer = layer("base");
  v.candidate.type = "glance-image";
  v.candidate.id = base_image();
  v.built = v.candidate;
  ctx.cancel_token.fire_after(3s);
  CHECK_THROWS_AS(verifier.start(v, ctx), Cancelled);
  openstack::test::sim_control(sim(), "DELETE", "/_sim/fail");
  check_nothing_left(ctx);
}

TEST_CASE("reap after a crash: a leftover server, key pair and snapshot are deleted; gone ones are AlreadyGone") {
  Ctx ctx("reap");
  auto blank = sim().root / "reap-blank.raw";
  { std::ofstream(blank) << std::string(1 << 20, '\0'); }
  auto image = upload(sim(), blank, "raw", "lcake-sim-reap");
  // What a build killed with -9 leaves: a key pair, a server never confirmed (its ledger entry
  // has only the name), a snapshot image whose id was recorded.
  auto key_file = sim().root / "reap-key.pub";
  openstack::test::sh("rm -f " + (sim().root / "reap-key").string() + "* && ssh-keygen -q -t ed25519 -N '' -f " +
                      (sim().root / "reap-key").string());
  openstack::test::openstack_cli(sim(), "keypair create --public-key " + key_file.string() + " lcake-reap-kp");
  auto session = std::make_shared<KeystoneSession>(AuthSettings::from_json(settings()), ctx);
  NovaClient nova(session, ctx);
  nova.negotiate();
  ServerSpec spec;
  spec.name = "lcake-build-v1-base-reap", spec.image_ref = image;
  spec.flavor_ref = nova.flavor("ds512M").at("id").get<std::string>();
  spec.networks = "none";
  auto id = nova.create_server(spec).at("id").get<std::string>();

  NovaBuilder builder(settings());
  LedgerEntry server, keypair, snapshot;
  server.kind = kServerKind, server.resource_id = spec.name, server.how = {{"name", spec.name}};
  keypair.kind = kKeypairKind, keypair.resource_id = "lcake-reap-kp", keypair.how = {{"name", "lcake-reap-kp"}};
  snapshot.kind = kImageKind, snapshot.resource_id = image, snapshot.how = {{"name", "lcake-sim-reap"}, {"id", image}};
  builder.reap(server, ctx);
  CHECK(ctx.logged("deleted leftover Nova server " + id));
  builder.reap(keypair, ctx);
  builder.reap(snapshot, ctx);
  int rc = 0;
  openstack::test::openstack_cli(sim(), "image show " + image, &rc);
  CHECK(rc != 0);
  check_nothing_left(ctx);
  // Again: nothing there any more (Nova and Glance answer 404), which gc counts as "already gone".
  CHECK_THROWS_WITH_AS(builder.reap(server, ctx), doctest::Contains("already gone"), AlreadyGone);
  CHECK_THROWS_WITH_AS(builder.reap(keypair, ctx), doctest::Contains("already gone"), AlreadyGone);
  CHECK_THROWS_WITH_AS(builder.reap(snapshot, ctx), doctest::Contains("already gone"), AlreadyGone);
  NovaVerifier verifier(settings());
  CHECK_THROWS_AS(verifier.reap(keypair, ctx), AlreadyGone);
}

// ---- floating IPs (the simulator's Networking API: each floating IP is a loopback address of its
// own, forwarded to the server's 127.0.0.N:22 while associated) ----

TEST_CASE("floating IP: allocated from the external network, used for SSH, released after verify") {
  base_image();
  Ctx ctx("fip-verify");
  NovaVerifier verifier(settings({{"floating_ip_network", "public"}}));
  VerifyRequest v;
  v.layer = layer("base");
  v.candidate.type = "glance-image";
  v.candidate.id = base_image();
  v.built = v.candidate;
  auto vs = verifier.start(v, ctx);
  auto fips = openstack::test::sim_control(sim(), "GET", "/_sim/floatingips").at("floatingips");
  REQUIRE(fips.size() == 1);
  auto fip = fips[0];
  CHECK(fip.value("description", "").rfind("lcake-verify-v1-base-", 0) == 0);
  CHECK(fip.value("status", "") == "ACTIVE");
  CHECK(!fip.value("port_id", json()).is_null());
  auto address = fip.value("floating_ip_address", "");
  CHECK(address != fip.value("fixed_ip_address", ""));  // SSH went to the floating address, not the fixed one
  CHECK(ctx.logged("floating IP " + address));
  CHECK(connections_to(fip["id"]) >= 1);
  CHECK(run(vs->communicator(), "echo through-the-floating-ip").find("through-the-floating-ip") != std::string::npos);
  // Nova shows the floating address among the server's addresses, as a cloud does.
  auto servers = openstack::test::sim_control(sim(), "GET", "/_sim/servers").at("servers");
  REQUIRE(servers.size() == 1);
  auto session = std::make_shared<KeystoneSession>(AuthSettings::from_json(settings()), ctx);
  NovaClient nova(session, ctx);
  nova.negotiate();
  CHECK(pick_address(*nova.show_server(servers[0]["id"]), "floating") == address);
  vs->finish(ctx);
  check_nothing_left(ctx);
  bool released = false;
  for (auto& e : sim_events("floatingip-delete")) released |= e.value("floatingip", "") == fip["id"];
  CHECK(released);
}

TEST_CASE("floating IP: released when a build fails (abort) and when SSH never comes up") {
  base_image();
  SUBCASE("a failed provisioner: the host aborts the build session") {
    Ctx ctx("fip-abort");
    NovaBuilder builder(settings({{"floating_ip_network", "public"}}));
    BuildRequest first;
    first.layer = layer("base");
    first.source = {{"image", "lcake-sim-base"}};
    auto session = builder.start(first, ctx);
    auto fips = openstack::test::sim_control(sim(), "GET", "/_sim/floatingips").at("floatingips");
    REQUIRE(fips.size() == 1);
    CHECK(fips[0].value("description", "").rfind("lcake-build-v1-base-", 0) == 0);
    CHECK(connections_to(fips[0]["id"]) >= 1);
    int rc = session->communicator().run("exit 3", [](std::string_view, bool) {}, 60s);
    CHECK(rc == 3);
    session->abort(ctx);
    check_nothing_left(ctx);
  }
  SUBCASE("SSH never answers: the timeout error, the floating IP released with the server") {
    Ctx ctx("fip-nossh");
    auto blank = sim().root / "fip-blank.raw";
    { std::ofstream(blank) << std::string(1 << 20, '\0'); }
    auto image = upload(sim(), blank, "raw", "lcake-sim-fip-blank");
    NovaBuilder builder(settings({{"floating_ip_network", "public"}, {"ssh_timeout", 8}}));
    BuildRequest first;
    first.layer = layer("base");
    first.source = {{"image", image}};
    auto before = sim_events("floatingip-create").size();
    CHECK_THROWS_AS(builder.start(first, ctx), BuildError);
    CHECK(sim_events("floatingip-create").size() == before + 1);  // one was made, and went
    check_nothing_left(ctx);
    openstack::test::openstack_cli(sim(), "image delete " + image);
  }
}

TEST_CASE("floating IP: Ctrl-C while waiting for SSH releases it") {
  Ctx ctx("fip-cancel");
  auto blank = sim().root / "fip-cancel-blank.raw";
  { std::ofstream(blank) << std::string(1 << 20, '\0'); }
  auto image = upload(sim(), blank, "raw", "lcake-sim-fip-cancel");
  NovaVerifier verifier(settings({{"floating_ip_network", "public"}, {"ssh_timeout", 120}}));
  VerifyRequest v;
  v.layer = layer("base");
  v.candidate.type = "glance-image";
  v.candidate.id = image;
  v.built = v.candidate;
  auto before = sim_events("floatingip-associate").size();
  std::thread watcher([&] {  // cancel once the floating IP is associated (SSH is being tried)
    for (int i = 0; i < 600 && sim_events("floatingip-associate").size() == before; ++i)
      std::this_thread::sleep_for(200ms);
    std::this_thread::sleep_for(1s);
    ctx.cancel_token.fire();
  });
  CHECK_THROWS_AS(verifier.start(v, ctx), Cancelled);
  watcher.join();
  CHECK(sim_events("floatingip-associate").size() == before + 1);
  check_nothing_left(ctx);
  openstack::test::openstack_cli(sim(), "image delete " + image);
}

TEST_CASE("floating IP: a wrong or internal network is refused before anything is made") {
  base_image();
  Ctx ctx("fip-wrong");
  auto before = sim_events("create").size();
  VerifyRequest v;
  v.layer = layer("base");
  v.candidate.type = "glance-image";
  v.candidate.id = base_image();
  v.built = v.candidate;
  NovaVerifier missing(settings({{"floating_ip_network", "no-such-net"}}));
  CHECK_THROWS_WITH_AS(missing.start(v, ctx), doctest::Contains("no network named or with id 'no-such-net'"),
                       InputError);
  NovaVerifier internal(settings({{"floating_ip_network", "private"}}));
  CHECK_THROWS_WITH_AS(internal.start(v, ctx), doctest::Contains("is not external"), InputError);
  CHECK_THROWS_AS(ServerSettings::from_json(settings({{"floating_ip_network", "public"}, {"networks", "none"}})),
                  ValueError);
  CHECK_THROWS_AS(ServerSettings::from_json(settings({{"floating_ip_network", "public"}, {"address", "fixed"}})),
                  ValueError);
  CHECK(sim_events("create").size() == before);  // no server
  check_nothing_left(ctx);
}

TEST_CASE("floating IP: reap after a crash releases a leaked one (found by description when unconfirmed)") {
  Ctx ctx("fip-reap");
  auto session = std::make_shared<KeystoneSession>(AuthSettings::from_json(settings()), ctx);
  NeutronClient neutron(session, ctx);
  auto net = neutron.external_network("public");
  // What a run killed with -9 leaves: floating IPs whose ledger entries have only the
  // description (the create answer never arrived) or the id.
  auto a = neutron.create_floating_ip(net, "lcake-build-v1-base-reapfip1");
  auto b = neutron.create_floating_ip(net, "lcake-verify-v1-base-reapfip2");
  LedgerEntry unconfirmed, confirmed;
  unconfirmed.kind = kFloatingIpKind, unconfirmed.resource_id = "lcake-build-v1-base-reapfip1";
  unconfirmed.how = {{"description", "lcake-build-v1-base-reapfip1"}};
  confirmed.kind = kFloatingIpKind, confirmed.resource_id = b["id"];
  confirmed.how = {{"description", "lcake-verify-v1-base-reapfip2"}, {"id", b["id"]},
                   {"address", b["floating_ip_address"]}};
  NovaBuilder builder(settings());
  NovaVerifier verifier(settings());
  builder.reap(unconfirmed, ctx);
  CHECK(ctx.logged("released leftover floating IP"));
  verifier.reap(confirmed, ctx);
  CHECK(ctx.logged("released leftover floating IP " + b["floating_ip_address"].get<std::string>()));
  check_nothing_left(ctx);
  CHECK_THROWS_WITH_AS(builder.reap(unconfirmed, ctx), doctest::Contains("already gone"), AlreadyGone);
  CHECK_THROWS_WITH_AS(verifier.reap(confirmed, ctx), doctest::Contains("already gone"), AlreadyGone);
  CHECK(neutron.floating_ips_described("lcake-build-v1-base-reapfip1").empty());
  (void)a;
}
