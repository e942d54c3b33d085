// The runner's rules, with in-memory roles (runner_fakes.h) and a real SQLite
// state in a temp dir: cache hits, --force, upload/verify gating, publish only
// what verified, --on-error, cancellation, --no-verify, find() hits.
#include <doctest/doctest.h>
#include <algorithm>
#include <set>

#include <fstream>

#include "events/event.h"
#include "lcake/errors.hpp"
#include "runner/runner.h"
#include "runner_fakes.h"
#include "test_support.h"

using namespace lcake::core;
using fake::FakeRoles;
using fake::FakeWorld;

namespace {

Layer make_layer(const std::string& name, std::optional<std::string> from, bool verify) {
  Layer l;
  l.name = name;
  l.from = std::move(from);
  l.recipe = {{"name", name}};
  Provisioner p;
  p.type = "shell";
  p.inline_commands = {"echo " + name};
  p.pointer = "/pipeline/layers/" + name + "/provisioners/0";
  l.provisioners = {p};
  if (verify) {
    VerifyStep s;
    s.name = "demo";
    s.run = "demo";
    s.pointer = "/pipeline/verify/0";
    l.verify = {s};
  }
  return l;
}

ResolvedConfig make_config(bool uploader, bool verifier, std::vector<std::string> variants = {"v1"}) {
  ResolvedConfig c;
  c.pipeline_name = "p";
  c.target.name = "t";
  c.target.builder = {"fake", nlohmann::json::object(), "/target/builder"};
  if (uploader) c.target.uploader = RoleConfig{"fakeup", {{"registry", "r"}}, "/target/uploader"};
  if (verifier) c.target.verifier = RoleConfig{"fakever", nlohmann::json::object(), "/target/verifier"};
  for (const auto& name : variants) {
    Variant v;
    v.name = name;
    v.source = {{"image", "debian"}};
    v.layers = {make_layer("base", std::nullopt, false), make_layer("app", "base", true)};
    c.variants.push_back(v);
  }
  return c;
}

// One lcake invocation against a state dir and a world that outlive it.
struct Run {
  lcake::test::TempDir& dir;
  FakeWorld& world;
  ResolvedConfig cfg;
  LoadedConfig loaded;
  EventRecorder events;
  lcake::testing::ManualCancel cancel;
  std::unique_ptr<StateStore> state;
  std::unique_ptr<FakeRoles> roles;
  std::unique_ptr<Runner> runner;

  Run(lcake::test::TempDir& d, FakeWorld& w, ResolvedConfig c) : dir(d), world(w), cfg(std::move(c)) {
    state = StateStore::open(dir.path);
    roles = std::make_unique<FakeRoles>(world, cfg.target.uploader.has_value(),
                                        cfg.target.verifier.has_value());
    runner = std::make_unique<Runner>(loaded, cfg, *roles, *state, events, cancel);
    world.cancel = &cancel;
    runner->prepare();
  }
  int build(RunOptions o = {}) { return runner->build(o); }
  std::size_t count(EventType t) const { return events.of(t).size(); }
  nlohmann::json manifest() const {
    auto m = events.of(EventType::manifest);
    REQUIRE(m.size() == 1);
    return nlohmann::json::parse(std::ifstream(m[0].message));
  }
  // What this run built the layer on (the fake builder's "parent" metadata), "" when not built.
  std::string built_on(const std::string& layer) const {
    for (const auto& e : events.of(EventType::layer_finished))
      if (e.layer == layer && e.stage == "build" && e.artifact) return e.artifact->metadata.value("parent", "");
    return "";
  }
  std::optional<ArtifactRecord> record(const std::string& layer, const std::string& stage) {
    for (auto& r : state->list_artifacts("t"))
      if (r.layer == layer && r.stage == stage) return r;
    return std::nullopt;
  }
};

}  // namespace

TEST_CASE("a cold run builds, uploads, verifies and publishes; the next one is all cache hits") {
  lcake::test::TempDir dir;
  FakeWorld world;
  {
    Run r(dir, world, make_config(true, true));
    CHECK(r.build() == kExitOk);
    CHECK(world.builds == 2);
    CHECK(world.uploads == 2);
    CHECK(world.verifies == 1);  // only app has verify steps
    CHECK(world.publishes == 2);
    CHECK(world.reaped.empty());
    CHECK(world.finds == 6);  // the state knew no upload: asked when planning, after uploading, before publishing
    CHECK(r.record("app", "upload")->verified);
    CHECK(r.record("app", "build")->verified);
    CHECK(r.record("app", "upload")->published);
    auto m = r.manifest();
    CHECK(m["status"] == "ok");
    CHECK(m["variants"]["v1"]["status"] == "ok");
    CHECK(m["variants"]["v1"]["layers"]["app"]["verified"] == true);
    CHECK(m["variants"]["v1"]["layers"]["app"]["published"] == true);
    CHECK(m["variants"]["v1"]["layers"]["base"]["build"]["cached"] == false);
    CHECK(r.count(EventType::step) == 3);      // two provisioners and one verify step
    CHECK(r.count(EventType::transfer) == 2);  // Context::progress from the builder
    // The child was built on its parent's artifact.
    CHECK(r.record("app", "build")->artifact.metadata["parent"] == r.record("base", "build")->artifact.id);
  }
  Run again(dir, world, make_config(true, true));
  CHECK(again.build() == kExitOk);
  CHECK(world.builds == 2);
  CHECK(world.uploads == 2);
  CHECK(world.verifies == 1);
  CHECK(world.publishes == 2);
  CHECK(world.finds == 6);  // the state knew every upload, published: not asked again
  CHECK(again.events.of(EventType::layer_cached).size() == 4);
  CHECK(again.count(EventType::layer_started) == 0);
  CHECK(again.manifest()["variants"]["v1"]["layers"]["app"]["build"]["cached"] == true);
}

TEST_CASE("a build artifact that disappeared is rebuilt") {
  lcake::test::TempDir dir;
  FakeWorld world;
  Run(dir, world, make_config(false, false)).build();
  world.built_ids.clear();
  Run r(dir, world, make_config(false, false));
  CHECK(r.build() == kExitOk);
  CHECK(world.builds == 4);
}

TEST_CASE("--force rebuilds what --only names, not its cached ancestors") {
  lcake::test::TempDir dir;
  FakeWorld world;
  Run(dir, world, make_config(true, true)).build();
  Run r(dir, world, make_config(true, true));
  RunOptions o;
  o.only = {"v1/app"};
  o.force = true;
  CHECK(r.build(o) == kExitOk);
  CHECK(world.builds == 3);
  CHECK(world.built_layers.back() == "v1/app");
  CHECK(world.uploads == 3);
  CHECK(world.verifies == 2);  // a new candidate is verified again
  CHECK(r.events.of(EventType::layer_cached).size() == 2);  // base: build and upload
}

TEST_CASE("--only selects layers and their ancestors; no match is an input error") {
  lcake::test::TempDir dir;
  FakeWorld world;
  Run r(dir, world, make_config(false, false, {"v1", "v2"}));
  RunOptions o;
  o.only = {"v2/base"};
  CHECK(r.build(o) == kExitOk);
  CHECK(world.built_layers == std::vector<std::string>{"v2/base"});
  o.only = {"nope*"};
  CHECK_THROWS_WITH_AS(r.build(o), doctest::Contains("--only 'nope*' matches no variant or layer"),
                       lcake::InputError);
}

TEST_CASE("upload_layers limits what is uploaded; a failed verify publishes nothing of the variant") {
  lcake::test::TempDir dir;
  FakeWorld world;
  auto cfg = make_config(true, true);
  cfg.target.upload_layers = {"app"};
  world.fail_verify = {"app"};
  Run r(dir, world, cfg);
  CHECK(r.build() == kExitFailed);
  CHECK(world.uploads == 1);
  CHECK_FALSE(r.record("base", "upload"));
  CHECK(world.publishes == 0);
  CHECK_FALSE(r.record("app", "upload")->verified);
  auto m = r.manifest();
  CHECK(m["status"] == "failed");
  CHECK(m["variants"]["v1"]["layers"]["app"]["verified"] == false);
  CHECK(m["variants"]["v1"]["layers"]["app"]["error"].get<std::string>().find("wrong numbers") !=
        std::string::npos);
  // Fixed: the next run reuses build and upload and verifies again before publishing.
  world.fail_verify.clear();
  Run again(dir, world, cfg);
  CHECK(again.build() == kExitOk);
  CHECK(world.builds == 2);
  CHECK(world.uploads == 1);
  CHECK(world.verifies == 1);
  CHECK(world.publishes == 1);
}

TEST_CASE("a failed build is aborted and its ledger reaped; --on-error abort keeps it") {
  lcake::test::TempDir dir;
  FakeWorld world;
  world.fail_build = {"app"};
  {
    Run r(dir, world, make_config(true, true));
    CHECK(r.build() == kExitFailed);
    CHECK(world.aborts == 1);
    CHECK(world.reaped == std::vector<std::string>{"vm-app"});
    CHECK(r.state->ledger_open().empty());
    CHECK(world.publishes == 0);  // base built and uploaded, but the variant failed
    CHECK(world.uploads == 1);
  }
  Run r(dir, world, make_config(true, true));
  RunOptions o;
  o.on_error = OnError::abort;
  CHECK(r.build(o) == kExitFailed);
  CHECK(world.aborts == 1);
  CHECK(world.reaped.size() == 1);
  // The VM and the step's work dir (kept for inspection: console, keys) stay for `lcake gc`.
  auto open = r.state->ledger_open();
  REQUIRE(open.size() == 2);
  std::set<std::string> ids;
  for (auto& row : open) ids.insert(row.kind == "path" ? std::filesystem::path(row.resource_id).filename().string()
                                                       : row.resource_id);
  CHECK(ids.count("vm-app") == 1);
  bool work_kept = false;
  for (auto& row : open)
    if (row.kind == "path") work_kept = std::filesystem::is_directory(row.resource_id);
  CHECK(work_kept);
}

TEST_CASE("cancellation stops the run with 130, cleans up and publishes nothing") {
  lcake::test::TempDir dir;
  FakeWorld world;
  world.cancel_during_build = "base";
  Run r(dir, world, make_config(true, true));
  CHECK(r.build() == kExitCancelled);
  CHECK(world.builds == 0);
  CHECK(world.uploads == 0);
  CHECK(world.reaped == std::vector<std::string>{"vm-base"});
  CHECK(r.manifest()["status"] == "cancelled");
  auto finished = r.events.of(EventType::layer_finished);
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].status == "cancelled");
}

TEST_CASE("verify and publish need what build made") {
  lcake::test::TempDir dir;
  FakeWorld world;
  Run r(dir, world, make_config(true, true));
  CHECK(r.runner->verify({}) == kExitInput);
  CHECK(r.runner->publish({}) == kExitInput);
  CHECK(world.builds == 0);
}

TEST_CASE("--no-verify skips verify steps and marks what it publishes unverified") {
  lcake::test::TempDir dir;
  FakeWorld world;
  Run r(dir, world, make_config(true, true));
  RunOptions o;
  o.no_verify = true;
  CHECK(r.build(o) == kExitOk);
  CHECK(world.verifies == 0);
  CHECK(world.publishes == 2);
  auto published = r.events.of(EventType::published);
  REQUIRE(published.size() == 2);
  for (auto& e : published) CHECK(e.verified == (e.layer == "base"));  // base has no verify steps
  auto app = r.record("app", "upload");
  CHECK(app->published);
  CHECK_FALSE(app->verified);
  CHECK(app->artifact.metadata["lcake_unverified"] == "--no-verify");
  CHECK(r.manifest()["variants"]["v1"]["layers"]["app"]["unverified"] == true);
  CHECK_FALSE(r.manifest()["variants"]["v1"]["layers"]["base"].contains("unverified"));
}

TEST_CASE("verify steps without a verifier: nothing is published unless --no-verify") {
  lcake::test::TempDir dir;
  FakeWorld world;
  Run r(dir, world, make_config(true, false));
  CHECK(r.build() == kExitInput);
  CHECK(world.publishes == 0);  // not even base, which has no verify steps
  CHECK_FALSE(r.record("app", "upload")->published);
}

TEST_CASE("an empty state dir gets cache hits from the backend's find()") {
  lcake::test::TempDir first, fresh;
  FakeWorld world;
  REQUIRE(Run(first, world, make_config(true, true)).build() == kExitOk);
  REQUIRE(world.builds == 2);
  {
    lcake::test::TempDir other;
    auto plan = Run(other, world, make_config(true, true)).runner->plan({});
    REQUIRE(plan[0].layers.size() == 2);
    CHECK(plan[0].layers[1].upload_found);
    CHECK_FALSE(plan[0].layers[1].build_needed);
  }
  Run r(fresh, world, make_config(true, true));
  CHECK(r.build() == kExitOk);
  CHECK(world.builds == 2);   // nothing rebuilt
  CHECK(world.uploads == 2);  // nothing uploaded again
  CHECK(world.verifies == 2); // the found candidate is verified here before it counts
  auto found = r.record("app", "upload");
  REQUIRE(found);
  CHECK(found->run_id == "found");
  CHECK(found->verified);
  CHECK_FALSE(r.record("app", "build"));
  auto cached = r.events.of(EventType::layer_cached);
  REQUIRE(cached.size() == 2);
  CHECK(cached[0].data["found"] == "backend");
}

TEST_CASE("a found upload the backend says was verified and published is recorded so: not verified or published again") {
  lcake::test::TempDir first, fresh;
  FakeWorld world;
  REQUIRE(Run(first, world, make_config(true, true)).build() == kExitOk);
  REQUIRE(world.verifies == 1);
  REQUIRE(world.publishes == 2);
  // What the uploader's find() reads from the backend's own marks (metadata.lcake_found).
  for (auto& [key, art] : world.backend) art.metadata["lcake_found"] = {{"verified", true}, {"published", true}};
  Run r(fresh, world, make_config(true, true));
  CHECK(r.build() == kExitOk);
  CHECK(world.uploads == 2);
  CHECK(world.verifies == 1);   // not verified again
  CHECK(world.publishes == 2);  // nor published again
  auto found = r.record("app", "upload");
  REQUIRE(found);
  CHECK(found->run_id == "found");
  CHECK(found->verified);
  CHECK(found->published);
  CHECK_FALSE(found->artifact.metadata.contains("lcake_found"));  // the host's, not kept in the record
  // A third runner, from the same state: all cached, nothing asked of the backend again.
  int finds = world.finds;
  Run again(fresh, world, make_config(true, true));
  CHECK(again.build() == kExitOk);
  CHECK(world.verifies == 1);
  CHECK(world.publishes == 2);
  CHECK(world.finds == finds);
}

TEST_CASE("a found parent upload is rebuilt when a child must be built from it") {
  lcake::test::TempDir first, fresh;
  FakeWorld world;
  REQUIRE(Run(first, world, make_config(true, true)).build() == kExitOk);
  auto cfg = make_config(true, true);
  cfg.variants[0].layers[1].recipe["changed"] = true;  // app's key changes, base's does not
  Run r(fresh, world, cfg);
  CHECK(r.build() == kExitOk);
  CHECK(world.builds == 4);  // base (for its child) and app
  CHECK(world.uploads == 3); // base's upload was found
}

namespace {

// A builder that builds a child on its parent's upload (the Nova builder on a Glance image).
BuilderDeclared on_uploads(std::vector<std::string> accepts = {"raw", "fake-image"}) {
  BuilderDeclared d;
  d.accepts = std::move(accepts);
  d.capabilities = {kBuildsOnUpload};
  return d;
}

// The cold run's uploads are in the backend; app's recipe changes, so a fresh runner
// finds base's upload (same key) and must build app.
ResolvedConfig changed_child(FakeWorld& world, lcake::test::TempDir& first) {
  REQUIRE(Run(first, world, make_config(true, true)).build() == kExitOk);
  REQUIRE(world.builds == 2);
  auto cfg = make_config(true, true);
  cfg.variants[0].layers[1].recipe["changed"] = true;
  return cfg;
}

// A fresh runner (empty state dir) after a cold run, app's recipe changed, its builder declaring `declared`.
struct FreshRunner {
  lcake::test::TempDir first, fresh;
  FakeWorld world;
  ResolvedConfig cfg = changed_child(world, first);
  std::unique_ptr<Run> run;
  explicit FreshRunner(BuilderDeclared declared) : run(std::make_unique<Run>(fresh, world, cfg)) {
    run->roles->declared = std::move(declared);
  }
};

}  // namespace

TEST_CASE("builds-on-upload: a fresh runner builds the child from the parent's found upload, not the parent") {
  lcake::test::TempDir first, planned, planned_without, fresh;
  FakeWorld world;
  auto cfg = changed_child(world, first);
  std::string base_upload = Run(first, world, cfg).record("base", "upload")->artifact.id;
  {
    // The plan: base not built (its upload stands for it), app built on it.
    Run p(planned, world, cfg);
    p.roles->declared = on_uploads();
    auto plan = p.runner->plan({});
    REQUIRE(plan[0].layers.size() == 2);
    const LayerPlan &base = plan[0].layers[0], &app = plan[0].layers[1];
    CHECK(base.upload_found);
    CHECK_FALSE(base.build_needed);
    CHECK(base.children_on_upload);
    CHECK(app.build_needed);
    CHECK(app.on_parent_upload);
    // The keys come from the recipes, not from what the child is built on.
    Run without(planned_without, world, cfg);
    auto same = without.runner->plan({});
    CHECK(same[0].layers[0].key == base.key);
    CHECK(same[0].layers[1].key == app.key);
    CHECK(same[0].layers[0].build_needed);  // without the capability: rebuilt for its child
    CHECK_FALSE(same[0].layers[0].children_on_upload);
    CHECK_FALSE(same[0].layers[1].on_parent_upload);
  }
  Run r(fresh, world, cfg);
  r.roles->declared = on_uploads();
  CHECK(r.build() == kExitOk);
  CHECK(world.builds == 3);  // app only
  CHECK(world.built_layers.back() == "v1/app");
  CHECK(world.uploads == 3); // app's new upload
  CHECK_FALSE(r.record("base", "build"));
  REQUIRE(r.record("base", "upload"));
  CHECK(r.record("base", "upload")->artifact.id == base_upload);
  // The child's parent artifact was the parent's (found) upload.
  CHECK(r.built_on("app") == base_upload);
  CHECK(r.record("app", "upload")->published);
  // The events say why base was not built.
  auto planned_events = r.events.of(EventType::layer_planned);
  REQUIRE(planned_events.size() == 2);
  CHECK(planned_events[0].data["build"] == false);
  CHECK(planned_events[0].data["children_on_upload"] == true);
  CHECK(planned_events[1].data["on_parent_upload"] == true);
  CHECK(planned_events[1].data["build"] == true);
}

TEST_CASE("builds-on-upload: --only the child still builds it from the parent's found upload") {
  FreshRunner f(on_uploads());
  RunOptions o;
  o.only = {"v1/app"};
  CHECK(f.run->build(o) == kExitOk);
  CHECK(f.world.built_layers == std::vector<std::string>{"v1/base", "v1/app", "v1/app"});
  CHECK(f.run->built_on("app") == f.run->record("base", "upload")->artifact.id);
}

TEST_CASE("builds-on-upload, but the builder does not accept the upload's type, or --force: the parent is rebuilt") {
  for (bool force : {false, true}) {
    CAPTURE(force);
    FreshRunner f(force ? on_uploads() : on_uploads({"raw"}));  // the uploader makes fake-image
    RunOptions o;
    o.force = force;
    auto plan = f.run->runner->plan(o);
    CHECK(plan[0].layers[0].build_needed);
    CHECK_FALSE(plan[0].layers[0].children_on_upload);
    CHECK_FALSE(plan[0].layers[1].on_parent_upload);
    CHECK(f.run->build(o) == kExitOk);
    CHECK(f.world.builds == 4);  // base (for its child) and app, as without the capability
    CHECK(f.run->built_on("app") == f.run->record("base", "build")->artifact.id);
  }
}

TEST_CASE("builds-on-upload: a parent whose build is cached gives its build, not its upload") {
  lcake::test::TempDir dir;
  FakeWorld world;
  REQUIRE(Run(dir, world, make_config(true, true)).build() == kExitOk);
  auto cfg = make_config(true, true);
  cfg.variants[0].layers[1].recipe["changed"] = true;
  Run r(dir, world, cfg);
  r.roles->declared = on_uploads();
  CHECK(r.build() == kExitOk);
  CHECK(world.builds == 3);
  CHECK(world.built_layers.back() == "v1/app");
  CHECK(r.built_on("app") == r.record("base", "build")->artifact.id);  // base's one build
}

TEST_CASE("variants run in parallel, each with its own outcome") {
  lcake::test::TempDir dir;
  FakeWorld world;
  auto cfg = make_config(true, true, {"v1", "v2", "v3"});
  // Different sources, so different keys: variants with identical recipes share layer keys, and
  // one could find() what another uploaded moments before (a cache hit, a build fewer).
  for (auto& v : cfg.variants) v.source = {{"image", "debian-" + v.name}};
  world.fail_verify = {"app"};
  Run r(dir, world, cfg);
  CHECK(r.build() == kExitFailed);
  CHECK(world.builds == 6);
  auto m = r.manifest();
  for (std::string v : {"v1", "v2", "v3"}) CHECK(m["variants"][v]["status"] == "failed");
}

TEST_CASE("two runners upload one key: both use the upload the backend names; the other is never published, gc deletes it after --grace") {
  lcake::test::TempDir a, b;
  FakeWorld world;
  world.unique_upload_ids = true;
  RunOptions no_publish;
  no_publish.no_publish = true;
  // Both miss the other's upload (at once, on two runners): both build and upload the keys.
  world.find_enabled = false;
  REQUIRE(Run(a, world, make_config(true, true)).build(no_publish) == kExitOk);
  REQUIRE(Run(b, world, make_config(true, true)).build(no_publish) == kExitOk);
  REQUIRE(world.uploads == 4);
  world.find_enabled = true;
  std::string lost, winner, layer = "base";
  {
    // A's next run: the backend names B's upload; A uses it and keeps its own as a duplicate.
    Run ra(a, world, make_config(true, true));
    auto own = ra.record(layer, "upload");
    REQUIRE(own);
    lost = own->artifact.id;
    winner = world.backend.at(own->key).id;  // the last upload of the key, as a registry keeps
    REQUIRE(lost != winner);
    CHECK(ra.build(no_publish) == kExitOk);
    CHECK(world.uploads == 4);  // nothing uploaded again
    CHECK(ra.record(layer, "upload")->artifact.id == winner);
    REQUIRE(ra.record(layer, "duplicate"));
    CHECK(ra.record(layer, "duplicate")->artifact.id == lost);
    // gc: kept while younger than the grace period, then deleted; the winner never.
    CHECK(ra.runner->remove_duplicates(3600) == 0);
    CHECK(world.removed.empty());
    CHECK(ra.runner->remove_duplicates(0) == 2);  // both layers' own uploads lost
    CHECK(std::find(world.removed.begin(), world.removed.end(), lost) != world.removed.end());
    CHECK_FALSE(ra.record(layer, "duplicate"));
    for (auto& [key, art] : world.backend)
      CHECK(std::find(world.removed.begin(), world.removed.end(), art.id) == world.removed.end());
  }
  // Publishing from A's state publishes what B uploaded, never A's own.
  Run publish(a, world, make_config(true, true));
  CHECK(publish.build() == kExitOk);
  for (auto& [key, art] : world.backend)
    CHECK(std::find(world.published_ids.begin(), world.published_ids.end(), art.id) != world.published_ids.end());
  CHECK(std::find(world.published_ids.begin(), world.published_ids.end(), lost) == world.published_ids.end());
}

TEST_CASE("another runner's upload of the key lands right after ours: this run verifies and publishes that one") {
  lcake::test::TempDir a;
  FakeWorld world;
  world.overtaken_after_upload = true;
  Run r(a, world, make_config(true, true));
  CHECK(r.build() == kExitOk);
  CHECK(world.uploads == 2);
  for (const std::string layer : {"base", "app"}) {
    auto used = r.record(layer, "upload");
    REQUIRE(used);
    CHECK(used->artifact.id == world.backend.at(used->key).id);  // the backend's pick
    CHECK(used->artifact.id.find("-other-runner") != std::string::npos);
    auto own = r.record(layer, "duplicate");
    REQUIRE(own);
    CHECK(own->artifact.id + "-other-runner" == used->artifact.id);
    CHECK(std::find(world.published_ids.begin(), world.published_ids.end(), own->artifact.id) == world.published_ids.end());
  }
  CHECK(std::find(world.verified_ids.begin(), world.verified_ids.end(), r.record("app", "upload")->artifact.id) !=
        world.verified_ids.end());
}
