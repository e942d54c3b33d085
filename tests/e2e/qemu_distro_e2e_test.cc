// `lcake --target` on a real distribution: the test suite's own Debian 12 guest (systemd,
// OpenSSH, cloud-init; no baked-in access, scripts/build-distro-guest.sh) standing in for a
// stock cloud image, booted by the qemu builder under TCG. One variant, two layers; issue 10:
// --on-error abort keeps the VM, no leaked source copy, dead ends fail fast, no lcake key in
// the artifact, provisioning after cloud-init, sudo/run_as/execute_command, generalize,
// source boot-setting changes linked not copied.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>

#include "lcake_process.h"

namespace fs = std::filesystem;
using namespace lcake::test;

namespace {

ProcessResult sh(const std::string& command, std::chrono::seconds timeout = std::chrono::seconds(120)) {
  RunSpec spec;
  spec.args = {"-c", command};
  spec.timeout = timeout;
  return run_process("/bin/sh", spec);
}

// Built once per machine (minutes: mmdebstrap), under the script's lock, and kept outside the
// build tree so a fresh checkout (CI) finds it: $LCAKE_DISTRO_GUEST_DIR, else
// /var/cache/lcake/distro-guest/<first 12 hex of the script's sha256>, one directory per version
// of the script so a worktree with another version never rebuilds a guest in use. Exit 77
// (skipped) when it cannot be built.
fs::path distro_guest() {
  static fs::path dir = [] {
    if (::geteuid() != 0 || std::system("command -v mmdebstrap >/dev/null") != 0) {
      MESSAGE("skipped: needs root and mmdebstrap (scripts/setup-deps.sh --tests)");
      std::exit(77);
    }
    fs::path script = source_dir() / "scripts/build-distro-guest.sh";
    fs::path d;
    if (const char* env = std::getenv("LCAKE_DISTRO_GUEST_DIR"); env && *env) {
      d = env;
    } else {
      auto version = sh("sha256sum '" + script.string() + "'").out.substr(0, 12);
      REQUIRE(version.size() == 12);
      d = fs::path("/var/cache/lcake/distro-guest") / version;
    }
    fs::create_directories(d.parent_path());
    auto cmd = "bash '" + script.string() + "' '" + d.string() +
               "' --reuse > '" + d.string() + ".log' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      MESSAGE("skipped: building the Debian guest failed (mirror unreachable?): see " << d.string() << ".log\n"
                                                                                       << read_file(d.string() + ".log"));
      std::exit(77);
    }
    return d;
  }();
  return dir;
}


const char* kTarget = R"json({
  "name": "deb",
  "pipeline": "deb",
  "builder": {"plugin": "qemu", "settings": {"accelerator": "auto", "memory": 768, "ssh_user": "debian",
              "ssh_timeout": 900}},
  "uploader": {"plugin": "qemu", "settings": {}},
  "verifier": {"plugin": "qemu", "settings": {"accelerator": "auto", "memory": 768, "ssh_user": "debian",
               "ssh_timeout": 900}}
})json";

// APPEND and FAIL_AT come from --var. cloud-init's locale module runs as on a stock image (the
// guest has en_US.UTF-8 generated: scripts/build-distro-guest.sh), and the base layer checks that
// cloud-init ended in status done.
const char* kPipeline = R"json({
  "name": "deb",
  "variables": {
    "GUEST": {"default": "/nonexistent"},
    "APPEND": {"default": "root=LABEL=lcake-root rw console=ttyS0 no_timer_check"},
    "FAIL_AT": {"default": "none"}
  },
  "variants": {
    "debian": {
      "sources": {
        "qemu": {
          "disk": "${var.GUEST}/base.qcow2",
          "checksum": "file:${var.GUEST}/base.qcow2.sha256",
          "kernel": "${var.GUEST}/vmlinuz",
          "initrd": "${var.GUEST}/initrd.img",
          "append": "${var.APPEND}",
          "cloud_init": {
            "user_data": {"write_files": [{"path": "/etc/lcake-seeded", "content": "from user_data\n"}]},
            "meta_data": {"local-hostname": "lcake-deb"}
          }
        }
      }
    }
  },
  "layers": {
    "base": {
      "provisioners": [
        {"type": "shell", "timeout": "2m", "inline": [
          "cloud-init status | tee /tmp/ci-status",
          "grep -q 'status: done' /tmp/ci-status",
          "test \"$(id -un)\" = debian",
          "grep -q 'from user_data' /etc/lcake-seeded",
          "test \"$(hostname)\" = lcake-deb",
          "echo provisioned-as-$(id -un)"
        ]},
        {"type": "shell", "sudo": true, "timeout": "1m", "inline": [
          "test \"$(id -u)\" = 0",
          "echo base > /etc/lcake-layer",
          "echo 'lcake test' > /root/.bash_history"
        ]},
        {"type": "shell", "execute_command": "sudo -n env LCAKE_VIA=template sh {{path}}", "timeout": "1m", "inline": [
          "test \"$LCAKE_VIA\" = template",
          "test \"$(id -u)\" = 0"
        ]}
      ],
      "verify": [
        {"name": "layer file as root", "run": "cat /etc/lcake-layer; id -un", "sudo": true,
         "expect_output": ["(^|\n)base\nroot"]}
      ]
    },
    "app": {
      "from": "base",
      "builder": {"generalize": true},
      "provisioners": [
        {"type": "shell", "run_as": "root", "timeout": "1m", "inline": [
          "echo app >> /etc/lcake-layer",
          "[ '${var.FAIL_AT}' != app ]"
        ]}
      ],
      "verify": [
        {"name": "both layers", "run": "cat /etc/lcake-layer", "expect_output": ["base\napp"]},
        {"name": "cloud-init ran again on the generalized image", "run": "cloud-init status", "expect_output": ["done"]}
      ]
    }
  }
})json";

struct Project {
  fs::path dir = make_temp_dir("lcake-distro-e2e");
  Project() {
    write_file(dir / "configs/targets/deb.json", kTarget);
    write_file(dir / "configs/pipelines/deb.json", kPipeline);
  }
  ~Project() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path state() const { return dir / "state"; }
  ProcessResult lcake(std::vector<std::string> args) {
    std::string command = !args.empty() && args[0].rfind("-", 0) != 0 ? args[0] : "";
    if (!command.empty()) args.erase(args.begin());
    std::vector<std::string> all;
    if (!command.empty()) all.push_back(command);
    all.insert(all.end(), {"--state-dir", state().string()});
    if (command != "artifacts" && command != "gc")
      all.insert(all.end(), {"--config-dir", (dir / "configs").string(), "--target", "deb", "--var",
                             "GUEST=" + distro_guest().string()});
    all.insert(all.end(), args.begin(), args.end());
    RunSpec spec;
    spec.args = all;
    spec.cwd = dir;
    spec.env["XDG_CONFIG_HOME"] = (dir / "xdg").string();
    spec.timeout = std::chrono::seconds(1500);
    auto r = run_process(lcake_binary().string(), spec);
    MESSAGE("lcake " << command << " -> " << r.exit_code << "\n"
                     << r.err.substr(r.err.size() > 8000 ? r.err.size() - 8000 : 0));
    return r;
  }
  nlohmann::json find(const std::string& layer, const std::string& stage) {
    nlohmann::json found;
    for (auto& a : nlohmann::json::parse(lcake({"artifacts", "--json"}).out))
      if (a["layer"] == layer && a["stage"] == stage &&
          (found.is_null() || a["created"].get<std::string>() >= found["created"].get<std::string>()))
        found = a;
    return found;
  }
  // Source copies in the first layer's store dirs.
  int source_copies() {
    int n = 0;
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(state() / "store", ec))
      if (e.path().filename().string().rfind("source-", 0) == 0) ++n;
    return n;
  }
};

// A file of the powered-off disk's root file system, read offline (debugfs on a raw copy).
struct OfflineDisk {
  fs::path raw;
  explicit OfflineDisk(const fs::path& qcow2, const fs::path& scratch) : raw(scratch / (qcow2.stem().string() + ".raw")) {
    auto r = sh("qemu-img convert -U -O raw '" + qcow2.string() + "' '" + raw.string() + "'", std::chrono::seconds(600));
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  ~OfflineDisk() {
    std::error_code ec;
    fs::remove(raw, ec);
  }
  std::string cat(const std::string& path) { return sh("debugfs -R 'cat " + path + "' '" + raw.string() + "' 2>/dev/null").out; }
  bool exists(const std::string& path) {
    return sh("debugfs -R 'stat " + path + "' '" + raw.string() + "' 2>&1").out.find("File not found") == std::string::npos;
  }
  std::string ls(const std::string& path) { return sh("debugfs -R 'ls " + path + "' '" + raw.string() + "' 2>&1").out; }
};

}  // namespace

TEST_CASE("a real distribution: Debian with systemd and cloud-init, two layers") {
  Project p;
  auto dead_end_append = "--var=APPEND=root=/dev/vdz rw console=ttyS0 no_timer_check";

  // 5, 6, 7, 8: the whole pipeline (verified below, so the candidate can be hashed first).
  auto built = p.lcake({"--no-verify"});
  REQUIRE(built.exit_code == 0);
  auto waited = built.err.find("cloud-init finished");
  auto first_provisioner = built.err.find("provisioner 1/3");
  CHECK(waited != std::string::npos);
  CHECK(first_provisioner != std::string::npos);
  CHECK(waited < first_provisioner);
  CHECK(built.err.find("provisioned-as-debian") != std::string::npos);
  CHECK(built.err.find("removed lcake's build key") != std::string::npos);
  CHECK(built.err.find("generalizing the image") != std::string::npos);
  auto base = p.find("base", "build");
  auto app = p.find("app", "build");
  REQUIRE(base.is_object());
  REQUIRE(app.is_object());

  // 4: a verify boot does not change the candidate.
  fs::path app_disk = app["artifact"]["id"].get<std::string>();
  auto sum = [](const fs::path& f) { return sh("sha256sum '" + f.string() + "'").out.substr(0, 64); };
  auto before = sum(app_disk);
  REQUIRE(p.lcake({"verify"}).exit_code == 0);
  CHECK(sum(app_disk) == before);
  CHECK(p.find("base", "build")["verified"] == true);
  CHECK(p.find("app", "build")["verified"] == true);

  // 4, 8: offline, no lcake key in either artifact; the generalized one is clean.
  {
    OfflineDisk disk(fs::path(base["artifact"]["id"].get<std::string>()), p.dir);
    for (auto f : {"/home/debian/.ssh/authorized_keys", "/root/.ssh/authorized_keys"})
      CHECK_MESSAGE(disk.cat(f).find("ssh-ed25519") == std::string::npos, f);
    CHECK(disk.cat("/etc/lcake-layer") == "base\n");
    CHECK(!disk.cat("/etc/machine-id").empty());  // not generalized: base keeps its identity
  }
  {
    OfflineDisk disk(app_disk, p.dir);
    for (auto f : {"/home/debian/.ssh/authorized_keys", "/root/.ssh/authorized_keys"})
      CHECK_MESSAGE(disk.cat(f).find("ssh-ed25519") == std::string::npos, f);
    CHECK(disk.cat("/etc/lcake-layer") == "base\napp\n");
    CHECK(disk.cat("/etc/machine-id").empty());
    CHECK(disk.exists("/etc/machine-id"));
    CHECK(!disk.exists("/var/lib/cloud/instances"));
    CHECK(!disk.exists("/var/lib/cloud/instance"));
    CHECK(!disk.exists("/etc/ssh/ssh_host_ed25519_key"));
    CHECK(!disk.exists("/root/.bash_history"));
    CHECK(disk.cat("/var/log/cloud-init.log").empty());
  }

  // 1: --on-error abort keeps the failed build's VM running and reachable; gc stops it.
  {
    auto r = p.lcake({"--on-error", "abort", "--var", "FAIL_AT=app"});
    CHECK(r.exit_code == 1);
    std::smatch m;
    std::regex how("get in with: ssh (-i (\\S+) -p ([0-9]+) [^\\n]*@127\\.0\\.0\\.1)");
    REQUIRE(std::regex_search(r.err, m, how));
    std::string ssh = "ssh -o BatchMode=yes -o ConnectTimeout=20 " + m[1].str();
    CHECK(fs::exists(m[2].str()));
    std::smatch c;
    REQUIRE(std::regex_search(r.err, c, std::regex("serial console: (\\S+)")));
    CHECK(fs::exists(c[1].str()));
    CHECK(qemu_processes_mentioning(p.state().string()) == 1);
    auto in = sh(ssh + " 'cat /etc/lcake-layer'", std::chrono::seconds(120));
    CHECK_MESSAGE(in.exit_code == 0, in.err);
    CHECK(in.out == "base\napp\n");
    auto gc = p.lcake({"gc"});
    CHECK(gc.exit_code == 0);
    CHECK(qemu_processes_mentioning(p.state().string()) == 0);
    CHECK(!fs::exists(m[2].str()));
    CHECK(!fs::exists(c[1].str()));
  }

  // 9, 3, 2: a changed boot setting of the source (here one the guest cannot boot with): the plan
  // names the field, the verified source copy is linked, not copied; the dead end fails in
  // seconds with its console lines; the failed first layer leaves no copy (and gc removes the
  // one --on-error abort kept).
  {
    CHECK(p.source_copies() == 1);
    auto plan = p.lcake({"plan", dead_end_append});
    CHECK(plan.exit_code == 0);
    CHECK((plan.out + plan.err).find("source field 'append' changed") != std::string::npos);
    auto t0 = std::chrono::steady_clock::now();
    auto r = p.lcake({"--only", "debian/base", dead_end_append});
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("dead end failed after " << secs << " s");
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("linked, not copied") != std::string::npos);
    CHECK(r.err.find("the guest will not boot") != std::string::npos);
    CHECK(r.err.find("does not exist") != std::string::npos);  // initramfs-tools' ALERT line
    // ssh_timeout is 900 s; this includes the initramfs' own 30 s root wait and a loaded host's
    // slow TCG kernel boot.
    CHECK(secs < 300);
    CHECK(p.source_copies() == 1);
    CHECK(qemu_processes_mentioning(p.state().string()) == 0);
  }
  {
    auto r = p.lcake({"--only", "debian/base", "--on-error", "abort", dead_end_append});
    CHECK(r.exit_code == 1);
    CHECK(p.source_copies() == 2);
    CHECK(p.lcake({"gc"}).exit_code == 0);
    CHECK(p.source_copies() == 1);
  }
}
