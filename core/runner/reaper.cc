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

static void kill_process(const nlohmann::json& how) {
  int pid = how.value("pid", 0);
  if (pid <= 1) return;  // intended but never started
  std::string expected = how.contains("start_time") ? how["start_time"].is_string()
                                                          ? how["start_time"].get<std::string>()
                                                          : how["start_time"].dump()
                                                    : "";
  std::string actual = process_start_time(pid);
  if (actual.empty() || (!expected.empty() && actual != expected)) return;  // gone, or pid reused
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
}

Reaper::Reaper(StateStore& state, RoleFactory& roles, EventSink& events,
               std::filesystem::path work_root)
    : state_(state), roles_(roles), events_(events), work_root_(std::move(work_root)) {}

void Reaper::reap_one(const LedgerRow& row) {
  if (row.kind == "process") {
    kill_process(row.how);
  } else if (row.kind == "path") {
    std::filesystem::path p = row.how.value("path", row.resource_id);
    if (!p.empty()) std::filesystem::remove_all(p);
  } else {
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
    role->reap(entry, ctx);
  }
}

static Event cleanup_event(const LedgerRow& row, const std::string& status,
                           const std::string& message) {
  Event e;
  e.type = EventType::cleanup;
  e.scope = "cleanup", e.status = status, e.message = message;
  e.data = {{"entry", row.id}, {"kind", row.kind}, {"resource", row.resource_id}, {"plugin", row.plugin}};
  return e;
}

int Reaper::reap(const std::vector<LedgerRow>& rows) {
  int failed = 0;
  for (const auto& row : rows) {
    std::string what = row.kind + " " + (row.resource_id.empty() ? row.how.dump() : row.resource_id);
    try {
      reap_one(row);
      state_.ledger_release(row.id);
      events_.emit(cleanup_event(row, "ok", "deleted " + what + " (" + row.plugin + ")"));
    } catch (const std::exception& e) {
      ++failed;
      events_.emit(cleanup_event(row, "failed",
                                 "could not delete " + what + " (" + row.plugin + "): " + e.what() +
                                     "; it stays in the ledger: run `lcake gc` to retry"));
    }
  }
  return failed;
}

}  // namespace lcake::core
