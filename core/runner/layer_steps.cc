// One step of one layer: build, upload, verify or publish, each with its own
// Context and ledger cleanup.
#include <set>

#include "plan/plan.h"
#include "provision.h"
#include "reaper.h"
#include "runner_impl.h"

namespace lcake::core {

std::filesystem::path Runner::Impl::store_dir(const std::string& variant, const std::string& layer,
                                              const std::string& key, const std::string& stage) {
  return state.dir() / "store" / target() / variant / layer / (short_key(key) + "-" + stage);
}

std::unique_ptr<StepContext> Runner::Impl::context(const Variant& v, const Layer& l,
                                                   const std::string& stage, const RoleConfig& rc,
                                                   const std::string& role,
                                                   std::filesystem::path work,
                                                   std::filesystem::path store) {
  StepScope s{run_id,  v.name + "/" + l.name, v.name,          l.name,         stage,
              rc.plugin, role,                rc.settings, std::move(work), std::move(store)};
  return std::make_unique<StepContext>(std::move(s), state, events, cancel);
}

std::filesystem::path Runner::Impl::work_dir(const std::string& variant, const std::string& layer,
                                             const std::string& stage) {
  return state.dir() / "work" / run_id / (variant + "-" + layer + "-" + stage);
}

void Runner::Impl::end_step(StepContext& ctx, bool failed) {
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
  Reaper reaper(state, factory, events, state.dir() / "work" / run_id);
  reaper.reap(rows);
}

// --on-error abort: the session stays as it is (a VM keeps running), and so does the
// step's work dir it may use (its console log, SSH key); both are in the ledger for gc.
template <class Session>
void Runner::Impl::keep_session(Session* session, StepContext& ctx) {
  ctx.keep_work_dir();
  kept_work = true;
  if (!session) return;
  auto how = session->keep(ctx);
  if (!how.empty()) ctx.warn(how);
}

lcake::LayerInfo Runner::Impl::layer_info(const Variant& v, const Layer& l, const LayerPlan& lp) {
  return core::layer_info(plan_inputs(), v, l, lp);
}

ArtifactRecord Runner::Impl::do_build(const Variant& v, const Layer& layer, const LayerPlan& lp,
                                      Roles& roles, const std::optional<lcake::Artifact>& parent) {
  auto ctx = context(v, layer, "build", cfg.target.builder, "builder",
                     work_dir(v.name, layer.name, "build"),
                     store_dir(v.name, layer.name, lp.key, "build"));
  Event start = event(EventType::layer_started, v, layer, "build");
  start.key = lp.key;
  if (!lp.reasons.empty()) start.message = lp.reasons.front();
  events.emit(start);
  auto t0 = Clock::now();
  lcake::BuildRequest req;
  req.layer = layer_info(v, layer, lp);
  req.source = layer.from ? nlohmann::json() : v.source;
  req.parent = parent;
  req.options = layer.builder_options;
  std::unique_ptr<lcake::BuildSession> session;
  lcake::Artifact art;
  try {
    session = roles.builder->start(req, *ctx);
    run_provisioners(layer.provisioners, session->communicator(), *ctx,
                     [&](const std::string& what) { ctx->step("build", what); });
    art = session->finish(*ctx);
  } catch (...) {
    if (session && options.on_error == OnError::cleanup) session->abort(*ctx);
    if (options.on_error == OnError::abort) keep_session(session.get(), *ctx);
    end_step(*ctx, true);
    throw;
  }
  end_step(*ctx, false);
  art.plugin = factory.builder().name;
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
  Event done = event(EventType::layer_finished, v, layer, "build");
  done.status = "ok", done.key = lp.key, done.artifact = art, done.seconds = seconds_since(t0);
  events.emit(done);
  return rec;
}

ArtifactRecord Runner::Impl::do_upload(const Variant& v, const Layer& layer, const LayerPlan& lp,
                                       Roles& roles, const ArtifactRecord& built,
                                       const std::optional<lcake::Artifact>& parent_upload) {
  auto ctx = context(v, layer, "upload", *cfg.target.uploader, "uploader",
                     work_dir(v.name, layer.name, "upload"),
                     store_dir(v.name, layer.name, lp.key, "upload"));
  Event start = event(EventType::layer_started, v, layer, "upload");
  start.key = lp.upload_key;
  events.emit(start);
  auto t0 = Clock::now();
  lcake::UploadRequest req;
  req.layer = layer_info(v, layer, lp);
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
  art.plugin = factory.uploader()->name;
  ArtifactRecord rec = built;
  rec.key = lp.upload_key;
  rec.stage = "upload";
  rec.artifact = art;
  rec.verified = false;
  rec.published = false;
  rec.run_id = run_id;
  rec.id = state.record_artifact(rec);
  // Another runner may have uploaded the same key meanwhile: every runner uses the
  // upload the backend names for the key (docs/ci.md, "Two runners, one key"); under
  // --force, the upload the user asked for.
  std::optional<lcake::Artifact> winner;
  if (!lp.forced) {
    try {
      winner = roles.uploader->find(lcake::FindRequest{req.layer, layer.uploader_options}, *ctx);
    } catch (const lcake::BuildError& e) {
      ctx->warn(std::string("could not look the upload up in the backend after uploading (using this one): ") +
                e.what());
    }
  }
  if (winner && winner->id != art.id) {
    ctx->info("another runner uploaded this key too and the backend names its " + winner->id +
              ": using that; this upload (" + art.id + ") is a duplicate for `lcake gc --target " +
              target() + "`");
    record_duplicate(state, rec);
    rec = found_upload_record(target(), v.name, layer.name, lp.upload_key, factory.uploader()->name,
                              *winner);
    rec.id = state.record_artifact(rec);
    art = rec.artifact;
  }
  Event done = event(EventType::layer_finished, v, layer, "upload");
  done.status = "ok", done.key = lp.upload_key, done.artifact = art;
  done.seconds = seconds_since(t0);
  events.emit(done);
  return rec;
}

void Runner::Impl::do_verify(const Variant& v, const Layer& layer, const LayerPlan& lp,
                             Roles& roles, const std::optional<ArtifactRecord>& built,
                             const std::optional<ArtifactRecord>& uploaded) {
  auto ctx = context(v, layer, "verify", *cfg.target.verifier, "verifier",
                     work_dir(v.name, layer.name, "verify"), {});
  events.emit(event(EventType::layer_started, v, layer, "verify"));
  auto t0 = Clock::now();
  lcake::VerifyRequest req;
  req.layer = layer_info(v, layer, lp);
  // What the verifier boots was chosen and checked by check_inputs (verify_gate.cc).
  req.candidate = uploaded && cfg.target.verifier_boots != "build" ? uploaded->artifact
                  : built                                          ? built->artifact
                                                                   : uploaded->artifact;
  // An upload found in the backend may have no local build: it stands for itself.
  req.built = built ? built->artifact : req.candidate;
  req.options = layer.verifier_options;
  std::unique_ptr<lcake::VerifySession> session;
  try {
    session = roles.verifier->start(req, *ctx);
    run_verify_steps(layer.verify, session->communicator(), *ctx,
                     [&](const std::string& what) { ctx->step("verify", what); });
    session->finish(*ctx);
  } catch (...) {
    if (session && options.on_error == OnError::cleanup) session->abort(*ctx);
    if (options.on_error == OnError::abort) keep_session(session.get(), *ctx);
    end_step(*ctx, true);
    throw;
  }
  end_step(*ctx, false);
  if (built) state.mark_verified(built->id);
  if (uploaded) state.mark_verified(uploaded->id);
  double secs = seconds_since(t0);
  Event done = event(EventType::layer_finished, v, layer, "verify");
  done.status = "ok", done.seconds = secs;
  events.emit(done);
  Event ok = event(EventType::verified, v, layer, "verify");
  ok.seconds = secs;
  ok.data = {{"again", true}};
  events.emit(ok);
}

void Runner::Impl::do_publish(const Variant& v, const Layer& layer, Roles& roles,
                              const LayerRun& run) {
  const ArtifactRecord& uploaded = *run.uploaded;
  auto ctx = context(v, layer, "publish", *cfg.target.uploader, "uploader",
                     work_dir(v.name, layer.name, "publish"), {});
  lcake::PublishRequest req;
  req.layer = {target(), v.name, layer.name, run.built ? run.built->key : uploaded.key,
               LCAKE_VERSION, cfg.pipeline_name, uploaded.key};  // what is published: the upload
  req.options = layer.publish_options;
  lcake::Artifact art;
  try {
    // Only the upload the backend names for the key is published: one that lost a
    // race with another runner's upload of the same key is not.
    lcake::FindRequest fr{req.layer, layer.uploader_options};
    if (auto winner = run.forced ? std::optional<lcake::Artifact>() : roles.uploader->find(fr, *ctx);
        winner && winner->id != uploaded.artifact.id)
      throw lcake::BuildError("the backend names " + winner->id + " for key " + short_key(uploaded.key) +
                              " (another runner's upload of it), not " + uploaded.artifact.id +
                              ": not publishing a duplicate; run `lcake build --target " + target() +
                              "` again to use, verify and publish that one");
    art = roles.uploader->publish(uploaded.artifact, req, *ctx);
  } catch (...) {
    end_step(*ctx, true);
    throw;
  }
  end_step(*ctx, false);
  art.plugin = factory.uploader()->name;
  // Marked in the state (`lcake artifacts`), the log and the manifest.
  if (run.unverified_by_flag) art.metadata["lcake_unverified"] = "--no-verify";
  state.mark_published(uploaded.id, art);
  {
    std::lock_guard lock(published_mu);
    published.push_back(v.name + "/" + layer.name);
  }
  Event e = event(EventType::published, v, layer, "publish");
  e.artifact = art;
  e.verified = !run.unverified_by_flag;
  events.emit(e);
}

}  // namespace lcake::core
