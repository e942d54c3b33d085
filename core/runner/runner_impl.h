// The runner's internals, shared by runner.cc (planning and the run) and
// layer_steps.cc (one build, upload, verify or publish step of a layer).
#pragma once
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "lcake/errors.hpp"
#include "runner.h"
#include "step_context.h"

#ifndef LCAKE_VERSION
#define LCAKE_VERSION "0.0.0"
#endif

namespace lcake::core {

namespace runner_detail {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Roles {
  std::unique_ptr<lcake::Builder> builder;
  std::unique_ptr<lcake::Uploader> uploader;
  std::unique_ptr<lcake::Verifier> verifier;
};

// The worst outcome wins: input error > cancelled > failed > ok.
struct Outcome {
  std::atomic<int> code{kExitOk};
  void raise(int c) {
    auto rank = [](int x) {
      return x == kExitInput ? 3 : x == kExitCancelled ? 2 : x == kExitFailed ? 1 : 0;
    };
    int cur = code.load();
    while (rank(c) > rank(cur) && !code.compare_exchange_weak(cur, c)) {
    }
  }
};

inline std::string short_key(const std::string& key) { return key.substr(0, 12); }

// Held while a layer is built, so two lcake processes sharing a state dir never
// build the same layer key into the same store dir at once.
class LayerLock {
 public:
  LayerLock(const std::filesystem::path& file, const lcake::CancelToken& cancel,
            const std::function<void()>& on_wait) {
    std::filesystem::create_directories(file.parent_path());
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw lcake::BuildError("cannot open lock file " + file.string());
    bool waited = false;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (!waited) on_wait(), waited = true;
      if (cancel.wait_for(std::chrono::milliseconds(200))) {
        ::close(fd_);
        throw lcake::Cancelled();
      }
    }
  }
  ~LayerLock() { ::close(fd_); }  // closing releases the lock
  LayerLock(const LayerLock&) = delete;
  LayerLock& operator=(const LayerLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace runner_detail
using namespace runner_detail;

struct Runner::Impl {
  const LoadedConfig& loaded;
  const ResolvedConfig& cfg;
  PluginHost& plugins;
  StateStore& state;
  EventLog& log;
  CancelSource& cancel;
  std::string run_id;
  const LoadedPlugin* builder_plugin = nullptr;
  const LoadedPlugin* uploader_plugin = nullptr;
  const LoadedPlugin* verifier_plugin = nullptr;
  std::mutex manifest_mu;
  nlohmann::json manifest = nlohmann::json::object();
  Outcome outcome;
  RunOptions options;

  Impl(const LoadedConfig& l, const ResolvedConfig& c, PluginHost& p, StateStore& s, EventLog& e,
       CancelSource& x)
      : loaded(l), cfg(c), plugins(p), state(s), log(e), cancel(x) {}

  const std::string& target() const { return cfg.target.name; }
  enum class Mode { build, verify, publish };

  // Plugins and planning (runner.cc).
  const LoadedPlugin& load_role(const RoleConfig& rc, const std::string& role);
  void prepare();
  Roles make_roles();
  bool wants_upload(const Layer& layer);
  std::vector<bool> named(const Variant& v);      // layers --only names (all without it)
  std::vector<bool> selection(const Variant& v);  // those plus the ancestors they need
  std::vector<LayerPlan> plan_variant(const Variant& v, Roles& roles);

  // The run (runner.cc).
  std::string by(const std::string& stage) const;
  int fail(const std::string& scope, int code, const std::string& what, const std::string& msg);
  int run_variant(const Variant& v, Mode mode);
  int run_all(Mode mode, const std::string& command);
  void write_manifest();

  // One step of one layer (layer_steps.cc).
  std::filesystem::path store_dir(const std::string& variant, const std::string& layer,
                                  const std::string& key, const std::string& stage);
  std::filesystem::path work_dir(const std::string& variant, const std::string& layer,
                                 const std::string& stage);
  std::unique_ptr<StepContext> context(const std::string& scope, const RoleConfig& rc,
                                       const std::string& role, std::filesystem::path work,
                                       std::filesystem::path store);
  // What a step left in the ledger is deleted when it ends, unless
  // --on-error=abort asked to keep a failed step's resources for inspection.
  void end_step(StepContext& ctx, bool failed);
  std::string upload_key(const std::string& key, const Layer& layer);
  lcake::LayerInfo layer_info(const Variant& v, const Layer& l, const std::string& key);
  void note(const std::string& variant, const std::string& layer, const nlohmann::json& fields);
  ArtifactRecord do_build(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                          const std::optional<lcake::Artifact>& parent);
  ArtifactRecord do_upload(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                           const ArtifactRecord& built,
                           const std::optional<lcake::Artifact>& parent_upload);
  void do_verify(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                 const ArtifactRecord& built, const std::optional<ArtifactRecord>& uploaded);
  void do_publish(const Variant& v, const Layer& layer, Roles& roles,
                  const ArtifactRecord& uploaded);
};

}  // namespace lcake::core
