// `lcake --target docker` end to end on the bundled example pipeline: the real
// binary against podman's Docker-compatible API and a real docker-registry,
// both started once for this test binary from tests/services. What lcake
// produced is checked with independent clients: skopeo, the registry's API,
// and the Engine API through curl.
#include <doctest/doctest.h>

#include "test_support.h"
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "hook_checks.h"
#include "lcake_process.h"
#include "secrets_check.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lcake::test;

namespace {

const std::vector<std::string> kVariants = {"tiny-dropbear", "tiny-openssh"};

ProcessResult run(const std::string& program, std::vector<std::string> args, RunSpec spec = {}) {
  spec.args = std::move(args);
  return run_process(program, spec);
}

using lcake::test::free_port;

// The Engine API of the podman at `socket` through curl, as an independent client: the response body.
std::string engine_at(const fs::path& socket, const std::string& method, const std::string& path,
                      const std::string& body = "") {
  std::vector<std::string> args = {"-fsS", "-X", method, "--unix-socket", socket.string()};
  if (!body.empty()) args.insert(args.end(), {"-H", "Content-Type: application/json", "-d", body});
  args.push_back("http://d/v1.41" + path);
  auto r = run("/usr/bin/curl", args);
  if (r.exit_code != 0) throw std::runtime_error(method + " " + path + ": " + r.err);
  return r.out;
}
// lcake's own containers: filters={"name":["^/?lcake-(build|verify)-"]} (docs/backends/docker.md, Cleanup)
const char* const kLcakeContainers = "&filters=%7B%22name%22%3A%5B%22%5E%2F%3Flcake-%28build%7Cverify%29-%22%5D%7D";

// podman + registry + the two base images, for the whole binary. A static
// object: its destructor stops both at exit, whatever the tests did.
struct Services {
  fs::path dir = make_temp_dir("lcake-docker-e2e-services");
  fs::path scripts = source_dir() / "tests/services";
  int port = free_port();
  std::string registry = "127.0.0.1:" + std::to_string(port);
  std::string docker_host;
  fs::path socket = dir / "podman.sock";

  Services() {
    try {
      docker_host = script("podman-service.sh", {"start", dir.string(), std::to_string(port)});
      script("registry.sh", {"start", dir.string(), std::to_string(port)});
      for (const auto& v : kVariants) script("import-busybox.sh", {dir.string(), "localhost/lcake-busybox:" + v});
      // No credentials from the developer's own docker config.
      write_file(dir / "docker-config/config.json", R"({"auths": {}})");
    } catch (...) {
      stop();
      throw;
    }
  }
  ~Services() { stop(); }

  void stop() {
    run("/bin/sh", {(scripts / "registry.sh").string(), "stop", dir.string()});
    run("/bin/sh", {(scripts / "podman-service.sh").string(), "stop", dir.string()});
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string script(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), (scripts / name).string());
    auto r = run("/bin/sh", args);
    if (r.exit_code != 0) throw std::runtime_error(name + " failed: " + r.err);
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  }

  // GET on the Engine API through curl, as an independent client.
  json engine_get(const std::string& path) const { return json::parse(engine_at(socket, "GET", path)); }
  // Any other call on the Engine API through curl; the response body.
  std::string engine_call(const std::string& method, const std::string& path, const std::string& body = "") const {
    return engine_at(socket, method, path, body);
  }
  json containers(bool lcake_only) const {
    return engine_get(std::string("/containers/json?all=1") + (lcake_only ? kLcakeContainers : ""));
  }
  // A container a user creates from an image lcake published (not started).
  std::string user_container(const std::string& image) const {
    return json::parse(engine_call("POST", "/containers/create?name=users-own",
                                   json{{"Image", image}, {"Cmd", {"/bin/sh"}}}.dump()))["Id"];
  }
  // podman's file event log: every container ever created by this engine.
  int containers_created() const {
    std::istringstream lines(read_file(dir / "events.log"));
    int n = 0;
    for (std::string line; std::getline(lines, line);)
      n += line.find("\"Type\":\"container\"") != std::string::npos && line.find("\"Status\":\"create\"") != std::string::npos;
    return n;
  }

  // What the registry says, through skopeo: null when the reference does not exist.
  json skopeo(const std::string& repo, const std::string& tag, bool config = false) const {
    std::vector<std::string> args = {"inspect", "--tls-verify=false"};
    if (config) args.push_back("--config");
    args.push_back("docker://" + registry + "/" + repo + ":" + tag);
    auto r = run("/usr/bin/skopeo", args);
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }
  std::set<std::string> tags(const std::string& repo) const {
    auto r = run("/usr/bin/curl", {"-sS", "http://" + registry + "/v2/" + repo + "/tags/list"});
    std::set<std::string> out;
    auto j = json::parse(r.out.empty() ? "{}" : r.out);
    if (j.contains("tags") && j["tags"].is_array())
      for (auto& t : j["tags"]) out.insert(t.get<std::string>());
    return out;
  }
};

Services& services() {
  static Services s;
  return s;
}

// A private copy of the bundled configs and examples; its own state dir and
// its own repository in the shared registry, so tests never see each other's tags.
struct DockerProject {
  fs::path dir = make_temp_dir("lcake-docker-e2e");
  std::string repository;
  std::vector<std::string> settings;  // --set options every build of this project passes
  fs::path state = dir / "state";     // another runner: point this at an empty dir

  explicit DockerProject(const std::string& name) : repository("e2e/" + name) {
    fs::copy(source_dir() / "configs", dir / "configs", fs::copy_options::recursive);
    fs::create_directories(dir / "examples");
    fs::copy(source_dir() / "examples/stack", dir / "examples/stack", fs::copy_options::recursive);
    settings = {"--set", "/target/uploader/settings/registry=" + services().registry,
                "--set", "/target/uploader/settings/repository=" + repository};
  }
  ~DockerProject() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  ProcessResult lcake(std::vector<std::string> args, RunSpec spec = {}) {
    std::string command = !args.empty() && args[0].rfind("-", 0) != 0 ? args[0] : "build";
    if (!args.empty() && args[0] == command) args.erase(args.begin());
    std::vector<std::string> all = {command, "--state-dir", state.string()};
    if (command != "artifacts" && command != "gc") {
      all.insert(all.end(), {"--config-dir", (dir / "configs").string(), "--target", "docker"});
      all.insert(all.end(), settings.begin(), settings.end());
    }
    all.insert(all.end(), args.begin(), args.end());
    spec.args = all;
    spec.cwd = dir;
    spec.env.try_emplace("DOCKER_HOST", services().docker_host);
    spec.env["DOCKER_CONFIG"] = (services().dir / "docker-config").string();
    spec.env["XDG_CONFIG_HOME"] = (dir / "xdg").string();
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_process(lcake_binary().string(), spec);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("lcake " << command << " -> " << r.exit_code << " in " << s << " s\n"
                     << r.err.substr(r.err.size() > 5000 ? r.err.size() - 5000 : 0));
    return r;
  }

  json artifacts() { return json::parse(lcake({"artifacts", "--json"}).out); }
  // Every record of (variant, layer, stage), oldest first.
  std::vector<json> records(const std::string& variant, const std::string& layer, const std::string& stage) {
    std::vector<json> out;
    for (auto& a : artifacts())
      if (a["variant"] == variant && a["layer"] == layer && a["stage"] == stage) out.push_back(a);
    return out;
  }

  // After any run: no lcake container left, nothing for gc to do.
  void check_clean() {
    CHECK(services().containers(true).empty());
    auto gc = lcake({"gc"});
    CHECK(gc.exit_code == 0);
    CHECK(gc.out.find("gc: 0 deleted") != std::string::npos);
  }
  void check_no_moving_tags(const std::string& variant) {
    auto tags = services().tags(repository);
    for (const auto& t : {variant + "-newinstall", variant + "-stack", variant + "-stack-w_2016_05"})
      CHECK_MESSAGE(tags.count(t) == 0, "moving tag " << t << " was published");
  }
};

// Watches the engine while lcake runs: the network mode of every lcake container.
struct ContainerWatch {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> network_mode;  // container ID -> HostConfig.NetworkMode
  std::thread thread{[this] {
    while (!stop) {
      try {
        for (auto& c : services().containers(true)) {
          std::string id = c["Id"];
          {
            std::lock_guard lock(mu);
            if (network_mode.count(id)) continue;
          }
          auto inspected = services().engine_get("/containers/" + id + "/json");
          std::lock_guard lock(mu);
          network_mode[id] = inspected["HostConfig"].value("NetworkMode", "");
        }
      } catch (const std::exception&) {
        // A container removed between list and inspect.
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }};
  ~ContainerWatch() {
    stop = true;
    thread.join();
  }
};

// A stack-layer provisioner appended to the pipeline.
std::vector<std::string> extra_stack_step(const json& inline_lines) {
  return {"--set", "/pipeline/layers/stack/provisioners/12=" + json({{"type", "shell"}, {"inline", inline_lines}}).dump()};
}

}  // namespace

TEST_CASE("the example pipeline: pushed, labelled, published, cached, rebuilt from a changed input") {
  DockerProject p("pipeline");
  // Image settings, so what the registry shows is what the pipeline asked for:
  // newinstall sets CMD; stack sets USER and WORKDIR and keeps its parent's CMD.
  for (std::string s : {R"(/pipeline/layers/newinstall/builder={"changes": ["CMD [\"/bin/sh\", \"-l\"]"]})",
                        R"(/pipeline/layers/stack/builder={"changes": ["USER lsst", "WORKDIR /home/lsst"]})",
                        R"(/pipeline/layers/stack/verifier={"user": "root"})"})
    p.settings.insert(p.settings.end(), {"--set", s});
  const json sh_login = {"/bin/sh", "-l"};

  ProcessResult cold;
  std::map<std::string, std::string> network_modes;
  {
    ContainerWatch watch;
    cold = p.lcake({});
    std::lock_guard lock(watch.mu);
    network_modes = watch.network_mode;
  }
  REQUIRE(cold.exit_code == 0);
  CHECK(count(cold.err, ": building (key") == 6);
  CHECK(count(cold.err, "Processing completed successfully") == 2);
  CHECK(!network_modes.empty());
  for (auto& [id, mode] : network_modes) CHECK_MESSAGE(mode == "none", "container " << id << " had network " << mode);

  std::map<std::string, std::string> stack_digest;
  for (const auto& v : kVariants) {
    CAPTURE(v);
    auto built = p.records(v, "stack", "build");
    auto uploaded = p.records(v, "stack", "upload");
    auto newinstall = p.records(v, "newinstall", "upload");
    REQUIRE(built.size() == 1);
    REQUIRE(uploaded.size() == 1);
    REQUIRE(newinstall.size() == 1);
    CHECK(uploaded[0]["verified"] == true);
    CHECK(uploaded[0]["published"] == true);
    const json& meta = uploaded[0]["artifact"]["metadata"];
    std::string digest = meta["digest"];
    stack_digest[v] = digest;
    CHECK(uploaded[0]["artifact"]["id"] == services().registry + "/" + p.repository + "@" + digest);

    // The immutable tag and both moving tags name the pushed manifest.
    std::string immutable = meta["tags"][0];
    CHECK(immutable.rfind(v + "-stack-", 0) == 0);
    for (const auto& tag : {immutable, v + "-stack-w_2016_05", v + "-stack"}) {
      auto seen = services().skopeo(p.repository, tag);
      REQUIRE_MESSAGE(seen.is_object(), "no " << tag << " in the registry");
      CHECK(seen["Digest"] == digest);
    }
    auto ni = services().skopeo(p.repository, v + "-newinstall");
    REQUIRE(ni.is_object());
    CHECK(ni["Digest"] == newinstall[0]["artifact"]["metadata"]["digest"]);

    // Labels and image settings as the registry serves them.
    auto seen = services().skopeo(p.repository, immutable);
    CHECK(seen["Labels"]["org.lcake.layer-key"] == built[0]["key"]);
    CHECK(seen["Labels"]["org.lcake.layer"] == "stack");
    CHECK(seen["Labels"]["org.lcake.variant"] == v);
    CHECK(seen["Labels"]["org.lcake.target"] == "docker");
    CHECK(!seen["Labels"].value("org.lcake.version", "").empty());
    auto config = services().skopeo(p.repository, immutable, true)["config"];
    CHECK(config.value("User", "") == "lsst");
    CHECK(config.value("WorkingDir", "") == "/home/lsst");
    CHECK(config["Cmd"] == sh_login);  // kept from newinstall
    auto ni_config = services().skopeo(p.repository, v + "-newinstall", true)["config"];
    CHECK(ni_config["Cmd"] == sh_login);
    CHECK(ni_config.value("User", "") == "");
    // Exactly the documented image labels: nothing of the build container's.
    std::set<std::string> label_keys;
    for (auto& [k, val] : seen["Labels"].items()) label_keys.insert(k);
    CHECK(label_keys == std::set<std::string>{"org.lcake.layer-key", "org.lcake.layer", "org.lcake.variant",
                                              "org.lcake.version", "org.lcake.target"});
  }
  p.check_clean();

  // A user's container from a published image is not lcake's: not among its
  // containers, and `lcake gc` leaves it alone.
  {
    std::string image = services().registry + "/" + p.repository + ":tiny-dropbear-stack";
    auto pulled = run("/usr/bin/curl", {"-fsS", "-X", "POST", "--unix-socket", services().socket.string(),
                                        "http://d/v1.41/images/create?fromImage=" + services().registry + "/" +
                                            p.repository + "&tag=tiny-dropbear-stack"});
    REQUIRE_MESSAGE(pulled.exit_code == 0, pulled.err);
    std::string id = services().user_container(image);
    auto labels = services().engine_get("/containers/" + id + "/json")["Config"]["Labels"];
    CHECK_FALSE(labels.contains("org.lcake.role"));
    CHECK(labels["org.lcake.layer"] == "stack");
    p.check_clean();
    CHECK(services().engine_get("/containers/" + id + "/json")["Id"] == id);
    services().engine_call("DELETE", "/containers/" + id + "?force=true");
  }

  // Second run: every layer cached; the engine creates no container at all.
  int created = services().containers_created();
  auto listed = services().containers(false).size();
  auto t0 = std::chrono::steady_clock::now();
  auto again = p.lcake({});
  double again_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(again.exit_code == 0);
  CHECK(count(again.err, ": cached") == 6);
  CHECK(again.err.find("building") == std::string::npos);
  CHECK(again.err.find("verifying") == std::string::npos);
  CHECK(again.err.find("pushing") == std::string::npos);
  CHECK(services().containers_created() == created);
  CHECK(services().containers(false).size() == listed);
  CHECK(again_s < 5.0);

  // Another runner (an empty state dir, e.g. a fresh CI machine): every upload is found in the
  // registry by its per-key tag; nothing is built, pushed or re-tagged (issue 13 item 2). A
  // registry holds no proof that an image passed verification, so each found stack is verified
  // again (one container per variant) before its moving tags are confirmed.
  auto tags_before = services().tags(p.repository);
  p.state = p.dir / "state-other-runner";
  auto other = p.lcake({});
  REQUIRE(other.exit_code == 0);
  CHECK(count(other.err, "found in the backend: ") == 6);
  CHECK(other.err.find("building") == std::string::npos);
  CHECK(other.err.find("pushing") == std::string::npos);
  CHECK(count(other.err, ": verifying\n") == 2);
  CHECK(services().containers_created() == created + 2);
  CHECK(services().tags(p.repository) == tags_before);
  for (const auto& v : {std::string("tiny-dropbear"), std::string("tiny-openssh")})
    CHECK(services().skopeo(p.repository, v + "-stack")["Digest"] == stack_digest[v]);
  p.check_clean();
  p.state = p.dir / "state";

  // Change newinstall's input: newinstall and stack rebuild, base does not.
  fs::path script = p.dir / "examples/stack/files/newinstall.sh";
  write_file(script, read_file(script) + "\n# a comment changes the layer key\n");
  auto rebuilt = p.lcake({"--only", "tiny-dropbear"});
  REQUIRE(rebuilt.exit_code == 0);
  CHECK(rebuilt.err.find("==> tiny-dropbear/base: cached") != std::string::npos);
  CHECK(rebuilt.err.find("==> tiny-dropbear/newinstall: building") != std::string::npos);
  CHECK(rebuilt.err.find("==> tiny-dropbear/stack: building") != std::string::npos);
  CHECK(rebuilt.err.find("tiny-openssh") == std::string::npos);
  // The moving tags moved to the new stack; the other variant's did not.
  auto uploads = p.records("tiny-dropbear", "stack", "upload");
  REQUIRE(uploads.size() == 2);
  std::string fresh;
  for (auto& u : uploads)
    if (u["artifact"]["metadata"]["digest"] != stack_digest["tiny-dropbear"]) fresh = u["artifact"]["metadata"]["digest"];
  REQUIRE(!fresh.empty());
  CHECK(services().skopeo(p.repository, "tiny-dropbear-stack")["Digest"] == fresh);
  CHECK(services().skopeo(p.repository, "tiny-openssh-stack")["Digest"] == stack_digest["tiny-openssh"]);
  p.check_clean();
}

TEST_CASE("kill -9: gc deletes the container left behind and counts one already gone apart") {
  const std::string v = "tiny-dropbear";
  DockerProject p("killed");
  RunSpec spec;
  spec.signal = SIGKILL;
  spec.signal_when = "lcake-sleeping";
  auto args = extra_stack_step({R"(echo "lcake-""sleeping")", "sleep 120"});
  args.insert(args.begin(), {"--only", v});
  // First kill: its container is then removed by hand, so gc finds it gone.
  auto r = p.lcake(args, spec);
  CHECK(r.exit_code == 128 + SIGKILL);
  auto left = services().containers(true);
  REQUIRE(left.size() == 1);
  services().engine_call("DELETE", "/containers/" + left[0]["Id"].get<std::string>() + "?force=true");
  // Second kill: its container stays for gc.
  r = p.lcake(args, spec);
  CHECK(r.exit_code == 128 + SIGKILL);
  REQUIRE(services().containers(true).size() == 1);
  auto gc = p.lcake({"gc"});
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("gc: 1 deleted, 1 already gone, 0 failed") != std::string::npos);
  CHECK(gc.err.find("was already gone") != std::string::npos);
  CHECK(services().containers(true).empty());
  p.check_clean();
}

TEST_CASE("kill -9 during publish: moving tags half-moved until the next publish repairs them") {
  const std::string v = "tiny-dropbear";
  DockerProject p("killed-publish");
  RunSpec spec;
  spec.signal = SIGKILL;
  spec.signal_when = "tagged ";  // the first moving tag was moved
  auto r = p.lcake({"--only", v}, spec);
  CHECK(r.exit_code == 128 + SIGKILL);
  auto stack = p.records(v, "stack", "upload");
  REQUIRE(stack.size() == 1);
  CHECK(stack[0]["published"] == false);
  std::string digest = stack[0]["artifact"]["metadata"]["digest"];
  // However far the publish got, make one of stack's moving tags point elsewhere,
  // as a tag the killed publish had not reached yet still would.
  auto moved = run("/usr/bin/skopeo", {"copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                                       "docker://" + services().registry + "/" + p.repository + ":" + v + "-newinstall",
                                       "docker://" + services().registry + "/" + p.repository + ":" + v + "-stack"});
  REQUIRE_MESSAGE(moved.exit_code == 0, moved.err);
  CHECK(services().skopeo(p.repository, v + "-stack")["Digest"] != digest);

  auto again = p.lcake({"publish", "--only", v});
  REQUIRE(again.exit_code == 0);
  for (const auto& tag : {v + "-stack", v + "-stack-w_2016_05"}) {
    CAPTURE(tag);
    CHECK(services().skopeo(p.repository, tag)["Digest"] == digest);
  }
  CHECK(services().skopeo(p.repository, v + "-newinstall")["Digest"] ==
        p.records(v, "newinstall", "upload")[0]["artifact"]["metadata"]["digest"]);
  CHECK(p.records(v, "stack", "upload")[0]["published"] == true);
  p.check_clean();
}

TEST_CASE("failures: exit code, no container left, no moving tag, nothing for gc") {
  const std::string v = "tiny-dropbear";

  SUBCASE("a provisioner that exits 1") {
    DockerProject p("provisioner-fails");
    auto r = p.lcake({"--only", v, "--set",
                      R"(/pipeline/layers/stack/provisioners/12={"type":"shell","inline":["echo about to fail","exit 1"]})"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("exited with status 1") != std::string::npos);
    // The layers before it were pushed under their immutable tags, never published.
    auto tags = services().tags(p.repository);
    CHECK(std::count_if(tags.begin(), tags.end(), [&](auto& t) { return t.rfind(v + "-newinstall-", 0) == 0; }) == 1);
    p.check_no_moving_tags(v);
    p.check_clean();
  }

  SUBCASE("a registry that refuses the push") {
    DockerProject p("no-registry");
    // Nothing listens there: the first push fails (a fresh state, so it really pushes).
    p.settings.insert(p.settings.end(), {"--set", "/target/uploader/settings/registry=127.0.0.1:" + std::to_string(free_port())});
    auto r = p.lcake({"--only", v});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("==> " + v + "/base: error: upload failed") != std::string::npos);
    p.check_no_moving_tags(v);
    CHECK(services().tags(p.repository).empty());
    p.check_clean();
  }

  SUBCASE("Ctrl-C during a provisioner") {
    DockerProject p("interrupted");
    RunSpec spec;
    spec.signal = SIGINT;
    spec.signal_when = "lcake-sleeping";  // the output, not the command line, which has "lcake-""sleeping"
    auto t0 = std::chrono::steady_clock::now();
    auto r = p.lcake([&] {
      auto a = extra_stack_step({R"(echo "lcake-""sleeping")", "sleep 120"});
      a.insert(a.begin(), {"--only", v});
      return a;
    }(), spec);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
    CHECK(r.exit_code == 130);
    p.check_no_moving_tags(v);
    p.check_clean();
  }

  SUBCASE("the engine socket is missing") {
    DockerProject p("no-engine");
    RunSpec spec;
    spec.env["DOCKER_HOST"] = "unix:///nonexistent";
    auto r = p.lcake({"--only", v}, spec);
    CHECK((r.exit_code == 1 || r.exit_code == 2));
    // One line says what (the engine at that address) and what to do (DOCKER_HOST).
    std::istringstream lines(r.err);
    int naming = 0;
    for (std::string line; std::getline(lines, line);)
      naming += line.find("unix:///nonexistent") != std::string::npos && line.find("DOCKER_HOST") != std::string::npos;
    CHECK(naming >= 1);
    p.check_no_moving_tags(v);
    p.check_clean();
  }
}

// issue 11 item 1: `lcake plan --emit` gives the CI matrix; its jobs run as separate processes with
// separate (empty) state dirs, in parallel, as runners of a CI system would; a second wave of
// runners finds everything in the registry; the publish job publishes once every job verified.
TEST_CASE("CI matrix: emitted jobs on separate runners, a second wave of cache hits, one publish") {
  DockerProject p("ci-matrix");
  auto emitted = p.lcake({"plan", "--emit", "json"});
  REQUIRE(emitted.exit_code == 0);
  json matrix = json::parse(emitted.out);
  CHECK(matrix["version"] == 1);
  REQUIRE(matrix["jobs"].size() == 2);
  for (auto& j : matrix["jobs"]) {
    CHECK(j["cached"] == false);
    CHECK(j["argv"][0] == "lcake");
    CHECK(j["command"].get<std::string>().find("--only " + j["variant"].get<std::string>()) != std::string::npos);
  }
  // The same jobs for GitHub Actions (strategy.matrix: fromJSON) and GitLab (a child pipeline).
  json gha = json::parse(p.lcake({"plan", "--emit", "github-actions"}).out);
  REQUIRE(gha["include"].size() == 2);
  for (std::size_t i = 0; i < 2; ++i) CHECK(gha["include"][i]["command"] == matrix["jobs"][i]["command"]);
  fs::path yml = p.dir / "child.yml";
  write_file(yml, p.lcake({"plan", "--emit", "gitlab"}).out);
  RunSpec py;
  py.args = {"-c", "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); "
                   "print('\\n'.join(s for k, v in d.items() if k != 'stages' for s in v['script']))", yml.string()};
  auto scripts = run_process("/usr/bin/python3", py);
  REQUIRE(scripts.exit_code == 0);
  for (auto& j : matrix["jobs"]) CHECK(scripts.out.find(j["command"].get<std::string>()) != std::string::npos);
  CHECK(scripts.out.find(matrix["publish"]["command"].get<std::string>()) != std::string::npos);

  // One runner: the job's argv (without the leading "lcake") and an empty state dir of its own.
  auto runner = [&](const json& argv, const std::string& state) {
    RunSpec spec;
    for (std::size_t i = 1; i < argv.size(); ++i) spec.args.push_back(argv[i]);
    spec.args.insert(spec.args.end(), {"--state-dir", (p.dir / state).string()});
    spec.cwd = p.dir;
    spec.env["DOCKER_HOST"] = services().docker_host;
    spec.env["DOCKER_CONFIG"] = (services().dir / "docker-config").string();
    spec.env["XDG_CONFIG_HOME"] = (p.dir / "xdg").string();
    return run_process(lcake_binary().string(), spec);
  };
  auto wave = [&](const std::string& name) {
    std::vector<ProcessResult> results(matrix["jobs"].size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); ++i)
      threads.emplace_back([&, i] { results[i] = runner(matrix["jobs"][i]["argv"], name + "-" + std::to_string(i)); });
    for (auto& t : threads) t.join();
    for (auto& r : results) MESSAGE(name << " job -> " << r.exit_code << "\n" << r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0));
    return results;
  };

  auto first = wave("wave1");
  for (auto& r : first) {
    REQUIRE(r.exit_code == 0);
    CHECK(count(r.err, ": building (key") == 3);
    CHECK(r.err.find("not published (--no-publish)") != std::string::npos);
  }
  for (auto& j : matrix["jobs"]) p.check_no_moving_tags(j["variant"]);  // --no-publish: nothing public yet
  auto per_key = services().tags(p.repository);
  CHECK(per_key.size() == 6);  // one immutable tag per layer and variant, each pushed once

  auto second = wave("wave2");
  for (auto& r : second) {
    REQUIRE(r.exit_code == 0);
    CHECK(count(r.err, "found in the backend: ") == 3);
    CHECK(r.err.find("building") == std::string::npos);
    CHECK(r.err.find("pushing") == std::string::npos);
  }
  CHECK(services().tags(p.repository) == per_key);

  // The publish job, after every job verified: a runner of its own finds, verifies, publishes.
  auto published = runner(matrix["publish"]["argv"], "publish");
  MESSAGE("publish job -> " << published.exit_code << "\n" << published.err);
  REQUIRE(published.exit_code == 0);
  CHECK(published.err.find("building") == std::string::npos);
  for (auto& j : matrix["jobs"]) {
    std::string v = j["variant"];
    auto stack = services().skopeo(p.repository, v + "-stack");
    bool matches_a_per_key_tag = false;
    for (const auto& t : per_key)
      if (t.rfind(v + "-stack-", 0) == 0 && services().skopeo(p.repository, t)["Digest"] == stack["Digest"])
        matches_a_per_key_tag = true;
    CHECK_MESSAGE(matches_a_per_key_tag, v << "-stack points at no image a job pushed");
  }
  CHECK(services().containers(true).empty());  // no runner left a container behind
}

namespace {

// A second podman service: the other runner's machine (its own storage, the same registry).
struct OtherEngine {
  fs::path dir = make_temp_dir("lcake-docker-e2e-engine2");
  fs::path socket = dir / "podman.sock";
  std::string docker_host;
  explicit OtherEngine(const std::string& base) {
    docker_host = services().script("podman-service.sh", {"start", dir.string(), std::to_string(services().port)});
    services().script("import-busybox.sh", {dir.string(), base});
  }
  ~OtherEngine() {
    run("/bin/sh", {(services().scripts / "podman-service.sh").string(), "stop", dir.string()});
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// lcake's containers on the podman at `socket`.
json lcake_containers(const fs::path& socket) {
  return json::parse(engine_at(socket, "GET", std::string("/containers/json?all=1") + kLcakeContainers));
}

}  // namespace

// issue 11 item 1, the race: two runners (two machines: each its own podman and state dir) build
// the same key at the same time (a provisioner holds both builds until both are there, then lets
// them push together, the registry held until both builds are done). One
// image ends up used by both (what the per-key tag names), with no second tag; the other runner's
// push is a duplicate in its state that `lcake gc --target` keeps during --grace and then deletes;
// the publish job publishes the one the tag names; no container is left.
TEST_CASE("two runners build one key at the same time: one image used by both, gc deletes the other") {
  const std::string v = "tiny-dropbear";
  DockerProject p("race");
  // Base and newinstall first, by one runner: the race is on the stack layer only.
  REQUIRE(p.lcake({"--only", v, "--no-publish"}).exit_code == 0);
  OtherEngine other_engine("localhost/lcake-busybox:" + v);
  // Runner "a…" and the publish job use the shared podman, runner "b…" the other one.
  auto host_of = [&](const std::string& state) {
    return state[0] == 'b' ? other_engine.docker_host : services().docker_host;
  };
  auto runner = [&](const std::string& state, std::vector<std::string> extra) {
    RunSpec spec;
    spec.args = {"build", "--state-dir", (p.dir / state).string(), "--config-dir", (p.dir / "configs").string(),
                 "--target", "docker"};
    spec.args.insert(spec.args.end(), p.settings.begin(), p.settings.end());
    spec.args.insert(spec.args.end(), extra.begin(), extra.end());
    spec.cwd = p.dir;
    spec.env["DOCKER_HOST"] = host_of(state);
    spec.env["DOCKER_CONFIG"] = (services().dir / "docker-config").string();
    spec.env["XDG_CONFIG_HOME"] = (p.dir / "xdg").string();
    auto r = run_process(lcake_binary().string(), spec);
    MESSAGE("lcake " << spec.args[0] << " (" << state << ") -> " << r.exit_code << "\n"
                     << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0) << r.out);
    return r;
  };
  // A command in a container through the Engine API (curl): its exit code.
  auto exec_in = [](const fs::path& socket, const std::string& container, const std::string& command) {
    try {
      json made = json::parse(engine_at(socket, "POST", "/containers/" + container + "/exec",
                                        json{{"Cmd", {"/bin/sh", "-c", command}}, {"AttachStdout", true},
                                             {"AttachStderr", true}}.dump()));
      std::string id = made["Id"];
      engine_at(socket, "POST", "/exec/" + id + "/start", json{{"Detach", false}, {"Tty", false}}.dump());
      return json::parse(engine_at(socket, "GET", "/exec/" + id + "/json")).value("ExitCode", -1);
    } catch (const std::exception&) {
      return -1;  // a container that went away meanwhile
    }
  };
  auto digest_exists = [&](const std::string& digest) {
    auto r = run("/usr/bin/curl", {"-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "-H",
                                   "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
                                   "http://" + services().registry + "/v2/" + p.repository + "/manifests/" + digest});
    return r.out == "200";
  };
  auto records = [&](const std::string& state, const std::string& stage) {
    RunSpec spec;
    spec.args = {"artifacts", "--json", "--state-dir", (p.dir / state).string()};
    std::vector<json> out;
    for (auto& a : json::parse(run_process(lcake_binary().string(), spec).out))
      if (a["variant"] == v && a["layer"] == "stack" && a["stage"] == stage) out.push_back(a);
    return out;
  };

  // Up to three attempts (each a new stack key) to make the two pushes overlap.
  std::vector<std::string> job, extra;
  std::string loser, winner;
  for (int attempt = 0; attempt < 3 && loser.empty(); ++attempt) {
    std::string mark = "/tmp/lcake-race-" + std::to_string(attempt);
    extra = extra_stack_step({"echo attempt " + std::to_string(attempt), "touch " + mark + "-waiting",
                              "i=0; while [ ! -e " + mark + "-go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"});
    job = {"--only", v, "--no-publish"};
    job.insert(job.end(), extra.begin(), extra.end());
    std::string a = "a" + std::to_string(attempt), b = "b" + std::to_string(attempt);
    ProcessResult ra, rb;
    std::thread ta([&] { ra = runner(a, job); }), tb([&] { rb = runner(b, job); });
    // Both builds wait in their provisioner; then both go on at once.
    for (int i = 0; i < 600; ++i) {
      std::vector<std::pair<fs::path, std::string>> waiting;
      for (const fs::path& socket : {services().socket, other_engine.socket})
        for (auto& c : lcake_containers(socket))
          if (c.value("State", "") == "running" &&
              exec_in(socket, c["Id"].get<std::string>(), "test -e " + mark + "-waiting") == 0)
            waiting.emplace_back(socket, c["Id"].get<std::string>());
      if (waiting.size() == 2) {
        // The registry is held (SIGSTOP; this binary started it) while both builds finish, so both
        // runners' look-ups of the per-key tag wait, miss together and both push: the race, every time.
        int registry_pid = std::stoi(read_file(services().dir / "registry.pid"));
        ::kill(registry_pid, SIGSTOP);
        for (auto& [socket, c] : waiting) exec_in(socket, c, "touch " + mark + "-go");
        for (int j = 0; j < 150; ++j) {
          bool building = false;
          for (const fs::path& socket : {services().socket, other_engine.socket})
            for (auto& c : lcake_containers(socket)) building = building || c.value("State", "") == "running";
          if (!building) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
        ::kill(registry_pid, SIGCONT);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ta.join(), tb.join();
    REQUIRE(ra.exit_code == 0);
    REQUIRE(rb.exit_code == 0);
    CHECK(ra.err.find("pushing") != std::string::npos);  // the stack layer, by both
    CHECK(rb.err.find("pushing") != std::string::npos);
    // The per-key tag of the stack layer: one, naming one image.
    std::vector<std::string> stack_tags;
    for (const auto& t : services().tags(p.repository))
      if (t.rfind(v + "-stack-", 0) == 0) stack_tags.push_back(t);
    CHECK(stack_tags.size() == static_cast<std::size_t>(attempt + 2));  // the warm-up's key and one per attempt
    auto ua = records(a, "upload"), ub = records(b, "upload");
    REQUIRE(ua.size() == 1);
    REQUIRE(ub.size() == 1);
    auto da = records(a, "duplicate"), db = records(b, "duplicate");
    MESSAGE("attempt " << attempt << ": " << ua[0]["artifact"]["id"] << " / " << ub[0]["artifact"]["id"] << ", duplicates "
                       << da.size() << " / " << db.size());
    // Raced: two images were pushed (a runner that settled after the other's push already
    // recorded its own as a duplicate; one that settled before learns it at its next plan).
    if (ua[0]["artifact"]["id"] == ub[0]["artifact"]["id"] && da.empty() && db.empty()) continue;
    // Both runners again, on their own state dirs: all cached, and both use the image the tag names.
    auto again_a = runner(a, job), again_b = runner(b, job);
    REQUIRE(again_a.exit_code == 0);
    REQUIRE(again_b.exit_code == 0);
    for (auto* r : {&again_a, &again_b}) {
      CHECK(r->err.find("building") == std::string::npos);
      CHECK(r->err.find("pushing") == std::string::npos);
    }
    ua = records(a, "upload"), ub = records(b, "upload");
    REQUIRE(ua.size() == 1);
    REQUIRE(ub.size() == 1);
    CHECK(ua[0]["artifact"]["id"] == ub[0]["artifact"]["id"]);
    da = records(a, "duplicate"), db = records(b, "duplicate");
    REQUIRE(da.size() + db.size() == 1);
    loser = (da.empty() ? db[0] : da[0])["artifact"]["metadata"]["digest"];
    winner = ua[0]["artifact"]["metadata"]["digest"];
    std::string tag = ua[0]["artifact"]["metadata"]["tags"][0];
    CHECK(services().skopeo(p.repository, tag)["Digest"] == winner);
    CHECK(winner != loser);
    CHECK(digest_exists(loser));
    // gc: the duplicate stays during the grace period (a runner may be using it), then goes.
    std::string owner = da.empty() ? b : a;
    auto gc_args = [&](const std::string& state, const std::string& grace) {
      std::vector<std::string> g = {"gc", "--state-dir", (p.dir / state).string(), "--config-dir",
                                    (p.dir / "configs").string(), "--target", "docker"};
      g.insert(g.end(), p.settings.begin(), p.settings.end());
      g.insert(g.end(), extra.begin(), extra.end());  // the job's config flags (its extra step)
      if (!grace.empty()) g.insert(g.end(), {"--grace", grace});
      return g;
    };
    auto run_gc = [&](const std::string& state, const std::string& grace) {
      RunSpec spec;
      spec.args = gc_args(state, grace);
      spec.cwd = p.dir;
      spec.env["DOCKER_HOST"] = host_of(state);
      spec.env["DOCKER_CONFIG"] = (services().dir / "docker-config").string();
      spec.env["XDG_CONFIG_HOME"] = (p.dir / "xdg").string();
      auto r = run_process(lcake_binary().string(), spec);
      MESSAGE("gc (" << state << ", grace " << grace << ") -> " << r.exit_code << "\n" << r.out << r.err);
      return r;
    };
    auto kept = run_gc(owner, "");
    CHECK(kept.exit_code == 0);
    CHECK(kept.out.find("gc: 0 duplicate upload(s)") != std::string::npos);
    CHECK(digest_exists(loser));
    auto gone = run_gc(owner, "0");
    CHECK(gone.exit_code == 0);
    CHECK(gone.out.find("gc: 1 duplicate upload(s)") != std::string::npos);
    CHECK_FALSE(digest_exists(loser));
    CHECK(digest_exists(winner));
    CHECK(records(owner, "duplicate").empty());
    // The other runner's gc has nothing to delete, and the winner stays.
    auto other = run_gc(owner == a ? b : a, "0");
    CHECK(other.out.find("gc: 0 duplicate upload(s)") != std::string::npos);
    CHECK(digest_exists(winner));
  }
  if (loser.empty()) FAIL("the two runners' pushes never overlapped in three attempts: the race was not exercised");
  // The publish job (a runner of its own) publishes the image both runners use.
  std::vector<std::string> publish = {"--only", v};
  publish.insert(publish.end(), extra.begin(), extra.end());
  auto pub = runner("publish", publish);
  REQUIRE(pub.exit_code == 0);
  CHECK(pub.err.find("building") == std::string::npos);
  CHECK(services().skopeo(p.repository, v + "-stack")["Digest"] == winner);
  CHECK(services().containers(true).empty());  // no runner left a container behind
  CHECK(lcake_containers(other_engine.socket).empty());
}

TEST_CASE("after_publish: the hooks see every layer's pushed image and moving names; a webhook is told; lcake outputs") {
  DockerProject p("hooks");
  WebhookServer webhook;
  fs::path pub = p.dir / "hook-published", always = p.dir / "hook-always";
  json announce = {{"run", "sh " + (source_dir() / "docs/examples/after-publish/announce.sh").string()}, {"timeout", "1m"}};
  json failing = {{"run", "echo \"token $LCAKE_SECRET\"; echo 'announce bot is down' >&2; exit 5"}};
  json hooks = {{{"run", recording_hook(pub, "published")}}, announce, failing,
                {{"run", recording_hook(always, "always")}, {"on", "always"}}};
  auto with_hooks = [](const json& h) { return std::vector<std::string>{"--set", "/target/after_publish=" + h.dump()}; };
  RunSpec spec;
  spec.env = {{"LCAKE_SECRET", "docker-hook-s3cr3t"}, {"ANNOUNCE_WEBHOOK_URL", webhook.url()}};

  auto cold = p.lcake(with_hooks(hooks), spec);
  CHECK(cold.exit_code == 1);
  CHECK(cold.err.find("hook 3 (/target/after_publish/2) failed") != std::string::npos);
  CHECK(cold.err.find("| announce bot is down") != std::string::npos);
  CHECK(cold.err.find("token <redacted>") != std::string::npos);
  CHECK(cold.err.find("docker-hook-s3cr3t") == std::string::npos);
  // Published anyway: every upload record, and the moving tags in the registry.
  for (auto& a : p.artifacts())
    if (a["stage"] == "upload") CHECK_MESSAGE(a["published"] == true, a["variant"] << "/" << a["layer"]);
  auto tags = services().tags(p.repository);
  for (const auto& v : kVariants) CHECK(tags.count(v + "-stack") == 1);

  auto calls = hook_calls(pub);
  REQUIRE(calls.size() == 1);
  const json outputs = calls[0]["outputs"];
  std::string run_id = calls[0]["manifest"]["run_id"];
  CHECK(calls[0]["env"]["LCAKE_TARGET"] == "docker");
  CHECK(calls[0]["env"]["LCAKE_RUN_ID"] == run_id);
  CHECK(outputs["outputs"].size() == 6);
  auto bad = outputs_vs_manifest(outputs, calls[0]["manifest"]);
  CHECK(bad.empty());
  for (const auto& m : bad) MESSAGE(m);
  for (const auto& v : kVariants) {
    for (std::string l : {"base", "newinstall", "stack"}) {
      auto e = outputs["outputs"][v + "/" + l];
      CHECK(e["type"] == "oci-image");
      CHECK(e["registry"] == services().registry);
      CHECK(e["region"].is_null());
      // The ID is the digest the registry serves under the layer's immutable tag.
      std::string id = e["id"];
      auto tag = p.records(v, l, "upload").back()["artifact"]["metadata"]["tags"][0].get<std::string>();
      CHECK(id == services().registry + "/" + p.repository + "@" + services().skopeo(p.repository, tag)["Digest"].get<std::string>());
    }
    auto names = outputs["outputs"][v + "/stack"]["moving_names"];
    std::string prefix = services().registry + "/" + p.repository + ":";
    CHECK(std::find(names.begin(), names.end(), prefix + v + "-stack") != names.end());
    CHECK(std::find(names.begin(), names.end(), prefix + v + "-stack-w_2016_05") != names.end());
    CHECK(outputs["outputs"][v + "/newinstall"]["moving_names"] == json::array({prefix + v + "-newinstall"}));
    CHECK(outputs["outputs"][v + "/base"]["moving_names"].empty());
  }
  // The webhook got one announcement naming this run and every published image.
  auto bodies = webhook.bodies();
  REQUIRE(bodies.size() == 1);
  auto said = json::parse(bodies[0]);
  CHECK(said["run_id"] == run_id);
  CHECK(said["target"] == "docker");
  CHECK(said["images"].size() == 6);
  CHECK(said["images"]["tiny-openssh/stack"] == outputs["outputs"]["tiny-openssh/stack"]["id"]);
  CHECK(said["text"].get<std::string>().find("tiny-dropbear/stack") != std::string::npos);

  // All cached: `on: published` hooks do not run (no second announcement), `always` does.
  hooks.erase(2);
  auto cached = p.lcake(with_hooks(hooks), spec);
  CHECK(cached.exit_code == 0);
  CHECK(count(cached.err, ": building (key") == 0);
  CHECK(hook_calls(pub).size() == 1);
  CHECK(webhook.bodies().size() == 1);
  REQUIRE(hook_calls(always).size() == 2);
  CHECK(hook_calls(always)[1]["outputs"]["outputs"] == outputs["outputs"]);

  // lcake outputs, each format, against the manifest of the run that published.
  auto doc = json::parse(p.lcake({"outputs"}).out);
  auto as_published = doc;
  as_published["published"] = outputs["published"];
  CHECK(outputs_vs_manifest(as_published, calls[0]["manifest"]).empty());
  auto formats = formats_vs_json(doc, p.lcake({"outputs", "--format", "shell"}).out,
                                 json::parse(p.lcake({"outputs", "--format", "tfvars"}).out));
  CHECK(formats.empty());
  for (const auto& m : formats) MESSAGE(m);
  p.check_clean();
}

TEST_CASE("sensitive variables: no trace in output, --json, plan, config show, state or the image; rotating keeps the cache") {
  DockerProject p("secrets");
  lcake::test::secrets::check_target(
      p.dir, p.dir / "state", "/nonexistent",
      [&](std::vector<std::string> args, RunSpec spec) { return p.lcake(std::move(args), std::move(spec)); },
      [&](const json& record) {
        // The image as the engine holds it: `docker save` through the Engine API (uncompressed layer tars).
        fs::path tar = p.dir / "app.tar";
        std::string id = record["artifact"]["id"];
        auto r = run("/usr/bin/curl", {"-fsS", "-o", tar.string(), "--unix-socket", services().socket.string(),
                                       "http://d/v1.41/images/" + id + "/get"});
        REQUIRE(r.exit_code == 0);
        std::string bytes = read_file(tar);
        fs::remove(tar);
        return bytes;
      });
  p.check_clean();
}
