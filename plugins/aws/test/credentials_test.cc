// Config files, region and endpoint lookup, and each credential source that
// needs no AWS service: environment, profiles, credential_process, container
// and IMDSv2 endpoints (metadata_server.py, a loopback stand-in from AWS's docs).
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "aws_config.h"
#include "aws_client.h"
#include "credentials.h"
#include "lcake/testing.hpp"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake::aws;
using lcake::testing::FakeContext;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// metadata_server.py on a free loopback port, once for the binary.
struct MetadataServer {
  int port = 0;
  pid_t pid = -1;
  MetadataServer() {
    port = lcake::test::free_port();
    pid = ::fork();
    if (pid == 0) {
      ::unsetenv("PYTHONPATH");
      ::unsetenv("VIRTUAL_ENV");
      std::string script = std::string(AWS_TEST_DIR) + "/metadata_server.py";
      std::string p = std::to_string(port);
      ::execl("/usr/bin/python3", "python3", script.c_str(), p.c_str(), "container-token-xyz", "200",
              "oidc.token.value", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (aws_ready()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGTERM), ::waitpid(pid, nullptr, 0);
    pid = -1;
    FAIL("metadata_server.py did not start");
  }
  bool aws_ready() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  ~MetadataServer() {
    if (pid > 0) ::kill(pid, SIGTERM), ::waitpid(pid, nullptr, 0);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
};

MetadataServer& server() {
  static MetadataServer s;
  return s;
}

}  // namespace

TEST_CASE("INI files as botocore reads them") {
  auto ini = IniFile::parse(
      "# comment\n[default]\nregion = eu-west-1\n; other\n[profile dev]\naws_access_key_id=AK\n"
      "s3 =\n  endpoint_url = http://s3.local\n  addressing_style = path\nafter = x\n",
      "cfg");
  CHECK(ini.sections["default"]["region"] == "eu-west-1");
  CHECK(ini.sections["profile dev"]["aws_access_key_id"] == "AK");
  CHECK(ini.sections["profile dev"]["s3.endpoint_url"] == "http://s3.local");
  CHECK(ini.sections["profile dev"]["s3.addressing_style"] == "path");
  CHECK(ini.sections["profile dev"]["after"] == "x");
  CHECK(error_of([] { IniFile::parse("key = v\n", "f"); }).find("f:1") != std::string::npos);
  CHECK(error_of([] { IniFile::parse("[x\n", "f"); }).find("unterminated") != std::string::npos);
}

TEST_CASE("profile, region and endpoints in the CLI's order") {
  lcake::test::TempDir home;
  write(home.path / ".aws/config",
        "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\nendpoint_url = http://dev.local\n"
        "[profile svc]\nservices = mine\n[services mine]\nec2 =\n  endpoint_url = http://ec2.mine\n");
  write(home.path / ".aws/credentials", "[dev]\naws_access_key_id = AKDEV\naws_secret_access_key = SDEV\n");
  std::map<std::string, std::string> vars = {{"HOME", home.path.string()}};
  auto c = AwsConfig::load(env_of(vars));
  CHECK(c.profile == "default");
  CHECK(c.region == "eu-west-1");
  CHECK(c.endpoint(Service::ebs) == "https://ebs.eu-west-1.amazonaws.com");
  vars["AWS_DEFAULT_REGION"] = "us-west-2";
  CHECK(AwsConfig::load(env_of(vars)).region == "us-west-2");
  vars["AWS_REGION"] = "us-east-2";
  CHECK(AwsConfig::load(env_of(vars)).region == "us-east-2");
  CHECK(AwsConfig::load(env_of(vars), "", "sa-east-1").region == "sa-east-1");  // like --region

  vars = {{"HOME", home.path.string()}, {"AWS_PROFILE", "dev"}};
  c = AwsConfig::load(env_of(vars));
  CHECK(c.region == "ap-south-1");
  CHECK(c.endpoint(Service::ec2) == "http://dev.local");
  vars["AWS_ENDPOINT_URL"] = "http://all.local";
  CHECK(AwsConfig::load(env_of(vars)).endpoint(Service::s3) == "http://all.local");
  vars["AWS_ENDPOINT_URL_S3"] = "http://s3.local";
  CHECK(AwsConfig::load(env_of(vars)).endpoint(Service::s3) == "http://s3.local");
  CHECK(AwsConfig::load(env_of(vars)).endpoint(Service::sts) == "http://all.local");
  vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  CHECK(AwsConfig::load(env_of(vars)).endpoint(Service::s3) == "https://s3.ap-south-1.amazonaws.com");

  c = AwsConfig::load(env_of({{"HOME", home.path.string()}}), "svc", "eu-north-1");
  CHECK(c.endpoint(Service::ec2) == "http://ec2.mine");
  CHECK(c.endpoint(Service::ssm) == "https://ssm.eu-north-1.amazonaws.com");

  std::string e = error_of([&] { AwsConfig::load(env_of({{"HOME", home.path.string()}, {"AWS_PROFILE", "nope"}})); });
  CHECK(e.find("AWS profile 'nope'") != std::string::npos);
  CHECK(e.find(".aws/config") != std::string::npos);
  lcake::test::TempDir empty;
  e = error_of([&] { AwsConfig::load(env_of({{"HOME", empty.path.string()}})).require_region(); });
  CHECK(e.find("AWS_REGION") != std::string::npos);

  // AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE replace the default paths.
  write(empty.path / "c", "[profile x]\nregion = me-south-1\n");
  c = AwsConfig::load(env_of({{"HOME", empty.path.string()}, {"AWS_CONFIG_FILE", (empty.path / "c").string()},
                              {"AWS_PROFILE", "x"}}));
  CHECK(c.region == "me-south-1");
}

TEST_CASE("credentials: environment, profiles, and an error naming every source tried") {
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  write(home.path / ".aws/credentials", "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = SFILE\n"
                                        "[half]\naws_access_key_id = AKHALF\n");
  write(home.path / ".aws/config", "[profile cfg]\naws_access_key_id = AKCFG\naws_secret_access_key = SCFG\n"
                                   "[profile half]\n");
  std::map<std::string, std::string> vars = {{"HOME", home.path.string()}, {"AWS_EC2_METADATA_DISABLED", "true"}};
  auto p = default_credentials(AwsConfig::load(env_of(vars)), ctx);
  CHECK(p->get().keys.access_key_id == "AKFILE");
  CHECK(p->get().source.find("credentials") != std::string::npos);

  vars["AWS_ACCESS_KEY_ID"] = "AKENV";
  vars["AWS_SECRET_ACCESS_KEY"] = "SENV";
  vars["AWS_SESSION_TOKEN"] = "TENV";
  auto env_creds = default_credentials(AwsConfig::load(env_of(vars)), ctx)->get();
  CHECK(env_creds.keys.access_key_id == "AKENV");
  CHECK(env_creds.keys.session_token == "TENV");
  CHECK(std::find(ctx.redacted.begin(), ctx.redacted.end(), "SENV") != ctx.redacted.end());
  CHECK(std::find(ctx.redacted.begin(), ctx.redacted.end(), "TENV") != ctx.redacted.end());

  vars.erase("AWS_SECRET_ACCESS_KEY");
  std::string e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("AWS_SECRET_ACCESS_KEY is set") == std::string::npos);
  CHECK(e.find("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not") != std::string::npos);
  vars.erase("AWS_ACCESS_KEY_ID");

  vars["AWS_PROFILE"] = "cfg";
  CHECK(default_credentials(AwsConfig::load(env_of(vars)), ctx)->get().keys.access_key_id == "AKCFG");
  vars["AWS_PROFILE"] = "half";
  e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("AWS profile half has aws_access_key_id but no aws_secret_access_key") != std::string::npos);

  lcake::test::TempDir nothing;
  e = error_of([&] {
    default_credentials(AwsConfig::load(env_of({{"HOME", nothing.path.string()}, {"AWS_EC2_METADATA_DISABLED", "true"}})), ctx);
  });
  CHECK(e.find("no AWS credentials found") != std::string::npos);
  CHECK(e.find("environment") != std::string::npos);
  CHECK(e.find("profile default") != std::string::npos);
  CHECK(e.find("web identity") != std::string::npos);
  CHECK(e.find("container") != std::string::npos);
  CHECK(e.find("AWS_EC2_METADATA_DISABLED") != std::string::npos);
}

TEST_CASE("credentials: credential_process through the context's spawn") {
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  write(home.path / "cred.sh",
        "#!/bin/sh\necho 'noise on stderr' >&2\n"
        "echo '{\"Version\": 1, \"AccessKeyId\": \"AKPROC\", \"SecretAccessKey\": \"SPROC\", "
        "\"SessionToken\": \"TPROC\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n");
  write(home.path / "fail.sh", "#!/bin/sh\necho 'token expired, run login' >&2\nexit 3\n");
  fs::permissions(home.path / "cred.sh", fs::perms::owner_all);
  fs::permissions(home.path / "fail.sh", fs::perms::owner_all);
  write(home.path / ".aws/config", "[profile p]\ncredential_process = " + (home.path / "cred.sh").string() +
                                       " --flag\n[profile f]\ncredential_process = " +
                                       (home.path / "fail.sh").string() + "\n");
  std::map<std::string, std::string> vars = {{"HOME", home.path.string()}, {"AWS_PROFILE", "p"}};
  auto c = default_credentials(AwsConfig::load(env_of(vars)), ctx)->get();
  CHECK(c.keys.access_key_id == "AKPROC");
  CHECK(c.keys.session_token == "TPROC");
  CHECK(c.expiration.has_value());
  CHECK_FALSE(ctx.logged("SPROC"));
  vars["AWS_PROFILE"] = "f";
  std::string e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("credential_process of profile f exited with 3: token expired, run login") != std::string::npos);
}

TEST_CASE("credentials: container endpoint with its authorization token, refreshed before expiry") {
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  std::map<std::string, std::string> vars = {{"HOME", home.path.string()},
                                             {"AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url("/container/creds")},
                                             {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-xyz"}};
  auto p = default_credentials(AwsConfig::load(env_of(vars)), ctx);
  auto first = p->get();
  CHECK(first.keys.access_key_id.rfind("ASIACONT", 0) == 0);
  CHECK(first.keys.session_token.rfind("CONT-session-", 0) == 0);
  // The server's credentials expire in 200 s, inside the 5-minute margin: every get() refreshes.
  CHECK(p->get().keys.access_key_id != first.keys.access_key_id);
  // A long-lived copy is kept between calls.
  auto lenient = std::make_shared<CredentialProvider>(
      container_source(server().url("/container/creds"), "container-token-xyz", "", ctx), ctx, std::chrono::seconds(10));
  auto a = lenient->get();
  CHECK(lenient->get().keys.access_key_id == a.keys.access_key_id);

  write(home.path / "token", "container-token-xyz\n");
  vars.erase("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = (home.path / "token").string();
  CHECK(default_credentials(AwsConfig::load(env_of(vars)), ctx)->get().keys.access_key_id.rfind("ASIACONT", 0) == 0);

  vars.erase("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong";
  std::string e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("container credentials endpoint") != std::string::npos);
  CHECK(e.find("403") != std::string::npos);

  vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://192.0.2.1/creds";
  e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("plain http is allowed only") != std::string::npos);
}

TEST_CASE("credentials: IMDSv2 token, role name, role credentials") {
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  std::map<std::string, std::string> vars = {{"HOME", home.path.string()},
                                             {"AWS_EC2_METADATA_SERVICE_ENDPOINT", server().url("/")}};
  auto c = default_credentials(AwsConfig::load(env_of(vars)), ctx)->get();
  CHECK(c.keys.access_key_id.rfind("ASIAIMDS", 0) == 0);
  CHECK(c.source.find("lcake-test-instance-role") != std::string::npos);
  CHECK(std::find(ctx.redacted.begin(), ctx.redacted.end(), c.keys.secret_access_key) != ctx.redacted.end());
  // Nothing listening: the error names IMDS and the chain, quickly.
  vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:" + std::to_string(lcake::test::free_port());
  auto t0 = std::chrono::steady_clock::now();
  std::string e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("EC2 instance metadata (IMDSv2)") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

TEST_CASE("credentials: web identity token file + role, sent unsigned to STS") {
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  write(home.path / "token", "oidc.token.value\n");
  std::map<std::string, std::string> vars = {{"HOME", home.path.string()},
                                             {"AWS_REGION", "eu-west-1"},
                                             {"AWS_ENDPOINT_URL_STS", server().url("")},
                                             {"AWS_WEB_IDENTITY_TOKEN_FILE", (home.path / "token").string()},
                                             {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci"}};
  auto c = default_credentials(AwsConfig::load(env_of(vars)), ctx)->get();
  CHECK(c.keys.access_key_id.rfind("ASIAWEBI", 0) == 0);
  CHECK(c.source.find("web identity token") != std::string::npos);
  CHECK(std::find(ctx.redacted.begin(), ctx.redacted.end(), "oidc.token.value") != ctx.redacted.end());
  // The same from a profile's web_identity_token_file.
  write(home.path / ".aws/config", "[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\n"
                                   "web_identity_token_file = " + (home.path / "token").string() + "\n");
  vars.erase("AWS_WEB_IDENTITY_TOKEN_FILE");
  vars.erase("AWS_ROLE_ARN");
  vars["AWS_PROFILE"] = "ci";
  CHECK(default_credentials(AwsConfig::load(env_of(vars)), ctx)->get().keys.access_key_id.rfind("ASIAWEBI", 0) == 0);
  write(home.path / "token", "another.token\n");
  std::string e = error_of([&] { default_credentials(AwsConfig::load(env_of(vars)), ctx); });
  CHECK(e.find("aws sts AssumeRoleWithWebIdentity: InvalidIdentityToken") != std::string::npos);
  CHECK(e.find("another.token") == std::string::npos);
}

TEST_CASE("clock skew: refused once, then signed with the server's time") {
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  auto config = AwsConfig::load(env_of({{"HOME", home.path.string()}, {"AWS_REGION", "eu-west-1"},
                                        {"AWS_ENDPOINT_URL", server().url("/skewed")}}));
  auto creds = std::make_shared<CredentialProvider>(static_source({{"AKID", "SECRET", ""}, std::nullopt, "test"}), ctx);
  AwsClient client(config, creds, ctx);
  AwsRequest req;
  req.service = Service::s3;
  req.action = "PutObject";
  req.method = "POST";
  req.body = "x";
  auto r = client.send(req);
  CHECK(r.status == 200);
  CHECK(client.clock_offset() > 3500);
  CHECK(client.clock_offset() < 3700);
  CHECK(ctx.logged("clock differs"));
}

TEST_CASE("ISO 8601 expirations") {
  auto a = parse_iso8601("2026-12-01T19:00:00Z"), b = parse_iso8601("2026-12-01T20:00:00.123+01:00");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == *b);
  CHECK_FALSE(parse_iso8601("soon"));
}
