// `lcake --target qemu-openstack` and `lcake --target openstack` end to end on the
// bundled example pipeline, through the real CLI binary, against real Keystone +
// Glance and the Nova simulator (tests/services/openstack), started once for the
// binary. Results are read back with the `openstack` CLI and the simulator's own
// request log, never from lcake's state alone. Skipped (77) when Keystone/Glance
// are not installed or not root (guests get 127.0.0.N:22).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <signal.h>
#include <sstream>
#include <thread>

#include "lcake_process.h"
#include "openstack_test_services.h"
#include "test_support.h"

namespace fs = std::filesystem;
namespace ost = lcake::openstack::test;
using nlohmann::json;
using namespace lcake::test;

namespace {

// Tokens live 40 s here (as in the Nova simulator's own tests), so every run longer than 20 s
// outlives the first token of its uploader: lcake renews a token once less than half its lifetime
// is left, and a test sees that in the debug log. (A cold run of the example takes about a minute.)
// The test guest has no ACPI handling: every os-stop (one per Nova build) ends in the
// simulator's hard power-off after its clean-shutdown window, so that window is 2 s here, not
// 10 s (lcake syncs over SSH before the stop either way).
const ost::Stack& services() {
  ::setenv("NOVA_SIM_CLEAN_SHUTDOWN", "2", 0);
  return ost::stack(ost::Nova::simulator, 40);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

const std::vector<std::string> kVariants = {"tiny-dropbear", "tiny-openssh"};
std::string flavour(const std::string& variant) { return variant.substr(variant.find('-') + 1); }
const std::map<std::string, std::string> kParent = {{"newinstall", "base"}, {"stack", "newinstall"}};

// The openstack builder's first-layer source: each test guest's base.qcow2 in Glance as
// lcake-guest-<flavour> (the example pipeline's OPENSTACK_IMAGE_PREFIX default), uploaded once.
const std::map<std::string, std::string>& base_images() {
  static std::map<std::string, std::string> ids = [] {
    const auto& s = services();
    std::map<std::string, std::string> out;
    for (const auto& v : kVariants) {
      auto f = flavour(v);
      auto disk = lcake::test::test_guest(f) / "base.qcow2";
      out[f] = trim(ost::openstack_cli(s, "image create --disk-format qcow2 --container-format bare --file " +
                                             disk.string() + " lcake-guest-" + f + " -f value -c id"));
    }
    return out;
  }();
  return ids;
}

// The simulator's log: servers created (name -> id) and the image each one booted.
struct SimLog {
  std::vector<std::pair<std::string, std::string>> created;  // (name, id), in order
  std::map<std::string, std::string> booted;                 // server id -> image id
};

SimLog sim_log() {
  SimLog log;
  std::ifstream in(services().nova_dir / "requests.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto e = json::parse(line, nullptr, false);
    if (!e.is_object()) continue;
    if (e.value("kind", "") == "request" && e.value("method", "") == "POST" && e.value("status", 0) == 202 &&
        e.value("path", "").ends_with("/servers"))
      log.created.emplace_back(e["request"]["server"]["name"], e["response"]["server"]["id"]);
    if (e.value("kind", "") == "event" && e.value("event", "") == "boot") log.booted[e["server"]] = e["image"];
  }
  return log;
}

struct Project {
  std::string target;
  fs::path dir = make_temp_dir("lcake-openstack-e2e");
  std::vector<std::string> extra;  // options every build of this project passes
  explicit Project(std::string t) : target(std::move(t)) {
    fs::copy(source_dir() / "configs", dir / "configs", fs::copy_options::recursive);
    // What a user sets for a fast cloud: Nova status polled every 0.5 s, not every 2 s (a build
    // waits for ACTIVE, SHUTOFF and deletion; a verify for ACTIVE and deletion).
    for (std::string name : {"openstack", "qemu-openstack"}) {
      auto file = dir / "configs/targets" / (name + ".json");
      auto doc = json::parse(read_file(file));
      for (std::string role : {"builder", "verifier"})
        if (doc[role]["plugin"] == "openstack") doc[role]["settings"]["poll_interval"] = 0.5;
      write_file(file, doc.dump(2));
    }
    fs::create_directories(dir / "examples");
    fs::copy(source_dir() / "examples/stack", dir / "examples/stack", fs::copy_options::recursive);
    base_images();
  }
  ~Project() {
    std::error_code ec;
    if (!std::getenv("LCAKE_KEEP_TEST_SERVICES")) fs::remove_all(dir, ec);
  }

  ProcessResult lcake(const fs::path& state, std::vector<std::string> args, RunSpec spec = {},
                      std::map<std::string, std::string> env = {}) {
    std::string command = !args.empty() && args[0].rfind("-", 0) != 0 ? args[0] : "";
    if (!command.empty()) args.erase(args.begin());
    std::vector<std::string> all;
    if (!command.empty()) all.push_back(command);
    all.insert(all.end(), {"--state-dir", state.string()});
    if (command != "artifacts") {
      all.insert(all.end(), {"--config-dir", (dir / "configs").string(), "--target", target, "--var",
                             "GUEST_DIR=" + (fs::path(std::getenv("LCAKE_BINARY_DIR")) / "tests/guest").string()});
      if (command.empty()) all.insert(all.end(), extra.begin(), extra.end());
    }
    all.insert(all.end(), args.begin(), args.end());
    spec.args = all;
    spec.cwd = dir;
    spec.env = {{"XDG_CONFIG_HOME", (dir / "xdg").string()}, {"OS_CLOUD", "lcake-test"},
                {"OS_CLIENT_CONFIG_FILE", (services().keystone_dir / "clouds.yaml").string()}};
    for (auto& [k, v] : env) spec.env[k] = v;
    spec.timeout = std::chrono::seconds(900);
    auto r = run_process(lcake_binary().string(), spec);
    MESSAGE("lcake " << target << " " << command << " -> " << r.exit_code << "\n"
                     << r.err.substr(r.err.size() > 5000 ? r.err.size() - 5000 : 0));
    return r;
  }

  json artifacts(const fs::path& state) { return json::parse(lcake(state, {"artifacts", "--json"}).out); }
  // The newest record of (variant, layer, stage) in a state dir.
  static json record(const json& all, const std::string& variant, const std::string& layer, const std::string& stage) {
    json found;
    for (auto& a : all)
      if (a["variant"] == variant && a["layer"] == layer && a["stage"] == stage &&
          (found.is_null() || a["created"].get<std::string>() >= found["created"].get<std::string>()))
        found = a;
    REQUIRE_MESSAGE(!found.is_null(), "no " << stage << " record of " << variant << "/" << layer);
    return found;
  }
};

json image_show(const std::string& id) {
  return json::parse(ost::openstack_cli(services(), "image show -f json " + id));
}

// Nothing is running or left over in the cloud: no server (the simulator's own list),
// no key pair (the openstack CLI), and every lcake image in Glance is an artifact some
// state dir of this binary's runs recorded (`known`), i.e. no half-made or orphaned image.
void check_nothing_leaked(const std::set<std::string>& known) {
  auto servers = ost::sim_control(services(), "GET", "/_sim/servers").at("servers");
  CHECK_MESSAGE(servers.empty(), "servers left: " << servers.dump());
  auto keypairs = json::parse(ost::openstack_cli(services(), "keypair list -f json"));
  CHECK_MESSAGE(keypairs.empty(), "key pairs left: " << keypairs.dump());
  auto fips = ost::sim_control(services(), "GET", "/_sim/floatingips").at("floatingips");
  CHECK_MESSAGE(fips.empty(), "floating IPs left: " << fips.dump());
  for (auto& img : json::parse(ost::openstack_cli(services(), "image list -f json"))) {
    std::string id = img.value("ID", ""), name = img.value("Name", "");
    if (name.rfind("lcake-guest-", 0) == 0 || name.rfind("lcake-", 0) != 0) continue;
    CHECK_MESSAGE(known.count(id), "image " << name << " (" << id << ", " << img.value("Status", "")
                                            << ") is no artifact of any run: leaked");
  }
}

// Every artifact id any run of this binary recorded (the cloud is shared by all test cases).
std::set<std::string>& known_ids() {
  static std::set<std::string> ids;
  return ids;
}
const std::set<std::string>& remember(const json& artifacts) {
  for (auto& a : artifacts) known_ids().insert(a["artifact"]["id"].get<std::string>());
  return known_ids();
}

// Publish came after verify in the log of each variant, and Glance shows the visibility.
void check_published_after_verify(const ProcessResult& r, const json& artifacts) {
  for (const auto& v : kVariants) {
    auto verified = r.err.find("==> " + v + "/stack: verified in");
    auto published = r.err.find("==> " + v + "/stack: published");
    REQUIRE(verified != std::string::npos);
    REQUIRE(published != std::string::npos);
    CHECK(verified < published);
    for (std::string layer : {"base", "newinstall", "stack"}) {
      auto shown = image_show(Project::record(artifacts, v, layer, "upload")["artifact"]["id"]);
      CHECK(shown.value("visibility", "") == "community");
      CHECK(shown.at("properties").contains("lcake_published"));
    }
  }
}

// One target through: cold, cached, a fresh state dir finding everything in Glance.
void full_run(const std::string& target) {
  Project p(target);
  auto state = p.dir / "state";
  auto before = sim_log().created.size();

  // The cold run (three TCG builds, uploads, a verify) outlives the 40 s tokens' renewal point.
  auto cold = p.lcake(state, {"--log-level", "debug"});
  REQUIRE(cold.exit_code == 0);
  CHECK(count(cold.err, "Processing completed successfully") == 2);
  CHECK(count(cold.err, "Keystone: token expires soon; re-authenticating") >= 1);
  auto arts = p.artifacts(state);
  check_published_after_verify(cold, arts);

  // The simulator's log: what each server booted.
  auto log = sim_log();
  std::vector<std::pair<std::string, std::string>> ours(log.created.begin() + before, log.created.end());
  int builds = 0, verifies = 0;
  for (auto& [name, id] : ours) {
    INFO("server " << name << " " << id);
    REQUIRE(log.booted.count(id));
    const std::string& image = log.booted[id];
    for (const auto& v : kVariants) {
      for (std::string layer : {"base", "newinstall", "stack"}) {
        std::string tag = v + "-" + layer + "-";
        if (name.rfind("lcake-build-" + tag, 0) == 0) {
          ++builds;
          std::string want = layer == "base"
                                 ? base_images().at(flavour(v))
                                 : Project::record(arts, v, kParent.at(layer), "build")["artifact"]["id"].get<std::string>();
          CHECK(image == want);  // each child server boots its parent layer's image
        } else if (name.rfind("lcake-verify-" + tag, 0) == 0) {
          ++verifies;
          CHECK(image == Project::record(arts, v, layer, "upload")["artifact"]["id"]);
        }
      }
    }
  }
  CHECK(builds == (target == "openstack" ? 6 : 0));  // qemu-openstack builds locally
  CHECK(verifies == 2);
  CHECK(ours.size() == static_cast<std::size_t>(builds + verifies));
  if (target == "openstack") {
    // The Nova snapshot is the upload: one image per layer.
    for (const auto& v : kVariants)
      for (std::string layer : {"base", "newinstall", "stack"})
        CHECK(Project::record(arts, v, layer, "build")["artifact"]["id"] ==
              Project::record(arts, v, layer, "upload")["artifact"]["id"]);
  }

  // Second run: everything cached, no server created.
  auto n = sim_log().created.size();
  auto again = p.lcake(state, {});
  CHECK(again.exit_code == 0);
  CHECK(count(again.err, "cached (key") == 6);
  CHECK(again.err.find("verifying") == std::string::npos);
  CHECK(sim_log().created.size() == n);

  // A runner with an empty state dir: the uploads are found by their lcake_key property,
  // nothing is built or uploaded; the images' lcake_verified and lcake_published properties
  // say they were verified and published, so nothing is verified or published again.
  auto stack_image = Project::record(arts, "tiny-dropbear", "stack", "upload")["artifact"]["id"].get<std::string>();
  CHECK(image_show(stack_image).at("properties").contains("lcake_verified"));
  auto fresh_state = p.dir / "fresh-state";
  auto fresh = p.lcake(fresh_state, {"--only", "tiny-dropbear"});
  CHECK(fresh.exit_code == 0);
  CHECK(count(fresh.err, "found in the backend: glance-image") == 3);
  CHECK(fresh.err.find("building") == std::string::npos);
  CHECK(fresh.err.find("uploading") == std::string::npos);
  CHECK(fresh.err.find("verifying") == std::string::npos);
  CHECK(fresh.err.find(": published") == std::string::npos);
  auto fresh_arts = p.artifacts(fresh_state);
  for (std::string layer : {"base", "newinstall", "stack"}) {
    auto found = Project::record(fresh_arts, "tiny-dropbear", layer, "upload");
    CHECK(found["artifact"]["id"] == Project::record(arts, "tiny-dropbear", layer, "upload")["artifact"]["id"]);
    CHECK(found["published"] == true);
    CHECK(found["verified"] == (layer == "stack"));  // only stack has verify steps
  }
  CHECK(sim_log().created.size() == n);  // no server
  // And again from that state dir: the state knows the uploads (no build records, so no
  // "cached" lines); nothing is looked up in Glance, built, verified or published.
  auto fresh_again = p.lcake(fresh_state, {"--only", "tiny-dropbear"});
  CHECK(fresh_again.exit_code == 0);
  CHECK(fresh_again.err.find("found in the backend") == std::string::npos);
  CHECK(fresh_again.err.find("verifying") == std::string::npos);
  CHECK(fresh_again.err.find(": published") == std::string::npos);
  CHECK(sim_log().created.size() == n);

  remember(arts);
  check_nothing_leaked(remember(fresh_arts));

  // A verify step that fails: the rebuilt stack layer (new TAG) is not published, and nothing is left.
  p.extra = {"--var", "TAG=w_2016_06", "--set",
             R"(/pipeline/verify/3={"name": "fails", "run": "echo verify-fails-here; exit 3", "expect_exit": 0})"};
  auto failing = p.lcake(state, {"--only", "tiny-dropbear"});
  CHECK(failing.exit_code == 1);
  CHECK(failing.err.find("verify-fails-here") != std::string::npos);
  CHECK(failing.err.find("published") == std::string::npos);
  CHECK(count(failing.err, "cached (key") == 2);  // only the changed layer was rebuilt
  auto failed_arts = p.artifacts(state);
  auto candidate = Project::record(failed_arts, "tiny-dropbear", "stack", "upload");
  CHECK(candidate["artifact"]["id"] != Project::record(arts, "tiny-dropbear", "stack", "upload")["artifact"]["id"]);
  auto shown = image_show(candidate["artifact"]["id"]);
  CHECK(shown.value("visibility", "") == "private");
  CHECK_FALSE(shown.at("properties").contains("lcake_published"));
  check_nothing_leaked(remember(failed_arts));
  // The failed run's unpublished images are lcake gc's to delete; published ones stay.
  auto gc = p.lcake(state, {"gc"});
  CHECK(gc.exit_code == 0);
}

}  // namespace

TEST_CASE("qemu-openstack: the example pipeline built locally, uploaded to Glance, verified on Nova, published") {
  full_run("qemu-openstack");
}

TEST_CASE("openstack: the example pipeline built on Nova layer on layer, verified on Nova, published") {
  full_run("openstack");
}

// ---- Failures: each a clear error, and nothing left in the cloud (read through the
// simulator's own list, the openstack CLI and Glance, not lcake's state) ----

namespace {

std::string read_text(const fs::path& f) {
  std::ifstream in(f);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The lines of `text` containing `needle`.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

// A provisioner in the base layer that says "lcake-sleeping" and waits: a point in the
// middle of a Nova build (server, key pair and ledger entries exist) to signal at.
std::vector<std::string> sleeping_base_step() {
  json step = {{"type", "shell"}, {"inline", {R"(echo "lcake-""sleeping")", "sleep 300"}}};
  return {"--only", "tiny-dropbear", "--set", "/pipeline/layers/base/provisioners/1=" + step.dump()};
}

// The Glance fault proxy (tests/services/openstack/glance-fault-proxy.py) in front of the real
// Glance, and a clouds.yaml whose image_endpoint_override sends lcake's Glance calls through it.
struct GlanceFaults {
  fs::path dir = make_temp_dir("lcake-os-e2e-proxy");
  int pid = 0;
  std::string url;
  fs::path clouds = dir / "clouds.yaml";
  GlanceFaults() {
    auto ports = read_text(services().keystone_dir / "ports");
    auto at = ports.find("GLANCE_PORT=");
    REQUIRE(at != std::string::npos);
    std::string glance = "http://127.0.0.1:" + trim(ports.substr(at + 12, ports.find('\n', at) - at - 12));
    auto script = source_dir() / "tests/services/openstack/glance-fault-proxy.py";
    pid = std::stoi(ost::sh("/usr/bin/python3 " + script.string() + " " + glance + " " + (dir / "port").string() + " " +
                            (dir / "requests.log").string() + " >/dev/null 2>&1 & echo $!"));
    for (int i = 0; i < 100 && !fs::exists(dir / "port"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(fs::exists(dir / "port"));
    url = "http://127.0.0.1:" + trim(read_text(dir / "port"));
    std::string yaml = read_text(services().keystone_dir / "clouds.yaml");
    auto cloud = yaml.find("  lcake-test:\n");
    REQUIRE(cloud != std::string::npos);
    yaml.insert(cloud + 14, "    image_endpoint_override: " + url + "\n");
    write_file(clouds, yaml);
  }
  ~GlanceFaults() {
    ::kill(pid, SIGTERM);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void inject(const std::string& method, const std::string& path, int status, int n) {
    ost::sh("curl -sf -X POST " + url + "/_fault -d '" +
            json({{"method", method}, {"path", path}, {"status", status}, {"count", n}}).dump() + "'");
  }
  int logged(const std::string& needle) { return static_cast<int>(lines_with(read_text(dir / "requests.log"), needle).size()); }
};

}  // namespace

TEST_CASE("a wrong password: one line naming the auth source, exit 2, no secret in the output") {
  Project p("openstack");
  const std::string wrong = "wr0ng-lcake-Pa55";
  const std::string right = services().env.at("OS_PASSWORD");
  std::string yaml = read_text(services().keystone_dir / "clouds.yaml");
  auto at = yaml.find(right);
  REQUIRE(at != std::string::npos);
  yaml.replace(at, right.size(), wrong);
  write_file(p.dir / "wrong-clouds.yaml", yaml);
  auto before = sim_log().created.size();

  SUBCASE("clouds.yaml") {
    auto r = p.lcake(p.dir / "state", {}, {}, {{"OS_CLIENT_CONFIG_FILE", (p.dir / "wrong-clouds.yaml").string()}});
    CHECK(r.exit_code == 2);
    auto errors = lines_with(r.err, "refused the credentials");
    REQUIRE(!errors.empty());
    CHECK(errors[0].find("clouds.yaml (" + (p.dir / "wrong-clouds.yaml").string() + ")") != std::string::npos);
    CHECK(errors[0].find("\"lcake-test\"") != std::string::npos);
    CHECK((r.out + r.err).find(wrong) == std::string::npos);
  }
  SUBCASE("the OS_* variables") {
    std::map<std::string, std::string> env = services().env;
    env["OS_PASSWORD"] = wrong;
    env["OS_CLOUD"] = "";
    env["OS_CLIENT_CONFIG_FILE"] = (p.dir / "none.yaml").string();
    auto r = p.lcake(p.dir / "state", {}, {}, env);
    CHECK(r.exit_code == 2);
    auto errors = lines_with(r.err, "refused the credentials");
    REQUIRE(!errors.empty());
    CHECK(errors[0].find("OS_* environment variables") != std::string::npos);
    CHECK((r.out + r.err).find(wrong) == std::string::npos);
  }
  CHECK(sim_log().created.size() == before);  // nothing was booted
  check_nothing_leaked(known_ids());
}

TEST_CASE("Nova answering 500, and a server stuck in BUILD: a clean failure, nothing left") {
  Project p("openstack");
  auto before = sim_log().created.size();
  SUBCASE("500 on every server create: retried, then one error line") {
    ost::sim_control(services(), "POST", "/_sim/fail", {{"op", "create"}, {"mode", "500"}, {"count", 100}});
    // A new TAG: the stack layer is built on Nova (its parents are found in Glance).
    auto r = p.lcake(p.dir / "state", {"--only", "tiny-dropbear", "--var", "TAG=w_2016_08"});
    ost::sim_control(services(), "DELETE", "/_sim/fail");
    CHECK(r.exit_code == 1);
    CHECK(!lines_with(r.err, "injected by a simulator fault rule").empty());
    CHECK(r.err.find(": published ") == std::string::npos);  // no "published <id>" line
  }
  SUBCASE("a create that hangs (the server stays in BUILD): the boot timeout, then the server deleted") {
    ost::sim_control(services(), "POST", "/_sim/fail", {{"op", "create"}, {"mode", "slow"}, {"seconds", 120}});
    auto r = p.lcake(p.dir / "state", {"--only", "tiny-dropbear", "--set", "/target/builder/settings/boot_timeout=5"});
    ost::sim_control(services(), "DELETE", "/_sim/fail");
    CHECK(r.exit_code == 1);
    CHECK(sim_log().created.size() == before + 1);  // the one server, which lcake deleted
  }
  check_nothing_leaked(known_ids());
}

TEST_CASE("Glance answering 503 to the upload: retried, then a clean failure; no image left") {
  Project p("qemu-openstack");
  GlanceFaults proxy;
  proxy.inject("PUT", "/file", 503, 1000);
  // A base layer no earlier run uploaded (else find() answers and nothing is uploaded).
  json step = {{"type", "shell"}, {"inline", {"echo glance-503-case > /etc/lcake-case"}}};
  auto r = p.lcake(p.dir / "state", {"--only", "tiny-dropbear", "--set", "/pipeline/layers/base/provisioners/1=" + step.dump()},
                   {}, {{"OS_CLIENT_CONFIG_FILE", proxy.clouds.string()}});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("Glance answered 503") != std::string::npos);
  CHECK(proxy.logged("/file 503 injected") >= 2);  // retried
  CHECK(r.err.find("published") == std::string::npos);
  // The image made for the upload was deleted (through the proxy, which only faults PUT .../file).
  CHECK(proxy.logged("DELETE /v2/images/") >= 1);
  check_nothing_leaked(known_ids());
}

TEST_CASE("Ctrl-C during a Nova build and during createImage: the run cleans up, nothing left") {
  Project p("openstack");
  SUBCASE("during the provisioners") {
    RunSpec spec;
    spec.signal = SIGINT;
    spec.signal_when = "lcake-sleeping";
    auto r = p.lcake(p.dir / "state", sleeping_base_step(), spec);
    CHECK(r.exit_code == 130);
  }
  SUBCASE("during createImage") {
    RunSpec spec;
    spec.signal = SIGINT;
    spec.signal_when = "snapshotting server";
    auto r = p.lcake(p.dir / "state", {"--only", "tiny-dropbear", "--var", "TAG=w_2016_07"}, spec);
    CHECK(r.exit_code == 130);
  }
  // The snapshot (if createImage got that far) is gone too: no lcake image that no run recorded.
  check_nothing_leaked(known_ids());
}

TEST_CASE("kill -9 mid-run, then lcake gc --target openstack: no server, key pair or image left") {
  Project p("openstack");
  RunSpec spec;
  spec.signal = SIGKILL;
  spec.signal_when = "lcake-sleeping";
  auto r = p.lcake(p.dir / "state", sleeping_base_step(), spec);
  CHECK(r.exit_code == 128 + SIGKILL);
  // Left behind: the build server and its key pair.
  auto servers = ost::sim_control(services(), "GET", "/_sim/servers").at("servers");
  CHECK(servers.size() == 1);
  auto keypairs = json::parse(ost::openstack_cli(services(), "keypair list -f json"));
  CHECK(keypairs.size() == 1);

  auto gc = p.lcake(p.dir / "state", {"gc"});
  CHECK(gc.exit_code == 0);
  int deleted = -1, gone = -1, failed = -1;
  auto line = lines_with(gc.out, "gc: ");
  REQUIRE(!line.empty());
  std::sscanf(line[0].c_str(), "gc: %d deleted, %d already gone, %d failed", &deleted, &gone, &failed);
  CHECK(deleted >= 2);  // the server and the key pair (and the step's work dirs)
  CHECK(failed == 0);
  CHECK(gc.err.find("deleted leftover Nova server") != std::string::npos);
  check_nothing_leaked(known_ids());
  // Once more: nothing to do.
  auto again = p.lcake(p.dir / "state", {"gc"});
  CHECK(again.out.find("gc: 0 deleted") != std::string::npos);
}

// ---- Floating IPs (floating_ip_network; the simulator's Networking API forwards each floating
// address to its server's 127.0.0.N:22 and logs every forwarded connection) ----

namespace {

std::vector<std::string> with_floating_ips(std::vector<std::string> args) {
  for (std::string role : {"builder", "verifier"})
    args.insert(args.end(), {"--set", "/target/" + role + "/settings/floating_ip_network=public"});
  return args;
}

// Floating IPs the simulator's log shows made (description -> id) and the ids connected through.
struct FloatingLog {
  std::map<std::string, std::string> created;
  std::set<std::string> connected, deleted;
};
FloatingLog floating_log() {
  FloatingLog log;
  std::ifstream in(services().nova_dir / "requests.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto e = json::parse(line, nullptr, false);
    if (!e.is_object()) continue;
    if (e.value("kind", "") == "request" && e.value("method", "") == "POST" && e.value("status", 0) == 201 &&
        e.value("path", "").ends_with("/floatingips"))
      log.created[e["request"]["floatingip"].value("description", "")] = e["response"]["floatingip"]["id"];
    if (e.value("kind", "") == "event" && e.value("event", "") == "floating-connection") log.connected.insert(e["floatingip"]);
    if (e.value("kind", "") == "event" && e.value("event", "") == "floatingip-delete") log.deleted.insert(e["floatingip"]);
  }
  return log;
}

}  // namespace

TEST_CASE("floating IPs on the openstack target: used for SSH by build and verify, released on success, Ctrl-C and gc") {
  Project p("openstack");
  const auto earlier = floating_log().created;
  const auto before = earlier.size();
  SUBCASE("success: the changed stack layer built and verified through floating IPs, all released") {
    // A new TAG: the stack layer is rebuilt (its parents too when no earlier case built them).
    auto r = p.lcake(p.dir / "state", with_floating_ips({"--only", "tiny-dropbear", "--var", "TAG=w_2016_09"}));
    CHECK(r.exit_code == 0);
    auto log = floating_log();
    int builds = 0, verifies = 0;
    for (auto& [description, id] : log.created) {
      if (earlier.count(description)) continue;
      if (description.rfind("lcake-build-tiny-dropbear-", 0) == 0) ++builds;
      else if (description.rfind("lcake-verify-tiny-dropbear-stack-", 0) == 0) ++verifies;
      else continue;
      CHECK(log.connected.count(id));  // SSH went through it
      CHECK(log.deleted.count(id));    // and it was released
    }
    CHECK(builds >= 1);
    CHECK(verifies == 1);
    remember(p.artifacts(p.dir / "state"));
  }
  SUBCASE("Ctrl-C during a provisioner: the floating IP released with the server") {
    RunSpec spec;
    spec.signal = SIGINT;
    spec.signal_when = "lcake-sleeping";
    auto r = p.lcake(p.dir / "state", with_floating_ips(sleeping_base_step()), spec);
    CHECK(r.exit_code == 130);
    CHECK(floating_log().created.size() == before + 1);
  }
  SUBCASE("kill -9 during a provisioner, then lcake gc releases the leaked floating IP") {
    RunSpec spec;
    spec.signal = SIGKILL;
    spec.signal_when = "lcake-sleeping";
    auto r = p.lcake(p.dir / "state", with_floating_ips(sleeping_base_step()), spec);
    CHECK(r.exit_code == 128 + SIGKILL);
    CHECK(ost::sim_control(services(), "GET", "/_sim/floatingips").at("floatingips").size() == 1);
    auto gc = p.lcake(p.dir / "state", {"gc"});
    CHECK(gc.exit_code == 0);
    CHECK(gc.err.find("released leftover floating IP") != std::string::npos);
    CHECK(lines_with(gc.out, "0 failed").size() == 1);
  }
  check_nothing_leaked(known_ids());
}
