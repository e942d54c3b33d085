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
  json engine_get(const std::string& path) const {
    auto r = run("/usr/bin/curl", {"-fsS", "--unix-socket", socket.string(), "http://d/v1.41" + path});
    if (r.exit_code != 0) throw std::runtime_error("GET " + path + ": " + r.err);
    return json::parse(r.out);
  }
  // Any other call on the Engine API through curl; the response body.
  std::string engine_call(const std::string& method, const std::string& path, const std::string& body = "") const {
    std::vector<std::string> args = {"-fsS", "-X", method, "--unix-socket", socket.string()};
    if (!body.empty()) args.insert(args.end(), {"-H", "Content-Type: application/json", "-d", body});
    args.push_back("http://d/v1.41" + path);
    auto r = run("/usr/bin/curl", args);
    if (r.exit_code != 0) throw std::runtime_error(method + " " + path + ": " + r.err);
    return r.out;
  }
  json containers(bool lcake_only) const {
    // lcake's own: filters={"name":["^/?lcake-(build|verify)-"]} (docs/backends/docker.md, Cleanup)
    return engine_get(std::string("/containers/json?all=1") +
                      (lcake_only ? "&filters=%7B%22name%22%3A%5B%22%5E%2F%3Flcake-%28build%7Cverify%29-%22%5D%7D" : ""));
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
    std::vector<std::string> all = {command, "--state-dir", (dir / "state").string()};
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
