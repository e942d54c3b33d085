// Context::spawn, the one way plugins run local commands (shared by the host's
// StepContext and lcake::testing::FakeContext): the ledger entry exists before
// the command runs, the whole process group dies on cancel, timeout or
// destruction, output arrives line by line, keep() leaves it for gc.
#include <signal.h>

#include <doctest/doctest.h>
#include <fstream>
#include <thread>

#include "lcake/testing.hpp"
#include "test_support.h"

using lcake::testing::FakeContext;
namespace fs = std::filesystem;

namespace {
bool alive(int pid) { return ::kill(pid, 0) == 0 && lcake::detail::process_alive(pid, lcake::detail::process_start_time(pid)); }
int read_pid(const fs::path& f) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream in(f);
    int pid = 0;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}
}  // namespace

TEST_CASE("run collects output and the exit code; the ledger entry is gone afterwards") {
  lcake::test::TempDir dir;
  FakeContext ctx(dir.path);
  ctx.echo = false;
  auto r = ctx.run({.argv = {"sh", "-c", "echo one; echo two >&2; exit 3"}});
  CHECK(r.exit_code == 3);
  CHECK(r.output.find("one\n") != std::string::npos);
  CHECK(r.output.find("two\n") != std::string::npos);
  CHECK(ctx.memory_ledger.open_entries().empty());
  auto all = ctx.memory_ledger.all_entries();
  REQUIRE(all.size() == 1);
  CHECK(all[0].kind == "process");
  CHECK(all[0].how["pgid"] == all[0].how["pid"]);
  CHECK_FALSE(all[0].how["start_time"].get<std::string>().empty());
  CHECK_THROWS_WITH_AS(ctx.run_checked({.argv = {"sh", "-c", "echo bad thing; exit 1"}}),
                       "sh exited with 1: bad thing", lcake::BuildError);
  CHECK_THROWS_AS(ctx.run({.argv = {"no-such-program-lcake"}}), lcake::InputError);
}

TEST_CASE("the child runs only once it is in the ledger") {
  lcake::test::TempDir dir;
  FakeContext ctx(dir.path);
  ctx.echo = false;
  // The command sees its own entry already confirmed with its pid.
  auto p = ctx.spawn({.argv = {"sh", "-c", "echo $$ > pid; sleep 30"}});
  int pid = read_pid(dir.path / "work" / "pid");
  auto open = ctx.memory_ledger.open_entries();
  REQUIRE(open.size() == 1);
  CHECK(open[0].how["pid"] == pid);
  CHECK(p->pid() == pid);
  p.reset();  // the destructor kills it and releases the entry
  CHECK_FALSE(alive(pid));
  CHECK(ctx.memory_ledger.open_entries().empty());
}

TEST_CASE("cancel and timeout kill the whole process group, children included") {
  lcake::test::TempDir dir;
  FakeContext ctx(dir.path);
  ctx.echo = false;
  SUBCASE("cancel") {
    auto p = ctx.spawn({.argv = {"sh", "-c", "sleep 60 & echo $! > child; wait"}});
    int child = read_pid(dir.path / "work" / "child");
    REQUIRE(child > 0);
    ctx.cancel_token.fire_after(std::chrono::milliseconds(100));
    CHECK_THROWS_AS(p->wait(), lcake::Cancelled);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(alive(child));
  }
  SUBCASE("timeout") {
    auto p = ctx.spawn({.argv = {"sh", "-c", "sleep 60 & echo $! > child; wait"},
                        .timeout = std::chrono::seconds(1)});
    int child = read_pid(dir.path / "work" / "child");
    REQUIRE(child > 0);
    CHECK_THROWS_AS(p->wait(), lcake::BuildError);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(alive(child));
  }
  CHECK(ctx.memory_ledger.open_entries().empty());
}

TEST_CASE("keep() leaves the process running and its entry for gc; reaping kills the group") {
  lcake::test::TempDir dir;
  FakeContext ctx(dir.path);
  ctx.echo = false;
  int pid = 0, child = 0;
  {
    auto p = ctx.spawn({.argv = {"sh", "-c", "sleep 60 & echo $! > child; wait"}});
    pid = p->pid();
    child = read_pid(dir.path / "work" / "child");
    p->keep();
  }
  CHECK(alive(pid));
  CHECK(alive(child));
  REQUIRE(ctx.memory_ledger.open_entries().size() == 1);
  ctx.memory_ledger.reap_open();
  for (int i = 0; i < 50 && alive(child); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(alive(child));
  ::waitpid(pid, nullptr, 0);  // our own child: collect it
}

TEST_CASE("output to a file, environment added, cwd") {
  lcake::test::TempDir dir;
  FakeContext ctx(dir.path);
  ctx.echo = false;
  auto p = ctx.spawn({.argv = {"sh", "-c", "echo $LCAKE_X; pwd"},
                      .env = {{"LCAKE_X", "forty-two"}},
                      .cwd = dir.path,
                      .output_file = dir.path / "out.log"});
  CHECK(p->wait() == 0);
  std::ifstream in(dir.path / "out.log");
  std::string a, b;
  std::getline(in, a), std::getline(in, b);
  CHECK(a == "forty-two");
  CHECK(fs::path(b) == dir.path);
}

TEST_CASE("a zombie is not a running process") {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  std::string start = lcake::detail::process_start_time(pid);
  for (int i = 0; i < 100 && lcake::detail::process_alive(pid, start); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK_FALSE(lcake::detail::process_alive(pid, start));  // exited, not yet collected
  ::waitpid(pid, nullptr, 0);
}
