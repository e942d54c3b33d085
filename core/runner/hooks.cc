#include "hooks.h"

#include <chrono>
#include <deque>

#include "lcake/errors.hpp"
#include "runner.h"
#include "step_context.h"

namespace lcake::core {

int run_hooks(const std::vector<Hook>& hooks, const HookRun& run, StateStore& state, EventSink& events,
              const lcake::CancelToken& cancel) {
  int code = kExitOk;
  const std::string scope = "after_publish";
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    const Hook& hook = hooks[i];
    Event e;
    e.type = EventType::hook;
    e.scope = scope;
    e.stage = "after_publish";
    e.message = hook.run;
    e.data = {{"index", i + 1}, {"count", hooks.size()}, {"on", hook.always ? "always" : "published"}};
    if (!hook.always && !run.published) {
      e.status = "skipped";
      e.data["reason"] = "on: published, and this run published nothing";
      events.emit(e);
      continue;
    }
    e.status = "started";
    events.emit(e);

    StepScope where;
    where.run_id = run.owner_run_id;
    where.scope = scope;
    where.stage = "after_publish";
    where.plugin = "lcake";
    where.role = "after_publish";
    where.work_dir = state.dir() / "work" / run.owner_run_id / ("after_publish-" + std::to_string(i + 1));
    StepContext ctx(where, state, events, cancel);
    std::deque<std::string> tail;  // the last lines, for the error
    lcake::ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", hook.run};
    spec.env = {{"LCAKE_MANIFEST", run.manifest.string()},
                {"LCAKE_OUTPUTS", run.outputs.string()},
                {"LCAKE_TARGET", run.target},
                {"LCAKE_RUN_ID", run.run_id},
                {"LCAKE_RUN_STATUS", run.status}};
    spec.cwd = std::filesystem::current_path();
    spec.timeout = hook.timeout;
    spec.on_output = [&](std::string_view line, bool) {
      events.log(lcake::LogLevel::info, scope, line);
      tail.emplace_back(line);
      if (tail.size() > 20) tail.pop_front();
    };
    auto t0 = std::chrono::steady_clock::now();
    std::string error;
    int exit_code = -1;
    try {
      exit_code = ctx.run(spec).exit_code;
      if (exit_code != 0) error = "exited with " + std::to_string(exit_code);
    } catch (const lcake::Cancelled&) {
      throw;
    } catch (const std::exception& ex) {
      error = ex.what();  // "timed out; killed", or it could not start
    }
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (exit_code >= 0) e.data["exit_code"] = exit_code;
    e.status = error.empty() ? "ok" : "failed";
    events.emit(e);
    if (!error.empty()) {
      if (error == "timed out; killed")
        error = "timed out after " + std::to_string(hook.timeout.count()) + "s (" + hook.pointer + "/timeout); killed";
      std::string output;
      for (const auto& l : tail) output += "\n  | " + l;
      events.log(lcake::LogLevel::error, scope,
                 "hook " + std::to_string(i + 1) + " (" + hook.pointer + ") failed: `" + hook.run + "` " + error +
                     (output.empty() ? std::string(" (no output)") : "; its output:" + output) +
                     "\n  nothing was un-published; run `lcake publish --target " + run.target +
                     " --hooks` to run the hooks again");
      code = kExitFailed;
    }
  }
  return code;
}

}  // namespace lcake::core
