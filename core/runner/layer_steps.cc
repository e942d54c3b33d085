// One step of one layer: build, upload, verify or publish, each with its own
// Context and ledger cleanup.
#include <fstream>

#include "provision.h"
#include "reaper.h"
#include "runner_impl.h"

namespace lcake::core {

std::filesystem::path Runner::Impl::store_dir(const std::string& variant, const std::string& layer,
                                              const std::string& key, const std::string& stage) {
  return state.dir() / "store" / target() / variant / layer / (short_key(key) + "-" + stage);
}

std::unique_ptr<StepContext> Runner::Impl::context(const std::string& scope, const RoleConfig& rc,
                                                   const std::string& role,
                                                   std::filesystem::path work,
                                                   std::filesystem::path store) {
  StepScope s{run_id, scope, rc.plugin, role, rc.settings, std::move(work), std::move(store)};
  return std::make_unique<StepContext>(std::move(s), state, log, cancel);
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
  Reaper reaper(state, plugins, log, state.dir() / "work" / run_id);
  reaper.reap(rows);
}

std::string Runner::Impl::upload_key(const std::string& key, const Layer& layer) {
  const auto& u = *cfg.target.uploader;
  return sha256_hex(key + "\n" + uploader_plugin->info().name + "\n" +
                    uploader_plugin->info().version + "\n" + u.settings.dump() + "\n" +
                    layer.uploader_options.dump());
}

lcake::LayerInfo Runner::Impl::layer_info(const Variant& v, const Layer& l,
                                          const std::string& key) {
  return {target(), v.name, l.name, key, LCAKE_VERSION, cfg.pipeline_name,
          uploader_plugin ? upload_key(key, l) : std::string()};
}

void Runner::Impl::note(const std::string& variant, const std::string& layer,
                        const nlohmann::json& fields) {
  std::lock_guard lock(manifest_mu);
  auto& entry = manifest["variants"][variant]["layers"][layer];
  if (entry.is_null()) entry = nlohmann::json::object();
  entry.update(fields);
}

ArtifactRecord Runner::Impl::do_build(const Variant& v, const Layer& layer, const LayerPlan& lp,
                                      Roles& roles, const std::optional<lcake::Artifact>& parent) {
  std::string scope = v.name + "/" + layer.name;
  auto ctx = context(scope, cfg.target.builder, "builder", work_dir(v.name, layer.name, "build"),
                     store_dir(v.name, layer.name, lp.key, "build"));
  log.event("build_start", {{"variant", v.name}, {"layer", layer.name}, {"key", lp.key}}, scope,
            "building (key " + short_key(lp.key) +
                (lp.reasons.empty() ? "" : ": " + lp.reasons.front()) + ")");
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
  log.event(
      "build_done",
      {{"variant", v.name}, {"layer", layer.name}, {"artifact", art}, {"seconds", secs}}, scope,
      "built " + art.type + " " + art.id + " in " + std::to_string(static_cast<int>(secs)) + "s");
  note(v.name, layer.name, {{"build", {{"artifact", art}, {"seconds", secs}, {"cached", false}}}});
  return rec;
}

ArtifactRecord Runner::Impl::do_upload(const Variant& v, const Layer& layer, const LayerPlan& lp,
                                       Roles& roles, const ArtifactRecord& built,
                                       const std::optional<lcake::Artifact>& parent_upload) {
  std::string scope = v.name + "/" + layer.name;
  auto ctx =
      context(scope, *cfg.target.uploader, "uploader", work_dir(v.name, layer.name, "upload"),
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
  log.event("upload_done",
            {{"variant", v.name}, {"layer", layer.name}, {"artifact", art}, {"seconds", secs}},
            scope, "uploaded " + art.type + " " + art.id);
  note(v.name, layer.name, {{"upload", {{"artifact", art}, {"seconds", secs}, {"cached", false}}}});
  return rec;
}

void Runner::Impl::do_verify(const Variant& v, const Layer& layer, const LayerPlan& lp,
                             Roles& roles, const ArtifactRecord& built,
                             const std::optional<ArtifactRecord>& uploaded) {
  std::string scope = v.name + "/" + layer.name;
  auto ctx =
      context(scope, *cfg.target.verifier, "verifier", work_dir(v.name, layer.name, "verify"), {});
  log.event("verify_start", {{"variant", v.name}, {"layer", layer.name}}, scope, "verifying");
  auto t0 = Clock::now();
  lcake::VerifyRequest req;
  req.layer = layer_info(v, layer, lp.key);
  // What the verifier boots was chosen and checked by check_inputs (verify_gate.cc).
  req.candidate = uploaded && cfg.target.verifier_boots != "build" ? uploaded->artifact : built.artifact;
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

void Runner::Impl::do_publish(const Variant& v, const Layer& layer, Roles& roles,
                              const ArtifactRecord& uploaded) {
  std::string scope = v.name + "/" + layer.name;
  auto ctx =
      context(scope, *cfg.target.uploader, "uploader", work_dir(v.name, layer.name, "publish"), {});
  lcake::PublishRequest req;
  req.layer = layer_info(v, layer, uploaded.key);
  req.layer.upload_key = uploaded.key;  // what was published: the upload
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

}  // namespace lcake::core
