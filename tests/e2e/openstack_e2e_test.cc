// `lcake --target qemu-openstack` and `lcake --target openstack` end to end on the
// bundled example pipeline, through the real CLI binary, against real Keystone +
// Glance and the Nova simulator (tests/services/openstack), started once for the
// binary. Results are read back with the `openstack` CLI and the simulator's own
// request log, never from lcake's state alone. Skipped (77) when Keystone/Glance
// are not installed or not root (guests get 127.0.0.N:22).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "lcake_process.h"
#include "nova_test_services.h"
#include "test_support.h"

namespace fs = std::filesystem;
namespace ost = lcake::openstack::test;
using nlohmann::json;
using namespace lcake::test;

namespace {

const ost::Stack& services() { return ost::stack(ost::Nova::simulator); }

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

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t p = 0; (p = text.find(needle, p)) != std::string::npos; ++p) ++n;
  return n;
}

struct Project {
  std::string target;
  fs::path dir = make_temp_dir("lcake-openstack-e2e");
  std::vector<std::string> extra;  // options every build of this project passes
  explicit Project(std::string t) : target(std::move(t)) {
    fs::copy(source_dir() / "configs", dir / "configs", fs::copy_options::recursive);
    fs::create_directories(dir / "examples");
    fs::copy(source_dir() / "examples/stack", dir / "examples/stack", fs::copy_options::recursive);
    base_images();
  }
  ~Project() {
    std::error_code ec;
    if (!std::getenv("LCAKE_KEEP_TEST_SERVICES")) fs::remove_all(dir, ec);
  }

  ProcessResult lcake(const fs::path& state, std::vector<std::string> args) {
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
    RunSpec spec;
    spec.args = all;
    spec.cwd = dir;
    spec.env = {{"XDG_CONFIG_HOME", (dir / "xdg").string()}, {"OS_CLOUD", "lcake-test"},
                {"OS_CLIENT_CONFIG_FILE", (services().keystone_dir / "clouds.yaml").string()}};
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

  auto cold = p.lcake(state, {});
  REQUIRE(cold.exit_code == 0);
  CHECK(count(cold.err, "Processing completed successfully") == 2);
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
  // nothing is built or uploaded; the candidate is verified again before it is published.
  auto fresh_state = p.dir / "fresh-state";
  auto fresh = p.lcake(fresh_state, {"--only", "tiny-dropbear"});
  CHECK(fresh.exit_code == 0);
  CHECK(count(fresh.err, "found in the backend: glance-image") == 3);
  CHECK(fresh.err.find("building") == std::string::npos);
  CHECK(fresh.err.find("uploading") == std::string::npos);
  auto fresh_arts = p.artifacts(fresh_state);
  for (std::string layer : {"base", "newinstall", "stack"})
    CHECK(Project::record(fresh_arts, "tiny-dropbear", layer, "upload")["artifact"]["id"] ==
          Project::record(arts, "tiny-dropbear", layer, "upload")["artifact"]["id"]);
  auto created = sim_log().created;
  REQUIRE(created.size() == n + 1);  // only the verify server
  CHECK(created.back().first.rfind("lcake-verify-tiny-dropbear-stack-", 0) == 0);

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
