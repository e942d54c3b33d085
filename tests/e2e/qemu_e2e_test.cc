// `lcake --target qemu` end to end on the bundled example pipeline: real
// qemu-system-x86_64 (TCG), real guests built from Debian packages, real SSH.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>

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

// Processes whose command line mentions `needle` (e.g. our state dir).
int processes_mentioning(const std::string& needle) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmd = read_file(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("qemu-system") != std::string::npos && cmd.find(needle) != std::string::npos) ++n;
  }
  return n;
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
  CHECK(processes_mentioning(p.state().string()) == 0);
}

TEST_CASE("failures leave no qemu process and an empty ledger") {
  QemuProject p;
  auto no_leaks = [&] {
    CHECK(processes_mentioning(p.state().string()) == 0);
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
  CHECK(processes_mentioning(p.state().string()) == 0);
}
