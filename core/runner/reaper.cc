#include "reaper.h"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "lcake/detail/posix_process.hpp"
#include "lcake/errors.hpp"
#include "step_context.h"

namespace lcake::core {

using lcake::detail::process_start_time;

static bool process_gone(int pid, const std::string& start) { return !lcake::detail::process_alive(pid, start); }

// False when there was no such process (never started, exited, or pid reused).
static bool kill_process(const nlohmann::json& how) {
  int pid = how.value("pid", 0);
  if (pid <= 1) return false;  // intended but never started
  std::string expected = how.contains("start_time") ? how["start_time"].is_string()
                                                          ? how["start_time"].get<std::string>()
                                                          : how["start_time"].dump()
                                                    : "";
  std::string actual = process_start_time(pid);
  if (actual.empty() || (!expected.empty() && actual != expected)) return false;  // gone, or pid reused
  // Processes started by Context::spawn lead their own group: end the children too.
  int pgid = how.value("pgid", 0);
  auto signal_all = [&](int sig) { pgid > 1 ? ::kill(-pgid, sig) : ::kill(pid, sig); };
  signal_all(SIGTERM);
  for (int i = 0; i < 50 && !process_gone(pid, actual); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!process_gone(pid, actual)) signal_all(SIGKILL);
  if (pgid > 1) ::kill(-pgid, SIGKILL);  // children that outlived the leader
  for (int i = 0; i < 50 && !process_gone(pid, actual); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!process_gone(pid, actual)) throw lcake::BuildError("process " + std::to_string(pid) + " survived SIGKILL");
  return true;
}

Reaper::Reaper(StateStore& state, RoleFactory& roles, EventSink& events,
               std::filesystem::path work_root)
    : state_(state), roles_(roles), events_(events), work_root_(std::move(work_root)) {}

bool Reaper::reap_one(const LedgerRow& row) {
  if (row.kind == "process") return kill_process(row.how);
  if (row.kind == "path") {
    std::filesystem::path p = row.how.value("path", row.resource_id);
    return !p.empty() && std::filesystem::remove_all(p) > 0;
  }
  auto role = roles_.make_role(row.plugin, row.role, row.settings);
  StepScope scope{row.run_id, "cleanup", "", "", "cleanup", row.plugin, row.role, row.settings,
                  work_root_ / ("reap-" + std::to_string(row.id)), {}};
  // A cancel token that never fires: cleanup must finish even after Ctrl-C.
  struct Never : lcake::CancelToken {
    bool cancelled() const override { return false; }
    bool wait_for(std::chrono::milliseconds d) const override {
      std::this_thread::sleep_for(d);
      return false;
    }
  } never;
  StepContext ctx(scope, state_, events_, never);
  lcake::LedgerEntry entry{row.id, row.plugin, row.role, row.kind, row.resource_id, row.how};
  try {
    role->reap(entry, ctx);
  } catch (const lcake::AlreadyGone&) {
    return false;
  }
  return true;
}

static Event cleanup_event(const LedgerRow& row, const std::string& status,
                           const std::string& message) {
  Event e;
  e.type = EventType::cleanup;
  e.scope = "cleanup", e.status = status, e.message = message;
  e.data = {{"entry", row.id}, {"kind", row.kind}, {"resource", row.resource_id}, {"plugin", row.plugin}};
  return e;
}

Reaper::Counts Reaper::reap(const std::vector<LedgerRow>& rows) {
  Counts counts;
  for (const auto& row : rows) {
    std::string what = row.kind + " " + (row.resource_id.empty() ? row.how.dump() : row.resource_id);
    try {
      bool deleted = reap_one(row);
      state_.ledger_release(row.id);
      ++(deleted ? counts.deleted : counts.gone);
      events_.emit(cleanup_event(row, "ok", (deleted ? "deleted " + what : what + " was already gone") + " (" +
                                                row.plugin + ")"));
    } catch (const std::exception& e) {
      ++counts.failed;
      events_.emit(cleanup_event(row, "failed",
                                 "could not delete " + what + " (" + row.plugin + "): " + e.what() +
                                     "; it stays in the ledger: run `lcake gc` to retry"));
    }
  }
  return counts;
}

}  // namespace lcake::core
