// check_inputs with real plugins: the test suite's localdir backend and the
// "good"/"leaf" plugins of tests/plugins/broken (artifact types of their own).
#include "plan/input_check.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <fstream>

#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"

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
  CHECK_NOTHROW(p.check("noverifier", {}, {.no_verify = true}));
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
