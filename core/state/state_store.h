// The state database: artifacts, runs, recorded layer-key components and the
// cleanup ledger, in one SQLite file (WAL) under the state dir. Safe for
// several lcake processes at once (busy timeout, short transactions).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lcake/artifact.hpp"

struct sqlite3;

namespace lcake::core {

struct ArtifactRecord {
  std::int64_t id = 0;
  std::string target, variant, layer, key;
  std::string stage;  // "build" | "upload"
  lcake::Artifact artifact;
  bool verified = false;
  bool published = false;
  std::string run_id;
  std::string created_at;  // ISO 8601 UTC
};

struct LedgerRow {
  std::int64_t id = 0;
  std::string run_id;
  std::string plugin, role;
  nlohmann::json settings;  // the role's settings, so gc can recreate it
  std::string kind, resource_id;
  nlohmann::json how;
  std::string state;  // "intended" | "confirmed" | "released"
  std::string created_at;
};

struct RunRecord {
  std::string id;
  int pid = 0;
  std::string pid_start;  // /proc/PID/stat start time, to tell a reused pid
  std::string status;     // "running" | "ok" | "failed" | "cancelled"
  nlohmann::json info;
  std::string started_at, ended_at;
};

class StateStore {
 public:
  // Opens (creating if needed) <dir>/state.db. Throws lcake::InputError when the
  // dir cannot be created or the file is not a database.
  static std::unique_ptr<StateStore> open(const std::filesystem::path& dir);
  ~StateStore();

  // Default: $XDG_STATE_HOME/lcake, else ~/.local/state/lcake.
  static std::filesystem::path default_dir();
  const std::filesystem::path& dir() const { return dir_; }

  // Runs. begin_run records this process's pid and start time.
  std::string begin_run(const nlohmann::json& info);
  void end_run(const std::string& run_id, const std::string& status);
  std::vector<RunRecord> runs();
  // True when the run's process still lives (same pid and start time).
  bool run_alive(const std::string& run_id);

  // Artifacts.
  std::optional<ArtifactRecord> find_artifact(const std::string& target, const std::string& variant,
                                              const std::string& layer, const std::string& key,
                                              const std::string& stage);
  std::int64_t record_artifact(const ArtifactRecord& record);  // replaces one with the same (target, variant, layer, key, stage)
  void mark_verified(std::int64_t id);
  void mark_published(std::int64_t id, const lcake::Artifact& updated);
  std::vector<ArtifactRecord> list_artifacts(const std::string& target_filter = "");
  void delete_artifact(std::int64_t id);

  // The components of the last key computed for a layer, so `plan` can say what changed.
  void record_key_components(const std::string& target, const std::string& variant,
                             const std::string& layer, const std::string& key,
                             const nlohmann::json& components);
  std::optional<std::pair<std::string, nlohmann::json>> last_key_components(
      const std::string& target, const std::string& variant, const std::string& layer);

  // The cleanup ledger.
  std::int64_t ledger_intend(const std::string& run_id, const std::string& plugin,
                             const std::string& role, const nlohmann::json& settings,
                             const std::string& kind, const std::string& resource_id,
                             const nlohmann::json& how);
  void ledger_confirm(std::int64_t id, const std::string& resource_id, const nlohmann::json& how);
  void ledger_release(std::int64_t id);
  // Unreleased entries, newest first; only those of run_id when given.
  std::vector<LedgerRow> ledger_open(const std::string& run_id = "");

 private:
  StateStore() = default;
  std::filesystem::path dir_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;  // one connection shared by the runner's threads
};

}  // namespace lcake::core
