// `lcake --target qemu` end to end on the bundled example pipeline: real
// qemu-system-x86_64 (TCG), real guests built from Debian packages, real SSH.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>

#include "hook_checks.h"
#include "lcake_process.h"
#include "secrets_check.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake::test;

namespace {

fs::path binary_dir() { return std::getenv("LCAKE_BINARY_DIR"); }

// Built once per build tree, both flavours, by the project's own script (again when it changed).
fs::path guest_dir() {
  static fs::path dir = [] {
    for (std::string flavour : {"dropbear", "openssh"}) lcake::test::test_guest(flavour);
    return binary_dir() / "tests" / "guest";
  }();
  return dir;
}


struct QemuProject {
  fs::path dir = make_temp_dir("lcake-qemu-e2e");
  QemuProject() {
    // A private copy of the bundled configs and example files, same relative layout.
    fs::copy(source_dir() / "configs", dir / "configs", fs::copy_options::recursive);
    fs::create_directories(dir / "examples");
    fs::copy(source_dir() / "examples/stack", dir / "examples/stack", fs::copy_options::recursive);
  }
  ~QemuProject() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path state() const { return dir / "state"; }

  ProcessResult lcake(std::vector<std::string> args, RunSpec spec = {}) {
    std::string command = !args.empty() && args[0].rfind("-", 0) != 0 ? args[0] : "";
    if (!command.empty()) args.erase(args.begin());
    std::vector<std::string> all;
    if (!command.empty()) all.push_back(command);
    all.insert(all.end(), {"--state-dir", state().string()});
    if (command != "artifacts" && command != "gc")
      all.insert(all.end(), {"--config-dir", (dir / "configs").string(), "--target", "qemu", "--var",
                             "GUEST_DIR=" + guest_dir().string()});
    all.insert(all.end(), args.begin(), args.end());
    spec.args = all;
    spec.cwd = dir;
    spec.env["XDG_CONFIG_HOME"] = (dir / "xdg").string();
    spec.timeout = std::chrono::seconds(600);
    auto r = run_process(lcake_binary().string(), spec);
    MESSAGE("lcake " << command << " -> " << r.exit_code << "\n" << r.err.substr(r.err.size() > 6000 ? r.err.size() - 6000 : 0));
    return r;
  }

  nlohmann::json artifacts() {
    return nlohmann::json::parse(lcake({"artifacts", "--json"}).out);
  }
  nlohmann::json find(const std::string& variant, const std::string& layer, const std::string& stage) {
    nlohmann::json found;  // the newest record of that layer and stage
    for (auto& a : artifacts())
      if (a["variant"] == variant && a["layer"] == layer && a["stage"] == stage &&
          (found.is_null() || a["created"].get<std::string>() >= found["created"].get<std::string>()))
        found = a;
    return found;
  }
};

std::string sha256(const fs::path& p) {
  RunSpec spec;
  spec.args = {p.string()};
  return run_process("/usr/bin/sha256sum", spec).out.substr(0, 64);
}

ProcessResult qemu_img(std::vector<std::string> args) {
  RunSpec spec;
  spec.args = std::move(args);
  return run_process("/usr/bin/qemu-img", spec);
}

}  // namespace

TEST_CASE("the example pipeline: two variants built, verified, cached, and rebuilt from a changed input") {
  QemuProject p;
  // base first, so we can show that building its children never writes it.
  REQUIRE(p.lcake({"--only", "*/base"}).exit_code == 0);
  fs::path base_disk = p.find("tiny-dropbear", "base", "build")["artifact"]["id"].get<std::string>();
  std::string base_sum = sha256(base_disk);

  auto cold = p.lcake({});
  REQUIRE(cold.exit_code == 0);
  CHECK(count(cold.err, "cached") == 2);
  CHECK(count(cold.err, "Processing completed successfully") >= 2);
  CHECK(sha256(base_disk) == base_sum);  // the parent is never written

  for (std::string v : {"tiny-dropbear", "tiny-openssh"}) {
    auto stack = p.find(v, "stack", "build");
    auto newinstall = p.find(v, "newinstall", "build");
    REQUIRE(stack.is_object());
    CHECK(stack["verified"] == true);
    fs::path disk = stack["artifact"]["id"].get<std::string>();
    auto check = qemu_img({"check", disk.string()});
    CHECK(check.exit_code == 0);
    auto info = nlohmann::json::parse(qemu_img({"info", "--output=json", disk.string()}).out);
    CHECK(info["backing-filename"] == newinstall["artifact"]["id"]);
    // The overlay holds only the stack layer's changes: well under the 1 GiB disk.
    CHECK(info["actual-size"].get<double>() < 16.0 * 1024 * 1024);
  }

  // The final disk boots on its own and holds every layer's changes.
  auto look = p.lcake({"verify", "--only", "tiny-openssh", "--set",
                       R"(/pipeline/verify=[{"name":"layers","run":"cat /etc/lcake-release; test -f /opt/lsst/software/stack/loadstack.sh && ls /opt/lsst/software/stack/installed/lsst_distrib","expect_output":["tiny-openssh","w_2016_05"]}])"});
  CHECK(look.exit_code == 0);

  // Second run: every layer cached, no VM started.
  auto again = p.lcake({});
  REQUIRE(again.exit_code == 0);
  CHECK(count(again.err, "cached") == 6);
  CHECK(again.err.find("booting") == std::string::npos);
  CHECK(again.err.find("building") == std::string::npos);

  // Change newinstall's input: newinstall and stack rebuild, base does not; plan says why.
  fs::path script = p.dir / "examples/stack/files/newinstall.sh";
  std::string text = read_file(script);
  write_file(script, text + "\n# a comment changes the layer key\n");
  auto plan = p.lcake({"plan"});
  CHECK(plan.exit_code == 0);
  CHECK(std::regex_search(plan.out, std::regex(R"(base\s+[0-9a-f]{12}  cached)")));
  CHECK(plan.out.find("newinstall.sh changed") != std::string::npos);
  CHECK(plan.out.find("parent layer changed") != std::string::npos);
  auto rebuilt = p.lcake({"--only", "tiny-dropbear"});
  CHECK(rebuilt.exit_code == 0);
  CHECK(rebuilt.err.find("==> tiny-dropbear/base: cached") != std::string::npos);
  CHECK(rebuilt.err.find("==> tiny-dropbear/newinstall: building") != std::string::npos);
  CHECK(rebuilt.err.find("==> tiny-dropbear/stack: building") != std::string::npos);
  CHECK(sha256(base_disk) == base_sum);

  // A demo output outside tolerance blocks publishing and names the differing rows.
  fs::path expected = p.dir / "examples/stack/files/expected/output-small.csv";
  std::string table = read_file(expected);
  auto nl = table.find('\n');
  auto comma = table.find(',', nl + 1);
  write_file(expected, table.substr(0, comma) + ",99999" + table.substr(table.find(',', comma + 1)));
  auto bad = p.lcake({"--only", "tiny-dropbear/stack", "--force"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("outside tolerance") != std::string::npos);
  CHECK(bad.err.find("row 1 column") != std::string::npos);
  auto up = p.find("tiny-dropbear", "stack", "upload");
  CHECK(up["published"] == false);
  CHECK(up["verified"] == false);
  CHECK(qemu_processes_mentioning(p.state().string()) == 0);
}

TEST_CASE("failures leave no qemu process and an empty ledger") {
  QemuProject p;
  auto no_leaks = [&] {
    CHECK(qemu_processes_mentioning(p.state().string()) == 0);
    CHECK(p.lcake({"gc"}).out.find("gc: 0 deleted") != std::string::npos);
  };
  SUBCASE("a guest that never boots") {
    // Direct kernel boot without a root file system: the kernel panics.
    auto r = p.lcake({"--only", "tiny-dropbear/base", "--set", "/target/builder/settings/ssh_timeout=25",
                      "--set", "/pipeline/variants/tiny-dropbear/sources/qemu/kernel=" + (guest_dir() / "dropbear/vmlinuz").string(),
                      "--set", "/pipeline/variants/tiny-dropbear/sources/qemu/append=console=ttyS0 rdinit=/nonexistent panic=-1"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("console") != std::string::npos);
    no_leaks();
  }
  SUBCASE("a provisioner that fails") {
    auto r = p.lcake({"--only", "tiny-dropbear/base", "--set",
                      R"(/pipeline/layers/base/provisioners/1={"type":"shell","inline":["echo about to fail","exit 3"]})"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("exited with status 3") != std::string::npos);
    no_leaks();
  }
  SUBCASE("Ctrl-C mid-provision") {
    RunSpec spec;
    spec.signal = SIGINT;
    spec.signal_when = "lcake-sleeping";
    auto r = p.lcake({"--only", "tiny-dropbear/base", "--set",
                      R"(/pipeline/layers/base/provisioners/1={"type":"shell","inline":["echo lcake-sleeping","sleep 120"]})"}, spec);
    CHECK(r.exit_code == 130);
    no_leaks();
  }
  SUBCASE("a wrong source checksum") {
    auto r = p.lcake({"--only", "tiny-dropbear/base", "--set",
                      "/pipeline/variants/tiny-dropbear/sources/qemu/checksum=sha256:" + std::string(64, '0')});
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(std::string(64, '0')) != std::string::npos);
    no_leaks();
  }
  SUBCASE("an SSH host key that does not match") {
    auto r = p.lcake({"--only", "tiny-dropbear/base", "--set",
                      "/pipeline/variants/tiny-dropbear/sources/qemu/host_key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHLs2ekZmF8Ac9jbtk5lTEhjsTs0Ug8iXDCW4TLo7ffj"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("host key") != std::string::npos);
    no_leaks();
  }
}

namespace {

ProcessResult git(std::vector<std::string> args, const fs::path& cwd = {}) {
  RunSpec spec;
  spec.args = std::move(args);
  spec.cwd = cwd;
  spec.env = {{"GIT_AUTHOR_NAME", "lcake test"}, {"GIT_AUTHOR_EMAIL", "test@lcake.invalid"},
              {"GIT_COMMITTER_NAME", "lcake test"}, {"GIT_COMMITTER_EMAIL", "test@lcake.invalid"}};
  auto r = run_process("/usr/bin/git", spec);
  if (r.exit_code != 0) throw std::runtime_error("git failed: " + r.err);
  return r;
}

}  // namespace

TEST_CASE("after_publish: both variants' IDs reach a Vagrantfile in a git repository; a failing hook un-publishes nothing") {
  QemuProject p;
  // The consumer: a repository (bare, as a server has it) with a Vagrantfile naming the boxes.
  fs::path bare = p.dir / "vagrant.git", checkout = p.dir / "vagrant";
  git({"init", "-q", "--bare", bare.string()});
  git({"clone", "-q", bare.string(), checkout.string()});
  write_file(checkout / "Vagrantfile", "BOXES = {\n"
                                       "  \"dropbear\" => \"none-yet\", # lcake:tiny-dropbear/stack\n"
                                       "  \"openssh\" => \"none-yet\", # lcake:tiny-openssh/stack\n"
                                       "}\n");
  git({"add", "Vagrantfile"}, checkout);
  git({"commit", "-q", "-m", "boxes"}, checkout);
  git({"push", "-q", "origin", "HEAD"}, checkout);

  fs::path pub = p.dir / "hook-published", always = p.dir / "hook-always";
  nlohmann::json vagrant = {{"run", "sh " + (source_dir() / "docs/examples/after-publish/update-vagrantfile.sh").string() +
                                        " " + checkout.string()}, {"timeout", "2m"}};
  nlohmann::json failing = {{"run", "echo \"pushing with $LCAKE_SECRET\"; echo 'remote said no' >&2; exit 3"}};
  nlohmann::json hooks = {{{"run", recording_hook(pub, "published")}}, vagrant, failing,
                          {{"run", recording_hook(always, "always")}, {"on", "always"}}};
  auto with_hooks = [](nlohmann::json h) { return std::vector<std::string>{"--set", "/target/after_publish=" + h.dump()}; };
  RunSpec spec;
  spec.env = {{"LCAKE_SECRET", "qemu-hook-s3cr3t"}, {"GIT_AUTHOR_NAME", "lcake"}, {"GIT_AUTHOR_EMAIL", "lcake@lcake.invalid"},
              {"GIT_COMMITTER_NAME", "lcake"}, {"GIT_COMMITTER_EMAIL", "lcake@lcake.invalid"}};

  auto cold = p.lcake(with_hooks(hooks), spec);
  CHECK(cold.exit_code == 1);  // the failing hook
  CHECK(cold.err.find("hook 3 (/target/after_publish/2) failed") != std::string::npos);
  CHECK(cold.err.find("| remote said no") != std::string::npos);
  CHECK(cold.err.find("pushing with <redacted>") != std::string::npos);
  CHECK(cold.err.find("qemu-hook-s3cr3t") == std::string::npos);
  // Nothing was un-published.
  for (auto& a : p.artifacts())
    if (a["stage"] == "upload") CHECK_MESSAGE(a["published"] == true, a["variant"] << "/" << a["layer"]);

  auto calls = hook_calls(pub);
  REQUIRE(calls.size() == 1);
  const auto outputs = calls[0]["outputs"];
  std::string run_id = calls[0]["manifest"]["run_id"];
  CHECK(calls[0]["env"]["LCAKE_TARGET"] == "qemu");
  CHECK(calls[0]["env"]["LCAKE_RUN_ID"] == run_id);
  CHECK(outputs["outputs"].size() == 6);  // two variants, three layers
  auto bad = outputs_vs_manifest(outputs, calls[0]["manifest"]);
  CHECK(bad.empty());
  for (const auto& m : bad) MESSAGE(m);
  for (std::string v : {"tiny-dropbear", "tiny-openssh"})
    for (std::string l : {"base", "newinstall", "stack"}) {
      auto e = outputs["outputs"][v + "/" + l];
      CHECK(e["type"] == "qcow2");
      CHECK(fs::is_regular_file(e["id"].get<std::string>()));
      CHECK(e["id"] == p.find(v, l, "build")["artifact"]["id"]);
    }
  // The Vagrantfile on the server names both stack disks, in a commit of this run.
  std::string served = git({"--git-dir", bare.string(), "show", "HEAD:Vagrantfile"}).out;
  for (std::string v : {"tiny-dropbear", "tiny-openssh"})
    CHECK(served.find("\"" + outputs["outputs"][v + "/stack"]["id"].get<std::string>() + "\", # lcake:" + v + "/stack") !=
          std::string::npos);
  CHECK(git({"--git-dir", bare.string(), "log", "-1", "--format=%s"}).out ==
        "images from lcake run " + run_id + " (target qemu)\n");

  // The failing hook fixed: the hooks again for that run; the Vagrantfile is current already.
  auto again = p.lcake({"publish", "--hooks", "--set", "/target/after_publish=" + nlohmann::json({hooks[0], vagrant}).dump()}, spec);
  CHECK(again.exit_code == 0);
  CHECK(again.err.find("Vagrantfile already names the current images") != std::string::npos);
  REQUIRE(hook_calls(pub).size() == 2);
  CHECK(hook_calls(pub)[1]["env"]["LCAKE_RUN_ID"] == run_id);

  // All cached: `on: published` does not run, `always` does.
  hooks.erase(2);
  auto cached = p.lcake(with_hooks(hooks), spec);
  CHECK(cached.exit_code == 0);
  CHECK(count(cached.err, "cached") == 6);
  CHECK(hook_calls(pub).size() == 2);
  CHECK(hook_calls(always).size() == 2);
  CHECK(hook_calls(always)[1]["outputs"]["outputs"] == outputs["outputs"]);

  // lcake outputs in each format says what the manifest says.
  auto doc = nlohmann::json::parse(p.lcake({"outputs"}).out);
  auto as_published = doc;  // `lcake outputs` belongs to no run: it lists nothing as just published
  CHECK(doc["published"].empty());
  as_published["published"] = outputs["published"];
  CHECK(outputs_vs_manifest(as_published, calls[0]["manifest"]).empty());
  auto formats = formats_vs_json(doc, p.lcake({"outputs", "--format", "shell"}).out,
                                 nlohmann::json::parse(p.lcake({"outputs", "--format", "tfvars"}).out));
  CHECK(formats.empty());
  for (const auto& m : formats) MESSAGE(m);
  CHECK(qemu_processes_mentioning(p.state().string()) == 0);
}

TEST_CASE("sensitive variables: no trace in output, --json, plan, config show, state or the image; rotating keeps the cache") {
  QemuProject p;
  lcake::test::secrets::check_target(
      p.dir, p.state(), guest_dir().string(),
      [&](std::vector<std::string> args, RunSpec spec) { return p.lcake(std::move(args), std::move(spec)); },
      [&](const nlohmann::json& record) {
        // The whole disk as the guest saw it (the overlay and its backing chain), as raw bytes.
        fs::path raw = p.dir / "app.raw";
        auto convert = qemu_img({"convert", "-O", "raw", record["artifact"]["id"].get<std::string>(), raw.string()});
        REQUIRE(convert.exit_code == 0);
        std::string bytes = read_file(raw);
        fs::remove(raw);
        return bytes;
      });
  CHECK(qemu_processes_mentioning(p.state().string()) == 0);
}
