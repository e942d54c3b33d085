#include <doctest/doctest.h>

#include "test_support.h"
#include <stdlib.h>

#include <fstream>

#include "config/config.h"
#include "config/duration.h"
#include "config/json_lines.h"
#include "config/merge.h"
#include "lcake/errors.hpp"

namespace fs = std::filesystem;
using lcake::InputError;
using nlohmann::json;
using namespace lcake::core;

namespace {

// A throwaway config tree: configs/{targets,sites,pipelines}, system and user overlay dirs.
struct Sandbox {
  lcake::test::TempDir tmp{"lcake-config-test"};
  fs::path root = tmp.path;
  Sandbox() {
    for (const char* dir : {"configs/targets", "configs/sites", "configs/pipelines", "etc", "user"}) {
      fs::create_directories(root / dir);
    }
  }

  fs::path write(const std::string& relative, const std::string& text) const {
    fs::path file = root / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }

  LoadOptions options(const std::string& target = "qemu") const {
    LoadOptions o;
    o.target = target;
    o.config_dirs = {root / "configs"};
    o.system_overlay_dir = root / "etc";
    o.user_overlay_dir = root / "user";
    return o;
  }

  // The usual pair: pipeline "stack" and target "qemu" that names it.
  void standard() const {
    write("configs/pipelines/stack.json", R"({
  "name": "stack",
  "variables": {
    "TAG": { "default": "w_2016_05", "description": "release tag" },
    "OS_NAME": {}
  },
  "variants": {
    "centos-7": {
      "variables": { "OS_NAME": "centos-7" },
      "sources": { "qemu": { "disk": "/images/${var.OS_NAME}.qcow2" } }
    },
    "debian-12": {
      "variables": { "OS_NAME": "debian-12" }
    }
  },
  "layers": {
    "base": { "provisioners": [ { "type": "shell", "inline": ["echo ${layer} ${variant}"] } ] },
    "stack": { "from": "base", "inputs": ["files/products.txt"],
               "provisioners": [ { "type": "shell", "script": "files/install.sh", "timeout": "5m" },
                                 { "type": "file", "source": "files/a.conf", "destination": "/etc/a.conf" } ],
               "builder": { "changes": ["USER lsst"] } }
  },
  "verify": [ { "name": "demo", "run": "demo --tag ${var.TAG}", "timeout": 600 } ]
})");
    write("configs/targets/qemu.json", R"({
  "name": "qemu",
  "pipeline": "stack",
  "builder": {
    "plugin": "qemu",
    "settings": {
      "memory": 2048,
      "cpus": 2
    }
  }
})");
  }
};

// Runs a test from another working directory, restoring it after.
struct InDirectory {
  fs::path saved = fs::current_path();
  explicit InDirectory(const fs::path& dir) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(saved); }
};

std::string load_error(const LoadOptions& options) {
  try {
    load_config(options);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string resolve_error(const LoadOptions& options) {
  try {
    resolve_config(load_config(options));
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const ProvenanceEntry* leaf(const std::vector<ProvenanceEntry>& leaves, const std::string& pointer) {
  for (const auto& entry : leaves) {
    if (entry.pointer == pointer) return &entry;
  }
  return nullptr;
}

const Layer& layer_named(const Variant& variant, const std::string& name) {
  for (const auto& layer : variant.layers) {
    if (layer.name == name) return layer;
  }
  FAIL("no layer " << name);
  throw std::logic_error("unreachable");
}

}  // namespace

// ---- json_lines ----

TEST_CASE("json_lines: each pointer maps to the line of its key or element") {
  auto doc = parse_json_document(
      "{\n"
      "  \"a\": {\n"
      "    \"b\": 1,\n"
      "    \"c\": [\n"
      "      \"x\",\n"
      "      {\"d\": \"}{][\\\"\\n\"}\n"
      "    ]\n"
      "  },\n"
      "  \"e/f\": true, \"g~h\": null,\n"
      "  \"q\\\"\\u0041\": 2\n"
      "}\n",
      "t.json");
  CHECK(doc.lines.at("") == 1);
  CHECK(doc.lines.at("/a") == 2);
  CHECK(doc.lines.at("/a/b") == 3);
  CHECK(doc.lines.at("/a/c") == 4);
  CHECK(doc.lines.at("/a/c/0") == 5);
  CHECK(doc.lines.at("/a/c/1") == 6);
  CHECK(doc.lines.at("/a/c/1/d") == 6);
  CHECK(doc.lines.at("/e~1f") == 9);
  CHECK(doc.lines.at("/g~0h") == 9);
  CHECK(doc.lines.at("/q\"A") == 10);
  CHECK(doc.value["a"]["c"][1]["d"] == "}{][\"\n");
}

TEST_CASE("json_lines: a parse error is one line naming file and line") {
  try {
    parse_json_document("{\n  \"a\": 1,\n  \"b\": 2\n  \"c\": 3\n}\n", "configs/sites/x.json");
    FAIL("expected an error");
  } catch (const InputError& e) {
    std::string what = e.what();
    CHECK(what.starts_with("configs/sites/x.json:4: invalid JSON: "));
    CHECK(!contains(what, "\n"));
    CHECK(!contains(what, "json.exception"));
  }
  CHECK_THROWS_WITH_AS(parse_json_document("", "e.json"), doctest::Contains("e.json:1: invalid JSON:"), InputError);
}

TEST_CASE("json_lines: a byte order mark does not shift anything") {
  auto doc = parse_json_document("\xEF\xBB\xBF{\n\"a\": 1}", "bom.json");
  CHECK(doc.lines.at("/a") == 2);
}

TEST_CASE("json_lines: a missing file says so") {
  CHECK_THROWS_WITH_AS(read_json_document("/nonexistent/x.json", "x.json"), "x.json: no such file", InputError);
}

// ---- merge and provenance ----

TEST_CASE("merge: objects deep, scalars and arrays replace, null deletes") {
  json tree = json::object();
  Provenance provenance;
  auto base = parse_json_document(R"({
  "a": { "keep": 1, "change": 2, "list": [1, 2, 3], "gone": { "x": 1 } },
  "b": "text"
})", "base.json");
  auto over = parse_json_document(R"({
  "a": { "change": 20, "list": [9], "gone": null, "new": { "y": true } },
  "b": { "now": "object" }
})", "over.json");
  merge_document(tree, provenance, "", base.value, "base.json", base.lines);
  merge_document(tree, provenance, "", over.value, "over.json", over.lines);
  CHECK(tree == json::parse(R"({"a": {"keep": 1, "change": 20, "list": [9], "new": {"y": true}}, "b": {"now": "object"}})"));

  auto leaves = provenance.leaves();
  REQUIRE(leaf(leaves, "/a/change"));
  CHECK(leaf(leaves, "/a/change")->origin.describe() == "over.json:2");
  REQUIRE(leaf(leaves, "/a/change")->overridden.size() == 1);
  CHECK(leaf(leaves, "/a/change")->overridden[0].describe() == "base.json:2");
  CHECK(leaf(leaves, "/a/keep")->origin.describe() == "base.json:2");
  CHECK(leaf(leaves, "/a/keep")->overridden.empty());
  CHECK(leaf(leaves, "/a/list")->origin.describe() == "over.json:2");
  CHECK(!leaf(leaves, "/a/list/0"));
  CHECK(!leaf(leaves, "/a/gone/x"));
  CHECK(leaf(leaves, "/b/now")->origin.describe() == "over.json:3");

  auto deletions = provenance.deletions();
  REQUIRE(deletions.size() == 1);
  CHECK(deletions[0].pointer == "/a/gone");
  CHECK(deletions[0].origin.describe() == "over.json:2");
  REQUIRE(deletions[0].overridden.size() == 1);
  CHECK(deletions[0].overridden[0].describe() == "base.json:2");
}

TEST_CASE("provenance: re-setting a deleted key keeps its history; empty objects are leaves") {
  Provenance p;
  p.set("/a/x", {"one.json", 1});
  p.erase_subtree("/a", {"two.json", 2});
  p.open_object("/a", {"three.json", 3});
  p.set("/a/x", {"three.json", 4});
  p.open_object("/empty", {"three.json", 5});
  p.set("/a-b", {"three.json", 6});
  auto leaves = p.leaves();
  REQUIRE(leaves.size() == 3);
  CHECK(leaves[0].pointer == "/a-b");
  CHECK(leaves[1].pointer == "/a/x");
  REQUIRE(leaves[1].overridden.size() == 2);
  CHECK(leaves[1].overridden[0].describe() == "one.json:1");
  CHECK(leaves[1].overridden[1].describe() == "two.json:2");
  CHECK(leaves[2].pointer == "/empty");
  CHECK(p.deletions().empty());
  CHECK(p.origin_of("/a/x")->describe() == "three.json:4");
  CHECK(p.origin_of("/a/x/deeper")->describe() == "three.json:4");
  CHECK(p.origin_of("/a/y")->describe() == "three.json:3");
  CHECK(!p.origin_of("/nothing"));
  CHECK(Origin{"--var TAG=x", 0}.describe() == "--var TAG=x");
}

TEST_CASE("merge_at_pointer: creates objects, addresses array elements, refuses scalars") {
  json tree = json::parse(R"({"a": {"list": [{"t": 1}, 2]}, "s": "text"})");
  Provenance p;
  merge_at_pointer(tree, p, "/x/y/z", 5, {"--set /x/y/z", 0});
  CHECK(tree["x"]["y"]["z"] == 5);
  merge_at_pointer(tree, p, "/a/list/0/t", "two", {"--set /a/list/0/t", 0});
  CHECK(tree["a"]["list"][0]["t"] == "two");
  merge_at_pointer(tree, p, "/a/list/2", true, {"--set", 0});
  CHECK(tree["a"]["list"].size() == 3);
  merge_at_pointer(tree, p, "/a/list/1", nullptr, {"--set", 0});
  CHECK(tree["a"]["list"] == json::parse(R"([{"t": "two"}, true])"));
  CHECK_THROWS_WITH_AS(merge_at_pointer(tree, p, "/s/t", 1, {"--set", 0}), "/s is a string, not an object or array",
                       std::invalid_argument);
  CHECK_THROWS_AS(merge_at_pointer(tree, p, "/a/list/x", 1, {"--set", 0}), std::invalid_argument);
  CHECK_THROWS_AS(split_pointer("a/b"), std::invalid_argument);
  CHECK_THROWS_AS(split_pointer("/a~2"), std::invalid_argument);
  CHECK(split_pointer("/a~1b/c~0") == std::vector<std::string>{"a/b", "c~"});
}

// ---- load_config ----

TEST_CASE("load: the documented order, with provenance of every step") {
  Sandbox box;
  box.standard();
  box.write("etc/10-system.json", R"({"vars": {"TAG": "system"}})");
  box.write("user/user.json", R"({"vars": {"TAG": "user"}})");
  box.write("configs/sites/ncsa.json", "{\n  \"vars\": {\"TAG\": \"site\"},\n  \"target\": {\"builder\": {\"settings\": {\"memory\": 8192}}}\n}\n");
  auto overlay = box.write("over.json", R"({"vars": {"TAG": "overlay"}})");
  auto var_file = box.write("vars.json", R"({"TAG": "varfile"})");
  auto options = box.options();
  options.sites = {"ncsa"};
  options.overlays = {overlay};
  options.var_files = {var_file};
  options.vars = {"TAG=flag"};

  auto loaded = load_config(options);
  CHECK(loaded.tree["vars"]["TAG"] == "flag");
  CHECK(loaded.tree["target"]["builder"]["settings"]["memory"] == 8192);
  CHECK(loaded.tree["target"]["builder"]["settings"]["cpus"] == 2);
  CHECK(loaded.tree["pipeline"]["name"] == "stack");
  CHECK(loaded.pipeline_file == box.root / "configs/pipelines/stack.json");
  CHECK(loaded.target_file == box.root / "configs/targets/qemu.json");
  REQUIRE(loaded.sources.size() == 9);
  CHECK(loaded.sources[0] == "built-in defaults");
  CHECK(contains(loaded.sources[1], "pipelines/stack.json"));
  CHECK(contains(loaded.sources[2], "targets/qemu.json"));
  CHECK(loaded.sources[8] == "--var TAG=flag");

  auto leaves = loaded.provenance.leaves();
  const auto* tag = leaf(leaves, "/vars/TAG");
  REQUIRE(tag);
  CHECK(tag->origin.describe() == "--var TAG=flag");
  REQUIRE(tag->overridden.size() == 5);
  CHECK(contains(tag->overridden[0].describe(), "etc/10-system.json:1"));
  CHECK(contains(tag->overridden[1].describe(), "user/user.json:1"));
  CHECK(contains(tag->overridden[2].describe(), "sites/ncsa.json:2"));
  CHECK(contains(tag->overridden[3].describe(), "over.json:1"));
  CHECK(contains(tag->overridden[4].describe(), "vars.json:1"));
  const auto* memory = leaf(leaves, "/target/builder/settings/memory");
  REQUIRE(memory);
  CHECK(contains(memory->origin.describe(), "configs/sites/ncsa.json:3"));
  REQUIRE(memory->overridden.size() == 1);
  CHECK(contains(memory->overridden[0].describe(), "configs/targets/qemu.json:7"));

  options.sets = {"/vars/TAG=\"set\"", "/target/builder/settings/memory=4096", "/target/name=plain text",
                  "/target/builder/settings/cpus=null"};
  loaded = load_config(options);
  CHECK(loaded.tree["vars"]["TAG"] == "set");
  CHECK(loaded.tree["target"]["builder"]["settings"]["memory"] == 4096);
  CHECK(loaded.tree["target"]["name"] == "plain text");
  CHECK(!loaded.tree["target"]["builder"]["settings"].contains("cpus"));
  CHECK(loaded.provenance.origin_of("/vars/TAG")->describe() == "--set /vars/TAG");
  auto deletions = loaded.provenance.deletions();
  REQUIRE(deletions.size() == 1);
  CHECK(deletions[0].origin.describe() == "--set /target/builder/settings/cpus");
}

TEST_CASE("load: system and user overlays are read in name order") {
  Sandbox box;
  box.standard();
  box.write("etc/b.json", R"({"vars": {"A": "b"}})");
  box.write("etc/a.json", R"({"vars": {"A": "a", "B": "a"}})");
  box.write("etc/ignored.txt", R"(not json)");
  auto loaded = load_config(box.options());
  CHECK(loaded.tree["vars"]["A"] == "b");
  CHECK(loaded.tree["vars"]["B"] == "a");
}

TEST_CASE("load: a missing target or site names the dirs searched and what exists") {
  Sandbox box;
  box.standard();
  box.write("configs/targets/docker.json", R"({"builder": {"plugin": "docker"}})");
  box.write("configs/sites/slac.json", "{}");
  std::string error = load_error(box.options("qemuu"));
  CHECK(error.starts_with("--target: target \"qemuu\" not found: searched "));
  // Shown relative to the working directory when it is under it (a test run by hand from the source tree).
  auto dir = box.root / "configs/targets";
  CHECK((contains(error, dir.string()) || contains(error, fs::relative(dir).string())));
  CHECK(contains(error, "available: docker, qemu"));

  auto options = box.options();
  options.sites = {"ncsa"};
  error = load_error(options);
  CHECK(error.starts_with("--site: site \"ncsa\" not found"));
  CHECK(contains(error, "available: slac"));

  CHECK(contains(load_error(box.options("")), "no target given: pass --target NAME (available: docker, qemu)"));
}

TEST_CASE("load: the second config dir is searched; a target may be a path") {
  Sandbox box;
  box.standard();
  Sandbox other;
  other.write("configs/targets/extra.json", R"({"pipeline": "stack", "builder": {"plugin": "docker"}})");
  auto options = box.options("extra");
  options.config_dirs = {box.root / "configs", other.root / "configs"};
  CHECK(load_config(options).tree["target"]["builder"]["plugin"] == "docker");
  auto by_path = box.options((other.root / "configs/targets/extra.json").string());
  CHECK(load_config(by_path).tree["target"]["builder"]["plugin"] == "docker");
}

TEST_CASE("load: pipeline from --pipeline, a path in the target, or \"stack\"") {
  Sandbox box;
  box.standard();
  box.write("configs/targets/rel.json", R"({"pipeline": "../my/p.json", "builder": {"plugin": "qemu"}})");
  box.write("configs/my/p.json", R"({"name": "relative", "layers": {"a": {}}})");
  CHECK(load_config(box.options("rel")).tree["pipeline"]["name"] == "relative");

  box.write("configs/targets/none.json", R"({"builder": {"plugin": "qemu"}})");
  CHECK(load_config(box.options("none")).tree["pipeline"]["name"] == "stack");

  auto options = box.options();
  options.pipeline = box.root / "configs/my/p.json";
  CHECK(load_config(options).tree["pipeline"]["name"] == "relative");

  box.write("configs/targets/bad.json", "{\n  \"pipeline\": \"nope\",\n  \"builder\": {\"plugin\": \"qemu\"}\n}");
  std::string error = load_error(box.options("bad"));
  CHECK(contains(error, "configs/targets/bad.json:2: pipeline \"nope\" not found"));
  CHECK(contains(error, "available: stack"));
}

TEST_CASE("load: bad flags and files are one-line errors naming them") {
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.vars = {"TAG"};
  CHECK(load_error(options) == "--var TAG: expected NAME=VALUE (for example --var TAG=w_2016_05)");

  options = box.options();
  options.sets = {"vars/TAG=1"};
  CHECK(load_error(options).starts_with("--set vars/TAG=1: malformed JSON pointer \"vars/TAG\""));
  options.sets = {"/vars/TAG"};
  CHECK(load_error(options).starts_with("--set /vars/TAG: expected /json/pointer=VALUE"));
  options.sets = {"/target/name/x=1"};
  CHECK(load_error(options) == "--set /target/name/x: /target/name is a string, not an object or array");

  options = box.options();
  options.sites = {"broken"};
  box.write("configs/sites/broken.json", "{\n  \"vars\": {\n    \"TAG\": \"x\",\n  }\n}\n");
  std::string error = load_error(options);
  CHECK(contains(error, "configs/sites/broken.json:4: invalid JSON: "));
  CHECK(!contains(error, "\n"));

  options = box.options();
  options.overlays = {box.root / "missing.json"};
  CHECK(contains(load_error(options), "missing.json: no such file"));

  options = box.options();
  options.var_files = {box.write("list.json", "[1, 2]")};
  CHECK(contains(load_error(options), "list.json:1: a var file must be a JSON object, not array"));
}

TEST_CASE("load: ./lcake.json is the pipeline when there is no --pipeline") {
  Sandbox box;
  box.standard();
  box.write("lcake.json", R"({"name": "local", "layers": {"a": {}}})");
  InDirectory cwd(box.root);
  auto loaded = load_config(box.options());
  CHECK(loaded.tree["pipeline"]["name"] == "local");
  CHECK(loaded.sources[1] == "lcake.json");
}

TEST_CASE("load: user overlays default to $XDG_CONFIG_HOME/lcake") {
  Sandbox box;
  box.standard();
  box.write("xdg/lcake/me.json", R"({"vars": {"TAG": "mine"}})");
  auto options = box.options();
  options.user_overlay_dir.reset();
  const char* saved = getenv("XDG_CONFIG_HOME");
  std::string saved_value = saved ? saved : "";
  setenv("XDG_CONFIG_HOME", (box.root / "xdg").c_str(), 1);
  auto loaded = load_config(options);
  if (saved) {
    setenv("XDG_CONFIG_HOME", saved_value.c_str(), 1);
  } else {
    unsetenv("XDG_CONFIG_HOME");
  }
  CHECK(loaded.tree["vars"]["TAG"] == "mine");
  CHECK(contains(loaded.provenance.origin_of("/vars/TAG")->describe(), "xdg/lcake/me.json:1"));
}

TEST_CASE("load: --set with an object merges like an overlay") {
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.sets = {R"(/target/builder/settings={"memory": 1024, "accel": "tcg"})"};
  auto loaded = load_config(options);
  CHECK(loaded.tree["target"]["builder"]["settings"] == json::parse(R"({"memory": 1024, "cpus": 2, "accel": "tcg"})"));
  auto leaves = loaded.provenance.leaves();
  CHECK(leaf(leaves, "/target/builder/settings/accel")->origin.describe() == "--set /target/builder/settings");
  CHECK(leaf(leaves, "/target/builder/settings/cpus")->origin.line == 8);
}

TEST_CASE("default_config_dirs: $LCAKE_CONFIG_PATH, ./configs, then the installed dir") {
  setenv("LCAKE_CONFIG_PATH", "/one:/two::", 1);
  auto dirs = default_config_dirs();
  unsetenv("LCAKE_CONFIG_PATH");
  REQUIRE(dirs.size() == 4);
  CHECK(dirs[0] == "/one");
  CHECK(dirs[1] == "/two");
  CHECK(dirs[2] == "configs");
  CHECK(dirs[3].string().ends_with("share/lcake/configs"));
  CHECK(dirs[3].is_absolute());
}

// ---- resolve_config ----

TEST_CASE("resolve: the typed model of the standard pipeline") {
  Sandbox box;
  box.standard();
  auto config = resolve_config(load_config(box.options()));
  CHECK(config.pipeline_name == "stack");
  CHECK(config.target.name == "qemu");
  CHECK(config.target.builder.plugin == "qemu");
  CHECK(config.target.builder.pointer == "/target/builder");
  CHECK(config.target.builder.settings == json::parse(R"({"memory": 2048, "cpus": 2})"));
  CHECK(!config.target.uploader);
  CHECK(config.target.upload_layers == std::vector<std::string>{"*"});
  REQUIRE(config.variants.size() == 2);

  const auto& centos = config.variants[0];
  CHECK(centos.name == "centos-7");
  CHECK(centos.variables.at("TAG") == "w_2016_05");
  CHECK(centos.variables.at("OS_NAME") == "centos-7");
  CHECK(centos.source == json::parse(R"({"disk": "/images/centos-7.qcow2"})"));
  CHECK(config.variants[1].source.is_null());

  REQUIRE(centos.layers.size() == 2);
  const auto& base = centos.layers[0];
  CHECK(base.name == "base");
  CHECK(!base.from);
  CHECK(base.provisioners[0].inline_commands == std::vector<std::string>{"echo base centos-7"});
  CHECK(base.provisioners[0].pointer == "/pipeline/layers/base/provisioners/0");
  CHECK(base.verify.empty());

  const auto& stack = centos.layers[1];
  fs::path dir = box.root / "configs/pipelines";
  CHECK(stack.from == "base");
  CHECK(stack.input_names == std::vector<std::string>{"files/products.txt", "files/install.sh", "files/a.conf"});
  CHECK(stack.inputs == std::vector<fs::path>{dir / "files/products.txt", dir / "files/install.sh", dir / "files/a.conf"});
  CHECK(stack.provisioners[0].script == dir / "files/install.sh");
  CHECK(stack.provisioners[0].timeout == std::chrono::minutes(5));
  CHECK(stack.provisioners[1].source == dir / "files/a.conf");
  CHECK(stack.provisioners[1].destination == "/etc/a.conf");
  CHECK(stack.builder_options == json::parse(R"({"changes": ["USER lsst"]})"));
  REQUIRE(stack.verify.size() == 1);
  CHECK(stack.verify[0].name == "demo");
  CHECK(stack.verify[0].run == "demo --tag w_2016_05");
  CHECK(stack.verify[0].timeout == std::chrono::seconds(600));
  CHECK(stack.verify[0].pointer == "/pipeline/verify/0");
  CHECK(stack.recipe["from"] == "base");
  CHECK(stack.recipe["builder"]["changes"][0] == "USER lsst");
  CHECK(stack.recipe["provisioners"][0]["script"] == "files/install.sh");
  CHECK(base.recipe["provisioners"][0]["inline"][0] == "echo base centos-7");
}

TEST_CASE("resolve: variable precedence default < env < variant < /vars") {
  Sandbox box;
  box.write("configs/pipelines/stack.json", R"({
  "name": "p",
  "variables": {
    "A": { "default": "default" },
    "B": { "default": "default", "env": "LCAKE_CONFIG_TEST_B" },
    "C": { "default": "default", "env": "LCAKE_CONFIG_TEST_C" },
    "D": { "default": "default", "env": "LCAKE_CONFIG_TEST_D" },
    "N": { "default": 5 },
    "NESTED": { "default": "${var.A}-${variant}" },
    "UNSET": {}
  },
  "variants": { "v": { "variables": { "C": "variant", "D": "variant" } } },
  "layers": { "only": {} }
})");
  box.write("configs/targets/qemu.json", R"({"builder": {"plugin": "qemu"}})");
  setenv("LCAKE_CONFIG_TEST_B", "env", 1);
  setenv("LCAKE_CONFIG_TEST_C", "env", 1);
  setenv("LCAKE_CONFIG_TEST_D", "env", 1);
  auto options = box.options();
  options.vars = {"D=vars"};
  auto config = resolve_config(load_config(options));
  unsetenv("LCAKE_CONFIG_TEST_B");
  unsetenv("LCAKE_CONFIG_TEST_C");
  unsetenv("LCAKE_CONFIG_TEST_D");
  const auto& vars = config.variants.at(0).variables;
  CHECK(vars.at("A") == "default");
  CHECK(vars.at("B") == "env");
  CHECK(vars.at("C") == "variant");
  CHECK(vars.at("D") == "vars");
  CHECK(vars.at("N") == "5");
  CHECK(vars.at("NESTED") == "default-v");
  CHECK(!vars.contains("UNSET"));
  CHECK(config.target.name == "qemu");  // no "name": the file's stem
}

TEST_CASE("resolve: assigning an undeclared variable names the file that did") {
  Sandbox box;
  box.standard();
  box.write("configs/sites/typo.json", "{\n  \"vars\": {\n    \"TAGG\": \"x\"\n  }\n}\n");
  auto options = box.options();
  options.sites = {"typo"};
  std::string error = resolve_error(options);
  CHECK(contains(error, "configs/sites/typo.json:3: /vars/TAGG: variable \"TAGG\" is not declared in /pipeline/variables"));
  CHECK(contains(error, "(declared: OS_NAME, TAG)"));

  options = box.options();
  options.vars = {"NOPE=1"};
  CHECK(resolve_error(options).starts_with("--var NOPE=1: /vars/NOPE: variable \"NOPE\" is not declared"));
}

TEST_CASE("resolve: a variable with no value names where it is used") {
  Sandbox box;
  box.standard();
  box.write("configs/sites/use.json", R"({
  "pipeline": {
    "layers": {
      "stack": { "provisioners": [ { "type": "shell", "inline": ["make", "tag ${var.RELEASE}"] } ] }
    },
    "variables": { "RELEASE": { "env": "LCAKE_CONFIG_TEST_RELEASE" } }
  }
})");
  auto options = box.options();
  options.sites = {"use"};
  std::string error = resolve_error(options);
  CHECK(contains(error, "configs/sites/use.json:4: /pipeline/layers/stack/provisioners/0/inline/1: "
                        "${var.RELEASE} has no value for variant centos-7"));
  CHECK(contains(error, "$LCAKE_CONFIG_TEST_RELEASE"));
  CHECK(contains(error, "--var RELEASE=VALUE"));

  options.vars = {"RELEASE=r1"};
  auto config = resolve_config(load_config(options));
  CHECK(layer_named(config.variants[0], "stack").provisioners[0].inline_commands[1] == "tag r1");
}

TEST_CASE("resolve: interpolation escapes and misuse") {
  Sandbox box;
  box.standard();
  auto with_inline = [&](const std::string& command) {
    box.write("configs/sites/s.json", R"({"pipeline": {"layers": {"base": {"provisioners": [{"type": "shell", "inline": [)" +
                                          json(command).dump() + "]}]}}}}");
    auto options = box.options();
    options.sites = {"s"};
    return options;
  };
  auto config = resolve_config(load_config(with_inline("echo $${HOME} $HOME ${layer}")));
  CHECK(config.variants[0].layers[0].provisioners[0].inline_commands[0] == "echo ${HOME} $HOME base");

  CHECK(contains(resolve_error(with_inline("${var.NOPE}")), "${var.NOPE} is not declared in /pipeline/variables"));
  CHECK(contains(resolve_error(with_inline("${foo}")), "unknown reference ${foo}"));
  CHECK(contains(resolve_error(with_inline("${var.TAG")), "unterminated \"${\""));

  box.write("configs/sites/s.json", R"({"target": {"builder": {"settings": {"name": "${layer}"}}}})");
  auto options = box.options();
  options.sites = {"s"};
  CHECK(contains(resolve_error(options), "/target/builder/settings/name: ${layer} is only available inside /pipeline/layers"));
  box.write("configs/sites/s.json", R"({"target": {"builder": {"settings": {"name": "${variant}"}}}})");
  CHECK(contains(resolve_error(options), "${variant} is not available here"));
  box.write("configs/sites/s.json", R"({"target": {"builder": {"settings": {"name": "img-${var.TAG}"}}}})");
  CHECK(resolve_config(load_config(options)).target.builder.settings["name"] == "img-w_2016_05");
}

TEST_CASE("resolve: the core schema catches typos and wrong types with file:line") {
  Sandbox box;
  box.standard();
  box.write("configs/sites/s.json", "{\n  \"pipeline\": {\n    \"layers\": {\n      \"stack\": {\n        \"provisoners\": []\n      }\n    }\n  }\n}\n");
  auto options = box.options();
  options.sites = {"s"};
  std::string error = resolve_error(options);
  CHECK(contains(error, "configs/sites/s.json:5: /pipeline/layers/stack/provisoners: unknown key \"provisoners\""));
  CHECK(contains(error, "(allowed: "));

  box.write("configs/sites/s.json", "{\n  \"pipeline\": {\"layers\": {\"stack\": {\n    \"inputs\": \"one.txt\"\n  }}}\n}\n");
  CHECK(contains(resolve_error(options), "configs/sites/s.json:3: /pipeline/layers/stack/inputs: expected array, got string \"one.txt\""));

  box.write("configs/sites/s.json", R"({"pipeline": {"layers": {"stack": {"provisioners": [{"type": "shel", "inline": []}]}}}})");
  CHECK(contains(resolve_error(options), "/pipeline/layers/stack/provisioners/0/type: got \"shel\", expected one of \"shell\", \"file\", \"env\""));

  box.write("configs/sites/s.json", R"({"target": {"builder": {"plugin": null}}})");
  CHECK(contains(resolve_error(options), "/target/builder: missing required key \"plugin\""));

  box.write("configs/sites/s.json", R"({"target": {"builder": {"settings": "x"}}})");
  CHECK(contains(resolve_error(options), "/target/builder/settings: expected object, got string \"x\""));

  box.write("configs/sites/s.json", R"({"vars": {"TAG": ["a"]}})");
  CHECK(contains(resolve_error(options), "/vars/TAG: expected string, number or boolean, got array"));

  box.write("configs/sites/s.json", R"({"extra": 1})");
  CHECK(contains(resolve_error(options), "s.json:1: /extra: unknown key \"extra\" (allowed: $schema, pipeline, target, vars)"));
}

TEST_CASE("resolve: provisioner and verify shapes beyond the schema") {
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.sites = {"s"};
  auto check = [&](const std::string& layer_json, const std::string& expected) {
    box.write("configs/sites/s.json", R"({"pipeline": {"layers": {"stack": )" + layer_json + "}}}");
    std::string error = resolve_error(options);
    CHECK_MESSAGE(contains(error, expected), error);
  };
  check(R"({"provisioners": [{"type": "shell", "inline": ["a"], "script": "x.sh"}]})", "/pipeline/layers/stack/provisioners/0: a shell provisioner needs either");
  check(R"({"provisioners": [{"type": "shell"}]})", "a shell provisioner needs either");
  check(R"({"provisioners": [{"type": "file", "source": "a"}]})", "a file provisioner needs \"destination\"");
  check(R"({"provisioners": [{"type": "env"}]})", "an env provisioner needs \"vars\"");
  check(R"({"provisioners": [{"type": "shell", "inline": [], "destination": "/x"}]})", "/provisioners/0/destination: \"destination\" is not used by a shell provisioner");
  check(R"({"provisioners": [{"type": "shell", "inline": [], "timeout": "5 minutes"}]})", "/provisioners/0/timeout: expected a duration like \"90s\"");
  check(R"({"verify": [{"name": "x"}]})", "/pipeline/layers/stack/verify/0: a verify step needs \"run\"");
  check(R"({"verify": [{"run": "x", "expect_output": ["(unclosed"]}]})", "/verify/0/expect_output/0: not a valid regular expression");

  // Errors inside an array name the element's own line, not the array's.
  box.write("configs/sites/s.json", "{\"pipeline\": {\"layers\": {\"stack\": {\"provisioners\": [\n"
                                    "  {\"type\": \"shell\", \"inline\": []},\n"
                                    "  {\"type\": \"shell\",\n"
                                    "   \"inline\": [], \"timeout\": \"soon\"}\n"
                                    "]}}}}\n");
  CHECK(contains(resolve_error(options), "s.json:4: /pipeline/layers/stack/provisioners/1/timeout: expected a duration"));
  box.write("configs/sites/s.json", "{\"pipeline\": {\"layers\": {\"stack\": {\"provisioners\": [\n"
                                    "  {\"type\": \"shell\", \"inline\": [\n"
                                    "     \"ok\",\n"
                                    "     7]}\n"
                                    "]}}}}\n");
  CHECK(contains(resolve_error(options), "s.json:4: /pipeline/layers/stack/provisioners/0/inline/1: expected string, got integer 7"));
}

TEST_CASE("resolve: layers are ordered parents first; bad graphs name the layer") {
  Sandbox box;
  box.write("configs/targets/qemu.json", R"({"builder": {"plugin": "qemu"}})");
  auto pipeline = [&](const std::string& layers) {
    box.write("configs/pipelines/stack.json", R"({"name": "p", "layers": )" + layers + "}");
  };
  pipeline(R"({"d": {"from": "a"}, "c": {"from": "b"}, "b": {"from": "a"}, "a": {}, "e": {"from": "c"}})");
  auto config = resolve_config(load_config(box.options()));
  REQUIRE(config.variants.size() == 1);
  CHECK(config.variants[0].name == "default");
  std::vector<std::string> order;
  for (const auto& layer : config.variants[0].layers) order.push_back(layer.name);
  CHECK(order == std::vector<std::string>{"a", "b", "c", "e", "d"});

  pipeline(R"({"a": {}, "b": {"from": "nope"}})");
  CHECK(contains(resolve_error(box.options()), "/pipeline/layers/b/from: layer \"b\" is built from \"nope\", which is not a layer (layers: a, b)"));
  pipeline(R"({"a": {}, "b": {}})");
  CHECK(contains(resolve_error(box.options()), "/pipeline/layers/b: layers \"a\" and \"b\" both have no \"from\""));
  pipeline(R"({"a": {}, "b": {"from": "c"}, "c": {"from": "b"}})");
  CHECK(contains(resolve_error(box.options()), "layer \"b\" is in a cycle: b -> c -> b"));
  pipeline(R"({"a": {"from": "a"}})");
  CHECK(contains(resolve_error(box.options()), "stack.json:1: /pipeline/layers/a/from: layer \"a\" is in a cycle: a -> a"));
}

TEST_CASE("resolve: pipeline verify goes to every last layer without its own") {
  Sandbox box;
  box.write("configs/targets/qemu.json", R"({"builder": {"plugin": "qemu"}})");
  box.write("configs/pipelines/stack.json", R"({"name": "p",
    "layers": {"a": {}, "b": {"from": "a"}, "c": {"from": "a", "verify": [{"run": "own"}]},
               "d": {"from": "a", "verify": []}},
    "verify": [{"name": "demo", "run": "demo"},
               {"compare": {"actual": "/out.csv", "expected": "files/expected.csv", "abs_tol": 0.5}}]})");
  auto config = resolve_config(load_config(box.options()));
  const auto& v = config.variants[0];
  CHECK(layer_named(v, "a").verify.empty());
  REQUIRE(layer_named(v, "b").verify.size() == 2);
  CHECK(layer_named(v, "b").verify[0].run == "demo");
  const auto& compare = layer_named(v, "b").verify[1];
  CHECK(compare.name == "verify-2");
  REQUIRE(compare.compare);
  CHECK(compare.compare->expected == box.root / "configs/pipelines/files/expected.csv");
  CHECK(compare.compare->abs_tol == 0.5);
  CHECK(compare.compare->rel_tol == 1e-10);
  REQUIRE(layer_named(v, "c").verify.size() == 1);
  CHECK(layer_named(v, "c").verify[0].run == "own");
  CHECK(!layer_named(v, "c").recipe.contains("verify"));
  for (const char* field : {"uploader", "verifier", "publish", "description"})
    CHECK(!layer_named(v, "c").recipe.contains(field));
  CHECK(layer_named(v, "d").verify.empty());
}

TEST_CASE("resolve: uploader and verifier roles") {
  Sandbox box;
  box.standard();
  box.write("configs/targets/aws.json", R"({"pipeline": "stack", "builder": {"plugin": "qemu"},
    "uploader": {"plugin": "aws", "settings": {"region": "us-east-1"}, "layers": ["stack"]},
    "verifier": {"plugin": "aws"}})");
  auto config = resolve_config(load_config(box.options("aws")));
  REQUIRE(config.target.uploader);
  CHECK(config.target.uploader->plugin == "aws");
  CHECK(config.target.uploader->settings["region"] == "us-east-1");
  CHECK(config.target.uploader->pointer == "/target/uploader");
  CHECK(config.target.upload_layers == std::vector<std::string>{"stack"});
  REQUIRE(config.target.verifier);
  CHECK(config.target.verifier->settings == json::object());
}

TEST_CASE("durations") {
  CHECK(parse_duration("90s") == std::chrono::seconds(90));
  CHECK(parse_duration("5m") == std::chrono::seconds(300));
  CHECK(parse_duration("1h") == std::chrono::seconds(3600));
  CHECK(parse_duration("42") == std::chrono::seconds(42));
  CHECK(parse_duration(30) == std::chrono::seconds(30));
  CHECK(parse_duration(0.5) == std::chrono::seconds(1));
  CHECK(!parse_duration("5 minutes"));
  CHECK(!parse_duration("1d"));
  CHECK(!parse_duration("m"));
  CHECK(!parse_duration(-1));
  CHECK(!parse_duration(true));
}

// ---- plugin settings schemas ----

TEST_CASE("validate_against_schema: names pointer, origin and complaint") {
  Sandbox box;
  box.standard();
  box.write("configs/sites/s.json", "{\n  \"target\": {\n    \"builder\": {\n      \"settings\": {\n        \"memory\": \"2G\"\n      }\n    }\n  }\n}\n");
  auto options = box.options();
  options.sites = {"s"};
  options.config_dirs = {"configs"};
  InDirectory cwd(box.root);  // files under the working dir are shown relative to it
  auto loaded = load_config(options);
  auto config = resolve_config(loaded);
  const std::string schema = R"({
    "type": "object",
    "additionalProperties": false,
    "properties": {
      "memory": { "type": "integer", "minimum": 256 },
      "cpus": { "type": "integer" },
      "disks": { "type": "array", "items": { "$ref": "#/definitions/disk" } },
      "seed": { "oneOf": [ { "type": "boolean" },
                           { "type": "object", "additionalProperties": false,
                             "properties": { "wait": { "type": "boolean" }, "data": { "type": "object" } } } ] }
    },
    "definitions": { "disk": { "type": "object", "properties": { "size": { "type": "integer" } } } }
  })";
  auto check = [&](const json& settings) {
    try {
      validate_against_schema(loaded, "/target/builder/settings", settings, schema, "plugin qemu (lcake-qemu.so) builder");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(check(config.target.builder.settings) ==
        "configs/sites/s.json:5: /target/builder/settings/memory: expected integer, got string \"2G\""
        " (schema of plugin qemu (lcake-qemu.so) builder)");
  CHECK(contains(check(json::parse(R"({"memory": 100})")), "/target/builder/settings/memory: expected number greater than or equal to 256"));
  CHECK(contains(check(json::parse(R"({"memroy": 100})")), "/target/builder/settings/memroy: unknown key \"memroy\" (allowed: cpus, disks, memory, seed)"));
  CHECK(contains(check(json::parse(R"({"disks": [{"size": 1}, {"size": "big"}]})")), "/target/builder/settings/disks/1/size: expected integer, got string \"big\""));
  CHECK(check(json::parse(R"({"memory": 4096, "cpus": 2})")) == "(no error)");
  // oneOf: the branch of the value's type is the one that explains what is wrong.
  CHECK(contains(check(json::parse(R"({"seed": {"wiat": true}})")), "/target/builder/settings/seed/wiat: unknown key \"wiat\" (allowed: data, wait)"));
  CHECK(contains(check(json::parse(R"({"seed": {"wait": 3}})")), "/target/builder/settings/seed/wait: expected boolean, got integer 3"));
  CHECK(contains(check(json::parse(R"({"seed": "yes"})")), "/target/builder/settings/seed: expected boolean or object, got string \"yes\""));
  CHECK(check(json::parse(R"({"seed": {"wait": false}})")) == "(no error)");
  CHECK(check(json::parse(R"({"seed": true})")) == "(no error)");

  CHECK_THROWS_WITH_AS(validate_against_schema(loaded, "/target/builder/settings", json::object(), "{not json", "plugin x builder"),
                       doctest::Contains("plugin x builder: its settings schema is not valid JSON"), InputError);
  CHECK_THROWS_WITH_AS(validate_against_schema(loaded, "/target/builder/settings", json::object(), R"({"type": 5})", "plugin y builder"),
                       doctest::Contains("plugin y builder: invalid JSON Schema"), InputError);
  for (std::string bad : {"5", "[]", R"({"$ref": "#/definitions/nope"})", R"({"properties": 3})", R"({"pattern": "("})"}) {
    CAPTURE(bad);
    try {
      validate_against_schema(loaded, "/target/builder/settings", "text", bad, "plugin z");
      FAIL("no error");
    } catch (const InputError& e) {
      std::string what = e.what();
      CHECK(what.starts_with("plugin z: invalid JSON Schema: "));
      CHECK(!contains(what, "\n"));
    }
  }
}

TEST_CASE("json_lines: nesting deeper than 256 levels is refused with file:line, before parsing") {
  std::string deep(200000, '[');
  CHECK_THROWS_WITH_AS(parse_json_document("{\"a\":\n" + deep, "deep.json"),
                       "deep.json:2: JSON nested deeper than 256 levels: flatten the document", InputError);
  std::string ok = std::string(256, '[') + std::string(256, ']');
  CHECK_NOTHROW(parse_json_document(ok, "ok.json"));
  // Brackets inside strings do not count.
  CHECK_NOTHROW(parse_json_document("[\"" + std::string(300, '[') + "\"]", "s.json"));
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.sets = {"/vars/TAG=" + std::string(1000, '[')};
  CHECK(load_error(options) == "--set /vars/TAG: JSON nested deeper than 256 levels: flatten the document");
  box.write("configs/sites/deep.json", "{\"vars\":\n" + deep);
  options = box.options();
  options.sites = {"deep"};
  CHECK(contains(load_error(options), "deep.json:2: JSON nested deeper than 256 levels"));
}

TEST_CASE("resolve: variant names with '/' and layer names with glob characters are refused") {
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.sites = {"s"};
  box.write("configs/sites/s.json", "{\"pipeline\": {\"variants\": {\n \"centos/7\": {}}}}");
  CHECK(contains(resolve_error(options), "s.json:2: /pipeline/variants/centos~17: variant name \"centos/7\" contains '/'"));
  for (const char* name : {"st*ck", "st?ck", "st[a]ck"}) {
    box.write("configs/sites/s.json", std::string("{\"pipeline\": {\"layers\": {\n \"") + name + "\": {\"from\": \"base\"}}}}");
    std::string error = resolve_error(options);
    CHECK_MESSAGE(contains(error, "s.json:2: /pipeline/layers/"), error);
    CHECK_MESSAGE(contains(error, std::string("layer name \"") + name + "\" contains"), error);
  }
}

TEST_CASE("provenance: a value deleted by an overlay or --set is blamed on who deleted it") {
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.sites = {"s"};
  box.write("configs/sites/s.json", "{\"target\": {\n  \"builder\": {\"settings\": {\n    \"memory\": null}}}}");
  auto loaded = load_config(options);
  CHECK(loaded.provenance.origin_of("/target/builder/settings/memory")->describe().ends_with("configs/sites/s.json:3"));
  CHECK(loaded.provenance.origin_of("/target/builder/settings/memory/x")->describe().ends_with("configs/sites/s.json:3"));
  options.sets = {"/target/builder/settings/memory=4096"};  // set again: the flag, not the deletion
  CHECK(load_config(options).provenance.origin_of("/target/builder/settings/memory")->describe() ==
        "--set /target/builder/settings/memory");
  options.sets = {"/target/builder=null"};
  CHECK(load_config(options).provenance.origin_of("/target/builder/plugin")->describe() == "--set /target/builder");
}

TEST_CASE("resolve: the verifier's boots is read; anything but upload or build is refused") {
  Sandbox box;
  box.standard();
  auto options = box.options();
  options.sets = {"/target/verifier={\"plugin\": \"qemu\", \"boots\": \"build\"}"};
  CHECK(resolve_config(load_config(options)).target.verifier_boots == "build");
  options.sets = {"/target/verifier={\"plugin\": \"qemu\"}"};
  CHECK(resolve_config(load_config(options)).target.verifier_boots.empty());  // check_inputs chooses
  options.sets = {"/target/verifier={\"plugin\": \"qemu\", \"boots\": \"disk\"}"};
  CHECK(contains(resolve_error(options), "/target/verifier/boots: got \"disk\", expected one of \"upload\", \"build\""));
}

TEST_CASE("resolve: after_publish hooks; an overlay replaces the list; bad values name the file:line") {
  Sandbox box;
  box.standard();
  box.write("configs/targets/hooked.json", R"({
  "name": "hooked",
  "pipeline": "stack",
  "builder": { "plugin": "qemu" },
  "after_publish": [
    { "run": "update-boxes ${var.TAG} $LCAKE_OUTPUTS" },
    { "run": "announce", "timeout": "90s", "on": "always" }
  ]
})");
  auto target = resolve_config(load_config(box.options("hooked"))).target;
  REQUIRE(target.after_publish.size() == 2);
  CHECK(target.after_publish[0].run == "update-boxes w_2016_05 $LCAKE_OUTPUTS");
  CHECK(target.after_publish[0].timeout == std::chrono::minutes(5));
  CHECK_FALSE(target.after_publish[0].always);
  CHECK(target.after_publish[1].timeout == std::chrono::seconds(90));
  CHECK(target.after_publish[1].always);
  CHECK(target.after_publish[1].pointer == "/target/after_publish/1");
  CHECK(resolve_config(load_config(box.options())).target.after_publish.empty());

  box.write("configs/sites/quiet.json", R"({"target": {"after_publish": [{"run": "true"}]}})");
  auto options = box.options("hooked");
  options.sites = {"quiet"};
  CHECK(resolve_config(load_config(options)).target.after_publish.size() == 1);

  box.write("configs/targets/bad.json", R"({
  "name": "bad", "pipeline": "stack", "builder": { "plugin": "qemu" },
  "after_publish": [ { "run": "x", "timeout": "soon" } ]
})");
  std::string err = resolve_error(box.options("bad"));
  CHECK(contains(err, "bad.json:3: /target/after_publish/0/timeout: expected a duration"));
  options = box.options("hooked");
  options.sets = {R"(/target/after_publish/0/on="sometimes")"};
  CHECK(contains(resolve_error(options), "/target/after_publish/0/on"));
  options.sets = {R"(/target/after_publish/0={"cmd": "x"})"};
  CHECK(contains(resolve_error(options), "/target/after_publish/0"));
}
