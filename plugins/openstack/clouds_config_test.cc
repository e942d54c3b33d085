// Where credentials are found and how the sources merge; the error texts.
// No services: a fake environment and clouds.yaml files in a temp dir.
#include <doctest/doctest.h>

#include <fstream>
#include <map>

#include "auth.h"
#include "clouds_config.h"
#include "lcake/errors.hpp"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake::openstack;

namespace {

struct Setup {
  lcake::test::TempDir tmp{"lcake-os-config"};
  std::map<std::string, std::string> env;
  fs::path cwd = tmp.path / "cwd", home = tmp.path / "home", etc = tmp.path / "etc";
  Setup() {
    fs::create_directories(cwd);
    fs::create_directories(home / ".config/openstack");
    fs::create_directories(etc);
  }
  ConfigSources sources() {
    ConfigSources s;
    s.getenv = [this](const std::string& n) -> std::optional<std::string> {
      if (auto it = env.find(n); it != env.end()) return it->second;
      return std::nullopt;
    };
    s.cwd = cwd, s.home = home, s.etc = etc;
    return s;
  }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  CloudConfig resolve(const std::string& cloud = "", const std::string& region = "", const std::string& iface = "") {
    return resolve_cloud(cloud, region, iface, sources());
  }
  std::string error(const std::string& cloud = "") {
    try {
      resolve(cloud);
    } catch (const lcake::InputError& e) {
      return e.what();
    }
    return "(no error)";
  }
};

const char* kTwoClouds = R"(clouds:
  devstack:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: demo
      password: devpw
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
  prod:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example/v3
      application_credential_id: abc123
    region_name: Two
    interface: internal
    cacert: /etc/ssl/prod-ca.pem
    verify: true
)";

}  // namespace

TEST_CASE("OS_CLOUD picks a cloud from ./clouds.yaml; secure.yaml adds its secret") {
  Setup s;
  Setup::write(s.cwd / "clouds.yaml", kTwoClouds);
  Setup::write(s.home / ".config/openstack/secure.yaml",
               "clouds:\n  prod:\n    auth:\n      application_credential_secret: s3cret\n");
  s.env["OS_CLOUD"] = "prod";
  CloudConfig c = s.resolve();
  CHECK(c.cloud == "prod");
  CHECK(c.auth_type == "v3applicationcredential");
  CHECK(c.application_credential_id == "abc123");
  CHECK(c.application_credential_secret == "s3cret");
  CHECK(c.region_name == "Two");
  CHECK(c.interface == "internal");
  CHECK(c.cacert == "/etc/ssl/prod-ca.pem");
  CHECK(c.source.find("clouds.yaml (" + (s.cwd / "clouds.yaml").string() + ")") == 0);
  CHECK(c.source.find("secure.yaml") != std::string::npos);
  CHECK(c.secrets() == std::vector<std::string>{"s3cret"});
  auto body = auth_request_body(c);
  CHECK(body["auth"]["identity"]["methods"][0] == "application_credential");
  CHECK(body["auth"]["identity"]["application_credential"]["id"] == "abc123");
  CHECK_FALSE(body["auth"].contains("scope"));
}

TEST_CASE("the target's cloud setting wins over OS_CLOUD; OS_CLIENT_CONFIG_FILE over the search path") {
  Setup s;
  Setup::write(s.cwd / "clouds.yaml", "clouds:\n  other: {}\n");
  Setup::write(s.tmp.path / "mine.yaml", kTwoClouds);
  s.env["OS_CLIENT_CONFIG_FILE"] = (s.tmp.path / "mine.yaml").string();
  s.env["OS_CLOUD"] = "prod";
  CloudConfig c = s.resolve("devstack", "RegionX", "admin");
  CHECK(c.cloud == "devstack");
  CHECK(c.username == "demo");
  CHECK(c.region_name == "RegionX");
  CHECK(c.interface == "admin");
  auto body = auth_request_body(c);
  CHECK(body["auth"]["identity"]["password"]["user"] ==
        nlohmann::json({{"name", "demo"}, {"domain", {{"name", "Default"}}}, {"password", "devpw"}}));
  CHECK(body["auth"]["scope"]["project"] == nlohmann::json({{"name", "demo"}, {"domain", {{"name", "Default"}}}}));
}

TEST_CASE("search order: ./clouds.yaml, then ~/.config/openstack, then /etc/openstack") {
  Setup s;
  Setup::write(s.etc / "clouds.yaml", "clouds:\n  etc-cloud: {}\n");
  CHECK(find_clouds_file(s.sources(), "clouds.yaml") == s.etc / "clouds.yaml");
  Setup::write(s.home / ".config/openstack/clouds.yaml", "clouds:\n  home-cloud: {}\n");
  CHECK(find_clouds_file(s.sources(), "clouds.yaml") == s.home / ".config/openstack/clouds.yaml");
  Setup::write(s.cwd / "clouds.yaml", "clouds:\n  cwd-cloud: {}\n");
  CHECK(find_clouds_file(s.sources(), "clouds.yaml") == s.cwd / "clouds.yaml");
}

TEST_CASE("a cloud that is not there names the file and the clouds it has") {
  Setup s;
  Setup::write(s.cwd / "clouds.yaml", kTwoClouds);
  CHECK(s.error("nebula") == "clouds.yaml (" + (s.cwd / "clouds.yaml").string() +
                                 "): cloud \"nebula\" (from the target's cloud setting) not found (have: devstack, prod)");
  s.env["OS_CLOUD"] = "nebula";
  CHECK(s.error().find("(from OS_CLOUD) not found") != std::string::npos);
}

TEST_CASE("errors: no clouds.yaml, bad YAML, nothing configured, missing pieces") {
  Setup s;
  CHECK(s.error("nebula").find("cloud \"nebula\" (from the target's cloud setting) but no clouds.yaml found") == 0);
  CHECK(s.error().find("no OpenStack credentials: name a cloud") == 0);
  s.env["OS_CLIENT_CONFIG_FILE"] = "/nonexistent/clouds.yaml";
  CHECK(s.error("x") == "OS_CLIENT_CONFIG_FILE=/nonexistent/clouds.yaml: no such file");
  s.env.erase("OS_CLIENT_CONFIG_FILE");

  Setup::write(s.cwd / "clouds.yaml", "clouds:\n  a: [unclosed\n");
  CHECK(s.error("a").find("clouds.yaml (" + (s.cwd / "clouds.yaml").string() + "): line ") == 0);

  Setup::write(s.cwd / "clouds.yaml", "clouds:\n  a:\n    auth:\n      username: u\n      password: p\n");
  CHECK(s.error("a").find("cloud \"a\": auth_url missing (auth.auth_url in clouds.yaml/secure.yaml, or OS_AUTH_URL)") !=
        std::string::npos);
  Setup::write(s.cwd / "clouds.yaml",
               "clouds:\n  a:\n    auth:\n      auth_url: http://k/v3\n      username: u\n      user_domain_id: default\n");
  CHECK(s.error("a").find("password missing") != std::string::npos);
  Setup::write(s.cwd / "clouds.yaml",
               "clouds:\n  a:\n    auth:\n      auth_url: http://k/v3\n      username: u\n      password: p\n");
  CHECK(s.error("a").find("user \"u\" needs its domain") != std::string::npos);
  Setup::write(s.cwd / "clouds.yaml", "clouds:\n  a:\n    auth_type: oidc\n    auth:\n      auth_url: http://k/v3\n");
  CHECK(s.error("a").find("auth_type \"oidc\" is not supported") != std::string::npos);
  Setup::write(s.cwd / "clouds.yaml",
               "clouds:\n  a:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://k/v3\n"
               "      application_credential_name: ci\n      application_credential_secret: x\n");
  CHECK(s.error("a").find("given by name needs its user") != std::string::npos);
  Setup::write(s.cwd / "clouds.yaml", "clouds:\n  a:\n    profile: vexxhost\n");
  CHECK(s.error("a").find("uses a profile") != std::string::npos);
}

TEST_CASE("openrc variables alone, and over a named cloud as the CLI does") {
  Setup s;
  s.env = {{"OS_AUTH_URL", "http://127.0.0.1:5000/v3"}, {"OS_USERNAME", "demo"},   {"OS_PASSWORD", "pw"},
           {"OS_PROJECT_ID", "p-123"},                 {"OS_USER_DOMAIN_ID", "default"}, {"OS_REGION_NAME", "R1"},
           {"OS_INTERFACE", "internal"},               {"OS_CACERT", "/ca.pem"}, {"OS_CERT", "/c.pem"},
           {"OS_KEY", "/k.pem"},                       {"OS_INSECURE", "true"}};
  CloudConfig c = s.resolve();
  CHECK(c.source.find("OS_* environment variables (") == 0);
  CHECK(c.source.find("OS_PASSWORD") != std::string::npos);
  CHECK(c.source.find("pw") == std::string::npos);  // names, never values
  CHECK(c.auth_type == "password");
  CHECK(c.region_name == "R1");
  CHECK(c.interface == "internal");
  CHECK(c.cert == "/c.pem");
  CHECK(c.key == "/k.pem");
  CHECK(c.cacert == "/ca.pem");
  CHECK_FALSE(c.verify);
  auto body = auth_request_body(c);
  CHECK(body["auth"]["scope"]["project"] == nlohmann::json({{"id", "p-123"}}));
  CHECK(body["auth"]["identity"]["password"]["user"]["domain"] == nlohmann::json({{"id", "default"}}));

  // clouds.yaml without the password, OS_PASSWORD supplies it.
  Setup t;
  Setup::write(t.cwd / "clouds.yaml",
               "clouds:\n  c:\n    auth:\n      auth_url: http://k/v3\n      username: u\n      user_domain_name: D\n");
  t.env["OS_PASSWORD"] = "from-env";
  CloudConfig d = t.resolve("c");
  CHECK(d.password == "from-env");
  CHECK(d.source.find("with OS_PASSWORD from the environment") != std::string::npos);
}

TEST_CASE("token auth and application credential by name; auth_type inferred") {
  Setup s;
  s.env = {{"OS_AUTH_URL", "http://k/v3"}, {"OS_AUTH_TYPE", "v3token"}, {"OS_TOKEN", "gAAAA-tok"},
           {"OS_PROJECT_NAME", "demo"},    {"OS_PROJECT_DOMAIN_NAME", "Default"}};
  CloudConfig c = s.resolve();
  CHECK(c.auth_type == "v3token");
  auto body = auth_request_body(c);
  CHECK(body["auth"]["identity"] == nlohmann::json({{"methods", {"token"}}, {"token", {{"id", "gAAAA-tok"}}}}));
  CHECK(body["auth"]["scope"]["project"]["domain"]["name"] == "Default");
  CHECK(c.secrets() == std::vector<std::string>{"gAAAA-tok"});

  Setup t;
  t.env = {{"OS_AUTH_URL", "http://k/v3"},
           {"OS_APPLICATION_CREDENTIAL_NAME", "ci"},
           {"OS_APPLICATION_CREDENTIAL_SECRET", "sec"},
           {"OS_USERNAME", "demo"},
           {"OS_USER_DOMAIN_NAME", "Default"}};
  CloudConfig a = t.resolve();
  CHECK(a.auth_type == "v3applicationcredential");
  auto ab = auth_request_body(a);
  CHECK(ab["auth"]["identity"]["application_credential"] ==
        nlohmann::json({{"name", "ci"}, {"secret", "sec"}, {"user", {{"name", "demo"}, {"domain", {{"name", "Default"}}}}}}));
}

TEST_CASE("a bad interface is an input error; Keystone timestamps parse") {
  Setup s;
  Setup::write(s.cwd / "clouds.yaml", kTwoClouds);
  CHECK_THROWS_WITH_AS(s.resolve("devstack", "", "private"),
                       doctest::Contains("interface \"private\" is not public, internal or admin"), lcake::InputError);
  auto t = parse_iso8601("1970-01-02T00:00:10.000000Z");
  CHECK(std::chrono::system_clock::to_time_t(t) == 86410);
  CHECK_THROWS_AS(parse_iso8601("soon"), lcake::BuildError);
}
