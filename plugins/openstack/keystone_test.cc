// KeystoneSession against real Keystone (tests/services/openstack/keystone-glance.sh):
// password from clouds.yaml and from openrc variables, application credentials by id
// and by name, an existing token, a wrong password, and renewal of short-lived tokens.
#include <doctest/doctest.h>

#include <thread>

#include "auth.h"
#include "lcake/errors.hpp"
#include "lcake/testing.hpp"
#include "openstack_test_services.h"
#include "test_support.h"

using namespace lcake::openstack;
using namespace lcake::openstack::test;
using lcake::testing::FakeContext;

namespace {

std::map<std::string, std::string> base_env(const Stack& s) {
  return {{"OS_AUTH_URL", s.env.at("OS_AUTH_URL")}, {"OS_REGION_NAME", "RegionOne"}};
}

bool redacted(const FakeContext& ctx, const std::string& v) {
  return std::find(ctx.redacted.begin(), ctx.redacted.end(), v) != ctx.redacted.end();
}

}  // namespace

TEST_CASE("password auth from clouds.yaml (the target's cloud) and from openrc variables") {
  auto& s = keystone_glance();
  lcake::test::TempDir tmp("lcake-ks");
  FakeContext ctx(tmp.path);
  set_os_env({{"OS_CLIENT_CONFIG_FILE", s.clouds_yaml().string()}});
  KeystoneSession a(AuthSettings{.cloud = "lcake-test"}, ctx);
  std::string token = a.token(ctx);
  CHECK(!token.empty());
  CHECK(redacted(ctx, token));
  CHECK(redacted(ctx, s.env.at("OS_PASSWORD")));
  CHECK(a.endpoint("image", ctx) == s.glance_url);
  CHECK(!a.project_id(ctx).empty());
  CHECK(a.token(ctx) == token);  // reused while valid
  CHECK_THROWS_WITH(a.endpoint("compute", ctx), doctest::Contains("has no compute endpoint for interface public"));

  set_os_env(s.env);
  KeystoneSession b(AuthSettings{}, ctx);
  CHECK(b.config().source.find("OS_* environment variables") == 0);
  CHECK(b.project_id(ctx) == a.project_id(ctx));
  CHECK(b.user_id(ctx) == a.user_id(ctx));
  set_os_env({});
}

TEST_CASE("a wrong password is a clear input error naming the source, without the password") {
  auto& s = keystone_glance();
  lcake::test::TempDir tmp("lcake-ks");
  FakeContext ctx(tmp.path);
  auto env = s.env;
  env["OS_PASSWORD"] = "not-the-password-123";
  set_os_env(env);
  KeystoneSession k(AuthSettings{}, ctx);
  std::string message;
  try {
    k.token(ctx);
  } catch (const lcake::InputError& e) {
    message = e.what();
  }
  set_os_env({});
  CHECK(message.find("refused the credentials of OS_* environment variables") != std::string::npos);
  CHECK(message.find("(password)") != std::string::npos);
  CHECK(message.find("not-the-password-123") == std::string::npos);
}

TEST_CASE("application credential by id and by name + user; an existing token") {
  auto& s = keystone_glance();
  lcake::test::TempDir tmp("lcake-ks");
  FakeContext ctx(tmp.path);
  std::string name = "lcake-test-" + std::to_string(::getpid());
  auto created = nlohmann::json::parse(openstack_cli(keystone_glance(), "application credential create " + name + " -f json"));
  std::string id = created["id"], secret = created["secret"];
  std::string demo_project = created["project_id"];

  auto env = base_env(s);
  env["OS_AUTH_TYPE"] = "v3applicationcredential";
  env["OS_APPLICATION_CREDENTIAL_ID"] = id;
  env["OS_APPLICATION_CREDENTIAL_SECRET"] = secret;
  set_os_env(env);
  KeystoneSession by_id(AuthSettings{}, ctx);
  CHECK(by_id.project_id(ctx) == demo_project);
  CHECK(redacted(ctx, secret));
  CHECK(by_id.endpoint("image", ctx) == s.glance_url);

  env.erase("OS_APPLICATION_CREDENTIAL_ID");
  env["OS_APPLICATION_CREDENTIAL_NAME"] = name;
  env["OS_USERNAME"] = "demo";
  env["OS_USER_DOMAIN_NAME"] = "Default";
  set_os_env(env);
  KeystoneSession by_name(AuthSettings{}, ctx);
  CHECK(by_name.project_id(ctx) == demo_project);

  env["OS_APPLICATION_CREDENTIAL_SECRET"] = "wrong";
  set_os_env(env);
  KeystoneSession wrong(AuthSettings{}, ctx);
  CHECK_THROWS_AS(wrong.token(ctx), lcake::InputError);

  std::string issued = openstack_cli(keystone_glance(), "token issue -f value -c id");
  set_os_env({{"OS_AUTH_URL", s.env.at("OS_AUTH_URL")}, {"OS_AUTH_TYPE", "token"}, {"OS_TOKEN", issued},
              {"OS_PROJECT_NAME", "demo"}, {"OS_PROJECT_DOMAIN_NAME", "Default"}});
  KeystoneSession by_token(AuthSettings{}, ctx);
  CHECK(by_token.project_id(ctx) == demo_project);
  CHECK(redacted(ctx, issued));
  set_os_env({});
  openstack_cli(keystone_glance(), "application credential delete " + id);
}

TEST_CASE("short-lived tokens are renewed before they expire") {
  auto& s = keystone_glance();
  lcake::test::TempDir tmp("lcake-ks");
  FakeContext ctx(tmp.path);
  set_os_env(s.env);
  KeystoneSession k(AuthSettings{}, ctx);
  std::string first = k.token(ctx);
  // Tokens live 30 s here: renewed once less than half their lifetime is left.
  std::this_thread::sleep_for(std::chrono::seconds(17));
  std::string second = k.token(ctx);
  CHECK(second != first);
  CHECK(redacted(ctx, second));
  CHECK(k.token(ctx) == second);
  set_os_env({});
}
