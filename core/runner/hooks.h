// after_publish hooks: local commands run once per run after every variant
// finished publishing, with the run's manifest and outputs in their environment.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "events/event.h"
#include "lcake/context.hpp"
#include "state/state_store.h"

namespace lcake::core {

struct HookRun {
  std::string target;
  std::string run_id;         // LCAKE_RUN_ID: the run whose artifacts the hooks carry
  std::string owner_run_id;   // the running lcake's run (owns the hooks' ledger entries)
  std::filesystem::path manifest;  // LCAKE_MANIFEST
  std::filesystem::path outputs;   // LCAKE_OUTPUTS (written by the caller)
  std::string status;              // LCAKE_RUN_STATUS: ok | failed (the builds and publishing)
  bool published = false;          // the run published something: `on: published` hooks run
};

// Runs each hook in order through /bin/sh -c, in lcake's working directory, its output
// logged line by line (redacted like every line) under the scope "after_publish".
// A hook that exits non-zero or times out (its process group is killed) is logged as an
// error with its last lines of output; the others still run. Returns kExitOk or
// kExitFailed; throws lcake::Cancelled after killing a running hook on Ctrl-C.
int run_hooks(const std::vector<Hook>& hooks, const HookRun& run, StateStore& state, EventSink& events,
              const lcake::CancelToken& cancel);

}  // namespace lcake::core
