// Thin RAII over the SQLite C API for the state store: statements that throw,
// and write transactions that wait out other lcake processes.
#pragma once
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include "events/redactor.h"
#include "lcake/errors.hpp"

namespace lcake::core::sqlite_db {

inline bool is_busy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// A failed SQLite call: `what()` names the database, `reason` is SQLite's own words.
struct DbError : lcake::BuildError {
  DbError(const std::filesystem::path& path, std::string why)
      : lcake::BuildError("state database " + path.string() + ": " + why), reason(std::move(why)) {}
  std::string reason;
};
struct BusyError : DbError {
  using DbError::DbError;
};

[[noreturn]] inline void throw_db_error(int rc, const std::filesystem::path& path, std::string why) {
  if (is_busy(rc)) throw BusyError(path, std::move(why));
  throw DbError(path, std::move(why));
}

// One prepared statement; throws on any error so callers read straight through.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::filesystem::path& path, const char* sql) : db_(db), path_(path) {
    check(sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr));
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Every text lcake stores goes through the Redactor: no secret in the state database.
  Stmt& bind(int i, const std::string& text) {
    std::string v = Redactor::instance().apply(text);
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& bind(int i, const nlohmann::json& v) { return bind(i, v.dump()); }

  // True while a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(rc);
    return false;
  }
  void run() {
    while (step()) {
    }
  }

  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  nlohmann::json json(int col) const {
    auto s = text(col);
    return s.empty() ? nlohmann::json() : nlohmann::json::parse(s);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw_db_error(rc, path_, sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  std::filesystem::path path_;
  sqlite3_stmt* stmt_ = nullptr;
};

inline void exec(sqlite3* db, const std::filesystem::path& path, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return;
  std::string why = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  throw_db_error(rc, path, why);
}

// Flushes the WAL to disk for the duration of one transaction (see write_txn).
struct FullSync {
  FullSync(sqlite3* db, const std::filesystem::path& path, bool on) : db_(db), on_(on) {
    if (on_) exec(db, path, "PRAGMA synchronous=FULL");
  }
  ~FullSync() {
    if (on_) sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  }
  sqlite3* db_;
  bool on_;
};

// Runs fn in one BEGIN IMMEDIATE transaction. The busy timeout covers most
// waits; what still comes back SQLITE_BUSY is retried from the start with a
// growing pause, so a write never fails just because another lcake wrote.
// Every commit survives the process dying; a `durable` one also survives the
// machine dying (fsync), for records that must not be lost.
template <class Fn>
auto write_txn(sqlite3* db, const std::filesystem::path& path, Fn&& fn, bool durable = false) {
  FullSync sync(db, path, durable);
  for (int attempt = 0;; ++attempt) {
    try {
      exec(db, path, "BEGIN IMMEDIATE");
      try {
        if constexpr (std::is_void_v<decltype(fn())>) {
          fn();
          exec(db, path, "COMMIT");
          return;
        } else {
          auto result = fn();
          exec(db, path, "COMMIT");
          return result;
        }
      } catch (...) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    } catch (const BusyError& e) {
      if (attempt >= 20) throw DbError(path, e.reason + "; another lcake held it too long, retry later");
      std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(attempt, 6)));
    }
  }
}

}  // namespace lcake::core::sqlite_db
