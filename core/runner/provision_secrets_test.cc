// Provisioners and secrets: output split across chunks is redacted as whole lines;
// a sensitive file is deleted after the layer's provisioners, also when one fails; a step run as
// another user that holds a secret is overwritten before its file is deleted.
#include <doctest/doctest.h>

#include <fstream>

#include "events/redactor.h"
#include "lcake/testing.hpp"
#include "runner/provision.h"
#include "test_support.h"

using namespace lcake::core;

namespace {

// Streams a fixed output in tiny chunks; records commands and uploads.
class ChunkComm : public lcake::Communicator {
 public:
  std::string output;
  std::size_t chunk = 3;
  std::vector<std::string> commands, uploads;
  int run(const std::string& command, const OutputFn& out, std::chrono::seconds) override {
    commands.push_back(command);
    if (out)
      for (std::size_t i = 0; i < output.size(); i += chunk) out(std::string_view(output).substr(i, chunk), false);
    return command.find("exit 7") != std::string::npos ? 7 : 0;
  }
  void upload(const std::filesystem::path&, const std::string& remote) override { uploads.push_back(remote); }
  void download(const std::string&, const std::filesystem::path&) override {}
};

Provisioner shell(std::vector<std::string> lines) {
  Provisioner p;
  p.type = "shell", p.inline_commands = std::move(lines), p.pointer = "/pipeline/layers/l/provisioners/0";
  return p;
}

}  // namespace

TEST_CASE("a secret split across output chunks is redacted in the logged lines") {
  std::string secret = "chunked-secret-0123456789";
  Redactor::instance().add(secret);
  lcake::test::TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path);
  ctx.echo = false;
  ChunkComm comm;
  comm.output = "before " + secret + " after\nline two " + secret + "\n" + secret.substr(0, 10);
  comm.output += secret.substr(10) + " (no newline at the end)";
  for (std::size_t chunk : {1, 3, 7}) {
    comm.chunk = chunk;
    ctx.logs.clear();
    run_provisioners({shell({"echo " + secret})}, comm, ctx, [](const std::string&) {});
    REQUIRE(ctx.logs.size() == 3);
    for (const auto& line : ctx.logs) {
      CHECK(line.find(secret) != std::string::npos);  // one whole line, as the views receive it
      CHECK(Redactor::instance().apply(line).find(secret.substr(0, 8)) == std::string::npos);
    }
  }
}

TEST_CASE("the provisioner echo is redacted before it is shortened") {
  std::string secret = "echo-secret-abcdefghijklmnopqrstuvwxyz";
  Redactor::instance().add(secret);
  lcake::test::TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path);
  ctx.echo = false;
  ChunkComm comm;
  std::vector<std::string> steps;
  run_provisioners({shell({"echo some words first and then " + secret})}, comm, ctx,
                   [&](const std::string& what) { steps.push_back(what); });
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].find("<redacted>") != std::string::npos);
  CHECK(steps[0].find("echo-sec") == std::string::npos);
}

TEST_CASE("a sensitive file is scrubbed and deleted after the last provisioner, and when one fails") {
  lcake::test::TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path);
  ctx.echo = false;
  auto secret_file = tmp.path / "licence.key";
  std::ofstream(secret_file) << "licence-secret-bytes\n";
  Provisioner file;
  file.type = "file", file.source = secret_file, file.destination = "/etc/licence.key", file.sensitive = true;
  file.pointer = "/pipeline/layers/l/provisioners/0";
  auto deleted = [](const ChunkComm& c) {
    int n = 0;
    for (const auto& cmd : c.commands)
      n += cmd.find("rm -f '/etc/licence.key'") != std::string::npos && cmd.find("conv=notrunc") != std::string::npos;
    return n;
  };
  {
    ChunkComm comm;
    run_provisioners({file, shell({"use it"})}, comm, ctx, [](const std::string&) {});
    CHECK(comm.uploads == std::vector<std::string>{"/etc/licence.key"});
    CHECK(deleted(comm) == 1);
    CHECK(comm.commands.back().find("rm -f '/etc/licence.key'") != std::string::npos);  // after "use it"
  }
  {
    ChunkComm comm;
    CHECK_THROWS(run_provisioners({file, shell({"exit 7"})}, comm, ctx, [](const std::string&) {}));
    CHECK(deleted(comm) == 1);
  }
}

TEST_CASE("a step run as another user goes through a file, overwritten with zeros before it is deleted when it holds a secret") {
  std::string secret = "run-as-secret-0123456789";
  Redactor::instance().add(secret);
  lcake::test::TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path);
  ctx.echo = false;
  auto as_root = [](Provisioner p) {
    p.run_as.user = "root";
    return p;
  };
  {  // the secret in the step itself
    ChunkComm comm;
    run_provisioners({as_root(shell({"echo " + secret}))}, comm, ctx, [](const std::string&) {});
    REQUIRE(comm.uploads == std::vector<std::string>{"/tmp/lcake-run-0.sh"});
    REQUIRE(comm.commands.size() == 1);
    CHECK(comm.commands[0].find(secret) == std::string::npos);  // the command only names the file
    CHECK(comm.commands[0].find("sudo -n -H -u 'root' sh '/tmp/lcake-run-0.sh'") != std::string::npos);
    CHECK(comm.commands[0].find("of='/tmp/lcake-run-0.sh' bs=\"$n\" count=1 conv=notrunc") != std::string::npos);
    CHECK(comm.commands[0].find("rm -f '/tmp/lcake-run-0.sh' && sync") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(ctx.work_dir() / "lcake-run-0.sh"));  // lcake's copy is gone too
  }
  {  // the secret from an env step, in a script step's exports; the script file is removed by the SSH user
    Provisioner env;
    env.type = "env", env.env = {{"TOKEN", secret}}, env.pointer = "/pipeline/layers/l/provisioners/0";
    Provisioner script;
    script.type = "shell", script.script = tmp.path / "step.sh", script.pointer = "/pipeline/layers/l/provisioners/1";
    std::ofstream(*script.script) << "echo \"$TOKEN\" >/dev/null\n";
    ChunkComm comm;
    run_provisioners({env, as_root(script)}, comm, ctx, [](const std::string&) {});
    CHECK(comm.uploads == std::vector<std::string>{"/tmp/lcake-provision-1.sh", "/tmp/lcake-run-1.sh"});
    REQUIRE(comm.commands.size() == 1);
    const auto& c = comm.commands[0];
    CHECK(c.find(secret) == std::string::npos);
    CHECK(c.rfind("chmod 0644 '/tmp/lcake-provision-1.sh' && ", 0) == 0);
    auto after_run = c.find("rc=$?");
    REQUIRE(after_run != std::string::npos);
    CHECK(c.find("rm -f '/tmp/lcake-provision-1.sh'", after_run) != std::string::npos);
    CHECK(c.find("conv=notrunc", after_run) != std::string::npos);
  }
  {  // no secret: deleted, not overwritten
    ChunkComm comm;
    run_provisioners({as_root(shell({"echo nothing secret"}))}, comm, ctx, [](const std::string&) {});
    REQUIRE(comm.commands.size() == 1);
    CHECK(comm.commands[0].find("conv=notrunc") == std::string::npos);
    CHECK(comm.commands[0].find("rm -f '/tmp/lcake-run-0.sh'; exit $rc") != std::string::npos);
  }
}
