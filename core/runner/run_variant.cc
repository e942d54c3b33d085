// The rules of one variant's run: reuse what the plan found cached, build and
// upload the rest, verify (the gate), and publish only what verified.
#include "layer_lock.h"
#include "plan/input_check.h"
#include "runner_impl.h"

namespace lcake::core {

Event Runner::Impl::event(EventType type, const Variant& v, const Layer& l,
                          const std::string& stage) const {
  Event e;
  e.type = type;
  e.scope = v.name + "/" + l.name;
  e.variant = v.name, e.layer = l.name, e.stage = stage;
  return e;
}

static Event planned(Event e, const LayerPlan& lp) {
  e.key = lp.key;
  e.data = {{"cached", lp.build_cached},     {"build", lp.build_needed},
            {"upload", lp.upload_wanted},    {"upload_cached", lp.upload_cached},
            {"upload_found", lp.upload_found}, {"verify", lp.verify_wanted},
            {"verified", lp.verified},       {"reasons", lp.reasons},
            {"sensitive", lp.sensitive},     {"on_parent_upload", lp.on_parent_upload},
            {"children_on_upload", lp.children_on_upload}};
  return e;
}

void Runner::Impl::run_layer(const Variant& v, const Layer& layer, const LayerPlan& lp, Mode mode,
                             Roles& roles, std::map<std::string, LayerRun>& runs) {
  std::string scope = v.name + "/" + layer.name;
  LayerRun& run = runs[layer.name];
  run.forced = lp.forced;
  if (cancel.cancelled()) throw lcake::Cancelled();
  // Build (or reuse).
  if (lp.build_cached) {
    run.built = lp.build_record;
    Event e = event(EventType::layer_cached, v, layer, "build");
    e.key = lp.key, e.artifact = run.built->artifact, e.data = {{"found", "state"}};
    events.emit(e);
  } else if (lp.build_needed) {
    if (mode != Mode::build)
      throw lcake::InputError(scope + " is not built for key " + short_key(lp.key) +
                              ": run `lcake build --target " + target() + "` first");
    LayerLock lock(store_dir(v.name, layer.name, lp.key, "build").string() + ".lock", cancel, [&] {
      events.log(lcake::LogLevel::info, scope, "waiting for another lcake building the same layer");
    });
    std::optional<lcake::Artifact> parent;
    // A builder that builds on uploads gets the parent's upload when its build is not at hand.
    if (layer.from) {
      const LayerRun& from = runs.at(*layer.from);
      parent = lp.on_parent_upload ? from.uploaded.value().artifact : from.built.value().artifact;
      if (lp.on_parent_upload)
        events.log(lcake::LogLevel::info, scope,
                   "built on " + *layer.from + "'s upload " + parent->id + " (the builder builds on uploads)");
    }
    // Another process may have built it while we waited.
    auto rec = state.find_artifact(target(), v.name, layer.name, lp.key, "build");
    auto ctx = context(v, layer, "build", cfg.target.builder, "builder", {}, {});
    if (rec && !lp.forced && roles.builder->exists(rec->artifact, *ctx)) {
      run.built = rec;
      events.log(lcake::LogLevel::info, scope, "built meanwhile by another lcake: cached");
    } else {
      run.built = do_build(v, layer, lp, roles, parent);
    }
  }
  // Upload (or reuse).
  if (lp.upload_wanted) {
    std::optional<lcake::Artifact> parent_upload;
    if (layer.from && runs.count(*layer.from) && runs.at(*layer.from).uploaded)
      parent_upload = runs.at(*layer.from).uploaded->artifact;
    if (lp.upload_cached) {
      run.uploaded = lp.upload_record;
      Event e = event(EventType::layer_cached, v, layer, "upload");
      e.key = lp.upload_key, e.artifact = run.uploaded->artifact;
      e.data = {{"found", lp.upload_found ? "backend" : "state"}};
      events.emit(e);
    } else if (mode != Mode::build) {
      throw lcake::InputError(scope + " is not uploaded: run `lcake build --target " + target() +
                              "` first");
    } else {
      run.uploaded = do_upload(v, layer, lp, roles, run.built.value(), parent_upload);
    }
  }
  // Verify: the gate for everything after it. A new upload is a new candidate.
  bool already = mode != Mode::verify && (run.built || run.uploaded) &&
                 (!run.built || run.built->verified) && (!run.uploaded || run.uploaded->verified);
  run.verified = already;
  if (lp.verify_wanted && mode != Mode::publish && !already) {
    do_verify(v, layer, lp, roles, run.built, run.uploaded);
    run.verified = true;
  } else if (lp.verify_wanted && already) {
    Event e = event(EventType::verified, v, layer, "verify");
    e.data = {{"again", false}};
    events.emit(e);
    run.verified = true;
  } else if (lp.verify_wanted) {
    throw lcake::BuildError(scope + " has not passed verification: run `lcake verify` first");
  }
  run.unverified_by_flag = options.no_verify && !layer.verify.empty() && !run.verified;
}

int Runner::Impl::run_variant(const Variant& v, Mode mode) {
  Roles roles;
  std::vector<LayerPlan> plan;
  try {
    roles = make_roles();
    plan = plan_variant(v, roles);
  } catch (const lcake::InputError& e) {
    return fail(v.name, kExitInput, "planning failed", e.what());
  } catch (const std::exception& e) {
    return fail(v.name, kExitFailed, "planning failed", e.what());
  }
  std::map<std::string, LayerRun> runs;
  std::vector<std::size_t> done;
  for (std::size_t i = 0; i < v.layers.size(); ++i) {
    const Layer& layer = v.layers[i];
    const LayerPlan& lp = plan[i];
    if (!lp.selected) continue;
    events.emit(planned(event(EventType::layer_planned, v, layer, ""), lp));
    std::string scope = v.name + "/" + layer.name;
    // Which stage failed: the first one whose result is missing.
    auto stage = [&] {
      const LayerRun& r = runs[layer.name];
      if (lp.build_needed && !r.built) return std::string("build");
      if (lp.upload_wanted && !r.uploaded) return std::string("upload");
      return std::string("verify");
    };
    auto failed = [&](const std::string& st, const std::string& status, const std::string& msg) {
      Event e = event(EventType::layer_finished, v, layer, st);
      e.status = status, e.message = msg;
      events.emit(e);
    };
    try {
      run_layer(v, layer, lp, mode, roles, runs);
      done.push_back(i);
    } catch (const lcake::Cancelled&) {
      std::string st = stage();
      failed(st, "cancelled", "cancelled");
      return fail(scope, kExitCancelled, st + " cancelled", "cleanup done");
    } catch (const lcake::InputError& e) {
      std::string st = stage();
      std::string role = st == "build" ? "builder" : st == "verify" ? "verifier" : "uploader";
      // A plugin's ValueError names a key of its own input: say which file:line set it.
      std::string msg = describe_plugin_error(loaded, cfg, role, v.name, layer.name, e);
      failed(st, "failed", msg);
      return fail(scope, kExitInput, st + " failed" + by(st), msg);
    } catch (const std::exception& e) {
      std::string st = stage();
      failed(st, "failed", e.what());
      return fail(scope, kExitFailed, st + " failed" + by(st), e.what());
    }
  }
  if (mode == Mode::verify || !factory.uploader()) return kExitOk;
  if (options.no_publish) {
    bool pending = false;
    for (std::size_t i : done) pending = pending || (runs[v.layers[i].name].uploaded && !runs[v.layers[i].name].uploaded->published);
    if (pending)
      events.log(lcake::LogLevel::info, v.name,
                 "not published (--no-publish): a later `lcake build` or `lcake publish` publishes it");
    return kExitOk;
  }
  return publish_variant(v, done, roles, runs);
}

// Publish only after every selected layer of the variant built and verified.
int Runner::Impl::publish_variant(const Variant& v, const std::vector<std::size_t>& done,
                                  Roles& roles, std::map<std::string, LayerRun>& runs) {
  // The gate: a layer with verify steps that did not verify publishes nothing of the variant.
  for (std::size_t i : done) {
    const Layer& layer = v.layers[i];
    if (!layer.verify.empty() && !runs[layer.name].verified && !options.no_verify)
      return fail(v.name + "/" + layer.name, kExitInput, "publish refused",
                  "the layer has verify steps but the target has no verifier: configure one, or "
                  "pass --no-verify to publish unverified");
  }
  for (std::size_t i : done) {
    const Layer& layer = v.layers[i];
    LayerRun& run = runs[layer.name];
    if (!run.uploaded || run.uploaded->published) continue;
    std::string scope = v.name + "/" + layer.name;
    try {
      if (cancel.cancelled()) throw lcake::Cancelled();
      do_publish(v, layer, roles, run);
      // The build behind a published upload is kept by `gc` too.
      if (run.built) state.mark_published(run.built->id, run.built->artifact);
    } catch (const lcake::Cancelled&) {
      return fail(scope, kExitCancelled, "publish cancelled", "cleanup done");
    } catch (const std::exception& e) {
      return fail(scope, kExitFailed, "publish failed" + by("publish"), e.what());
    }
  }
  return kExitOk;
}

}  // namespace lcake::core
