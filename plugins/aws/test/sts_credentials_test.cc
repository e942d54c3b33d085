// Credentials that need STS, against moto's (through aws-sim, signatures and
// the minimal policy checked): role_arn + source_profile. The credentials
// obtained must then work for a signed EC2 call.
#include <doctest/doctest.h>

#include <fstream>

#include "aws_client.h"
#include "aws_services.h"
#include "lcake/testing.hpp"
#include "test_support.h"

using namespace lcake::aws;
using lcake::testing::FakeContext;

namespace {

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// The environment the services exported, minus the keys (so only the profile's count).
std::map<std::string, std::string> base_env(const std::filesystem::path& home) {
  const auto& s = aws_test::services();
  return {{"HOME", home.string()},
          {"AWS_ENDPOINT_URL", s.get("AWS_ENDPOINT_URL")},
          {"AWS_REGION", s.get("AWS_REGION")},
          {"AWS_EC2_METADATA_DISABLED", "true"}};
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("assume role through a source profile, then a signed EC2 call with the role's credentials") {
  const auto& s = aws_test::services();
  lcake::test::TempDir home;
  FakeContext ctx(home.path / "ctx");
  write(home.path / ".aws/credentials", "[base]\naws_access_key_id = " + s.get("AWS_ACCESS_KEY_ID") +
                                            "\naws_secret_access_key = " + s.get("AWS_SECRET_ACCESS_KEY") + "\n");
  write(home.path / ".aws/config", "[profile deploy]\nrole_arn = " + s.get("AWS_TEST_ROLE_ARN") +
                                       "\nsource_profile = base\nrole_session_name = lcake-test\n");
  auto vars = base_env(home.path);
  vars["AWS_PROFILE"] = "deploy";
  auto config = AwsConfig::load(env_of(vars));
  auto creds = default_credentials(config, ctx);
  auto c = creds->get();
  CHECK(c.keys.access_key_id != s.get("AWS_ACCESS_KEY_ID"));
  CHECK_FALSE(c.keys.session_token.empty());
  CHECK(c.expiration.has_value());
  CHECK(c.source.find("assume role " + s.get("AWS_TEST_ROLE_ARN")) != std::string::npos);
  CHECK(std::find(ctx.redacted.begin(), ctx.redacted.end(), c.keys.session_token) != ctx.redacted.end());
  AwsClient client(config, creds, ctx);
  auto doc = client.ec2("DescribeRegions", {});
  CHECK(doc.select_node("//*[local-name()='regionInfo']"));

  // A source profile whose secret is wrong: STS refuses, and the error says where.
  write(home.path / ".aws/credentials", "[base]\naws_access_key_id = " + s.get("AWS_ACCESS_KEY_ID") +
                                            "\naws_secret_access_key = wrongwrongwrong\n");
  std::string e;
  try {
    default_credentials(AwsConfig::load(env_of(vars)), ctx);
  } catch (const std::exception& x) {
    e = x.what();
  }
  CHECK(e.find("aws sts AssumeRole") != std::string::npos);
  CHECK(e.find("wrongwrongwrong") == std::string::npos);
}

// Web identity is tested in credentials_test.cc against metadata_server.py: moto 5.2.1 answers an
// unsigned AssumeRoleWithWebIdentity with 500 once its auth checks are on.
