#include "state/state_store.h"

#include <doctest/doctest.h>

#include "test_support.h"
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "lcake/errors.hpp"

namespace fs = std::filesystem;
using lcake::core::ArtifactRecord;
using lcake::core::StateStore;

namespace {

struct TempDir : lcake::test::TempDir {
  TempDir() : lcake::test::TempDir("state-test") {}
};

ArtifactRecord make_record(const std::string& layer, const std::string& key, const std::string& id) {
  ArtifactRecord r;
  r.target = "qemu-local";
  r.variant = "debian-12";
  r.layer = layer;
  r.key = key;
  r.stage = "build";
  r.artifact = {"qcow2", id, {{"size", 42}}, "qemu"};
  r.run_id = "run-1";
  return r;
}

std::string sql_text(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_busy_timeout(h, 10000);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

}  // namespace

TEST_CASE("artifacts round-trip, upsert keeps the id, filters by target glob") {
  TempDir tmp;
  auto store = StateStore::open(tmp.path / "nested" / "dir");
  CHECK(fs::exists(tmp.path / "nested" / "dir" / "state.db"));

  CHECK_FALSE(store->find_artifact("qemu-local", "debian-12", "base", "k1", "build"));
  auto id = store->record_artifact(make_record("base", "k1", "/img/base.qcow2"));
  CHECK(id > 0);
  auto found = store->find_artifact("qemu-local", "debian-12", "base", "k1", "build");
  REQUIRE(found);
  CHECK(found->id == id);
  CHECK(found->artifact.type == "qcow2");
  CHECK(found->artifact.id == "/img/base.qcow2");
  CHECK(found->artifact.metadata["size"] == 42);
  CHECK(found->artifact.plugin == "qemu");
  CHECK(found->run_id == "run-1");
  CHECK(found->created_at.size() == 20);  // 2024-01-02T03:04:05Z
  CHECK_FALSE(found->verified);
  CHECK_FALSE(store->find_artifact("qemu-local", "debian-12", "base", "k1", "upload"));

  // Same (target, variant, layer, key, stage): replaced, same id.
  auto id2 = store->record_artifact(make_record("base", "k1", "/img/base-2.qcow2"));
  CHECK(id2 == id);
  CHECK(store->find_artifact("qemu-local", "debian-12", "base", "k1", "build")->artifact.id == "/img/base-2.qcow2");

  store->mark_verified(id);
  lcake::Artifact published{"qcow2", "/img/base-2.qcow2", {{"public", true}}, "qemu"};
  store->mark_published(id, published);
  found = store->find_artifact("qemu-local", "debian-12", "base", "k1", "build");
  CHECK(found->verified);
  CHECK(found->published);
  CHECK(found->artifact.metadata["public"] == true);

  auto other = make_record("stack", "k2", "ami-123");
  other.target = "aws-ami";
  store->record_artifact(other);
  CHECK(store->list_artifacts().size() == 2);
  CHECK(store->list_artifacts("aws-ami").size() == 1);
  CHECK(store->list_artifacts("aws-*").size() == 1);
  CHECK(store->list_artifacts("qemu-local")[0].layer == "base");
  CHECK(store->list_artifacts("nothing").empty());

  store->delete_artifact(id);
  CHECK_FALSE(store->find_artifact("qemu-local", "debian-12", "base", "k1", "build"));

  // Survives reopening.
  store.reset();
  store = StateStore::open(tmp.path / "nested" / "dir");
  CHECK(store->list_artifacts().size() == 1);
  CHECK(sql_text(tmp.path / "nested" / "dir" / "state.db", "PRAGMA journal_mode") == "wal");
  CHECK(sql_text(tmp.path / "nested" / "dir" / "state.db", "PRAGMA user_version") == "1");
}

TEST_CASE("key components: the last one per layer") {
  TempDir tmp;
  auto store = StateStore::open(tmp.path);
  CHECK_FALSE(store->last_key_components("t", "v", "base"));
  store->record_key_components("t", "v", "base", "k1", {{"parent", ""}, {"inputs", {{"a", "1"}}}});
  store->record_key_components("t", "v", "base", "k2", {{"parent", ""}, {"inputs", {{"a", "2"}}}});
  auto last = store->last_key_components("t", "v", "base");
  REQUIRE(last);
  CHECK(last->first == "k2");
  CHECK(last->second["inputs"]["a"] == "2");
  CHECK_FALSE(store->last_key_components("t", "other", "base"));
}

TEST_CASE("runs: begin, end, alive") {
  TempDir tmp;
  auto store = StateStore::open(tmp.path);
  auto run = store->begin_run({{"target", "qemu-local"}});
  auto runs = store->runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].id == run);
  CHECK(runs[0].pid == ::getpid());
  CHECK_FALSE(runs[0].pid_start.empty());
  CHECK(runs[0].status == "running");
  CHECK(runs[0].info["target"] == "qemu-local");
  CHECK(store->run_alive(run));
  CHECK_FALSE(store->run_alive("no-such-run"));

  // Same pid but another start time: a reused pid is not our run.
  auto db = tmp.path / "state.db";
  sql_text(db, "UPDATE runs SET pid_start = '1' WHERE id = '" + run + "'");
  CHECK_FALSE(store->run_alive(run));

  auto run2 = store->begin_run({});
  CHECK(run2 != run);
  CHECK(store->run_alive(run2));
  store->end_run(run2, "ok");
  CHECK_FALSE(store->run_alive(run2));
  for (auto& r : store->runs())
    if (r.id == run2) {
      CHECK(r.status == "ok");
      CHECK_FALSE(r.ended_at.empty());
    }
}

TEST_CASE("ledger: intend, confirm, release, filter by run") {
  TempDir tmp;
  auto store = StateStore::open(tmp.path);
  nlohmann::json settings = {{"region", "eu-west-1"}};
  auto a = store->ledger_intend("run-a", "aws", "uploader", settings, "snapshot", "", {{"name", "lcake-x"}});
  auto b = store->ledger_intend("run-a", "aws", "uploader", settings, "instance", "", {{"name", "i"}});
  auto c = store->ledger_intend("run-b", "qemu", "builder", {}, "path", "/tmp/x", {{"path", "/tmp/x"}});

  auto open = store->ledger_open();
  REQUIRE(open.size() == 3);
  CHECK(open[0].id == c);  // newest first
  CHECK(open[2].id == a);
  CHECK(open[2].state == "intended");
  CHECK(open[2].settings == settings);
  CHECK(open[2].plugin == "aws");
  CHECK(open[2].role == "uploader");
  CHECK(open[2].kind == "snapshot");

  store->ledger_confirm(a, "snap-123", {{"region", "eu-west-1"}});
  auto only_a = store->ledger_open("run-a");
  REQUIRE(only_a.size() == 2);
  CHECK(only_a[1].id == a);
  CHECK(only_a[1].state == "confirmed");
  CHECK(only_a[1].resource_id == "snap-123");
  CHECK(only_a[1].how["name"] == "lcake-x");  // kept from intend
  CHECK(only_a[1].how["region"] == "eu-west-1");

  store->ledger_release(a);
  store->ledger_release(c);
  CHECK(store->ledger_open("run-a").size() == 1);
  CHECK(store->ledger_open("run-a")[0].id == b);
  CHECK(store->ledger_open("run-b").empty());
  CHECK(store->ledger_open().size() == 1);
}

TEST_CASE("several processes write to one state dir at once; nothing is lost") {
  TempDir tmp;
  constexpr int kProcs = 5, kEach = 200;  // every ledger intent is fsynced: keep it brisk
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // The child opens its own connection (never one inherited across fork)
      // on a fresh dir, racing the others to create the schema.
      int rc = 0;
      try {
        auto store = StateStore::open(tmp.path);
        auto run = store->begin_run({{"proc", p}});
        for (int i = 0; i < kEach; ++i) {
          auto key = std::to_string(p) + "-" + std::to_string(i);
          store->record_artifact(make_record("layer-" + std::to_string(p), key, "/img/" + key));
          auto e = store->ledger_intend(run, "qemu", "builder", {}, "path", "", {{"i", i}});
          if (i % 2) store->ledger_confirm(e, key, {});
          if (i % 3 == 0) store->ledger_release(e);
        }
        store->end_run(run, "ok");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  auto store = StateStore::open(tmp.path);
  auto artifacts = store->list_artifacts();
  CHECK(artifacts.size() == kProcs * kEach);
  std::set<std::string> ids;
  for (auto& a : artifacts) ids.insert(a.artifact.id);
  CHECK(ids.size() == kProcs * kEach);
  auto runs = store->runs();
  REQUIRE(runs.size() == kProcs);
  std::size_t open_total = 0;
  for (auto& r : runs) {
    CHECK(r.status == "ok");
    auto open = store->ledger_open(r.id);
    CHECK(open.size() == kEach - (kEach + 2) / 3);  // all but every third
    open_total += open.size();
  }
  CHECK(store->ledger_open().size() == open_total);
  CHECK(sql_text(tmp.path / "state.db", "SELECT count(*) FROM ledger") == std::to_string(kProcs * kEach));
  CHECK(sql_text(tmp.path / "state.db", "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a killed process: its run is not alive, its entries stay open") {
  TempDir tmp;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    try {
      auto store = StateStore::open(tmp.path);
      auto run = store->begin_run({});
      store->ledger_intend(run, "docker", "builder", {}, "container", "", {{"name", "c1"}});
      auto e = store->ledger_intend(run, "docker", "builder", {}, "container", "", {{"name", "c2"}});
      store->ledger_confirm(e, "abc", {});
      std::string line = run + "\n";
      if (::write(ready[1], line.data(), line.size()) < 0) ::_exit(1);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(1);
    }
  }
  ::close(ready[1]);
  std::string run;
  char c;
  while (::read(ready[0], &c, 1) == 1 && c != '\n') run += c;
  ::close(ready[0]);
  REQUIRE_FALSE(run.empty());

  auto store = StateStore::open(tmp.path);
  CHECK(store->run_alive(run));
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK_FALSE(store->run_alive(run));
  auto open = store->ledger_open(run);
  REQUIRE(open.size() == 2);
  CHECK(open[0].state == "confirmed");
  CHECK(open[0].resource_id == "abc");
  CHECK(open[1].state == "intended");
  CHECK(open[1].how["name"] == "c1");
}

TEST_CASE("a file that is not a state database: one-line error naming it") {
  TempDir tmp;
  auto db = tmp.path / "state.db";
  {
    std::ofstream out(db);
    for (int i = 0; i < 200; ++i) out << "this is not an SQLite database\n";
  }
  std::string msg;
  try {
    StateStore::open(tmp.path);
  } catch (const lcake::InputError& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find(db.string()) != std::string::npos);
  CHECK(msg.find("--state-dir") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);

  // Another program's SQLite database is refused too, and left untouched.
  fs::remove(db);
  sql_text(db, "CREATE TABLE photos (id INTEGER)");
  CHECK_THROWS_AS(StateStore::open(tmp.path), lcake::InputError);
  CHECK(sql_text(db, "SELECT count(*) FROM sqlite_master") == "1");

  // A state dir that cannot be created.
  std::ofstream(tmp.path / "plain-file") << "x";
  msg.clear();
  try {
    StateStore::open(tmp.path / "plain-file" / "sub");
  } catch (const lcake::InputError& e) {
    msg = e.what();
  }
  CHECK(msg.find("plain-file") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("default_dir follows XDG_STATE_HOME, else HOME") {
  const char* old_xdg = std::getenv("XDG_STATE_HOME");
  std::string saved = old_xdg ? old_xdg : "";
  ::setenv("XDG_STATE_HOME", "/x/state", 1);
  CHECK(StateStore::default_dir() == fs::path("/x/state/lcake"));
  ::unsetenv("XDG_STATE_HOME");
  if (const char* home = std::getenv("HOME"))
    CHECK(StateStore::default_dir() == fs::path(home) / ".local/state/lcake");
  if (old_xdg) ::setenv("XDG_STATE_HOME", saved.c_str(), 1);
}

TEST_CASE("threads share one store") {
  TempDir tmp;
  auto store = StateStore::open(tmp.path);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto key = std::to_string(t) + "-" + std::to_string(i);
        store->record_artifact(make_record("l", key, key));
        store->ledger_release(store->ledger_intend("r", "p", "builder", {}, "path", key, {}));
      }
    });
  for (auto& th : threads) th.join();
  CHECK(store->list_artifacts().size() == 200);
  CHECK(store->ledger_open().empty());
}
