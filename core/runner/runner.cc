#include "runner.h"

#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "plan/input_check.h"
#include "runner_impl.h"

namespace lcake::core {

bool glob_match(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

const LoadedPlugin& Runner::Impl::load_role(const RoleConfig& rc, const std::string& role) {
  const LoadedPlugin& p = plugins.load(rc.plugin);
  if (!p.has_role(role))
    throw lcake::InputError(loaded.target_file.string() + ": " + rc.pointer + "/plugin: plugin '" +
                            rc.plugin + "' (" + p.info().file.string() + ") provides no " + role +
                            ": choose a plugin that does (see `lcake plugins list`)");
  return p;  // its inputs were checked by check_inputs (plan/input_check.h) before the run
}

void Runner::Impl::prepare() {
  builder_plugin = &load_role(cfg.target.builder, "builder");
  if (cfg.target.uploader) uploader_plugin = &load_role(*cfg.target.uploader, "uploader");
  if (cfg.target.verifier) verifier_plugin = &load_role(*cfg.target.verifier, "verifier");
}

Roles Runner::Impl::make_roles() {
  Roles r;
  r.builder = builder_plugin->make_builder(cfg.target.builder.settings);
  if (uploader_plugin) r.uploader = uploader_plugin->make_uploader(cfg.target.uploader->settings);
  if (verifier_plugin) r.verifier = verifier_plugin->make_verifier(cfg.target.verifier->settings);
  return r;
}

bool Runner::Impl::wants_upload(const Layer& layer) {
  if (!uploader_plugin) return false;
  if (cfg.target.upload_layers.empty()) return true;
  for (const auto& g : cfg.target.upload_layers)
    if (glob_match(g, layer.name)) return true;
  return false;
}

std::vector<bool> Runner::Impl::named(const Variant& v) {
  std::vector<bool> sel(v.layers.size(), options.only.empty());
  for (std::size_t i = 0; i < v.layers.size(); ++i)
    for (const auto& g : options.only)
      if (glob_match(g, v.name) || glob_match(g, v.name + "/" + v.layers[i].name)) sel[i] = true;
  return sel;
}

std::vector<bool> Runner::Impl::selection(const Variant& v) {
  std::vector<bool> sel = named(v);
  // A selected layer needs its ancestors.
  for (std::size_t i = v.layers.size(); i-- > 0;) {
    if (!sel[i] || !v.layers[i].from) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (v.layers[j].name == *v.layers[i].from) sel[j] = true;
  }
  return sel;
}

std::vector<LayerPlan> Runner::Impl::plan_variant(const Variant& v, Roles& roles) {
  std::vector<LayerPlan> out;
  std::map<std::string, std::string> key_of;
  auto sel = selection(v);
  auto forced = named(v);
  for (std::size_t i = 0; i < v.layers.size(); ++i) {
    const Layer& layer = v.layers[i];
    LayerPlan lp;
    lp.variant = v.name;
    lp.layer = layer.name;
    lp.selected = sel[i];
    KeyInputs ki;
    ki.recipe = layer.recipe;
    ki.parent_key = layer.from ? key_of[*layer.from] : "";
    ki.source = layer.from ? nlohmann::json() : v.source;
    for (std::size_t k = 0; k < layer.inputs.size(); ++k)
      ki.inputs.emplace_back(
          k < layer.input_names.size() ? layer.input_names[k] : layer.inputs[k].string(),
          layer.inputs[k]);
    ki.plugin_name = builder_plugin->info().name;
    ki.plugin_version = builder_plugin->info().version;
    ki.plugin_settings = cfg.target.builder.settings;
    lp.layer_key = compute_layer_key(ki);
    lp.key = lp.layer_key.hex;
    lp.parent_key = ki.parent_key;
    key_of[layer.name] = lp.key;
    if (auto last = state.last_key_components(target(), v.name, layer.name)) {
      if (last->first != lp.key) {
        lp.previous_key = last->first;
        lp.reasons = explain_key_change(last->second, lp.layer_key.components);
      }
    }
    auto rec = state.find_artifact(target(), v.name, layer.name, lp.key, "build");
    if (rec) {
      auto ctx = context(v.name + "/" + layer.name, cfg.target.builder, "builder", {}, {});
      lp.build_cached = roles.builder->exists(rec->artifact, *ctx);
      lp.verified = rec->verified;
    }
    lp.upload_wanted = wants_upload(layer);
    if (lp.upload_wanted) {
      auto urec =
          state.find_artifact(target(), v.name, layer.name, upload_key(lp.key, layer), "upload");
      if (urec) {
        auto ctx = context(v.name + "/" + layer.name, *cfg.target.uploader, "uploader", {}, {});
        lp.upload_cached = roles.uploader->exists(urec->artifact, *ctx);
        lp.verified = lp.verified && urec->verified && lp.upload_cached;
        lp.published = urec->published;
      } else {
        lp.verified = false;  // the upload still has to be made and verified
      }
    }
    lp.verify_wanted = verifier_plugin && !layer.verify.empty() && !options.no_verify;
    if (options.force && forced[i]) lp.build_cached = lp.upload_cached = lp.verified = false;
    out.push_back(std::move(lp));
  }
  return out;
}

// " (qemu builder)": which plugin ran the failing step, so a user knows whose message it is.
std::string Runner::Impl::by(const std::string& stage) const {
  const LoadedPlugin* p = stage == "build"    ? builder_plugin
                          : stage == "upload" ? uploader_plugin
                                              : verifier_plugin;
  std::string role = stage == "build" ? "builder" : stage == "upload" ? "uploader" : "verifier";
  return p ? " (" + p->info().name + " " + role + ")" : "";
}

int Runner::Impl::fail(const std::string& scope, int code, const std::string& what,
                       const std::string& msg) {
  log.log(lcake::LogLevel::error, scope, what + ": " + msg);
  return code;
}

int Runner::Impl::run_variant(const Variant& v, Mode mode) {
  std::string vscope = v.name;
  Roles roles;
  std::vector<LayerPlan> plan;
  try {
    roles = make_roles();
    plan = plan_variant(v, roles);
  } catch (const lcake::InputError& e) {
    return fail(vscope, kExitInput, "planning failed",
                describe_plugin_error(loaded, cfg, "builder", v.name, "", e));
  } catch (const std::exception& e) {
    return fail(vscope, kExitFailed, "planning failed", e.what());
  }
  std::map<std::string, ArtifactRecord> built, uploaded;
  std::vector<std::size_t> done;
  for (std::size_t i = 0; i < v.layers.size(); ++i) {
    const Layer& layer = v.layers[i];
    const LayerPlan& lp = plan[i];
    if (!lp.selected) continue;
    std::string scope = v.name + "/" + layer.name;
    note(v.name, layer.name, {{"key", lp.key}});
    std::string stage = "build";
    try {
      if (cancel.cancelled()) throw lcake::Cancelled();
      // Build (or reuse).
      std::optional<lcake::Artifact> parent;
      if (layer.from) parent = built.at(*layer.from).artifact;
      if (lp.build_cached) {
        built[layer.name] = *state.find_artifact(target(), v.name, layer.name, lp.key, "build");
        log.event("cached", {{"variant", v.name}, {"layer", layer.name}, {"key", lp.key}}, scope,
                  "cached (key " + short_key(lp.key) + ")");
        note(v.name, layer.name,
             {{"build", {{"artifact", built[layer.name].artifact}, {"cached", true}}}});
      } else if (mode != Mode::build) {
        throw lcake::InputError(scope + " is not built for key " + short_key(lp.key) +
                                ": run `lcake build --target " + target() + "` first");
      } else {
        LayerLock lock(store_dir(v.name, layer.name, lp.key, "build").string() + ".lock", cancel,
                       [&] {
                         log.log(lcake::LogLevel::info, scope,
                                 "waiting for another lcake building the same layer");
                       });
        // Another process may have built it while we waited.
        auto rec = state.find_artifact(target(), v.name, layer.name, lp.key, "build");
        auto ctx = context(scope, cfg.target.builder, "builder", {}, {});
        if (rec && !options.force && roles.builder->exists(rec->artifact, *ctx)) {
          built[layer.name] = *rec;
          log.log(lcake::LogLevel::info, scope, "built meanwhile by another lcake: cached");
        } else {
          built[layer.name] = do_build(v, layer, lp, roles, parent);
        }
      }
      // Upload (or reuse).
      stage = "upload";
      if (lp.upload_wanted) {
        std::string ukey = upload_key(lp.key, layer);
        std::optional<lcake::Artifact> parent_upload;
        if (layer.from && uploaded.count(*layer.from))
          parent_upload = uploaded.at(*layer.from).artifact;
        if (lp.upload_cached) {
          uploaded[layer.name] = *state.find_artifact(target(), v.name, layer.name, ukey, "upload");
          note(v.name, layer.name,
               {{"upload", {{"artifact", uploaded[layer.name].artifact}, {"cached", true}}}});
        } else if (mode != Mode::build) {
          throw lcake::InputError(scope + " is not uploaded: run `lcake build --target " +
                                  target() + "` first");
        } else {
          uploaded[layer.name] = do_upload(v, layer, lp, roles, built[layer.name], parent_upload);
        }
      }
      // Verify: gate for everything after it.
      stage = "verify";
      std::optional<ArtifactRecord> up;
      if (uploaded.count(layer.name)) up = uploaded[layer.name];
      // A new upload (say, to another registry) is a new candidate: verify it again.
      bool already = mode != Mode::verify && built[layer.name].verified && (!up || up->verified);
      if (lp.verify_wanted && mode != Mode::publish && !already)
        do_verify(v, layer, lp, roles, built[layer.name], up);
      else if (lp.verify_wanted && already)
        note(v.name, layer.name, {{"verified", true}});
      if (lp.verify_wanted && mode == Mode::publish &&
          !(built[layer.name].verified && (!up || up->verified)))
        throw lcake::BuildError(scope + " has not passed verification: run `lcake verify` first");
      done.push_back(i);
    } catch (const lcake::Cancelled&) {
      note(v.name, layer.name, {{"error", "cancelled"}});
      return fail(scope, kExitCancelled, stage + " cancelled", "cleanup done");
    } catch (const lcake::InputError& e) {
      note(v.name, layer.name, {{"error", e.what()}});
      std::string role = stage == "build" ? "builder" : stage == "upload" ? "uploader" : "verifier";
      return fail(scope, kExitInput, stage + " failed" + by(stage),
                  describe_plugin_error(loaded, cfg, role, v.name, layer.name, e));
    } catch (const std::exception& e) {
      note(v.name, layer.name, {{"error", e.what()}});
      return fail(scope, kExitFailed, stage + " failed" + by(stage), e.what());
    }
  }
  if (mode == Mode::verify || !uploader_plugin) return kExitOk;
  // Publish only after every selected layer of the variant built and verified.
  for (std::size_t i : done) {
    const Layer& layer = v.layers[i];
    if (!uploaded.count(layer.name) || uploaded[layer.name].published) continue;
    try {
      if (cancel.cancelled()) throw lcake::Cancelled();
      do_publish(v, layer, roles, uploaded[layer.name]);
      // The build behind a published upload is kept by `gc` too.
      state.mark_published(built[layer.name].id, built[layer.name].artifact);
    } catch (const lcake::Cancelled&) {
      return fail(v.name + "/" + layer.name, kExitCancelled, "publish cancelled", "cleanup done");
    } catch (const lcake::InputError& e) {
      return fail(v.name + "/" + layer.name, kExitInput, "publish failed",
                  describe_plugin_error(loaded, cfg, "uploader", v.name, layer.name, e));
    } catch (const std::exception& e) {
      return fail(v.name + "/" + layer.name, kExitFailed, "publish failed", e.what());
    }
  }
  return kExitOk;
}

int Runner::Impl::run_all(Mode mode, const std::string& command) {
  auto t0 = Clock::now();
  run_id = state.begin_run(
      {{"command", command}, {"target", target()}, {"pipeline", cfg.pipeline_name}});
  manifest = {{"run_id", run_id},
              {"command", command},
              {"target", target()},
              {"pipeline", cfg.pipeline_name},
              {"pipeline_file", loaded.pipeline_file.string()},
              {"lcake_version", LCAKE_VERSION},
              {"variants", nlohmann::json::object()}};
  std::vector<const Variant*> todo;
  for (const auto& v : cfg.variants) {
    bool any = options.only.empty();
    for (const auto& g : options.only)
      for (const auto& l : v.layers)
        if (glob_match(g, v.name) || glob_match(g, v.name + "/" + l.name)) any = true;
    if (any) todo.push_back(&v);
  }
  if (todo.empty() && !options.only.empty())
    throw lcake::InputError("--only: no variant or layer matches; variants are named like '" +
                            (cfg.variants.empty() ? std::string("?") : cfg.variants[0].name) +
                            "' and layers like '" +
                            (cfg.variants.empty() || cfg.variants[0].layers.empty()
                                 ? std::string("?")
                                 : cfg.variants[0].name + "/" + cfg.variants[0].layers[0].name) +
                            "'");
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

  int code = outcome.code.load();
  std::string status = code == kExitOk ? "ok" : code == kExitCancelled ? "cancelled" : "failed";
  state.end_run(run_id, status);
  manifest["status"] = status;
  manifest["seconds"] = seconds_since(t0);
  for (auto& [name, c] : codes)
    manifest["variants"][name]["status"] = c == kExitOk          ? "ok"
                                           : c == kExitCancelled ? "cancelled"
                                                                 : "failed";
  write_manifest();
  for (auto& [name, c] : codes)
    log.log(c == kExitOk ? lcake::LogLevel::info : lcake::LogLevel::error, name,
            c == kExitOk          ? "done"
            : c == kExitCancelled ? "cancelled"
                                  : "FAILED");
  return code;
}

void Runner::Impl::write_manifest() {
  std::string text = Redactor::instance().apply(manifest.dump(2));
  auto dir = state.dir() / "runs";
  std::filesystem::create_directories(dir);
  auto path = dir / (run_id + ".json");
  std::ofstream(path) << text << "\n";
  if (options.manifest) {
    auto tmp = options.manifest->string() + ".tmp";
    std::ofstream(tmp) << text << "\n";
    std::filesystem::rename(tmp, *options.manifest);
  }
  log.event("manifest", {{"path", path.string()}}, "", "manifest: " + path.string());
  std::error_code ec;
  std::filesystem::remove_all(state.dir() / "work" / run_id, ec);
}

Runner::Runner(const LoadedConfig& loaded, const ResolvedConfig& config, PluginHost& plugins,
               StateStore& state, EventLog& log, CancelSource& cancel)
    : impl_(std::make_unique<Impl>(loaded, config, plugins, state, log, cancel)) {}
Runner::~Runner() = default;

void Runner::prepare() { impl_->prepare(); }

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
  impl_->options = {};
  std::set<std::string> current;  // variant/layer/key of the current plan
  for (const auto& v : plan(impl_->options))
    for (const auto& l : v.layers) current.insert(l.variant + "/" + l.layer + "/" + l.key);
  auto& im = *impl_;
  Roles roles = im.make_roles();
  int removed = 0;
  auto records = im.state.list_artifacts(im.target());
  // Children before parents: a qcow2 child's backing file is its parent's artifact.
  std::reverse(records.begin(), records.end());
  for (const auto& rec : records) {
    if (rec.target != im.target() || rec.stage != "build" || rec.published) continue;
    if (current.count(rec.variant + "/" + rec.layer + "/" + rec.key)) continue;
    auto ctx = im.context(rec.variant + "/" + rec.layer, im.cfg.target.builder, "builder", {}, {});
    try {
      roles.builder->remove(rec.artifact, *ctx);
      im.state.delete_artifact(rec.id);
      ++removed;
      ctx->info("removed superseded artifact " + rec.artifact.id + " (key " + short_key(rec.key) +
                ")");
    } catch (const std::exception& e) {
      ctx->warn("could not remove " + rec.artifact.id + ": " + e.what());
    }
  }
  return removed;
}

int Runner::build(const RunOptions& options) {
  impl_->options = options;
  int c = impl_->run_all(Impl::Mode::build, "build");
  run_id_ = impl_->run_id;
  return c;
}

int Runner::verify(const RunOptions& options) {
  impl_->options = options;
  int c = impl_->run_all(Impl::Mode::verify, "verify");
  run_id_ = impl_->run_id;
  return c;
}

int Runner::publish(const RunOptions& options) {
  impl_->options = options;
  int c = impl_->run_all(Impl::Mode::publish, "publish");
  run_id_ = impl_->run_id;
  return c;
}

}  // namespace lcake::core
