// Deletes what the cleanup ledger says is still out there: local processes and
// paths directly, everything else through the owning plugin's reap().
#pragma once
#include <string>
#include <vector>

#include "events/event.h"
#include "role_factory.h"
#include "state/state_store.h"

namespace lcake::core {

// Field 22 of /proc/PID/stat, or "" when the process is gone.

class Reaper {
 public:
  // Cleanup ignores the run's cancel token: it must finish even after Ctrl-C.
  Reaper(StateStore& state, RoleFactory& roles, EventSink& events, std::filesystem::path work_root);
  // What reap() did with the entries it was given.
  struct Counts {
    int deleted = 0;  // deleted now
    int gone = 0;     // already gone: nothing to delete
    int failed = 0;   // could not be deleted; left in the ledger
  };
  // Deletes the entries (given newest first) and releases each one deleted or
  // already gone. Each is reported on the log.
  Counts reap(const std::vector<LedgerRow>& rows);

 private:
  // True when it deleted something, false when the resource was already gone.
  bool reap_one(const LedgerRow& row);
  StateStore& state_;
  RoleFactory& roles_;
  EventSink& events_;
  std::filesystem::path work_root_;
};

}  // namespace lcake::core
