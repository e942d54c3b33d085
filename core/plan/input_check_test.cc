// check_inputs with real plugins: the test suite's localdir backend and the
// "good"/"leaf" plugins of tests/plugins/broken (artifact types of their own).
#include "plan/input_check.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <fstream>

#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"
#include "plan/plan.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake::core;
using nlohmann::json;

namespace {

struct Project {
  fs::path root;
  Project() {
    char tmpl[] = "/tmp/lcake-input-check-XXXXXX";
    root = mkdtemp(tmpl);
    write("configs/pipelines/demo.json", R"({
  "name": "demo",
  "variants": {"a": {"sources": {"localdir": {}}}},
  "layers": {
    "base": {"provisioners": [{"type": "shell", "inline": ["true"]}]},
    "top": {"from": "base", "provisioners": [{"type": "file", "source": "files/x.sh", "destination": "/x.sh"}]}
  },
  "verify": [{"name": "v", "compare": {"actual": "/out.csv", "expected": "files/expected.csv"}}]
})");
    write("configs/pipelines/files/x.sh", "true\n");
    write("configs/pipelines/files/expected.csv", "a\n1\n");
    target("local", R"("builder": {"plugin": "localdir"}, "uploader": {"plugin": "localdir", "settings": {"remote_dir": "/tmp/r"}},
                       "verifier": {"plugin": "localdir"})");
  }
  ~Project() { fs::remove_all(root); }

  void write(const std::string& relative, const std::string& text) const {
    fs::create_directories((root / relative).parent_path());
    std::ofstream(root / relative) << text;
  }
  void target(const std::string& name, const std::string& roles) const {
    write("configs/targets/" + name + ".json", "{\"name\": \"" + name + "\", \"pipeline\": \"demo\",\n" + roles + "}");
  }

  // Loads, resolves and checks; returns the checked config or throws InputError.
  ResolvedConfig check(const std::string& target, std::vector<std::string> sets = {}, InputCheckOptions o = {}) {
    LoadOptions lo;
    lo.target = target;
    lo.config_dirs = {root / "configs"};
    lo.system_overlay_dir = root / "etc";
    lo.user_overlay_dir = root / "user";
    lo.sets = std::move(sets);
    loaded = load_config(lo);
    ResolvedConfig resolved = resolve_config(loaded);
    const char* bin = std::getenv("LCAKE_BINARY_DIR");
    REQUIRE(bin);
    PluginHost host({fs::path(bin) / "tests/plugins/localdir", fs::path(bin) / "tests/plugins/broken"});
    check_inputs(loaded, resolved, host, o);
    return resolved;
  }
  std::string error(const std::string& target, std::vector<std::string> sets = {}, InputCheckOptions o = {}) {
    try {
      check(target, std::move(sets), o);
    } catch (const lcake::InputError& e) {
      std::string text = e.what();
      CHECK(text.find('\n') == std::string::npos);
      return text;
    }
    FAIL("no InputError");
    return "";
  }
  LoadedConfig loaded;
};

bool has(const std::string& text, const std::string& part) {
  INFO(text);
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a good target passes; the verifier boots the upload by default") {
  Project p;
  auto config = p.check("local");
  CHECK(config.target.verifier_boots == "upload");
}

TEST_CASE("verify gate: a pipeline with verify steps needs a verifier, unless --no-verify") {
  Project p;
  p.target("noverifier", R"("builder": {"plugin": "localdir"})");
  auto e = p.error("noverifier");
  CHECK(has(e, "noverifier.json:1: /target/verifier: the target has no verifier"));
  CHECK(has(e, "a/top"));
  CHECK(has(e, "--no-verify"));
  CHECK_NOTHROW(p.check("noverifier", {}, {.no_verify = true, .only = {}}));
  // Deleted by a flag: the flag is to blame, not the file that set it.
  CHECK(has(p.error("local", {"/target/verifier=null"}), "--set /target/verifier: /target/verifier: the target has no verifier"));
}

TEST_CASE("verify gate: what the verifier boots must be something it accepts") {
  Project p;
  // good's uploader produces "none", which the localdir verifier cannot boot; the build it can.
  p.target("mixed", R"("builder": {"plugin": "localdir"},
  "uploader": {"plugin": "good"},
  "verifier": {"plugin": "localdir"})");
  auto e = p.error("mixed");
  CHECK(has(e, "mixed.json:4: /target/verifier/plugin: the localdir verifier accepts dir tar, but the good uploader produces none"));
  CHECK(has(e, "\"boots\": \"build\""));
  CHECK(p.check("mixed", {"/target/verifier/boots=build"}).target.verifier_boots == "build");
  CHECK(has(p.error("local", {"/target/verifier/boots=sideways"}), "/target/verifier/boots"));
  p.target("nouploader", R"("builder": {"plugin": "localdir"}, "verifier": {"plugin": "localdir", "boots": "upload"})");
  CHECK(has(p.error("nouploader"), "nouploader.json:2: /target/verifier/boots: \"boots\": \"upload\" but the target has no uploader"));
}

TEST_CASE("artifact types: the uploader takes the builder's type, the builder its own for child layers") {
  Project p;
  p.target("badup", R"("builder": {"plugin": "good"}, "uploader": {"plugin": "localdir", "settings": {"remote_dir": "/r"}},
  "verifier": {"plugin": "good"})");
  CHECK(has(p.error("badup"), "badup.json:2: /target/uploader/plugin: the localdir uploader accepts dir tar, but the good builder produces none"));
  p.target("leafy", R"("builder": {"plugin": "leaf"}, "verifier": {"plugin": "good"})");
  CHECK(has(p.error("leafy"), "leafy.json:2: /target/builder/plugin: the leaf builder produces leaf but builds layers only on seed"));
}

TEST_CASE("plugin names: an unknown one names the field and the closest installed plugin") {
  Project p;
  p.target("typo", R"("builder": {"plugin": "localdri"}, "verifier": {"plugin": "localdir"})");
  auto e = p.error("typo");
  CHECK(has(e, "typo.json:2: /target/builder/plugin: no plugin named 'localdri' (did you mean 'localdir'?)"));
  CHECK(input_check::closest_name("qemuu", {"docker", "qemu"}) == "qemu");
  CHECK(input_check::closest_name("openstack", {"docker", "qemu"}).empty());
}

TEST_CASE("plugin values: source, options and publish are checked against the role's schemas, defaults injected") {
  Project p;
  // localdir's source schema: {"dir": an existing directory}
  auto e = p.error("local", {"/pipeline/variants/a/sources/localdir/dir=/no/such/dir"});
  CHECK(has(e, "--set /pipeline/variants/a/sources/localdir/dir: /pipeline/variants/a/sources/localdir/dir: no such directory /no/such/dir"));
  e = p.error("local", {"/pipeline/variants/a/sources/localdir/colour=1"});
  CHECK(has(e, "/pipeline/variants/a/sources/localdir/colour: unknown key \"colour\""));
  e = p.error("local", {"/pipeline/layers/top/builder/tarball=yes"});
  CHECK(has(e, "--set /pipeline/layers/top/builder/tarball: /pipeline/layers/top/builder/tarball: expected boolean"));
  e = p.error("local", {"/pipeline/layers/top/publish/label=7"});  // 7 parses as a number
  CHECK(has(e, "/pipeline/layers/top/publish/label: expected string"));
  auto config = p.check("local");
  CHECK(config.variants[0].layers[1].publish_options == json({{"label", "published"}}));  // the schema's default
  CHECK(config.target.builder.settings == json::object());
}

TEST_CASE("local files named by the config exist, and the error names where they were named") {
  Project p;
  fs::remove(p.root / "configs/pipelines/files/x.sh");
  CHECK(has(p.error("local"), "demo.json:6: /pipeline/layers/top/provisioners/0/source: input "));
  p.write("configs/pipelines/files/x.sh", "true\n");
  fs::remove(p.root / "configs/pipelines/files/expected.csv");
  CHECK(has(p.error("local"), "demo.json:8: /pipeline/verify/0/compare/expected: expected file "));
}

TEST_CASE("--only that matches nothing names the globs and what exists") {
  Project p;
  auto e = p.error("local", {}, {.only = {"a/nope", "zz"}});
  CHECK(has(e, "--only a/nope, zz: matches no variant or variant/layer; variants: a; layers: base, top"));
  CHECK_NOTHROW(p.check("local", {}, {.only = {"a/t*"}}));
}

TEST_CASE("a plugin's ValueError is blamed on the full pointer and the file:line that set it") {
  Project p;
  auto config = p.check("local", {"/pipeline/layers/top/builder/tarball=true"});
  lcake::ValueError options("options", "/tarball", "tarballs are off today");
  CHECK(describe_plugin_error(p.loaded, config, "builder", "a", "top", options) ==
        "--set /pipeline/layers/top/builder/tarball: /pipeline/layers/top/builder/tarball: tarballs are off today");
  lcake::ValueError settings("settings", "/remote_dir", "not writable");
  CHECK(has(describe_plugin_error(p.loaded, config, "uploader", "a", "top", settings),
            "local.json:2: /target/uploader/settings/remote_dir: not writable"));
  lcake::ValueError source("source", "", "is required");
  CHECK(has(describe_plugin_error(p.loaded, config, "builder", "a", "", source),
            "demo.json:3: /pipeline/variants/a/sources/localdir: is required"));
  lcake::BuildError other("boom");
  CHECK(describe_plugin_error(p.loaded, config, "builder", "a", "top", other) == "boom");
}

// ---- The final image of a cloud target (cloud_defaults.cc) -------------------------------
// localdir's builder marks its "seal" option "x-lcake-cloud-default": true; the localcloud
// uploader (the same backend, built a second time) declares the capability publishes-to-cloud.

namespace {

const Layer& layer_named(const ResolvedConfig& c, const std::string& name) {
  for (const auto& l : c.variants.at(0).layers)
    if (l.name == name) return l;
  FAIL("no layer " << name);
  throw std::logic_error("unreachable");
}

// What the backends answer: every recorded build still exists, nothing is found by find().
struct AllThere : BackendProbe {
  bool build_exists(const LayerPlan&, const lcake::Artifact&) override { return true; }
  bool upload_exists(const LayerPlan&, const lcake::Artifact&) override { return true; }
  std::optional<lcake::Artifact> find_upload(const LayerPlan&, const lcake::FindRequest&) override { return {}; }
};

std::vector<LayerPlan> plan_of(const ResolvedConfig& c, StateStore& state) {
  PlanInputs in;
  in.config = &c;
  in.builder = {"localdir", "1.0.0"};
  if (c.target.uploader) in.uploader = PluginId{c.target.uploader->plugin, "1.0.0"};
  in.has_verifier = c.target.verifier.has_value();
  in.lcake_version = "test";
  AllThere probe;
  return plan_variant(in, c.variants.at(0), state, probe);
}

}  // namespace

TEST_CASE("cloud target: the last layer gets the builder's cloud defaults, unless the layer sets them") {
  Project p;
  p.target("cloud", R"("builder": {"plugin": "localdir"}, "uploader": {"plugin": "localcloud", "settings": {"remote_dir": "/tmp/r"}},
                       "verifier": {"plugin": "localdir"})");
  auto cloud = p.check("cloud");
  const Layer& top = layer_named(cloud, "top");
  CHECK(top.builder_options.value("seal", false) == true);   // what the builder receives
  CHECK(top.recipe["builder"]["seal"] == true);              // what the key hashes
  REQUIRE(top.host_defaults.size() == 1);
  CHECK(top.host_defaults[0].option == "seal");
  CHECK(top.host_defaults[0].value == true);
  CHECK(has(top.host_defaults[0].why, "the last layer, uploaded by 'localcloud', which publishes to a cloud"));
  // A layer others build on keeps its identity.
  CHECK(!layer_named(cloud, "base").builder_options.contains("seal"));
  CHECK(layer_named(cloud, "base").host_defaults.empty());

  // An uploader without the capability: nothing is set.
  auto local = p.check("local");
  CHECK(!layer_named(local, "top").builder_options.contains("seal"));
  CHECK(layer_named(local, "top").host_defaults.empty());

  // The layer's own value wins, also false.
  auto off = p.check("cloud", {"/pipeline/layers/top/builder/seal=false"});
  CHECK(layer_named(off, "top").builder_options["seal"] == false);
  CHECK(layer_named(off, "top").host_defaults.empty());

  // A last layer the target does not upload is not published to the cloud: not set either.
  auto not_uploaded = p.check("cloud", {"/target/uploader/layers=[\"base\"]"});
  CHECK(!layer_named(not_uploaded, "top").builder_options.contains("seal"));

  // --only does not change it (nor the key): the last layer of the pipeline, not of the selection.
  auto only_base = p.check("cloud", {}, {.only = {"a/base"}});
  CHECK(layer_named(only_base, "top").builder_options["seal"] == true);
  CHECK(layer_named(only_base, "base").host_defaults.empty());
}

TEST_CASE("cloud target: the default is in the layer key, so a target that changes uploader rebuilds the last layer") {
  Project p;
  lcake::test::TempDir dir("lcake-cloud-key");
  auto state = StateStore::open(dir.path);
  auto local = p.check("local");
  // The same target, its uploader now one that publishes to a cloud.
  auto cloud = p.check("local", {"/target/uploader/plugin=localcloud"});
  auto before = plan_of(local, *state);
  for (const auto& lp : before) {
    ArtifactRecord r;
    r.target = "local", r.variant = "a", r.layer = lp.layer, r.key = lp.key, r.stage = "build";
    r.artifact = {"dir", "/built/" + lp.layer, {}, "localdir"};
    r.run_id = "r1";
    state->record_artifact(r);
    state->record_key_components("local", "a", lp.layer, lp.key, lp.layer_key.components);
  }
  auto after = plan_of(cloud, *state);
  REQUIRE(after.size() == 2);
  CHECK(after[0].key == before[0].key);  // base: unchanged, still cached
  CHECK(after[0].build_cached);
  CHECK(after[1].key != before[1].key);  // top: sealed now, so a new key, not the unsealed artifact
  CHECK(!after[1].build_cached);
  CHECK(after[1].reasons == std::vector<std::string>{"recipe field 'builder' added"});
  // The same layer with "seal": true written in it is the same image: the same key.
  auto written = p.check("local", {"/pipeline/layers/top/builder/seal=true"});
  CHECK(plan_of(written, *state)[1].key == after[1].key);
}

TEST_CASE("cloud target with the real plugins: qemu's generalize; openstack and aws publish to a cloud") {
  const char* bin = std::getenv("LCAKE_BINARY_DIR");
  REQUIRE(bin);
  PluginHost host({fs::path(bin) / "lib/lcake/plugins", fs::path(bin) / "tests/plugins/localdir"});
  const auto& qemu = host.load("qemu");
  CHECK(!qemu.info().role.at("uploader").has_capability(kPublishesToCloud));  // a local file
  CHECK(qemu.info().role.at("builder").options["properties"]["generalize"]["x-lcake-cloud-default"] == true);
  for (std::string cloud : {"openstack", "aws"}) {
    std::error_code ec;
    if (!fs::exists(fs::path(bin) / "lib/lcake/plugins" / ("lcake-" + cloud + ".so"), ec)) {
      std::string note = "lcake-" + cloud + ".so is not built: its capability is not checked";
      MESSAGE(note);
      continue;
    }
    CHECK_MESSAGE(host.load(cloud).info().role.at("uploader").has_capability(kPublishesToCloud), cloud);
    // The Nova builder boots the parent's Glance image, which the uploader adopted: it builds on uploads.
    const auto& plugin = host.load(cloud);
    bool on_uploads = plugin.has_role("builder") && plugin.info().role.at("builder").has_capability(kBuildsOnUpload);
    CHECK_MESSAGE(on_uploads == (cloud == "openstack"), cloud);
  }
  CHECK(!qemu.info().role.at("builder").has_capability(kBuildsOnUpload));  // builds on its own qcow2
  // The qemu builder's options of the last layer, as the host hands them to it.
  Project p;
  p.write("configs/pipelines/disk.qcow2", "");
  p.write("configs/pipelines/qemu.json", R"({
  "name": "qemu",
  "variants": {"a": {"sources": {"qemu": {"disk": "disk.qcow2", "checksum": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}}},
  "layers": {
    "base": {"provisioners": [{"type": "shell", "inline": ["true"]}]},
    "top": {"from": "base", "provisioners": [{"type": "shell", "inline": ["true"]}]}
  }
})");
  p.write("configs/targets/qemucloud.json", R"({"name": "qemucloud", "pipeline": "qemu",
  "builder": {"plugin": "qemu"}, "uploader": {"plugin": "localcloud", "settings": {"remote_dir": "/tmp/r"}}})");
  LoadOptions lo;
  lo.target = "qemucloud";
  lo.config_dirs = {p.root / "configs"};
  lo.system_overlay_dir = p.root / "etc";
  lo.user_overlay_dir = p.root / "user";
  auto loaded = load_config(lo);
  auto resolved = resolve_config(loaded);
  input_check::TargetPlugins plugins{&qemu, &host.load("localcloud"), nullptr};
  input_check::apply_cloud_defaults(resolved, plugins);
  input_check::check_plugin_values(loaded, resolved, plugins, [](const Variant&) { return false; });
  CHECK(layer_named(resolved, "top").builder_options["generalize"] == true);
  CHECK(layer_named(resolved, "base").builder_options["generalize"] == false);  // the schema's default
}
