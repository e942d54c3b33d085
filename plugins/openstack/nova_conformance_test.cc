// Conformance of lcake's Nova client with real Nova (Debian's nova-api with the
// fake virt driver, tests/services/openstack/nova-fake.sh): the requests the
// builder and verifier send are the ones real Nova accepts. Nothing boots.
#include <doctest/doctest.h>

#include <fstream>

#include "lcake/testing.hpp"
#include "nova_client.h"
#include "openstack_test_services.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lcake;
using namespace lcake::openstack;
using namespace std::chrono_literals;

namespace {

const test::Stack& nova_fake() { return test::stack(test::Nova::fake); }

std::shared_ptr<KeystoneSession> demo_session(Context& ctx) {
  AuthSettings a;
  a.cloud = "lcake-test";
  return std::make_shared<KeystoneSession>(a, ctx);
}

// A Glance image for servers to refer to (the fake driver never reads it).
std::string some_image(const test::Stack& s, const fs::path& dir) {
  auto file = dir / "blank.raw";
  { std::ofstream(file) << std::string(1 << 20, '\0'); }
  auto id = test::openstack_cli(s, "image create --disk-format raw --container-format bare --file " +
                                       file.string() + " lcake-conformance -f value -c id");
  while (!id.empty() && std::isspace(static_cast<unsigned char>(id.back()))) id.pop_back();
  return id;
}

}  // namespace

TEST_CASE("Nova client against real Nova (fake driver)") {
  const auto& s = nova_fake();
  testing::FakeContext ctx(s.root / "ctx-conformance");
  NovaClient nova(demo_session(ctx), ctx);

  auto mv = nova.negotiate();
  CHECK(mv == "2.67");  // Debian's Nova serves up to 2.93; the client wants 2.67
  auto image = some_image(s, s.root);

  SUBCASE("flavors by name and by id") {
    auto tiny = nova.flavor("m1.tiny");
    CHECK(tiny.value("name", "") == "m1.tiny");
    CHECK(nova.flavor(tiny.at("id").get<std::string>()).value("name", "") == "m1.tiny");
    CHECK_THROWS_WITH_AS(nova.flavor("no-such-flavor"), doctest::Contains("have: "), InputError);
  }

  SUBCASE("key pairs: import a public key, delete it, a second delete is not an error") {
    auto pub = ctx.generate_ssh_key(ctx.work_dir() / "kp");
    nova.create_keypair("lcake-conf-kp", pub);
    auto listed = test::openstack_cli(s, "keypair list -f json");
    CHECK(listed.find("lcake-conf-kp") != std::string::npos);
    CHECK(nova.delete_keypair("lcake-conf-kp"));
    CHECK_FALSE(nova.delete_keypair("lcake-conf-kp"));
    CHECK(test::openstack_cli(s, "keypair list -f json").find("lcake-conf-kp") == std::string::npos);
  }

  SUBCASE("server lifecycle: create (networks none, key, user data, metadata), show, stop, createImage, delete") {
    auto pub = ctx.generate_ssh_key(ctx.work_dir() / "kp2");
    nova.create_keypair("lcake-conf-kp2", pub);
    ServerSpec spec;
    spec.name = "lcake-conf-server";
    spec.image_ref = image;
    spec.flavor_ref = nova.flavor("m1.tiny").at("id");
    spec.key_name = "lcake-conf-kp2";
    spec.networks = "none";
    spec.user_data = "#cloud-config\nssh_authorized_keys:\n  - " + pub + "\n";
    spec.config_drive = true;
    spec.metadata = {{"lcake_layer", "base"}};
    auto created = nova.create_server(spec);
    std::string id = created.at("id");
    CHECK(nova.servers_named("lcake-conf-server") == std::vector<std::string>{id});

    // The fake driver takes ~1 s; the generous waits are for a loaded CI machine, where Nova's
    // services queue behind each other (nova-fake.sh starts the test only once each consumes).
    auto active = nova.wait_for_status(id, "ACTIVE", {180s, 500ms});
    CHECK(active.value("key_name", "") == "lcake-conf-kp2");
    CHECK(active.at("metadata").value("lcake_layer", "") == "base");
    nova.stop_server(id);
    nova.wait_for_status(id, "SHUTOFF", {180s, 500ms});

    auto image_id = nova.create_image(id, "lcake-conf-snapshot", {{"lcake_key", "abc"}});
    CHECK(image_id.size() == 36);
    auto shown = test::openstack_cli(s, "image show -f json " + image_id);
    CHECK(json::parse(shown).value("name", "") == "lcake-conf-snapshot");
    test::openstack_cli(s, "image delete " + image_id);  // the fake driver leaves it queued

    CHECK(nova.delete_server(id));
    nova.wait_deleted(id, {180s, 500ms});
    auto gone = nova.show_server(id);  // real Nova may show it DELETED for a moment
    CHECK((!gone || gone->value("status", "") == "DELETED"));
    nova.delete_keypair("lcake-conf-kp2");
  }

  SUBCASE("error answers carry Nova's message") {
    ServerSpec spec;
    spec.name = "lcake-conf-bad";
    spec.image_ref = image;
    spec.flavor_ref = "no-such-flavor";
    spec.networks = "none";
    try {
      nova.create_server(spec);
      FAIL("a bad flavor was accepted");
    } catch (const NovaError& e) {
      CHECK(e.status == 400);
      CHECK(e.kind == "badRequest");
      CHECK(std::string(e.what()).find("no-such-flavor") != std::string::npos);
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
    try {
      nova.stop_server("00000000-0000-0000-0000-000000000000");
      FAIL("stopping an unknown server succeeded");
    } catch (const NovaError& e) {
      CHECK(e.status == 404);
      INFO(e.what());
      CHECK(e.kind == "itemNotFound");
      CHECK_FALSE(e.message.empty());
    }
    CHECK_FALSE(nova.show_server("00000000-0000-0000-0000-000000000000").has_value());
  }
  test::openstack_cli(s, "image delete " + image);
}
