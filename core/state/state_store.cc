#include "state/state_store.h"

#include "lcake/detail/posix_process.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "lcake/errors.hpp"
#include "state/sqlite_db.h"

namespace lcake::core {
namespace {

using namespace sqlite_db;

constexpr int kSchemaVersion = 1;
// Marks the file as ours ('lcak'), so a foreign SQLite database is refused
// instead of having our tables added to it.
constexpr int kApplicationId = 0x6c63616b;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  pid_start TEXT NOT NULL,
  status TEXT NOT NULL,
  info TEXT NOT NULL,
  started_at TEXT NOT NULL,
  ended_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS artifacts (
  id INTEGER PRIMARY KEY,
  target TEXT NOT NULL, variant TEXT NOT NULL, layer TEXT NOT NULL,
  key TEXT NOT NULL, stage TEXT NOT NULL,
  artifact TEXT NOT NULL,
  verified INTEGER NOT NULL DEFAULT 0,
  published INTEGER NOT NULL DEFAULT 0,
  run_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (target, variant, layer, key, stage)
);
CREATE TABLE IF NOT EXISTS key_components (
  target TEXT NOT NULL, variant TEXT NOT NULL, layer TEXT NOT NULL,
  key TEXT NOT NULL,
  components TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (target, variant, layer)
);
CREATE TABLE IF NOT EXISTS ledger (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  plugin TEXT NOT NULL, role TEXT NOT NULL,
  settings TEXT NOT NULL,
  kind TEXT NOT NULL, resource_id TEXT NOT NULL,
  how TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_open_by_run ON ledger (state, run_id);
)sql";

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using lcake::detail::process_start_time;

std::string new_run_id() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return std::string(stamp) + "-" + suffix;
}

std::filesystem::path db_file(const std::filesystem::path& dir) { return dir / "state.db"; }

ArtifactRecord read_artifact(const Stmt& s) {
  ArtifactRecord r;
  r.id = s.integer(0);
  r.target = s.text(1);
  r.variant = s.text(2);
  r.layer = s.text(3);
  r.key = s.text(4);
  r.stage = s.text(5);
  r.artifact = s.json(6).get<lcake::Artifact>();
  r.verified = s.integer(7) != 0;
  r.published = s.integer(8) != 0;
  r.run_id = s.text(9);
  r.created_at = s.text(10);
  return r;
}

constexpr const char* kArtifactColumns =
    "id, target, variant, layer, key, stage, artifact, verified, published, run_id, created_at";

LedgerRow read_ledger(const Stmt& s) {
  LedgerRow r;
  r.id = s.integer(0);
  r.run_id = s.text(1);
  r.plugin = s.text(2);
  r.role = s.text(3);
  r.settings = s.json(4);
  r.kind = s.text(5);
  r.resource_id = s.text(6);
  r.how = s.json(7);
  r.state = s.text(8);
  r.created_at = s.text(9);
  return r;
}

}  // namespace

std::filesystem::path StateStore::default_dir() {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "lcake";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".local" / "state" / "lcake";
  throw lcake::InputError("no state dir: neither XDG_STATE_HOME nor HOME is set; pass --state-dir DIR");
}

std::unique_ptr<StateStore> StateStore::open(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw lcake::InputError("cannot create state dir " + dir.string() + ": " + ec.message() +
                            "; pass --state-dir with a writable directory");
  std::unique_ptr<StateStore> store(new StateStore());
  store->dir_ = std::filesystem::absolute(dir);  // plugins run tools in their work dirs: no relative paths
  auto path = db_file(dir);
  int rc = sqlite3_open_v2(path.c_str(), &store->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  auto fail = [&](const std::string& why) {
    throw lcake::InputError("cannot open state database " + path.string() + ": " + why +
                            "; move the file aside or pass --state-dir with another directory");
  };
  if (rc != SQLITE_OK) fail(store->db_ ? sqlite3_errmsg(store->db_) : sqlite3_errstr(rc));
  sqlite3_busy_timeout(store->db_, 10000);
  sqlite3* db = store->db_;
  try {
    // Refuse another program's database before changing anything in it. One
    // statement reads one snapshot, so a schema another process commits
    // meanwhile is seen whole or not at all.
    auto check_ours = [&] {
      Stmt s(db, path,
             "SELECT (SELECT application_id FROM pragma_application_id),"
             " (SELECT count(*) FROM sqlite_master),"
             " (SELECT user_version FROM pragma_user_version)");
      s.step();
      auto app = s.integer(0), tables = s.integer(1), version = s.integer(2);
      if ((app != 0 && app != kApplicationId) || (app == 0 && tables > 0)) fail("not an lcake state database");
      if (version > kSchemaVersion)
        fail("written by a newer lcake (schema " + std::to_string(version) + ", this lcake knows " +
             std::to_string(kSchemaVersion) + "); upgrade lcake");
      return version;
    };
    check_ours();
    // WAL lets readers run beside one writer, across processes. Switching
    // needs a moment of exclusive access, which a fresh file opened by
    // several processes at once may not get at first.
    for (int attempt = 0;; ++attempt) {
      try {
        exec(db, path, "PRAGMA journal_mode=WAL");
        break;
      } catch (const BusyError&) {
        if (attempt >= 20) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    // In WAL mode NORMAL skips the fsync per commit but still never loses a
    // commit when the process is killed; ledger intents ask for FULL.
    exec(db, path, "PRAGMA synchronous=NORMAL");
    write_txn(db, path, [&] {
      // Checked again inside the write lock: another process may have created it meanwhile.
      if (check_ours() < kSchemaVersion) {
        exec(db, path, kSchema);
        exec(db, path, ("PRAGMA application_id=" + std::to_string(kApplicationId)).c_str());
        exec(db, path, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
      }
    });
  } catch (const DbError& e) {
    fail(e.reason);
  }
  return store;
}

StateStore::~StateStore() { sqlite3_close_v2(db_); }

std::string StateStore::begin_run(const nlohmann::json& info) {
  std::lock_guard lock(mu_);
  auto id = new_run_id();
  int pid = static_cast<int>(::getpid());
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_),
           "INSERT INTO runs (id, pid, pid_start, status, info, started_at) VALUES (?, ?, ?, 'running', ?, ?)");
    s.bind(1, id).bind(2, std::int64_t{pid}).bind(3, process_start_time(pid)).bind(4, info).bind(5, now_iso8601());
    s.run();
  });
  return id;
}

void StateStore::end_run(const std::string& run_id, const std::string& status) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_), "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?");
    s.bind(1, status).bind(2, now_iso8601()).bind(3, run_id).run();
  });
}

std::vector<RunRecord> StateStore::runs() {
  std::lock_guard lock(mu_);
  Stmt s(db_, db_file(dir_),
         "SELECT id, pid, pid_start, status, info, started_at, ended_at FROM runs ORDER BY started_at DESC, id DESC");
  std::vector<RunRecord> out;
  while (s.step())
    out.push_back({s.text(0), static_cast<int>(s.integer(1)), s.text(2), s.text(3), s.json(4), s.text(5), s.text(6)});
  return out;
}

bool StateStore::run_alive(const std::string& run_id) {
  int pid = 0;
  std::string start, status;
  {
    std::lock_guard lock(mu_);
    Stmt s(db_, db_file(dir_), "SELECT pid, pid_start, status FROM runs WHERE id = ?");
    s.bind(1, run_id);
    if (!s.step()) return false;
    pid = static_cast<int>(s.integer(0));
    start = s.text(1);
    status = s.text(2);
  }
  if (status != "running" || pid <= 0) return false;
  return lcake::detail::process_alive(pid, start);  // a zombie lcake is not running
}

std::optional<ArtifactRecord> StateStore::find_artifact(const std::string& target, const std::string& variant,
                                                        const std::string& layer, const std::string& key,
                                                        const std::string& stage) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("SELECT ") + kArtifactColumns +
                    " FROM artifacts WHERE target = ? AND variant = ? AND layer = ? AND key = ? AND stage = ?";
  Stmt s(db_, db_file(dir_), sql.c_str());
  s.bind(1, target).bind(2, variant).bind(3, layer).bind(4, key).bind(5, stage);
  if (!s.step()) return std::nullopt;
  return read_artifact(s);
}

std::int64_t StateStore::record_artifact(const ArtifactRecord& r) {
  std::lock_guard lock(mu_);
  return write_txn(db_, db_file(dir_), [&] {
    // An upsert keeps the row id stable, so ids held by a running verify stay valid.
    Stmt s(db_, db_file(dir_),
           "INSERT INTO artifacts (target, variant, layer, key, stage, artifact, verified, published, run_id, created_at)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
           " ON CONFLICT (target, variant, layer, key, stage) DO UPDATE SET"
           " artifact = excluded.artifact, verified = excluded.verified, published = excluded.published,"
           " run_id = excluded.run_id, created_at = excluded.created_at"
           " RETURNING id");
    s.bind(1, r.target).bind(2, r.variant).bind(3, r.layer).bind(4, r.key).bind(5, r.stage);
    s.bind(6, nlohmann::json(r.artifact)).bind(7, std::int64_t{r.verified}).bind(8, std::int64_t{r.published});
    s.bind(9, r.run_id).bind(10, r.created_at.empty() ? now_iso8601() : r.created_at);
    std::int64_t id = s.step() ? s.integer(0) : 0;
    s.run();
    return id;
  });
}

void StateStore::mark_verified(std::int64_t id) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_), "UPDATE artifacts SET verified = 1 WHERE id = ?");
    s.bind(1, id).run();
  });
}

void StateStore::mark_published(std::int64_t id, const lcake::Artifact& updated) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_), "UPDATE artifacts SET published = 1, artifact = ? WHERE id = ?");
    s.bind(1, nlohmann::json(updated)).bind(2, id).run();
  });
}

std::vector<ArtifactRecord> StateStore::list_artifacts(const std::string& target_filter) {
  std::lock_guard lock(mu_);
  // The filter is a glob ('aws-*'); a plain name matches itself.
  std::string sql = std::string("SELECT ") + kArtifactColumns +
                    " FROM artifacts WHERE (? = '' OR target GLOB ?)"
                    " ORDER BY target, variant, layer, stage, created_at DESC, id DESC";
  Stmt s(db_, db_file(dir_), sql.c_str());
  s.bind(1, target_filter).bind(2, target_filter);
  std::vector<ArtifactRecord> out;
  while (s.step()) out.push_back(read_artifact(s));
  return out;
}

void StateStore::delete_artifact(std::int64_t id) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_), "DELETE FROM artifacts WHERE id = ?");
    s.bind(1, id).run();
  });
}

void StateStore::record_key_components(const std::string& target, const std::string& variant,
                                       const std::string& layer, const std::string& key,
                                       const nlohmann::json& components) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_),
           "INSERT INTO key_components (target, variant, layer, key, components, recorded_at) VALUES (?, ?, ?, ?, ?, ?)"
           " ON CONFLICT (target, variant, layer) DO UPDATE SET"
           " key = excluded.key, components = excluded.components, recorded_at = excluded.recorded_at");
    s.bind(1, target).bind(2, variant).bind(3, layer).bind(4, key).bind(5, components).bind(6, now_iso8601());
    s.run();
  });
}

std::optional<std::pair<std::string, nlohmann::json>> StateStore::last_key_components(
    const std::string& target, const std::string& variant, const std::string& layer) {
  std::lock_guard lock(mu_);
  Stmt s(db_, db_file(dir_), "SELECT key, components FROM key_components WHERE target = ? AND variant = ? AND layer = ?");
  s.bind(1, target).bind(2, variant).bind(3, layer);
  if (!s.step()) return std::nullopt;
  return std::make_pair(s.text(0), s.json(1));
}

std::int64_t StateStore::ledger_intend(const std::string& run_id, const std::string& plugin,
                                       const std::string& role, const nlohmann::json& settings,
                                       const std::string& kind, const std::string& resource_id,
                                       const nlohmann::json& how) {
  std::lock_guard lock(mu_);
  return write_txn(db_, db_file(dir_), [&] {
    auto now = now_iso8601();
    Stmt s(db_, db_file(dir_),
           "INSERT INTO ledger (run_id, plugin, role, settings, kind, resource_id, how, state, created_at, updated_at)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, 'intended', ?, ?) RETURNING id");
    s.bind(1, run_id).bind(2, plugin).bind(3, role).bind(4, settings).bind(5, kind).bind(6, resource_id);
    s.bind(7, how).bind(8, now).bind(9, now);
    std::int64_t id = s.step() ? s.integer(0) : 0;
    s.run();
    return id;
  }, /*durable=*/true);  // the resource is created next: its record must outlive a power cut
}

void StateStore::ledger_confirm(std::int64_t id, const std::string& resource_id, const nlohmann::json& how) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    nlohmann::json merged;
    std::string resource;
    {
      Stmt get(db_, db_file(dir_), "SELECT how, resource_id FROM ledger WHERE id = ?");
      get.bind(1, id);
      if (!get.step()) return;
      merged = get.json(0);
      resource = get.text(1);
    }
    // What was known before creation (a name) stays; what creation revealed (an id) is added.
    if (merged.is_object() && how.is_object())
      merged.update(how);
    else if (!how.is_null())
      merged = how;
    if (!resource_id.empty()) resource = resource_id;
    Stmt s(db_, db_file(dir_), "UPDATE ledger SET state = 'confirmed', resource_id = ?, how = ?, updated_at = ? WHERE id = ?");
    s.bind(1, resource).bind(2, merged).bind(3, now_iso8601()).bind(4, id).run();
  });
}

void StateStore::ledger_release(std::int64_t id) {
  std::lock_guard lock(mu_);
  write_txn(db_, db_file(dir_), [&] {
    Stmt s(db_, db_file(dir_), "UPDATE ledger SET state = 'released', updated_at = ? WHERE id = ?");
    s.bind(1, now_iso8601()).bind(2, id).run();
  });
}

std::vector<LedgerRow> StateStore::ledger_open(const std::string& run_id) {
  std::lock_guard lock(mu_);
  Stmt s(db_, db_file(dir_),
         "SELECT id, run_id, plugin, role, settings, kind, resource_id, how, state, created_at FROM ledger"
         " WHERE state != 'released' AND (? = '' OR run_id = ?) ORDER BY id DESC");
  s.bind(1, run_id).bind(2, run_id);
  std::vector<LedgerRow> out;
  while (s.step()) out.push_back(read_ledger(s));
  return out;
}

}  // namespace lcake::core
