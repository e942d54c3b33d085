#include "runner.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "lcake/errors.hpp"
#include "provision.h"
#include "reaper.h"
#include "step_context.h"

#ifndef LCAKE_VERSION
#define LCAKE_VERSION "0.0.0"
#endif

namespace lcake::core {

bool glob_match(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
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
    auto rank = [](int x) { return x == kExitInput ? 3 : x == kExitCancelled ? 2 : x == kExitFailed ? 1 : 0; };
    int cur = code.load();
    while (rank(c) > rank(cur) && !code.compare_exchange_weak(cur, c)) {}
  }
};

std::string short_key(const std::string& key) { return key.substr(0, 12); }

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

}  // namespace

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

  const LoadedPlugin& load_role(const RoleConfig& rc, const std::string& role) {
    const LoadedPlugin& p = plugins.load(rc.plugin);
    if (!p.has_role(role))
      throw lcake::InputError(loaded.target_file.string() + ": " + rc.pointer + "/plugin: plugin '" +
                              rc.plugin + "' (" + p.info().file.string() + ") provides no " + role +
                              ": choose a plugin that does (see `lcake plugins list`)");
    auto it = p.info().schema_texts.find(role);
    if (it != p.info().schema_texts.end())
      validate_against_schema(loaded, rc.pointer + "/settings", rc.settings, it->second,
                              "plugin '" + rc.plugin + "' " + role + " schema");
    return p;
  }

  void prepare() {
    builder_plugin = &load_role(cfg.target.builder, "builder");
    if (cfg.target.uploader) uploader_plugin = &load_role(*cfg.target.uploader, "uploader");
    if (cfg.target.verifier) verifier_plugin = &load_role(*cfg.target.verifier, "verifier");
  }

  Roles make_roles() {
    Roles r;
    r.builder = builder_plugin->make_builder(cfg.target.builder.settings);
    if (uploader_plugin) r.uploader = uploader_plugin->make_uploader(cfg.target.uploader->settings);
    if (verifier_plugin) r.verifier = verifier_plugin->make_verifier(cfg.target.verifier->settings);
    return r;
  }

  std::filesystem::path store_dir(const std::string& variant, const std::string& layer,
                                   const std::string& key, const std::string& stage) {
    return state.dir() / "store" / target() / variant / layer / (short_key(key) + "-" + stage);
  }

  std::unique_ptr<StepContext> context(const std::string& scope, const RoleConfig& rc,
                                        const std::string& role, std::filesystem::path work,
                                        std::filesystem::path store) {
    StepScope s{run_id, scope, rc.plugin, role, rc.settings, std::move(work), std::move(store)};
    return std::make_unique<StepContext>(std::move(s), state, log, cancel);
  }

  std::filesystem::path work_dir(const std::string& variant, const std::string& layer,
                                 const std::string& stage) {
    return state.dir() / "work" / run_id / (variant + "-" + layer + "-" + stage);
  }

  // What a step left in the ledger is deleted when it ends, unless
  // --on-error=abort asked to keep a failed step's resources for inspection.
  void end_step(StepContext& ctx, bool failed) {
    auto ids = ctx.open_entries();
    if (ids.empty()) return;
    std::set<std::int64_t> mine(ids.begin(), ids.end());
    std::vector<LedgerRow> rows;
    for (auto& row : state.ledger_open(run_id))
      if (mine.count(row.id)) rows.push_back(row);
    if (failed && options.on_error == OnError::abort) {
      for (auto& row : rows)
        ctx.warn("left for inspection: " + row.kind + " " + row.resource_id +
                 " (delete it with `lcake gc`)");
      return;
    }
    Reaper reaper(state, plugins, log, cancel, state.dir() / "work" / run_id);
    reaper.reap(rows);
  }

  std::string upload_key(const std::string& key, const Layer& layer) {
    const auto& u = *cfg.target.uploader;
    return sha256_hex(key + "\n" + uploader_plugin->info().name + "\n" +
                      uploader_plugin->info().version + "\n" + u.settings.dump() + "\n" +
                      layer.uploader_options.dump());
  }

  bool wants_upload(const Layer& layer) {
    if (!uploader_plugin) return false;
    if (cfg.target.upload_layers.empty()) return true;
    for (const auto& g : cfg.target.upload_layers)
      if (glob_match(g, layer.name)) return true;
    return false;
  }

  // Layers named by --only (all without it); --force applies to these only.
  std::vector<bool> named(const Variant& v) {
    std::vector<bool> sel(v.layers.size(), options.only.empty());
    for (std::size_t i = 0; i < v.layers.size(); ++i)
      for (const auto& g : options.only)
        if (glob_match(g, v.name) || glob_match(g, v.name + "/" + v.layers[i].name)) sel[i] = true;
    return sel;
  }

  // The named layers plus the ancestors they need.
  std::vector<bool> selection(const Variant& v) {
    std::vector<bool> sel = named(v);
    // A selected layer needs its ancestors.
    for (std::size_t i = v.layers.size(); i-- > 0;) {
      if (!sel[i] || !v.layers[i].from) continue;
      for (std::size_t j = 0; j < i; ++j)
        if (v.layers[j].name == *v.layers[i].from) sel[j] = true;
    }
    return sel;
  }

  lcake::LayerInfo layer_info(const Variant& v, const Layer& l, const std::string& key) {
    return {target(), v.name, l.name, key, LCAKE_VERSION};
  }

  std::vector<LayerPlan> plan_variant(const Variant& v, Roles& roles) {
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
        ki.inputs.emplace_back(k < layer.input_names.size() ? layer.input_names[k]
                                                            : layer.inputs[k].string(),
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
        auto urec = state.find_artifact(target(), v.name, layer.name, upload_key(lp.key, layer), "upload");
        if (urec) {
          auto ctx = context(v.name + "/" + layer.name, *cfg.target.uploader, "uploader", {}, {});
          lp.upload_cached = roles.uploader->exists(urec->artifact, *ctx);
          lp.verified = lp.verified && urec->verified && lp.upload_cached;
          lp.published = urec->published;
        } else {
          lp.verified = false;  // the upload still has to be made and verified
        }
      }
      lp.verify_wanted = verifier_plugin && !layer.verify.empty();
      if (options.force && forced[i]) lp.build_cached = lp.upload_cached = lp.verified = false;
      out.push_back(std::move(lp));
    }
    return out;
  }

  void note(const std::string& variant, const std::string& layer, const nlohmann::json& fields) {
    std::lock_guard lock(manifest_mu);
    auto& entry = manifest["variants"][variant]["layers"][layer];
    if (entry.is_null()) entry = nlohmann::json::object();
    entry.update(fields);
  }

  // ---- steps --------------------------------------------------------------

  ArtifactRecord do_build(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                          const std::optional<lcake::Artifact>& parent) {
    std::string scope = v.name + "/" + layer.name;
    auto ctx = context(scope, cfg.target.builder, "builder", work_dir(v.name, layer.name, "build"),
                       store_dir(v.name, layer.name, lp.key, "build"));
    log.event("build_start", {{"variant", v.name}, {"layer", layer.name}, {"key", lp.key}}, scope,
              "building (key " + short_key(lp.key) + (lp.reasons.empty() ? "" : ": " + lp.reasons.front()) + ")");
    auto t0 = Clock::now();
    lcake::BuildRequest req;
    req.layer = layer_info(v, layer, lp.key);
    req.source = layer.from ? nlohmann::json() : v.source;
    req.parent = parent;
    req.options = layer.builder_options;
    std::unique_ptr<lcake::BuildSession> session;
    lcake::Artifact art;
    try {
      session = roles.builder->start(req, *ctx);
      run_provisioners(layer.provisioners, session->communicator(), *ctx);
      art = session->finish(*ctx);
    } catch (...) {
      if (session && options.on_error == OnError::cleanup) session->abort(*ctx);
      end_step(*ctx, true);
      throw;
    }
    end_step(*ctx, false);
    art.plugin = builder_plugin->info().name;
    ArtifactRecord rec;
    rec.target = target();
    rec.variant = v.name;
    rec.layer = layer.name;
    rec.key = lp.key;
    rec.stage = "build";
    rec.artifact = art;
    rec.run_id = run_id;
    rec.id = state.record_artifact(rec);
    state.record_key_components(target(), v.name, layer.name, lp.key, lp.layer_key.components);
    double secs = seconds_since(t0);
    log.event("build_done", {{"variant", v.name}, {"layer", layer.name}, {"artifact", art}, {"seconds", secs}},
              scope, "built " + art.type + " " + art.id + " in " + std::to_string(static_cast<int>(secs)) + "s");
    note(v.name, layer.name, {{"build", {{"artifact", art}, {"seconds", secs}, {"cached", false}}}});
    return rec;
  }

  ArtifactRecord do_upload(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                           const ArtifactRecord& built, const std::optional<lcake::Artifact>& parent_upload) {
    std::string scope = v.name + "/" + layer.name;
    auto ctx = context(scope, *cfg.target.uploader, "uploader", work_dir(v.name, layer.name, "upload"),
                       store_dir(v.name, layer.name, lp.key, "upload"));
    log.event("upload_start", {{"variant", v.name}, {"layer", layer.name}}, scope, "uploading");
    auto t0 = Clock::now();
    lcake::UploadRequest req;
    req.layer = layer_info(v, layer, lp.key);
    req.built = built.artifact;
    req.parent_upload = parent_upload;
    req.options = layer.uploader_options;
    lcake::Artifact art;
    try {
      art = roles.uploader->upload(req, *ctx);
    } catch (...) {
      end_step(*ctx, true);
      throw;
    }
    end_step(*ctx, false);
    art.plugin = uploader_plugin->info().name;
    ArtifactRecord rec = built;
    rec.key = upload_key(lp.key, layer);
    rec.stage = "upload";
    rec.artifact = art;
    rec.verified = false;
    rec.published = false;
    rec.run_id = run_id;
    rec.id = state.record_artifact(rec);
    double secs = seconds_since(t0);
    log.event("upload_done", {{"variant", v.name}, {"layer", layer.name}, {"artifact", art}, {"seconds", secs}},
              scope, "uploaded " + art.type + " " + art.id);
    note(v.name, layer.name, {{"upload", {{"artifact", art}, {"seconds", secs}, {"cached", false}}}});
    return rec;
  }

  void do_verify(const Variant& v, const Layer& layer, const LayerPlan& lp, Roles& roles,
                 const ArtifactRecord& built, const std::optional<ArtifactRecord>& uploaded) {
    std::string scope = v.name + "/" + layer.name;
    auto ctx = context(scope, *cfg.target.verifier, "verifier", work_dir(v.name, layer.name, "verify"), {});
    log.event("verify_start", {{"variant", v.name}, {"layer", layer.name}}, scope, "verifying");
    auto t0 = Clock::now();
    lcake::VerifyRequest req;
    req.layer = layer_info(v, layer, lp.key);
    req.candidate = uploaded ? uploaded->artifact : built.artifact;
    req.built = built.artifact;
    req.options = layer.verifier_options;
    std::unique_ptr<lcake::VerifySession> session;
    try {
      session = roles.verifier->start(req, *ctx);
      run_verify_steps(layer.verify, session->communicator(), *ctx);
      session->finish(*ctx);
    } catch (...) {
      if (session && options.on_error == OnError::cleanup) session->abort(*ctx);
      end_step(*ctx, true);
      note(v.name, layer.name, {{"verified", false}});
      throw;
    }
    end_step(*ctx, false);
    state.mark_verified(built.id);
    if (uploaded) state.mark_verified(uploaded->id);
    double secs = seconds_since(t0);
    log.event("verify_done", {{"variant", v.name}, {"layer", layer.name}, {"seconds", secs}}, scope,
              "verified in " + std::to_string(static_cast<int>(secs)) + "s");
    note(v.name, layer.name, {{"verified", true}, {"verify_seconds", secs}});
  }

  void do_publish(const Variant& v, const Layer& layer, Roles& roles, const ArtifactRecord& uploaded) {
    std::string scope = v.name + "/" + layer.name;
    auto ctx = context(scope, *cfg.target.uploader, "uploader", work_dir(v.name, layer.name, "publish"), {});
    lcake::PublishRequest req;
    req.layer = layer_info(v, layer, uploaded.key);
    req.options = layer.publish_options;
    lcake::Artifact art;
    try {
      art = roles.uploader->publish(uploaded.artifact, req, *ctx);
    } catch (...) {
      end_step(*ctx, true);
      throw;
    }
    end_step(*ctx, false);
    art.plugin = uploader_plugin->info().name;
    state.mark_published(uploaded.id, art);
    log.event("published", {{"variant", v.name}, {"layer", layer.name}, {"artifact", art}}, scope,
              "published " + art.id);
    note(v.name, layer.name, {{"published", true}, {"publish", {{"artifact", art}}}});
  }

  // ---- one variant ---------------------------------------------------------

  enum class Mode { build, verify, publish };

  int fail(const std::string& scope, int code, const std::string& what, const std::string& msg) {
    log.log(lcake::LogLevel::error, scope, what + ": " + msg);
    return code;
  }

  int run_variant(const Variant& v, Mode mode) {
    std::string vscope = v.name;
    Roles roles;
    std::vector<LayerPlan> plan;
    try {
      roles = make_roles();
      plan = plan_variant(v, roles);
    } catch (const lcake::InputError& e) {
      return fail(vscope, kExitInput, "planning failed", e.what());
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
          note(v.name, layer.name, {{"build", {{"artifact", built[layer.name].artifact}, {"cached", true}}}});
        } else if (mode != Mode::build) {
          throw lcake::InputError(scope + " is not built for key " + short_key(lp.key) +
                                  ": run `lcake build --target " + target() + "` first");
        } else {
          LayerLock lock(store_dir(v.name, layer.name, lp.key, "build").string() + ".lock", cancel, [&] {
            log.log(lcake::LogLevel::info, scope, "waiting for another lcake building the same layer");
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
          if (layer.from && uploaded.count(*layer.from)) parent_upload = uploaded.at(*layer.from).artifact;
          if (lp.upload_cached) {
            uploaded[layer.name] = *state.find_artifact(target(), v.name, layer.name, ukey, "upload");
            note(v.name, layer.name, {{"upload", {{"artifact", uploaded[layer.name].artifact}, {"cached", true}}}});
          } else if (mode != Mode::build) {
            throw lcake::InputError(scope + " is not uploaded: run `lcake build --target " + target() + "` first");
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
        if (lp.verify_wanted && mode == Mode::publish && !(built[layer.name].verified && (!up || up->verified)))
          throw lcake::BuildError(scope + " has not passed verification: run `lcake verify` first");
        done.push_back(i);
      } catch (const lcake::Cancelled&) {
        note(v.name, layer.name, {{"error", "cancelled"}});
        return fail(scope, kExitCancelled, stage + " cancelled", "cleanup done");
      } catch (const lcake::InputError& e) {
        note(v.name, layer.name, {{"error", e.what()}});
        return fail(scope, kExitInput, stage + " failed", e.what());
      } catch (const std::exception& e) {
        note(v.name, layer.name, {{"error", e.what()}});
        return fail(scope, kExitFailed, stage + " failed", e.what());
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
      } catch (const std::exception& e) {
        return fail(v.name + "/" + layer.name, kExitFailed, "publish failed", e.what());
      }
    }
    return kExitOk;
  }

  int run_all(Mode mode, const std::string& command) {
    auto t0 = Clock::now();
    run_id = state.begin_run({{"command", command}, {"target", target()}, {"pipeline", cfg.pipeline_name}});
    manifest = {{"run_id", run_id}, {"command", command}, {"target", target()},
                {"pipeline", cfg.pipeline_name}, {"pipeline_file", loaded.pipeline_file.string()},
                {"lcake_version", LCAKE_VERSION}, {"variants", nlohmann::json::object()}};
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
                                   : cfg.variants[0].name + "/" + cfg.variants[0].layers[0].name) + "'");
    std::size_t workers = options.parallel > 0 ? static_cast<std::size_t>(options.parallel) : todo.size();
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
      manifest["variants"][name]["status"] = c == kExitOk ? "ok" : c == kExitCancelled ? "cancelled" : "failed";
    write_manifest();
    for (auto& [name, c] : codes)
      log.log(c == kExitOk ? lcake::LogLevel::info : lcake::LogLevel::error, name,
              c == kExitOk ? "done" : c == kExitCancelled ? "cancelled" : "FAILED");
    return code;
  }

  void write_manifest() {
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
};

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
      ctx->info("removed superseded artifact " + rec.artifact.id + " (key " + short_key(rec.key) + ")");
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
