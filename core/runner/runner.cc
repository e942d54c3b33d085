#include "runner.h"

#include <algorithm>
#include <optional>
#include <set>
#include <thread>

#include <fstream>

#include "events/redactor.h"
#include "hooks.h"
#include "outputs.h"
#include "plan/input_check.h"
#include "plan/selection.h"
#include "runner_impl.h"

namespace lcake::core {

Roles Runner::Impl::make_roles() {
  Roles r;
  r.builder = factory.make_builder();
  if (factory.uploader()) r.uploader = factory.make_uploader();
  if (factory.verifier()) r.verifier = factory.make_verifier();
  return r;
}

PlanInputs Runner::Impl::plan_inputs() const {
  PlanInputs in;
  in.config = &cfg;
  in.builder = factory.builder();
  in.builder_declared = factory.builder_declared();
  in.uploader = factory.uploader();
  in.has_verifier = factory.verifier().has_value() && !options.no_verify;
  in.only = options.only;
  in.force = options.force;
  in.lcake_version = LCAKE_VERSION;
  return in;
}

std::vector<LayerPlan> Runner::Impl::plan_variant(const Variant& v, Roles& roles) {
  // The planner's questions, answered by this variant's roles.
  class RoleProbe : public BackendProbe {
   public:
    RoleProbe(Impl& im, const Variant& v, Roles& roles) : im_(im), v_(v), roles_(roles) {}
    bool build_exists(const LayerPlan& lp, const lcake::Artifact& a) override {
      auto ctx = im_.context(v_, layer(lp), "plan", im_.cfg.target.builder, "builder", {}, {});
      return roles_.builder->exists(a, *ctx);
    }
    bool upload_exists(const LayerPlan& lp, const lcake::Artifact& a) override {
      auto ctx = im_.context(v_, layer(lp), "plan", *im_.cfg.target.uploader, "uploader", {}, {});
      return roles_.uploader->exists(a, *ctx);
    }
    std::optional<lcake::Artifact> find_upload(const LayerPlan& lp,
                                               const lcake::FindRequest& req) override {
      auto ctx = im_.context(v_, layer(lp), "plan", *im_.cfg.target.uploader, "uploader", {}, {});
      // The backend as a cache is an optimization: when it cannot be asked (a
      // registry that is down), plan as if it had nothing; the upload says why.
      try {
        return roles_.uploader->find(req, *ctx);
      } catch (const lcake::BuildError& e) {
        ctx->warn(std::string("could not look the upload up in the backend (planning without it): ") +
                  e.what());
        return std::nullopt;
      }
    }

   private:
    const Layer& layer(const LayerPlan& lp) const {
      for (const auto& l : v_.layers)
        if (l.name == lp.layer) return l;
      throw std::logic_error("no layer " + lp.layer);
    }
    Impl& im_;
    const Variant& v_;
    Roles& roles_;
  } probe(*this, v, roles);
  return core::plan_variant(plan_inputs(), v, state, probe);
}

std::string Runner::Impl::by(const std::string& stage) const {
  std::optional<PluginId> p = stage == "build"    ? std::optional<PluginId>(factory.builder())
                              : stage == "verify" ? factory.verifier()
                                                  : factory.uploader();
  std::string role = stage == "build" ? "builder" : stage == "verify" ? "verifier" : "uploader";
  return p ? " (" + p->name + " " + role + ")" : "";
}

int Runner::Impl::fail(const std::string& scope, int code, const std::string& what,
                       const std::string& msg) {
  events.log(lcake::LogLevel::error, scope, what + ": " + msg);
  return code;
}

int Runner::Impl::run_all(Mode mode, const std::string& command) {
  auto t0 = Clock::now();
  auto todo = selected_variants(cfg.variants, options.only);
  run_id = state.begin_run(
      {{"command", command}, {"target", target()}, {"pipeline", cfg.pipeline_name}});
  Event start;
  start.type = EventType::run_started;
  start.data = {{"run_id", run_id},
                {"command", command},
                {"target", target()},
                {"pipeline", cfg.pipeline_name},
                {"pipeline_file", loaded.pipeline_file.string()},
                {"lcake_version", LCAKE_VERSION},
                {"no_verify", options.no_verify}};
  events.emit(start);
  std::size_t workers =
      options.parallel > 0 ? static_cast<std::size_t>(options.parallel) : todo.size();
  workers = std::max<std::size_t>(1, std::min(workers, todo.size()));
  std::atomic<std::size_t> next{0};
  std::map<std::string, int> codes;
  std::mutex codes_mu;
  auto work = [&] {
    for (std::size_t i; (i = next++) < todo.size();) {
      int c = run_variant(*todo[i], mode);
      outcome.raise(c);
      std::lock_guard lock(codes_mu);
      codes[todo[i]->name] = c;
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();

  auto status_of = [](int c) {
    return c == kExitOk ? "ok" : c == kExitCancelled ? "cancelled" : "failed";
  };
  auto path = state.dir() / "runs" / (run_id + ".json");
  // After every variant finished publishing; not after Ctrl-C or bad input.
  int before = outcome.code.load();
  if (mode != Mode::verify && !cfg.target.after_publish.empty() &&
      (before == kExitOk || before == kExitFailed)) {
    manifest.write(path, std::nullopt);  // what the hooks read; written again at the end
    try {
      outcome.raise(after_publish(run_id, path, status_of(before), published));
    } catch (const lcake::Cancelled&) {
      events.log(lcake::LogLevel::error, "after_publish", "cancelled: the hook was killed");
      outcome.raise(kExitCancelled);
    } catch (const std::exception& e) {
      events.log(lcake::LogLevel::error, "after_publish", e.what());
      outcome.raise(kExitFailed);
    }
  }
  int code = outcome.code.load();
  state.end_run(run_id, status_of(code));
  Event end;
  end.type = EventType::run_finished;
  end.status = status_of(code);
  end.seconds = seconds_since(t0);
  end.data["variants"] = nlohmann::json::object();
  for (auto& [name, c] : codes) end.data["variants"][name] = status_of(c);
  events.emit(end);
  manifest.write(path, options.manifest);
  Event written;
  written.type = EventType::manifest;
  written.message = path.string();
  events.emit(written);
  std::error_code ec;
  // Kept work dirs (--on-error abort) stay for inspection; `lcake gc` removes them.
  if (!kept_work) std::filesystem::remove_all(state.dir() / "work" / run_id, ec);
  for (auto& [name, c] : codes)
    events.log(c == kExitOk ? lcake::LogLevel::info : lcake::LogLevel::error, name,
               c == kExitOk ? "done" : c == kExitCancelled ? "cancelled" : "FAILED");
  return code;
}

int Runner::Impl::after_publish(const std::string& for_run, const std::filesystem::path& manifest_path,
                                const std::string& status, const std::vector<std::string>& published_by_run) {
  HookRun run;
  run.target = target();
  run.run_id = for_run;
  run.owner_run_id = run_id;
  run.manifest = manifest_path;
  run.outputs = state.dir() / "runs" / (for_run + ".outputs.json");
  run.status = status;
  run.published = !published_by_run.empty();
  std::vector<std::string> names = published_by_run;
  std::sort(names.begin(), names.end());
  auto doc = collect_outputs(state, cfg, for_run, names);
  {
    std::filesystem::create_directories(run.outputs.parent_path());
    auto tmp = run.outputs.string() + ".tmp";
    std::ofstream(tmp) << Redactor::instance().apply(doc.dump(2)) << "\n";
    std::filesystem::rename(tmp, run.outputs);
  }
  return run_hooks(cfg.target.after_publish, run, state, events, cancel);
}

Runner::Runner(const LoadedConfig& loaded, const ResolvedConfig& config, RoleFactory& roles,
               StateStore& state, EventSink& events, const lcake::CancelToken& cancel)
    : impl_(std::make_unique<Impl>(loaded, config, roles, state, events, cancel)) {}
Runner::~Runner() = default;

void Runner::prepare() { impl_->factory.prepare(); }

std::vector<VariantPlan> Runner::plan(const RunOptions& options) {
  impl_->options = options;
  std::vector<VariantPlan> out;
  for (const auto& v : impl_->cfg.variants) {
    Roles roles = impl_->make_roles();
    out.push_back({v.name, impl_->plan_variant(v, roles)});
  }
  return out;
}

int Runner::remove_superseded() {
  std::set<std::string> current;  // stage/variant/layer/key of the current plan
  for (const auto& v : plan({}))
    for (const auto& l : v.layers) {
      current.insert("build/" + l.variant + "/" + l.layer + "/" + l.key);
      if (!l.upload_key.empty()) current.insert("upload/" + l.variant + "/" + l.layer + "/" + l.upload_key);
    }
  auto& im = *impl_;
  Roles roles = im.make_roles();
  int removed = 0;
  auto records = im.state.list_artifacts(im.target());
  // An artifact another record still stands for (published, or current) is kept with it, in
  // either stage: an upload may be the build itself (the qemu uploader without output_directory).
  std::set<std::string> kept;
  for (const auto& rec : records)
    if (rec.published || current.count(rec.stage + "/" + rec.variant + "/" + rec.layer + "/" + rec.key))
      kept.insert(rec.artifact.id);
  // Children before parents: a qcow2 child's backing file is its parent's artifact. Uploads
  // first: an AMI or pushed image is made from a build.
  std::reverse(records.begin(), records.end());
  std::stable_partition(records.begin(), records.end(),
                        [](const ArtifactRecord& r) { return r.stage != "build"; });
  for (const auto& rec : records) {
    if (rec.target != im.target() || rec.published) continue;
    // A duplicate (an upload that lost a race for its key) of a current key is
    // remove_duplicates' to judge; of a superseded key it goes like its upload.
    bool upload = rec.stage == "upload" || rec.stage == "duplicate";
    if (rec.stage != "build" && !upload) continue;
    if (upload && (!roles.uploader || !im.cfg.target.uploader)) continue;
    if (current.count((upload ? "upload/" : "build/") + rec.variant + "/" + rec.layer + "/" + rec.key)) continue;
    Variant v{rec.variant, {}, {}, {}, {}};
    Layer l;
    l.name = rec.layer;
    auto ctx = upload ? im.context(v, l, "gc", *im.cfg.target.uploader, "uploader", {}, {})
                      : im.context(v, l, "gc", im.cfg.target.builder, "builder", {}, {});
    try {
      // The plugin keeps what it knows was published (e.g. a public AMI); the record goes.
      if (!kept.count(rec.artifact.id)) {
        if (upload) roles.uploader->remove(rec.artifact, *ctx);
        else roles.builder->remove(rec.artifact, *ctx);
      }
      im.state.delete_artifact(rec.id);
      ++removed;
      ctx->info("removed superseded " + std::string(upload ? "upload " : "artifact ") + rec.artifact.id +
                " (key " + short_key(rec.key) + ")");
    } catch (const std::exception& e) {
      ctx->warn("could not remove " + rec.artifact.id + ": " + e.what());
    }
  }
  return removed;
}

int Runner::build(const RunOptions& options) {
  impl_->options = options;
  return impl_->run_all(Impl::Mode::build, "build");
}

int Runner::verify(const RunOptions& options) {
  impl_->options = options;
  return impl_->run_all(Impl::Mode::verify, "verify");
}

int Runner::publish(const RunOptions& options) {
  impl_->options = options;
  return impl_->run_all(Impl::Mode::publish, "publish");
}

int Runner::run_hooks_again() {
  auto& im = *impl_;
  if (im.cfg.target.after_publish.empty())
    throw lcake::InputError("target " + im.target() + " has no after_publish hooks (" +
                            im.loaded.target_file.string() + "): nothing to run");
  std::optional<RunRecord> last;
  for (const auto& r : im.state.runs()) {  // newest first
    std::string command = r.info.value("command", "");
    if (r.info.value("target", "") == im.target() && (command == "build" || command == "publish") &&
        std::filesystem::exists(im.state.dir() / "runs" / (r.id + ".json"))) {
      last = r;
      break;
    }
  }
  if (!last)
    throw lcake::InputError("target " + im.target() + " has no finished build or publish run in " +
                            im.state.dir().string() + ": run `lcake build --target " + im.target() + "` first");
  auto path = im.state.dir() / "runs" / (last->id + ".json");
  nlohmann::json m;
  try {
    std::ifstream in(path);
    m = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw lcake::InputError(path.string() + ": not a readable manifest (" + e.what() + ")");
  }
  std::vector<std::string> published;
  const nlohmann::json variants = m.value("variants", nlohmann::json::object());
  for (const auto& [variant, v] : variants.items()) {
    const nlohmann::json layers = v.value("layers", nlohmann::json::object());
    for (const auto& [layer, l] : layers.items())
      if (l.value("published", false)) published.push_back(variant + "/" + layer);
  }
  im.run_id = im.state.begin_run({{"command", "publish --hooks"}, {"target", im.target()}, {"for_run", last->id}});
  im.events.log(lcake::LogLevel::info, "after_publish",
                "running the hooks again for run " + last->id + " (" + last->status + ")");
  int code = kExitFailed;
  try {
    code = im.after_publish(last->id, path, last->status == "ok" ? "ok" : "failed", published);
  } catch (const lcake::Cancelled&) {
    im.state.end_run(im.run_id, "cancelled");
    throw;
  } catch (...) {
    im.state.end_run(im.run_id, "failed");
    throw;
  }
  im.state.end_run(im.run_id, code == kExitOk ? "ok" : "failed");
  std::error_code ec;
  std::filesystem::remove_all(im.state.dir() / "work" / im.run_id, ec);
  return code;
}

}  // namespace lcake::core
