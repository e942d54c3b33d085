// The runner end to end: the real lcake binary with the test suite's localdir
// backend (directories as machines, /bin/sh as communicator).
#include <doctest/doctest.h>
#include <signal.h>

#include <thread>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <regex>

#include "hook_checks.h"
#include "lcake_process.h"

namespace fs = std::filesystem;
using namespace lcake::test;

namespace {

struct Project {
  fs::path dir = make_temp_dir("lcake-e2e");
  fs::path resources = dir / "cloud";   // stand-in cloud resources live here
  fs::path remote = dir / "remote";     // the uploader's destination

  Project() {
    write_file(dir / "configs/targets/local.json", nlohmann::json({
      {"name", "local"}, {"pipeline", "demo"},
      {"builder", {{"plugin", "localdir"}, {"settings", {{"resource_dir", resources.string()}}}}},
      {"uploader", {{"plugin", "localdir"}, {"settings", {{"remote_dir", remote.string()}}}}},
      {"verifier", {{"plugin", "localdir"}, {"settings", {{"resource_dir", resources.string()}}}}}}).dump(2));
    write_file(dir / "configs/pipelines/files/newinstall.sh", "echo bootstrap > newinstall.txt\n");
    write_file(dir / "configs/pipelines/files/expected.csv", "id,value,flag\n1,2.5,ok\n2,10,ok\n");
    write_file(dir / "configs/pipelines/demo.json", R"({
      "name": "demo",
      "variables": {"TAG": {"default": "w_2016_05"}, "SLEEP": {"default": "0"}, "FAIL": {"default": "0"},
                    "VALUE": {"default": "2.5"}},
      "variants": {"a": {"sources": {"localdir": {}}}, "b": {"sources": {"localdir": {}}}},
      "layers": {
        "base": {"provisioners": [{"type": "shell", "inline": ["echo base-${variant} > base.txt"]}]},
        "newinstall": {"from": "base", "provisioners": [
          {"type": "file", "source": "files/newinstall.sh", "destination": "/opt/newinstall.sh"},
          {"type": "shell", "inline": ["sh opt/newinstall.sh"]}]},
        "stack": {"from": "newinstall", "provisioners": [
          {"type": "env", "vars": {"STACK_TAG": "${var.TAG}"}},
          {"type": "shell", "inline": ["echo \"installed $STACK_TAG\"", "echo $STACK_TAG > stack.txt",
                                         "sleep ${var.SLEEP}", "test ${var.FAIL} = 0",
                                         "printf 'id,value,flag\\n1,${var.VALUE},ok\\n2,10,ok\\n' > output.csv"]}]}
      },
      "verify": [
        {"name": "demo", "run": "cat stack.txt newinstall.txt base.txt", "expect_output": ["w_2016_05|tag-", "bootstrap"]},
        {"name": "compare", "compare": {"actual": "/output.csv", "expected": "files/expected.csv"}}
      ]
    })");
  }

  ProcessResult lcake(std::vector<std::string> args, RunSpec spec = {}) {
    std::vector<std::string> all = {"--state-dir", (dir / "state").string(), "--plugin-path",
                                    (fs::path(std::getenv("LCAKE_BINARY_DIR")) / "tests/plugins/localdir").string()};
    std::string command = !args.empty() && args[0].rfind("-", 0) != 0 ? args[0] : "";
    bool takes_config = command != "artifacts" && command != "plugins" &&
                        (command != "gc" || std::find(args.begin(), args.end(), "--target") != args.end());
    if (takes_config)
      all.insert(all.begin(), {"--config-dir", (dir / "configs").string()});
    if (!command.empty()) all.insert(all.begin(), command), args.erase(args.begin());
    all.insert(all.end(), args.begin(), args.end());
    spec.args = all;
    spec.cwd = dir;
    spec.env["XDG_CONFIG_HOME"] = (dir / "xdg").string();
    auto r = run_process(lcake_binary().string(), spec);
    MESSAGE("lcake " << args.size() << " args -> " << r.exit_code << "\n" << r.err);
    return r;
  }

  std::size_t resources_left() const {
    if (!fs::exists(resources)) return 0;
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(resources), fs::directory_iterator()));
  }

  int count(const std::string& text, const std::string& needle) const { return lcake::test::count(text, needle); }

  nlohmann::json artifacts() { return nlohmann::json::parse(lcake({"artifacts", "--json"}).out); }

  ~Project() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("build two variants, then everything is cached") {
  Project p;
  auto r = p.lcake({"--target", "local"});
  REQUIRE(r.exit_code == 0);
  CHECK(p.count(r.err, "building") == 6);
  CHECK(r.err.find("==> a/stack: installed w_2016_05") != std::string::npos);
  CHECK(fs::exists(p.remote / "a" / "stack.published"));
  CHECK(fs::exists(p.remote / "b" / "base.published"));
  // Each layer's changes are in the final artifact, the parent's upload was passed on.
  auto arts = p.artifacts();
  int verified = 0;
  for (auto& a : arts) {
    if (a["stage"] == "build" && a["layer"] == "stack") {
      fs::path root = a["artifact"]["id"].get<std::string>();
      CHECK(read_file(root / "base.txt") == "base-" + a["variant"].get<std::string>() + "\n");
      CHECK(read_file(root / "newinstall.txt") == "bootstrap\n");
      CHECK(read_file(root / "stack.txt") == "w_2016_05\n");
    }
    if (a["stage"] == "upload" && a["layer"] == "stack")
      CHECK(a["artifact"]["metadata"]["parent_upload"].get<std::string>().find("newinstall") != std::string::npos);
    verified += a["verified"].get<bool>();
  }
  CHECK(arts.size() == 12);
  CHECK(verified == 4);  // stack, built and uploaded, for both variants
  CHECK(p.resources_left() == 0);

  auto again = p.lcake({"--target", "local"});
  REQUIRE(again.exit_code == 0);
  CHECK(p.count(again.err, "building") == 0);
  CHECK(p.count(again.err, "cached") == 6);
  CHECK(again.err.find("verifying") == std::string::npos);
}

TEST_CASE("an input change rebuilds that layer and its children, and plan says why") {
  Project p;
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  write_file(p.dir / "configs/pipelines/files/newinstall.sh", "echo bootstrap2 > newinstall.txt\n");
  auto plan = p.lcake({"plan", "--target", "local"});
  REQUIRE(plan.exit_code == 0);
  CHECK(std::regex_search(plan.out, std::regex(R"(base\s+[0-9a-f]{12}  cached)")));
  CHECK(plan.out.find("input files/newinstall.sh changed") != std::string::npos);
  CHECK(plan.out.find("parent layer changed") != std::string::npos);
  CHECK(plan.out.find("never built") != std::string::npos);  // variant b
  auto r = p.lcake({"--target", "local", "--only", "a", "--var", "TAG=tag-2"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("==> a/base: cached") != std::string::npos);
  CHECK(r.err.find("==> a/newinstall: building") != std::string::npos);
  CHECK(r.err.find("==> a/stack: building") != std::string::npos);
  CHECK(r.err.find("==> b/") == std::string::npos);
}

TEST_CASE("a failing provisioner fails the variant, cleans up, publishes nothing") {
  Project p;
  auto r = p.lcake({"--target", "local", "--var", "FAIL=1", "--only", "a"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("==> a/stack: error: build failed (localdir builder): provisioner /pipeline/layers/stack/provisioners/1") != std::string::npos);
  CHECK(p.resources_left() == 0);
  CHECK(!fs::exists(p.remote / "a" / "stack.published"));
  CHECK(!fs::exists(p.remote / "a" / "base.published"));
  auto gc = p.lcake({"gc"});
  CHECK(gc.out.find("gc: 0 deleted") != std::string::npos);
}

TEST_CASE("a verify failure blocks publishing and names the differing rows") {
  Project p;
  auto r = p.lcake({"--target", "local", "--var", "VALUE=2.6", "--only", "b"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("row 1 column value: expected 2.5, got 2.6") != std::string::npos);
  CHECK(!fs::exists(p.remote / "b" / "stack.published"));
  CHECK(p.resources_left() == 0);
}

TEST_CASE("Ctrl-C cancels the running provisioner and cleans up") {
  Project p;
  RunSpec spec;
  spec.signal = SIGINT;
  spec.signal_when = "installed";
  auto t0 = std::chrono::steady_clock::now();
  auto r = p.lcake({"--target", "local", "--var", "SLEEP=60", "--only", "a"}, spec);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  CHECK(r.exit_code == 130);
  CHECK(r.err.find("interrupted") != std::string::npos);
  CHECK(p.resources_left() == 0);
  CHECK(p.lcake({"gc"}).out.find("gc: 0 deleted") != std::string::npos);
}

TEST_CASE("--on-error abort keeps a failed step's resources; gc deletes them") {
  Project p;
  auto r = p.lcake({"--target", "local", "--var", "FAIL=1", "--only", "a", "--on-error", "abort"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("left for inspection: fake-vm a-stack-build") != std::string::npos);
  CHECK(p.resources_left() == 1);
  auto gc = p.lcake({"gc"});
  CHECK(gc.exit_code == 0);
  CHECK(p.resources_left() == 0);
  CHECK(p.lcake({"gc"}).out.find("gc: 0 deleted") != std::string::npos);  // safe twice
}

TEST_CASE("a killed lcake leaves its resources to gc") {
  Project p;
  RunSpec spec;
  spec.signal = SIGKILL;
  spec.signal_when = "installed";
  auto r = p.lcake({"--target", "local", "--var", "SLEEP=3", "--only", "a"}, spec);
  CHECK(r.exit_code == 128 + SIGKILL);
  CHECK(p.resources_left() == 1);
  auto gc = p.lcake({"gc"});
  CHECK(gc.exit_code == 0);
  CHECK(p.resources_left() == 0);
  // The killed run's provisioner (sleep) is not ours to track, but the machine dir is gone.
  CHECK(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
}

TEST_CASE("bad input: one line, exit 2") {
  Project p;
  auto unknown_target = p.lcake({"--target", "nope"});
  CHECK(unknown_target.exit_code == 2);
  CHECK(unknown_target.err.find("nope") != std::string::npos);
  write_file(p.dir / "configs/targets/bad.json", R"({"name": "bad", "pipeline": "demo", "builder": {"plugin": "nosuchplugin"}})");
  auto bad_plugin = p.lcake({"--target", "bad"});
  CHECK(bad_plugin.exit_code == 2);
  CHECK(bad_plugin.err.find("nosuchplugin") != std::string::npos);
  write_file(p.dir / "configs/targets/typed.json", R"({"name": "typed", "pipeline": "demo", "builder": {"plugin": "localdir", "settings": {"memory": "2G"}}})");
  auto typed = p.lcake({"--target", "typed"});
  CHECK(typed.exit_code == 2);
  CHECK(typed.err.find("typed.json") != std::string::npos);
  CHECK(typed.err.find("/target/builder/settings/memory") != std::string::npos);
  auto bad_var = p.lcake({"--target", "local", "--var", "NOEQUALS"});
  CHECK(bad_var.exit_code == 2);
  auto bad_flag = p.lcake({"--target", "local", "--bogus"});
  CHECK(bad_flag.exit_code == 2);
  for (auto* res : {&unknown_target, &bad_plugin, &typed, &bad_var, &bad_flag})
    CHECK(p.count(res->err, "\n") == 1);
}

TEST_CASE("--json emits one JSON event per line; secrets never printed") {
  Project p;
  RunSpec spec;
  spec.env["AWS_SECRET_ACCESS_KEY"] = "s3cr3t-value-xyz";
  auto r = p.lcake({"--target", "local", "--only", "a/base", "--json", "--set", "/pipeline/layers/base/provisioners/0/inline/0=echo s3cr3t-value-xyz"}, spec);
  REQUIRE(r.exit_code == 0);
  std::istringstream lines(r.err);
  std::string line;
  int events = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j.contains("event"));
    ++events;
  }
  CHECK(events > 3);
  CHECK(r.err.find("s3cr3t-value-xyz") == std::string::npos);
  CHECK(r.err.find("<redacted>") != std::string::npos);
}

TEST_CASE("config show --origin names the file and what was overridden") {
  Project p;
  write_file(p.dir / "configs/sites/mysite.json", "{\n  \"vars\": {\n    \"TAG\": \"site-tag\"\n  }\n}\n");
  auto r = p.lcake({"config", "show", "--origin", "--target", "local", "--site", "mysite", "--var", "TAG=cli-tag"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("/vars/TAG = \"cli-tag\"    # --var TAG=cli-tag (overrides") != std::string::npos);
  CHECK(r.out.find("mysite.json:3") != std::string::npos);
}

// localcloud: localdir built again with an uploader that declares publishes-to-cloud; localdir's
// builder marks its "seal" option (finish writes .sealed) "x-lcake-cloud-default": true.
TEST_CASE("a target that publishes to a cloud: the last layer is sealed by default, shown by plan and config show") {
  Project p;
  auto cloud_target = [&](const std::string& uploader) {
    write_file(p.dir / "configs/targets/local.json", nlohmann::json({
      {"name", "local"}, {"pipeline", "demo"},
      {"builder", {{"plugin", "localdir"}, {"settings", {{"resource_dir", p.resources.string()}}}}},
      {"uploader", {{"plugin", uploader}, {"settings", {{"remote_dir", p.remote.string()}}}}},
      {"verifier", {{"plugin", "localdir"}, {"settings", {{"resource_dir", p.resources.string()}}}}}}).dump(2));
  };
  // Is the build of a/<layer> under its current key sealed?
  auto sealed = [&](const std::string& layer) {
    std::string key;
    for (auto& l : nlohmann::json::parse(p.lcake({"plan", "--target", "local", "--only", "a", "--json"}).out))
      if (l["variant"] == "a" && l["layer"] == layer) key = l["key"];
    for (auto& a : p.artifacts())
      if (a["stage"] == "build" && a["variant"] == "a" && a["layer"] == layer && a["key"] == key)
        return fs::exists(fs::path(a["artifact"]["id"].get<std::string>()) / ".sealed");
    FAIL("no build of a/" << layer << " with key " << key);
    return false;
  };
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  CHECK(!sealed("stack"));
  cloud_target("localcloud");
  auto plan = p.lcake({"plan", "--target", "local", "--only", "a"});
  REQUIRE(plan.exit_code == 0);
  CHECK(plan.out.find("builder seal: true (default for the last layer, uploaded by 'localcloud', which publishes to a cloud") !=
        std::string::npos);
  CHECK(p.count(plan.out, "builder seal:") == 2);  // the stack layer of a and of b (listed, not selected)
  CHECK(plan.out.find("recipe field 'builder' added") != std::string::npos);  // a new key: not the unsealed build
  auto json_plan = nlohmann::json::parse(p.lcake({"plan", "--target", "local", "--only", "a", "--json"}).out);
  for (auto& l : json_plan)
    if (l["variant"] == "a")
      CHECK(l["builder_defaults"].size() == (l["layer"] == "stack" ? 1u : 0u));
  auto shown = p.lcake({"config", "show", "--origin", "--target", "local"});
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.out.find("/pipeline/layers/stack/builder/seal = true    # default for the last layer, uploaded by 'localcloud'") !=
        std::string::npos);
  CHECK(nlohmann::json::parse(p.lcake({"config", "show", "--target", "local"}).out)["pipeline"]["layers"]["stack"]["builder"]["seal"] == true);

  auto built = p.lcake({"--target", "local", "--only", "a"});
  REQUIRE(built.exit_code == 0);
  CHECK(p.count(built.err, "building") == 1);  // stack only: base and newinstall are cached
  CHECK(sealed("stack"));
  CHECK(!sealed("newinstall"));
  // "seal": false on the layer keeps it off.
  auto off = p.lcake({"plan", "--target", "local", "--only", "a", "--set", "/pipeline/layers/stack/builder/seal=false"});
  REQUIRE(off.exit_code == 0);
  CHECK(off.out.find("builder seal:") == std::string::npos);
}

TEST_CASE("gc --target removes superseded, unpublished artifacts only: the upload, then the build") {
  Project p;
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  // A new TAG supersedes the stack layer; a failed verify keeps it unpublished.
  REQUIRE(p.lcake({"--target", "local", "--only", "a", "--var", "TAG=tag-2", "--var", "VALUE=9"}).exit_code == 1);
  std::string unpublished_stack, unpublished_upload;
  std::vector<std::string> published;
  for (auto& a : p.artifacts()) {
    if (a["layer"] == "stack" && !a["published"].get<bool>())
      (a["stage"] == "build" ? unpublished_stack : unpublished_upload) = a["artifact"]["id"];
    if (a["published"].get<bool>()) published.push_back(a["artifact"]["id"]);
  }
  REQUIRE(!unpublished_stack.empty());
  REQUIRE(!unpublished_upload.empty());
  REQUIRE(fs::exists(unpublished_stack));
  REQUIRE(fs::exists(unpublished_upload));
  auto gc = p.lcake({"gc", "--target", "local"});  // current config: TAG default again
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("2 superseded artifact(s)") != std::string::npos);
  CHECK(!fs::exists(unpublished_stack));
  CHECK(!fs::exists(unpublished_upload));
  for (const auto& id : published) CHECK_MESSAGE(fs::exists(id), id);
  // The current (published) chain is intact and still cached.
  auto again = p.lcake({"--target", "local", "--only", "a"});
  CHECK(again.exit_code == 0);
  CHECK(p.count(again.err, "building") == 0);
}

TEST_CASE("gc --target and outputs need no value that only the verifier uses") {
  Project p;
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  REQUIRE(p.lcake({"--target", "local", "--only", "a", "--var", "TAG=tag-2", "--var", "VALUE=9"}).exit_code == 1);
  // As aws-ami's SSH_CIDR: a variable without a value, used by the verifier's settings only.
  const std::vector<std::string> cidr = {"--set", "/pipeline/variables/VERIFY_DIR={}", "--set",
                                         "/target/verifier/settings/resource_dir=${var.VERIFY_DIR}"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), cidr.begin(), cidr.end());
    return args;
  };
  auto plan = p.lcake(with({"plan", "--target", "local"}));
  CHECK(plan.exit_code == 2);  // a build, plan or verify needs it
  CHECK(plan.err.find("/target/verifier/settings/resource_dir: ${var.VERIFY_DIR} has no value") != std::string::npos);
  auto gc = p.lcake(with({"gc", "--target", "local"}));
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("2 superseded artifact(s)") != std::string::npos);  // the keys are a build's
  auto outputs = p.lcake(with({"outputs", "--target", "local"}));
  CHECK(outputs.exit_code == 0);
  CHECK(outputs.out.find("\"a\"") != std::string::npos);
  auto again = p.lcake({"--target", "local", "--only", "a"});
  CHECK(again.exit_code == 0);
  CHECK(p.count(again.err, "building") == 0);
}

TEST_CASE("two lcake processes building the same layers at once agree") {
  Project p;
  RunSpec slow;
  std::vector<std::string> args = {"--target", "local", "--only", "a", "--var", "SLEEP=1"};
  ProcessResult r1, r2;
  std::thread t([&] { r1 = p.lcake(args); });
  r2 = p.lcake(args);
  t.join();
  CHECK(r1.exit_code == 0);
  CHECK(r2.exit_code == 0);
  // Each layer was built once; the other process waited and reused it.
  CHECK(p.count(r1.err + r2.err, "building (key") == 3);
  CHECK(p.artifacts().size() == 6);
}

TEST_CASE("a new upload of a verified build is verified again before it is published") {
  Project p;
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  auto r = p.lcake({"--target", "local", "--only", "a", "--set",
                    "/target/uploader/settings/remote_dir=" + (p.dir / "remote2").string()});
  REQUIRE(r.exit_code == 0);
  CHECK(p.count(r.err, "building") == 0);
  CHECK(p.count(r.err, "uploading") == 3);
  CHECK(p.count(r.err, "verifying") == 1);
  CHECK(fs::exists(p.dir / "remote2" / "a" / "stack.published"));
}

TEST_CASE("--force rebuilds the named layers only, not the parents they need") {
  Project p;
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  auto r = p.lcake({"--target", "local", "--only", "a/newinstall", "--force"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("==> a/base: cached") != std::string::npos);
  CHECK(r.err.find("==> a/newinstall: building") != std::string::npos);
  CHECK(r.err.find("==> a/stack") == std::string::npos);
}

// Each bad input through the real binary: exit 2, one line, naming where (tests/bad-inputs.md).
TEST_CASE("bad input sweep: checked before anything runs, one line, exit 2") {
  Project p;
  write_file(p.dir / "deep.json", "{\"vars\":\n" + std::string(200000, '['));
  write_file(p.dir / "configs/targets/noverifier.json",
             R"({"name": "noverifier", "pipeline": "demo", "builder": {"plugin": "localdir"},
  "uploader": {"plugin": "localdir", "settings": {"remote_dir": ")" + p.remote.string() + R"("}}})");
  write_file(p.dir / "configs/targets/typo.json", "{\"name\": \"typo\", \"pipeline\": \"demo\",\n \"builder\": {\"plugin\": \"localdri\"}}");
  struct Case {
    std::vector<std::string> args;
    std::string expected;  // a regex the one line must contain
  };
  std::vector<Case> cases = {
      {{"plan", "--target", "local", "--overlay", "deep.json"}, "deep.json:2: JSON nested deeper than 256 levels"},
      {{"build", "--target", "local", "--parallel", "0"}, "--parallel 0: must be 1 or more"},
      {{"plan", "--target", "local", "--emit", "xml"}, "--emit xml: say github-actions, gitlab or json"},
      {{"plan", "--target", "local", "--only", "c", "--only", "a/nope"},
       "--only c, a/nope: matches no variant or variant/layer; variants: a, b; layers: base, newinstall, stack"},
      {{"build", "--target", "local", "--only", "zz"}, "--only zz: matches no variant"},
      {{"plan", "--target", "local", "--set", "/pipeline/variants/a~1b={}"},
       "--set /pipeline/variants/a~1b: /pipeline/variants/a~1b: variant name \"a/b\" contains '/'"},
      {{"plan", "--target", "local", "--set", "/pipeline/layers/st*={\"from\": \"stack\"}"}, "layer name \"st\\*\" contains '\\*'"},
      {{"plan", "--target", "noverifier"}, "noverifier.json:1: /target/verifier: the target has no verifier, but the pipeline has verify steps \\(a/stack, b/stack\\)"},
      {{"config", "validate", "--target", "local", "--set", "/target/verifier=null"},
       "--set /target/verifier: /target/verifier: the target has no verifier.*--no-verify"},
      {{"plan", "--target", "typo"}, "typo.json:2: /target/builder/plugin: no plugin named 'localdri' \\(did you mean 'localdir'\\?\\)"},
      {{"plan", "--target", "local", "--set", "/pipeline/layers/newinstall/provisioners/0/source=files/gone.sh"},
       "--set /pipeline/layers/newinstall/provisioners/0/source: /pipeline/layers/newinstall/provisioners/0/source: input .*gone.sh does not exist"},
      {{"plan", "--target", "local", "--set", "/pipeline/verify/1/compare/expected=files/gone.csv"},
       "/pipeline/verify/1/compare/expected: expected file .*gone.csv does not exist"},
      {{"plan", "--target", "local", "--set", "/pipeline/variants/a/sources/localdir/dir=/no/such/dir"},
       "/pipeline/variants/a/sources/localdir/dir: no such directory /no/such/dir"},
      {{"plan", "--target", "local", "--set", "/pipeline/layers/stack/publish/label=7"},
       "--set /pipeline/layers/stack/publish/label: /pipeline/layers/stack/publish/label: expected string, got integer 7"},
      {{"config", "validate", "--target", "local", "--set", "/pipeline/layers/base/builder/tarbal=true"},
       "/pipeline/layers/base/builder/tarbal: unknown key \"tarbal\""},
      {{"plan", "--target", "local", "--set", "/target/verifier/boots=upload", "--set", "/target/uploader=null"},
       "/target/verifier/boots: \"boots\": \"upload\" but the target has no uploader"},
  };
  for (const auto& c : cases) {
    auto r = p.lcake(c.args);
    INFO(c.expected);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(p.count(r.err, "\n") == 1);
    CHECK(std::regex_search(r.err, std::regex(c.expected)));
  }
  CHECK(p.resources_left() == 0);
  CHECK(!fs::exists(p.remote));  // nothing ran
}

TEST_CASE("--no-verify lets a target without a verifier publish; no verify step runs") {
  Project p;
  write_file(p.dir / "configs/targets/noverifier.json",
             R"({"name": "noverifier", "pipeline": "demo", "builder": {"plugin": "localdir"},
  "uploader": {"plugin": "localdir", "settings": {"remote_dir": ")" + p.remote.string() + R"("}}})");
  CHECK(p.lcake({"config", "validate", "--target", "noverifier", "--no-verify"}).exit_code == 0);
  auto r = p.lcake({"--target", "noverifier", "--only", "a", "--no-verify"});
  REQUIRE(r.exit_code == 0);
  CHECK(p.count(r.err, "verifying") == 0);
  CHECK(fs::exists(p.remote / "a" / "stack.published"));
}

TEST_CASE("--no-publish: built, uploaded and verified, nothing published until `lcake publish`") {
  Project p;
  auto r = p.lcake({"--target", "local", "--only", "a", "--no-publish"});
  REQUIRE(r.exit_code == 0);
  CHECK(p.count(r.err, "verifying") >= 1);
  CHECK(r.err.find("a: not published (--no-publish)") != std::string::npos);
  CHECK(!fs::exists(p.remote / "a" / "stack.published"));
  auto again = p.lcake({"--target", "local", "--only", "a", "--no-publish"});
  REQUIRE(again.exit_code == 0);
  CHECK(p.count(again.err, "building") == 0);
  CHECK(!fs::exists(p.remote / "a" / "stack.published"));
  auto pub = p.lcake({"publish", "--target", "local", "--only", "a"});
  REQUIRE(pub.exit_code == 0);
  CHECK(fs::exists(p.remote / "a" / "stack.published"));
}

TEST_CASE("the verifier boots the build when the target says so") {
  Project p;
  auto r = p.lcake({"--target", "local", "--only", "a", "--set", "/target/verifier/boots=build"});
  REQUIRE(r.exit_code == 0);
  // The localdir verifier logs the candidate it boots: the build store, not the remote copy.
  std::smatch m;
  REQUIRE(std::regex_search(r.err, m, std::regex("booting candidate (\\S+)")));
  CHECK(m[1].str().find((p.dir / "state").string()) == 0);
  CHECK(fs::exists(p.remote / "a" / "stack.published"));
}

TEST_CASE("a plugin's complaint about its own input names the full pointer and who set it") {
  Project p;
  auto r = p.lcake({"--target", "local", "--only", "a/base", "--set", "/pipeline/layers/base/builder/refuse=no bases today"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--set /pipeline/layers/base/builder/refuse: /pipeline/layers/base/builder/refuse: no bases today") !=
        std::string::npos);
  CHECK(p.resources_left() == 0);
}

namespace {

std::string hooks_json(const nlohmann::json& hooks) { return "/target/after_publish=" + hooks.dump(); }

nlohmann::json manifest_of(Project& p, const std::string& run_id) {
  return nlohmann::json::parse(read_file(p.dir / "state/runs" / (run_id + ".json")));
}

bool process_running(const fs::path& pidfile) {
  std::string pid = read_file(pidfile);
  while (!pid.empty() && (pid.back() == '\n')) pid.pop_back();
  std::string stat = fs::exists("/proc/" + pid + "/stat") ? read_file("/proc/" + pid + "/stat") : "";
  auto close = stat.rfind(')');
  return close != std::string::npos && stat[close + 2] != 'Z';
}

}  // namespace

TEST_CASE("after_publish hooks get every layer's published IDs; `on` decides; publish --hooks; lcake outputs") {
  Project p;
  fs::path pub = p.dir / "hook-published", always = p.dir / "hook-always";
  std::vector<std::string> set = {"--set", hooks_json({{{"run", recording_hook(pub, "published")}},
                                                       {{"run", recording_hook(always, "always")}, {"on", "always"}, {"timeout", "1m"}}})};
  auto args = [&](std::vector<std::string> a) {
    a.insert(a.end(), {"--target", "local"});
    a.insert(a.end(), set.begin(), set.end());
    return a;
  };
  auto cold = p.lcake(args({}));
  REQUIRE(cold.exit_code == 0);
  auto calls = hook_calls(pub);
  REQUIRE(calls.size() == 1);
  REQUIRE(hook_calls(always).size() == 1);
  const nlohmann::json call = calls[0];  // a copy: calls is read again below
  std::string run_id = call["manifest"]["run_id"];
  CHECK(call["env"]["LCAKE_TARGET"] == "local");
  CHECK(call["env"]["LCAKE_RUN_ID"] == run_id);
  CHECK(call["env"]["LCAKE_RUN_STATUS"] == "ok");
  CHECK(call["env"]["LCAKE_MANIFEST"] == (p.dir / "state/runs" / (run_id + ".json")).string());
  CHECK(call["env"]["LCAKE_OUTPUTS"] == (p.dir / "state/runs" / (run_id + ".outputs.json")).string());
  CHECK(cold.err.find("==> after_publish: hook published saw run " + run_id) != std::string::npos);
  // Both variants, all three layers, each the published upload the manifest names.
  const nlohmann::json outputs = call["outputs"];
  CHECK(outputs["target"] == "local");
  CHECK(outputs["run_id"] == run_id);
  CHECK(outputs["outputs"].size() == 6);
  CHECK(outputs_vs_manifest(outputs, call["manifest"]).empty());
  for (const auto& m : outputs_vs_manifest(outputs, call["manifest"])) MESSAGE(m);
  for (std::string v : {"a", "b"})
    for (std::string l : {"base", "newinstall", "stack"}) {
      auto e = outputs["outputs"][v + "/" + l];
      CHECK(e["id"].get<std::string>().find(v) != std::string::npos);
      CHECK(e["region"].is_null());
      CHECK(e["verified"] == true);
    }
  // The manifest records the hooks.
  auto final_manifest = manifest_of(p, run_id);
  REQUIRE(final_manifest["after_publish"].size() == 2);
  CHECK(final_manifest["after_publish"][0]["status"] == "ok");

  // Again for that run: the same IDs, the same run id.
  auto again = p.lcake(args({"publish", "--hooks"}));
  CHECK(again.exit_code == 0);
  calls = hook_calls(pub);
  REQUIRE(calls.size() == 2);
  CHECK(calls[1]["env"]["LCAKE_RUN_ID"] == run_id);
  CHECK(calls[1]["outputs"]["outputs"] == outputs["outputs"]);
  CHECK(p.count(again.err, "building") == 0);

  // Everything cached: nothing published, so only the `always` hook runs.
  auto cached = p.lcake(args({}));
  CHECK(cached.exit_code == 0);
  CHECK(hook_calls(pub).size() == 2);
  auto always_calls = hook_calls(always);
  REQUIRE(always_calls.size() == 3);
  CHECK(always_calls[2]["outputs"]["published"].empty());
  CHECK(always_calls[2]["outputs"]["outputs"] == outputs["outputs"]);
  CHECK(cached.err.find("skipped: on: published, and this run published nothing") != std::string::npos);

  // lcake outputs: the same, in each format.
  auto json_out = p.lcake(args({"outputs"}));
  REQUIRE(json_out.exit_code == 0);
  auto doc = nlohmann::json::parse(json_out.out);
  CHECK(doc["outputs"] == outputs["outputs"]);
  CHECK(doc["schema"] == "lcake-outputs/1");
  CHECK(outputs_schema_errors(doc).empty());
  for (const auto& m : outputs_schema_errors(doc)) MESSAGE(m);
  auto broken = doc;  // the schema check is real
  broken["outputs"]["a/base"].erase("id");
  CHECK_FALSE(outputs_schema_errors(broken).empty());
  broken = doc;
  broken["outputs"]["a/base"]["region"] = 7;
  CHECK_FALSE(outputs_schema_errors(broken).empty());
  auto shell = p.lcake(args({"outputs", "--format", "shell"}));
  auto tfvars = p.lcake(args({"outputs", "--format", "tfvars"}));
  REQUIRE(shell.exit_code == 0);
  REQUIRE(tfvars.exit_code == 0);
  auto bad = formats_vs_json(doc, shell.out, nlohmann::json::parse(tfvars.out));
  CHECK(bad.empty());
  for (const auto& m : bad) MESSAGE(m);
  CHECK(shell.out.find("LCAKE_A_STACK_ID='") != std::string::npos);
  // The shell form is for `.` or eval.
  RunSpec sh;
  sh.args = {"-c", "eval \"$1\"; printf %s \"$LCAKE_B_NEWINSTALL_ID\"", "sh", shell.out};
  CHECK(run_process("/bin/sh", sh).out == doc["outputs"]["b/newinstall"]["id"].get<std::string>());
}

TEST_CASE("a failing hook: exit 1 with its output, redacted; the others run; nothing un-published") {
  Project p;
  fs::path rec = p.dir / "hook-rec";
  RunSpec spec;
  spec.env["LCAKE_SECRET"] = "hook-s3cr3t-value";
  auto r = p.lcake({"--target", "local", "--set",
                    hooks_json({{{"run", "echo \"token $LCAKE_SECRET\"; echo about to fail >&2; exit 4"}},
                                {{"run", recording_hook(rec, "second")}}})}, spec);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("hook 1 (/target/after_publish/0) failed") != std::string::npos);
  CHECK(r.err.find("exited with 4") != std::string::npos);
  CHECK(r.err.find("| about to fail") != std::string::npos);
  CHECK(r.err.find("token <redacted>") != std::string::npos);
  CHECK(r.err.find("hook-s3cr3t-value") == std::string::npos);
  CHECK(r.err.find("lcake publish --target local --hooks") != std::string::npos);
  auto calls = hook_calls(rec);
  REQUIRE(calls.size() == 1);  // the next hook still ran
  CHECK(calls[0]["outputs"]["outputs"].size() == 6);
  int published = 0;
  for (auto& a : p.artifacts()) published += a["stage"] == "upload" && a["published"] == true;
  CHECK(published == 6);
  std::string run_id = calls[0]["manifest"]["run_id"];
  std::string manifest = read_file(p.dir / "state/runs" / (run_id + ".json"));
  CHECK(manifest.find("hook-s3cr3t-value") == std::string::npos);
  auto m = nlohmann::json::parse(manifest);
  CHECK(m["status"] == "failed");
  CHECK(m["after_publish"][0]["status"] == "failed");
  CHECK(m["after_publish"][0]["exit_code"] == 4);
  CHECK(m["after_publish"][1]["status"] == "ok");
  // The variants themselves are fine.
  CHECK(m["variants"]["a"]["status"] == "ok");
}

TEST_CASE("a hook that times out, or is interrupted, is killed with its process group") {
  Project p;
  REQUIRE(p.lcake({"--target", "local", "--only", "a"}).exit_code == 0);
  fs::path pidfile = p.dir / "sleeper.pid";
  std::string sleeper = "sleep 300 & echo $! > '" + pidfile.string() + "'; echo \"hook-\"\"sleeping\"; wait";  // the output, not the command, says hook-sleeping
  SUBCASE("timeout") {
    auto t0 = std::chrono::steady_clock::now();
    auto r = p.lcake({"publish", "--target", "local", "--hooks", "--set",
                      hooks_json({{{"run", sleeper}, {"timeout", "2s"}}})});
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("timed out after 2s (/target/after_publish/0/timeout); killed") != std::string::npos);
    CHECK(r.err.find("| hook-sleeping") != std::string::npos);
  }
  SUBCASE("Ctrl-C") {
    RunSpec spec;
    spec.signal = SIGINT;
    spec.signal_when = "hook-sleeping";
    auto t0 = std::chrono::steady_clock::now();
    auto r = p.lcake({"publish", "--target", "local", "--hooks", "--set", hooks_json({{{"run", sleeper}}})}, spec);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
    CHECK(r.exit_code == 130);
  }
  REQUIRE(fs::exists(pidfile));
  CHECK_FALSE(process_running(pidfile));  // the hook's child, not only the shell
  CHECK(p.lcake({"gc"}).out.find("gc: 0 deleted") != std::string::npos);
}

TEST_CASE("after_publish and lcake outputs: bad input is one line, exit 2") {
  Project p;
  auto one_line = [](const ProcessResult& r, const std::string& needle) {
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  one_line(p.lcake({"plan", "--target", "local", "--set", hooks_json({{{"run", "true"}, {"timeout", "soon"}}})}),
           "/target/after_publish/0/timeout: expected a duration");
  one_line(p.lcake({"plan", "--target", "local", "--set", hooks_json({{{"run", "true"}, {"on", "sometimes"}}})}),
           "/target/after_publish/0/on");
  one_line(p.lcake({"plan", "--target", "local", "--set", hooks_json({{{"command", "true"}}})}),
           "/target/after_publish/0");
  one_line(p.lcake({"publish", "--target", "local", "--hooks"}), "target local has no after_publish hooks");
  one_line(p.lcake({"publish", "--target", "local", "--hooks", "--set", hooks_json({{{"run", "true"}}})}),
           "has no finished build or publish run");
  one_line(p.lcake({"outputs", "--target", "local", "--format", "xml"}), "--format: 'xml' is not json, shell or tfvars");
  auto empty = p.lcake({"outputs", "--target", "local"});
  CHECK(empty.exit_code == 0);
  CHECK(nlohmann::json::parse(empty.out)["outputs"].empty());
}
