// End-to-end tests of the docker plugin against real services started from
// tests/services: podman's Docker-compatible API on a unix socket and a
// docker-registry on 127.0.0.1, both in a temp dir, stopped at the end.
#include "lcake/detail/posix_process.hpp"
#include <dlfcn.h>
#include <doctest/doctest.h>

#include "lcake/testing.hpp"

#include "test_support.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "docker_builder.h"
#include "docker_uploader.h"
#include "docker_verifier.h"
#include "engine_client.h"
#include "lcake/errors.hpp"
#include "registry_auth.h"
#include "registry_client.h"
#include "docker_config.h"
#include "image_pull.h"
#include "scratch_container.h"
#include "lcake/plugin.hpp"

namespace fs = std::filesystem;
using lcake::docker::EngineClient;
using lcake::docker::EngineOptions;
using nlohmann::json;

namespace {

std::string sh(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = pclose(p);
  if (status) *status = rc;
  else REQUIRE_MESSAGE(rc == 0, (cmd + " failed: " + out).c_str());
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

using lcake::test::free_port;

// podman + registry for the whole test binary, started on first use.
struct Services {
  fs::path dir;
  fs::path scripts;
  std::string docker_host;
  int port = 0;
  std::string registry;
  int token_registry_port = 0;  // a second registry, with token auth, started by the test that needs it
  std::string base_image = "localhost/lcake-test/busybox:1";

  Services() {
    const char* src = std::getenv("LCAKE_SOURCE_DIR");
    scripts = fs::path(src ? src : LCAKE_TEST_SOURCE_DIR) / "tests/services";
    char tmpl[] = "/tmp/lcake-docker-test-XXXXXX";
    dir = mkdtemp(tmpl);
    port = free_port();
    registry = "127.0.0.1:" + std::to_string(port);
    do token_registry_port = free_port();
    while (token_registry_port == port);
    try {
      docker_host = sh(scripts.string() + "/podman-service.sh start " + dir.string() + " " + std::to_string(port) + " " +
                       std::to_string(token_registry_port));
      sh(scripts.string() + "/registry.sh start " + dir.string() + " " + std::to_string(port));
      sh(scripts.string() + "/import-busybox.sh " + dir.string() + " " + base_image);
    } catch (...) {
      stop_all();  // a half-started fixture never runs its destructor
      throw;
    }
    setenv("DOCKER_HOST", docker_host.c_str(), 1);
    // No credentials from the developer's own docker config.
    fs::create_directories(dir / "docker-config");
    std::ofstream(dir / "docker-config/config.json") << "{\"auths\":{}}";
    setenv("DOCKER_CONFIG", (dir / "docker-config").c_str(), 1);
  }
  // Runs at exit, outside any test: no doctest macros here.
  ~Services() { stop_all(); }
  void stop_all() {
    quiet(scripts.string() + "/registry.sh stop " + (dir / "token").string());
    quiet(scripts.string() + "/registry.sh stop " + dir.string());
    quiet(scripts.string() + "/podman-service.sh stop " + dir.string());
    quiet("rm -rf " + dir.string());
  }
  static void quiet(const std::string& cmd) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) std::fprintf(stderr, "failed: %s\n", cmd.c_str());
  }
  void stop_registry() { quiet(scripts.string() + "/registry.sh stop " + dir.string()); }
  void start_registry() { sh(scripts.string() + "/registry.sh start " + dir.string() + " " + std::to_string(port)); }
};

Services& services() {
  static Services s;
  return s;
}

// lcake::testing::FakeContext under the services' dir, with secrets from the
// environment and a ledger that remembers which entries were confirmed.
class TestContext : public lcake::testing::FakeContext {
 public:
  struct Ledger : lcake::testing::MemoryLedger {
    void confirm(std::int64_t id, const std::string& resource_id, const json& how) override {
      MemoryLedger::confirm(id, resource_id, how);
      confirmed.insert(id);
    }
    std::set<std::int64_t> confirmed;
  };
  TestContext() : FakeContext(services().dir / ("ctx-" + std::to_string(++counter_))) {}
  std::optional<std::string> secret(const std::string& name) override {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  }
  lcake::CleanupLedger& ledger() override { return checked; }
  std::vector<lcake::LedgerEntry> open() const { return checked.open_entries(); }
  void release(std::int64_t id) { checked.release(id); }

  lcake::testing::ManualCancel& token = cancel_token;
  Ledger checked;

 private:
  static inline int counter_ = 0;
};

EngineClient engine() {
  EngineOptions o;
  o.docker_host = services().docker_host;
  EngineClient e(o);
  e.negotiate();
  return e;
}

// What lcake counts as its own containers (see kContainerNameFilter).
std::vector<json> lcake_containers(const std::string& pattern = lcake::docker::kContainerNameFilter) {
  return engine().list_containers(json{{"name", {pattern}}});
}

// After every scenario: no lcake container left, nothing open in the ledger.
void check_clean(TestContext& ctx) {
  CHECK(lcake_containers().empty());
  CHECK(ctx.open().empty());
}

lcake::LayerInfo layer_info(const std::string& layer, char key_char) {
  return {"docker", "busybox", layer, std::string(64, key_char), "0.1.0"};
}

struct Output {
  std::string out, err;
  lcake::Communicator::OutputFn fn() {
    return [this](std::string_view chunk, bool is_stderr) { (is_stderr ? err : out).append(chunk); };
  }
};

json skopeo(const std::string& args) {
  return json::parse(sh("skopeo inspect --tls-verify=false " + args + " 2>&1"));
}

std::vector<std::string> registry_tags(const std::string& repo) {
  auto j = json::parse(sh("curl -fsS http://" + services().registry + "/v2/" + repo + "/tags/list"));
  return j["tags"].is_array() ? j["tags"].get<std::vector<std::string>>() : std::vector<std::string>{};
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("engine: version negotiation and one-line errors") {
  auto e = engine();
  CHECK(e.api_version() == "1.41");  // podman 4.3 speaks 1.41
  CHECK(e.version().contains("ApiVersion"));

  EngineOptions missing;
  missing.docker_host = "unix://" + (services().dir / "nothing-here.sock").string();
  try {
    EngineClient(missing).negotiate();
    FAIL("no error for a missing socket");
  } catch (const lcake::BuildError& err) {
    CHECK(std::string(err.what()) == "cannot reach the Docker engine at " + missing.docker_host +
                                         " (no such file): start the engine or set DOCKER_HOST");
  }

  // A server that accepts connections and never answers: an error after the deadline.
  fs::path hung = services().dir / "hung.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, hung.c_str(), sizeof a.sun_path - 1);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(fd, 4) == 0);
  EngineOptions slow;
  slow.docker_host = "unix://" + hung.string();
  slow.api_timeout = std::chrono::seconds(1);
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(EngineClient(slow).negotiate(), doctest::Contains("did not finish GET /_ping within 1s"),
                       lcake::BuildError);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  close(fd);

  CHECK_THROWS_AS(EngineClient(EngineOptions{"ssh://somewhere"}), lcake::InputError);
}

TEST_CASE("builder, uploader, verifier: two layers, push, publish, rollback") {
  auto& svc = services();
  TestContext ctx;
  lcake::docker::DockerBuilder builder(json{{"pull", "never"}});

  // ---- base layer from the imported busybox image
  lcake::BuildRequest base_req;
  base_req.layer = layer_info("base", 'a');
  base_req.source = {{"image", svc.base_image}};
  base_req.options = {{"changes", {"USER lsst", "WORKDIR /home/lsst", "CMD [\"/bin/sh\", \"-c\", \"echo hello\"]",
                                   "LABEL org.example.k=v"}}};
  auto session = builder.start(base_req, ctx);
  REQUIRE(ctx.open().size() == 1);
  CHECK(ctx.open()[0].kind == "container");
  CHECK(ctx.checked.confirmed.count(ctx.open()[0].id));
  CHECK(ctx.open()[0].how["docker_host"] == svc.docker_host);
  CHECK(engine().inspect_container(ctx.open()[0].how["name"])->at("HostConfig").at("NetworkMode") == "none");

  auto& comm = session->communicator();
  Output o;
  CHECK(comm.run("echo out; echo err >&2; exit 3", o.fn(), std::chrono::seconds(30)) == 3);
  CHECK(o.out == "out\n");
  CHECK(o.err == "err\n");

  fs::path script = ctx.work_dir() / "run.sh";
  std::ofstream(script) << "#!/bin/sh\necho tool ran\n";
  fs::permissions(script, fs::perms(0755));
  comm.upload(script, "/opt/tool/run.sh");
  Output o2;
  CHECK(comm.run("stat -c %a /opt/tool/run.sh && /opt/tool/run.sh && id -u", o2.fn(), std::chrono::seconds(30)) == 0);
  CHECK(o2.out == "755\ntool ran\n0\n");
  comm.download("/etc/passwd", ctx.work_dir() / "passwd");
  std::ifstream in(ctx.work_dir() / "passwd");
  std::string passwd((std::istreambuf_iterator<char>(in)), {});
  CHECK(passwd.find("lsst:x:1000") != std::string::npos);

  lcake::Artifact base = session->finish(ctx);
  session.reset();
  check_clean(ctx);
  CHECK(base.type == "oci-image");
  CHECK(base.id.rfind("sha256:", 0) == 0);
  CHECK(base.metadata["user"] == "lsst");
  CHECK(base.metadata["workdir"] == "/home/lsst");
  CHECK(base.metadata["cmd"] == json::array({"/bin/sh", "-c", "echo hello"}));
  CHECK(base.metadata["labels"]["org.lcake.layer-key"] == std::string(64, 'a'));
  CHECK(base.metadata["labels"]["org.lcake.layer"] == "base");
  CHECK(base.metadata["labels"]["org.lcake.variant"] == "busybox");
  CHECK(base.metadata["labels"]["org.lcake.version"] == "0.1.0");
  CHECK(base.metadata["labels"]["org.example.k"] == "v");
  CHECK(base.metadata["repo_tag"] == "localhost/lcake/docker/busybox-base:aaaaaaaaaaaa");
  CHECK(builder.exists(base, ctx));

  // ---- child layer FROM the parent's image ID, no CMD of its own
  lcake::BuildRequest child_req;
  child_req.layer = layer_info("stack", 'b');
  child_req.parent = base;
  child_req.options = {{"env", {{"STACK_TAG", "w_2016_05"}}}, {"workdir", "/opt/stack"}};
  session = builder.start(child_req, ctx);
  Output o3;
  CHECK(session->communicator().run("id -u; pwd; stat -c %U .; echo $STACK_TAG; cat /opt/tool/run.sh | wc -l", o3.fn(),
                                    std::chrono::seconds(30)) == 0);
  CHECK(o3.out == "1000\n/opt/stack\nlsst\nw_2016_05\n2\n");
  lcake::Artifact child = session->finish(ctx);
  session.reset();
  check_clean(ctx);
  CHECK(child.metadata["cmd"] == base.metadata["cmd"]);
  CHECK(child.metadata["user"] == "lsst");
  CHECK(child.metadata["workdir"] == "/opt/stack");
  CHECK(child.metadata["labels"]["org.lcake.layer"] == "stack");
  CHECK(child.metadata["labels"]["org.lcake.layer-key"] == std::string(64, 'b'));
  CHECK(child.metadata["parent_image"] == base.id);

  // ---- images carry exactly the documented labels (plus the layer's own LABEL changes):
  // nothing of the build container's, so a user's container from them is not lcake's
  const json image_labels = {{"org.lcake.layer-key", std::string(64, 'b')}, {"org.lcake.layer", "stack"},
                             {"org.lcake.variant", "busybox"}, {"org.lcake.version", "0.1.0"},
                             {"org.lcake.target", "docker"}, {"org.example.k", "v"}};
  CHECK(engine().inspect_image(child.id)->at("Config").at("Labels") == image_labels);
  std::string user_container = engine().create_container(
      "users-own", json{{"Image", child.id}, {"Entrypoint", {"sleep"}}, {"Cmd", {"infinity"}}}, "");
  CHECK(engine().inspect_container(user_container)->at("Config").at("Labels") == image_labels);
  CHECK(lcake_containers().empty());
  engine().remove_container(user_container, true);

  // ---- upload both: immutable tags, digests as the registry sees them
  json up_settings = {{"registry", svc.registry}, {"repository", "lcake/stack"}, {"tls_verify", false}};
  lcake::docker::DockerUploader uploader(up_settings);
  lcake::UploadRequest ureq{base_req.layer, base, std::nullopt, json::object()};
  lcake::Artifact base_up = uploader.upload(ureq, ctx);
  lcake::UploadRequest ureq2{child_req.layer, child, base_up, json::object()};
  lcake::Artifact child_up = uploader.upload(ureq2, ctx);
  CHECK(child_up.id == svc.registry + "/lcake/stack@" + child_up.metadata["digest"].get<std::string>());
  CHECK(child_up.metadata["tags"] == json::array({"busybox-stack-bbbbbbbbbbbb"}));
  CHECK(child_up.metadata["image_id"] == child.id);

  std::string ref = "docker://" + svc.registry + "/lcake/stack:busybox-stack-bbbbbbbbbbbb";
  auto info = skopeo(ref);
  CHECK(info["Digest"] == child_up.metadata["digest"]);
  CHECK(info["Labels"]["org.lcake.layer-key"] == std::string(64, 'b'));
  CHECK(info["Labels"]["org.lcake.layer"] == "stack");
  auto config = skopeo("--config " + ref);
  CHECK(config["config"]["User"] == "lsst");
  CHECK(config["config"]["WorkingDir"] == "/opt/stack");
  CHECK(config["config"]["Cmd"] == json::array({"/bin/sh", "-c", "echo hello"}));
  CHECK(uploader.exists(child_up, ctx));

  // ---- lookup by key: a fresh uploader (an empty state dir elsewhere) finds the push;
  // a rebuild of the same key (another image) never moves the immutable per-key tag
  lcake::docker::DockerUploader fresh(up_settings);
  auto found = fresh.find(lcake::FindRequest{child_req.layer, json::object()}, ctx);
  REQUIRE(found.has_value());
  CHECK(found->id == child_up.id);
  CHECK(found->metadata["tags"] == json::array({"busybox-stack-bbbbbbbbbbbb"}));
  CHECK_FALSE(fresh.find(lcake::FindRequest{layer_info("nothere", 'd'), json::object()}, ctx).has_value());
  lcake::UploadRequest rebuilt{child_req.layer, base, base_up, json::object()};
  CHECK(fresh.upload(rebuilt, ctx).id == child_up.id);
  CHECK(skopeo(ref)["Digest"] == child_up.metadata["digest"]);

  // ---- publish: moving tags from the layer's publish options
  lcake::PublishRequest preq{child_req.layer, {{"moving_tags", {"7-stack-${variant}", "7-stack"}}}};
  auto published = uploader.publish(child_up, preq, ctx);
  CHECK(published.metadata["moving_tags"] == json::array({"7-stack-busybox", "7-stack"}));
  CHECK(published.metadata["moving_names"] ==
        json::array({svc.registry + "/lcake/stack:7-stack-busybox", svc.registry + "/lcake/stack:7-stack"}));
  CHECK(skopeo("docker://" + svc.registry + "/lcake/stack:7-stack")["Digest"] == child_up.metadata["digest"]);
  CHECK(skopeo("docker://" + svc.registry + "/lcake/stack:7-stack-busybox")["Digest"] == child_up.metadata["digest"]);

  // ---- a publish the registry refuses half-way leaves no moving tag changed
  lcake::PublishRequest bad{base_req.layer, {{"moving_tags", {"7-stack", "fresh", std::string(200, 'x')}}}};
  CHECK_THROWS_WITH_AS(uploader.publish(base_up, bad, ctx), doctest::Contains("publishing moving tag xxxx"),
                       lcake::BuildError);
  auto tags = registry_tags("lcake/stack");
  CHECK_FALSE(has(tags, "fresh"));
  CHECK(skopeo("docker://" + svc.registry + "/lcake/stack:7-stack")["Digest"] == child_up.metadata["digest"]);
  CHECK(skopeo("docker://" + svc.registry + "/lcake/stack:busybox-base-aaaaaaaaaaaa")["Digest"] == base_up.metadata["digest"]);
  CHECK(has(tags, "busybox-stack-bbbbbbbbbbbb"));

  // ---- verify the built image, the pushed one from the local image, and the pushed one pulled
  for (std::string pull : {"built", "missing", "always"}) {
    CAPTURE(pull);
    lcake::docker::DockerVerifier verifier(json{{"pull", pull == "built" ? "never" : pull}});
    lcake::VerifyRequest vreq{child_req.layer, pull == "built" ? child : child_up, child, json::object()};
    auto vs = verifier.start(vreq, ctx);
    CHECK(ctx.open().size() == 1);
    Output vo;
    CHECK(vs->communicator().run("/opt/tool/run.sh; id -un; echo $STACK_TAG", vo.fn(), std::chrono::seconds(30)) == 0);
    CHECK(vo.out == "tool ran\nlsst\nw_2016_05\n");
    vs->finish(ctx);
    check_clean(ctx);
  }

  // ---- a registry that is gone: one clear error, nothing moved
  svc.stop_registry();
  lcake::UploadRequest again{layer_info("other", 'c'), child, std::nullopt, json::object()};
  CHECK_THROWS_WITH_AS(uploader.upload(again, ctx), doctest::Contains(("push of " + svc.registry + "/lcake/stack:busybox-other-cccccccccccc failed").c_str()),
                       lcake::BuildError);
  // A digest is named as a reference is written: repo@sha256:…, never repo:sha256:….
  try {
    uploader.publish(child_up, lcake::PublishRequest{child_req.layer, {{"moving_tags", {"gone"}}}}, ctx);
    FAIL("publish to a stopped registry did not fail");
  } catch (const lcake::BuildError& e) {
    std::string msg = e.what();
    CHECK(msg.find("is the registry running?") != std::string::npos);
    CHECK(msg.find("GET manifest lcake/stack@" + child_up.metadata["digest"].get<std::string>()) != std::string::npos);
    CHECK(msg.find("lcake/stack:sha256:") == std::string::npos);
  }
  svc.start_registry();
  CHECK_FALSE(has(registry_tags("lcake/stack"), "gone"));
  check_clean(ctx);

  builder.remove(child, ctx);
  CHECK_FALSE(builder.exists(child, ctx));
}

TEST_CASE("builder: failing provisioner, timeout, cancel, bad keep-alive, reap") {
  auto& svc = services();
  TestContext ctx;
  lcake::docker::DockerBuilder builder(json{{"pull", "missing"}});
  lcake::BuildRequest req;
  req.layer = layer_info("base", 'd');
  req.source = {{"image", svc.base_image}};

  auto session = builder.start(req, ctx);
  Output o;
  CHECK(session->communicator().run("echo failing >&2; exit 1", o.fn(), std::chrono::seconds(30)) == 1);
  CHECK(o.err == "failing\n");

  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(session->communicator().run("sleep 30", o.fn(), std::chrono::seconds(1)),
                       doctest::Contains("timed out after 1s"), lcake::BuildError);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  Output ps;
  CHECK(session->communicator().run("ps -o args | grep -c '^sleep 30'; ls -a /dev/shm | grep -c lcake-exec", ps.fn(),
                                    std::chrono::seconds(30)) == 0);
  CHECK(ps.out == "0\n1\n");  // the timed-out command was killed; only this command's PID file is left

  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ctx.token.fire();
  });
  t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(session->communicator().run("sleep 30", o.fn(), std::chrono::seconds(0)), lcake::Cancelled);
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
  session->abort(ctx);  // works although the run is cancelled
  session.reset();
  check_clean(ctx);

  // A keep-alive command that exits: a clear error, nothing left behind.
  TestContext ctx2;
  lcake::docker::DockerBuilder quitter(json{{"keep_alive_command", {"true"}}});
  CHECK_THROWS_WITH_AS(quitter.start(req, ctx2), doctest::Contains("keep-alive command 'true'"), lcake::BuildError);
  check_clean(ctx2);

  // A crashed run leaves a ledger entry; reap() deletes the container; a second
  // reap finds nothing and says so (AlreadyGone: gc does not count it as deleted).
  TestContext ctx3;
  auto orphan = builder.start(req, ctx3);
  REQUIRE(ctx3.open().size() == 1);
  auto entry = ctx3.open()[0];
  orphan.reset();  // no finish/abort: like a crash
  CHECK(lcake_containers("^/?lcake-build-").size() == 1);
  builder.reap(entry, ctx3);
  CHECK(lcake_containers().empty());
  CHECK_THROWS_WITH_AS(builder.reap(entry, ctx3), doctest::Contains("is already gone"), lcake::AlreadyGone);
  ctx3.release(entry.id);
  check_clean(ctx3);

  // The source image must be a {"image": …} object.
  lcake::BuildRequest no_source = req;
  no_source.source = json();
  CHECK_THROWS_AS(builder.start(no_source, ctx3), lcake::InputError);
  check_clean(ctx3);
}

// podman 4.3 keeps a conmon per exec session for exit_command_delay seconds
// (default 300): the test service sets 10, so they must not pile up.
TEST_CASE("podman service: exec sessions' conmon processes do not linger") {
  auto& svc = services();
  auto exec_conmons = [&] {
    int n = 0;
    for (const auto& p : fs::directory_iterator("/proc")) {
      std::ifstream in(p.path() / "cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), {});
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      n += cmdline.rfind("/usr/bin/conmon ", 0) == 0 && cmdline.find(svc.dir.string() + "/") != std::string::npos &&
           cmdline.find(" --exec-process-spec ") != std::string::npos;
    }
    return n;
  };
  TestContext ctx;
  lcake::docker::DockerBuilder builder(json{{"pull", "never"}});
  lcake::BuildRequest req;
  req.layer = layer_info("conmon", 'e');
  req.source = {{"image", svc.base_image}};
  auto session = builder.start(req, ctx);
  Output o;
  for (int i = 0; i < 5; ++i) CHECK(session->communicator().run("true", o.fn(), std::chrono::seconds(30)) == 0);
  CHECK(exec_conmons() >= 1);  // each exec's conmon waits out the delay
  // ...and then ends, while the container still runs (removing it would end them anyway).
  auto t0 = std::chrono::steady_clock::now();
  while (exec_conmons() > 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(40))
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(exec_conmons() == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  session->abort(ctx);
  session.reset();
  check_clean(ctx);
}

TEST_CASE("commit changes keep the parent's CMD and ENTRYPOINT") {
  json parent = {{"Cmd", {"/bin/sh"}}, {"Entrypoint", nullptr}};
  auto c = lcake::docker::commit_changes(parent, json{{"changes", {"USER lsst"}}}, {{"k", "v"}});
  CHECK(c == std::vector<std::string>{"ENTRYPOINT []", "CMD [\"/bin/sh\"]", "USER lsst", "LABEL k=\"v\""});
  c = lcake::docker::commit_changes(parent, json{{"changes", {"ENTRYPOINT [\"/run\"]"}}}, {});
  CHECK(c == std::vector<std::string>{"CMD []", "ENTRYPOINT [\"/run\"]"});
  try {
    lcake::docker::commit_changes(parent, json{{"changes", {"RUN make"}}}, {});
    FAIL("RUN is not a commit change");
  } catch (const lcake::ValueError& e) {  // the host adds /pipeline/layers/L/builder and file:line
    CHECK(e.part == "options");
    CHECK(e.pointer == "/changes/0");
    CHECK(std::string(e.what()).find("'RUN make' is not a commit change") != std::string::npos);
  }
  CHECK(lcake::docker::image_reference("lcake/stack", "sha256:" + std::string(64, 'e')) ==
        "lcake/stack@sha256:" + std::string(64, 'e'));
  CHECK(lcake::docker::image_reference("lcake/stack", "7-stack") == "lcake/stack:7-stack");
  lcake::LayerInfo li{"t", "centos-7", "stack", std::string(64, 'f'), "1"};
  CHECK(lcake::docker::render_tag("7-${layer}-${key12}", li, "settings", "/tags/0") == "7-stack-ffffffffffff");
  CHECK_THROWS_AS(lcake::docker::render_tag("${nope}", li, "settings", "/tags/0"), lcake::ValueError);
  CHECK_THROWS_AS(lcake::docker::render_tag("a b", li, "publish", "/moving_tags/1"), lcake::ValueError);
}

TEST_CASE("the plugin file declares three roles with valid schemas") {
  const char* bin = std::getenv("LCAKE_BINARY_DIR");
  fs::path so = fs::path(bin ? bin : LCAKE_TEST_BINARY_DIR) / "lib/lcake/plugins/lcake-docker.so";
  void* handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE_MESSAGE(handle, dlerror());
  auto entry = reinterpret_cast<lcake_plugin_entry>(dlsym(handle, LCAKE_ENTRY_PREFIX LCAKE_DETAIL_STR(LCAKE_API_VERSION)));
  REQUIRE(static_cast<bool>(entry));
  const lcake_plugin_descriptor* d = entry();
  CHECK(std::string(d->name) == "docker");
  for (const lcake_role_spec* spec : {&d->builder, &d->uploader, &d->verifier}) {
    CHECK(static_cast<bool>(spec->factory));
    CHECK(json::parse(spec->settings)["type"] == "object");
    CHECK(std::string(spec->accepts) == "oci-image");
  }
  char err[256] = {0};
  CHECK(d->builder.factory("{\"docker_host\": \"ftp://x\"}", err, sizeof err) == nullptr);
  CHECK(std::string(err).find("the docker_host setting 'ftp://x' is not supported") != std::string::npos);
  void* uploader = d->uploader.factory("{}", err, sizeof err);
  CHECK(uploader != nullptr);
  delete static_cast<lcake::Uploader*>(uploader);
  // Plugins are never unloaded (as in the host).
}

TEST_CASE("uploader remove: deletes the manifest only when no other tag points at it") {
  auto& svc = services();
  TestContext ctx;
  lcake::Artifact built;
  built.type = "oci-image";
  built.id = svc.base_image;
  json settings = {{"registry", svc.registry}, {"repository", "lcake/rm"}, {"tls_verify", false}};
  lcake::docker::DockerUploader uploader(settings);
  lcake::UploadRequest req{layer_info("rm", '1'), built, std::nullopt, json::object()};
  auto up = uploader.upload(req, ctx);
  REQUIRE(uploader.exists(up, ctx));
  const std::string own = "busybox-rm-111111111111";

  // A user's tag on the same manifest: remove() leaves the manifest (and both tags) and says so.
  lcake::docker::RegistryOptions ro;
  ro.registry = svc.registry;
  ro.scheme = "http";
  lcake::docker::RegistryClient registry(ro);
  auto manifest = registry.get_manifest("lcake/rm", up.metadata["digest"].get<std::string>());
  REQUIRE(manifest.has_value());
  registry.put_manifest("lcake/rm", "users-own", *manifest);
  uploader.remove(up, ctx);
  CHECK(uploader.exists(up, ctx));
  CHECK(has(registry_tags("lcake/rm"), "users-own"));
  CHECK(has(registry_tags("lcake/rm"), own));
  CHECK(ctx.logged("other tags point at it (users-own)"));

  // Only lcake's own per-key tag: the manifest goes.
  lcake::docker::DockerUploader other(json{{"registry", svc.registry}, {"repository", "lcake/rm2"}, {"tls_verify", false}});
  auto up2 = other.upload(req, ctx);
  REQUIRE(other.exists(up2, ctx));
  other.remove(up2, ctx);
  CHECK_FALSE(other.exists(up2, ctx));
  CHECK_FALSE(has(registry_tags("lcake/rm2"), own));
  check_clean(ctx);
}

TEST_CASE("registry: a paged tag list (Link rel=\"next\") is followed to its end") {
  auto& svc = services();
  TestContext ctx;
  lcake::Artifact built;
  built.type = "oci-image";
  built.id = svc.base_image;
  lcake::docker::DockerUploader uploader(json{{"registry", svc.registry}, {"repository", "lcake/paged"}, {"tls_verify", false}});
  lcake::UploadRequest req{layer_info("paged", '5'), built, std::nullopt, json::object()};
  auto up = uploader.upload(req, ctx);
  lcake::docker::RegistryOptions ro;
  ro.registry = svc.registry;
  ro.scheme = "http";
  lcake::docker::RegistryClient direct(ro);
  auto manifest = direct.get_manifest("lcake/paged", up.metadata["digest"].get<std::string>());
  REQUIRE(manifest.has_value());
  for (int i = 0; i < 6; ++i) direct.put_manifest("lcake/paged", "extra-" + std::to_string(i), *manifest);
  auto all = registry_tags("lcake/paged");
  REQUIRE(all.size() == 7);

  // The simulator in front of the real registry pages by 2 (tests/services/paged-tags.py).
  lcake::test::TempDir tmp("lcake-paged");
  int port = free_port();
  auto pidfile = tmp.path / "pid";
  sh("python3 " + (fs::path(LCAKE_TEST_SOURCE_DIR) / "tests/services/paged-tags.py").string() + " " +
     std::to_string(port) + " " + svc.registry + " 2 " + pidfile.string() + " >" + (tmp.path / "log").string() +
     " 2>&1 &");
  std::string probe = "curl -fsS -o /dev/null http://127.0.0.1:" + std::to_string(port) + "/v2/lcake/paged/tags/list";
  int rc = 1;
  for (int i = 0; i < 100 && rc != 0; ++i) {
    sh(probe + " 2>/dev/null", &rc);
    if (rc != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(rc == 0);
  // One page is not all: the simulator really pages.
  auto first = json::parse(sh("curl -fsS http://127.0.0.1:" + std::to_string(port) + "/v2/lcake/paged/tags/list"));
  CHECK(first["tags"].size() == 2);

  ro.registry = "127.0.0.1:" + std::to_string(port);
  lcake::docker::RegistryClient paged(ro);
  auto sorted = [](std::vector<std::string> v) { std::sort(v.begin(), v.end()); return v; };
  CHECK(sorted(paged.list_tags("lcake/paged")) == sorted(all));     // the registry's page size
  CHECK(sorted(paged.list_tags("lcake/paged", 3)) == sorted(all));  // n=3
  std::ifstream pid_in(pidfile);
  int pid = 0;
  pid_in >> pid;
  if (pid > 0) kill(pid, SIGTERM);
  uploader.remove(up, ctx);
}

namespace {

using EnvVars = std::vector<std::pair<std::string, std::optional<std::string>>>;
// Sets environment variables for one scope and puts the old values back.
struct EnvOverride {
  explicit EnvOverride(std::vector<std::pair<std::string, std::optional<std::string>>> vars) {
    for (auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
    }
  }
  ~EnvOverride() {
    for (auto& [k, v] : saved) {
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
    }
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
};

fs::path source_dir() {
  const char* src = std::getenv("LCAKE_SOURCE_DIR");
  return fs::path(src ? src : LCAKE_TEST_SOURCE_DIR);
}

// A docker config dir with config.json = `config` and the test credential helper
// (tests/services/credential-helper) on PATH, its store in DIR/creds.
struct DockerConfigDir {
  lcake::test::TempDir tmp{"lcake-docker-config"};
  fs::path creds = tmp.path / "creds";
  std::unique_ptr<EnvOverride> env;
  explicit DockerConfigDir(const json& config) {
    fs::create_directories(creds);
    std::ofstream(tmp.path / "config.json") << config.dump();
    const char* path = std::getenv("PATH");
    env = std::make_unique<EnvOverride>(std::vector<std::pair<std::string, std::optional<std::string>>>{
        {"DOCKER_CONFIG", tmp.path.string()},
        {"LCAKE_TEST_CREDENTIALS", creds.string()},
        {"PATH", (source_dir() / "tests/services/credential-helper").string() + ":" + (path ? path : "/usr/bin:/bin")}});
  }
  void store(const std::string& server, const std::string& user, const std::string& secret) {
    std::ofstream(creds / (server_file(server) + ".json")) << json{{"ServerURL", server}, {"Username", user}, {"Secret", secret}}.dump();
  }
  static std::string server_file(std::string s) {
    for (auto& c : s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
    return s;
  }
  std::string lookups() {
    std::ifstream in(creds / "lookups.log");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
};

}  // namespace

TEST_CASE("credentials: credHelpers and credsStore through docker-credential-NAME get") {
  using lcake::docker::find_registry_credentials;
  lcake::test::TempDir root("lcake-creds-ctx");
  lcake::testing::FakeContext ctx(root.path);
  DockerConfigDir cfg(json{{"credsStore", "lcake-test"},
                           {"credHelpers", {{"helped.example:5000", "lcake-test"}, {"missing.example", "nosuch"}}},
                           {"auths", {{"helped.example:5000", json::object()}, {"plain.example", {{"auth", "dTpw"}}}}}});
  cfg.store("helped.example:5000", "alice", "s3cret-from-helper");
  cfg.store("store.example", "<token>", "identity-token-value");
  cfg.store("https://index.docker.io/v1/", "hubuser", "hub-secret");

  auto helped = find_registry_credentials("helped.example:5000", ctx);
  REQUIRE(helped.has_value());
  CHECK(helped->username == "alice");
  CHECK(helped->password == "s3cret-from-helper");
  CHECK(helped->source.find("credHelpers[\"helped.example:5000\"] helper docker-credential-lcake-test") == 0);
  auto store = find_registry_credentials("store.example", ctx);  // no credHelpers entry: credsStore
  REQUIRE(store.has_value());
  CHECK(store->username.empty());
  CHECK(store->identity_token == "identity-token-value");
  auto hub = find_registry_credentials("docker.io", ctx);
  REQUIRE(hub.has_value());
  CHECK(hub->username == "hubuser");
  // With a credsStore, docker ignores the auths entries: the helper has nothing for plain.example.
  CHECK_FALSE(find_registry_credentials("plain.example", ctx).has_value());
  CHECK(cfg.lookups() == "helped.example:5000\nstore.example\nhttps://index.docker.io/v1/\nplain.example\n");
  // Every secret is registered for redaction, none was logged.
  for (std::string s : {"s3cret-from-helper", "identity-token-value", "hub-secret"}) {
    CHECK(std::find(ctx.redacted.begin(), ctx.redacted.end(), s) != ctx.redacted.end());
    CHECK_FALSE(ctx.logged(s));
  }
  CHECK(ctx.memory_ledger.open_entries().empty());  // the helper's process was recorded and released

  // A helper that is not installed: one line naming it and config.json, exit 2 (InputError).
  try {
    find_registry_credentials("missing.example", ctx);
    FAIL("no error for a missing helper");
  } catch (const lcake::InputError& e) {
    CHECK(std::string(e.what()) == "credential helper docker-credential-nosuch (credHelpers[\"missing.example\"] in " +
                                       (cfg.tmp.path / "config.json").string() +
                                       ") is not in PATH: install it, or change credHelpers[\"missing.example\"] in that file");
  }
  // A helper that fails: one line with its message.
  CHECK_THROWS_WITH_AS(find_registry_credentials("broken.example", ctx),
                       doctest::Contains("credential helper docker-credential-lcake-test get (credsStore in "),
                       lcake::BuildError);
  CHECK_THROWS_WITH_AS(find_registry_credentials("broken.example", ctx), doctest::Contains("(exit 3): the keyring is locked"),
                       lcake::BuildError);

  // Without a helper, auths as before; a config.json that is not JSON is an input error naming it.
  DockerConfigDir plain(json{{"auths", {{"https://plain.example/v2/", {{"auth", "dTpw"}}}}}});
  auto p = find_registry_credentials("plain.example", ctx);
  REQUIRE(p.has_value());
  CHECK(p->username == "u");
  CHECK(p->password == "p");
  std::ofstream(plain.tmp.path / "config.json") << "{not json";
  CHECK_THROWS_WITH_AS(find_registry_credentials("plain.example", ctx),
                       doctest::Contains(((plain.tmp.path / "config.json").string() + ": not a JSON object").c_str()),
                       lcake::InputError);
}

namespace {
std::vector<json> json_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}
}  // namespace

TEST_CASE("token auth: docker-registry with auth.token, a token server, credentials from a helper") {
  auto& svc = services();
  int rc = 0;
  sh("python3 -c 'import cryptography' 2>&1", &rc);
  REQUIRE_MESSAGE(rc == 0, "tests/services/token-server.py needs python3-cryptography (apt-get install python3-cryptography)");
  fs::path tdir = svc.dir / "token";
  fs::create_directories(tdir);
  std::ofstream(tdir / "token-users") << "pusher:pw-secret-1\nrefresh:identity-secret-2\n";
  const std::string reg = "127.0.0.1:" + std::to_string(svc.token_registry_port);
  sh(svc.scripts.string() + "/registry.sh start " + tdir.string() + " " + std::to_string(svc.token_registry_port) + " " +
     std::to_string(free_port()));
  // The registry wants a token for anything, even anonymous pulls.
  CHECK(sh("curl -s -o /dev/null -w '%{http_code}' http://" + reg + "/v2/") == "401");

  DockerConfigDir cfg(json{{"credsStore", "lcake-test"}});
  cfg.store(reg, "pusher", "pw-secret-1");
  TestContext ctx;
  lcake::Artifact built;
  built.type = "oci-image";
  built.id = svc.base_image;
  json settings = {{"registry", reg}, {"repository", "lcake/tok"}, {"tls_verify", false}};
  lcake::docker::DockerUploader uploader(settings);
  lcake::UploadRequest req{layer_info("tok", '7'), built, std::nullopt, json::object()};
  // Push through the engine (podman does the token flow with the helper's credentials),
  // then publish and look up through the registry API (lcake's token flow).
  auto up = uploader.upload(req, ctx);
  auto published = uploader.publish(up, lcake::PublishRequest{req.layer, {{"moving_tags", {"tok-moving"}}}}, ctx);
  CHECK(published.metadata["moving_tags"] == json::array({"tok-moving"}));
  lcake::docker::DockerUploader fresh(settings);
  auto found = fresh.find(lcake::FindRequest{req.layer, json::object()}, ctx);
  REQUIRE(found.has_value());
  CHECK(found->id == up.id);
  CHECK(cfg.lookups().find(reg + "\n") != std::string::npos);

  auto log = json_lines(tdir / "token-requests.log");
  bool lcake_push = false;
  for (const auto& l : log) {
    if (l.value("user", json()) == "pusher" && l["scope"] == "repository:lcake/tok:pull,push") lcake_push = true;
  }
  CHECK(lcake_push);
  std::ifstream raw(tdir / "token-requests.log");
  std::string raw_log((std::istreambuf_iterator<char>(raw)), {});
  CHECK(raw_log.find("pw-secret-1") == std::string::npos);

  // One token per scope: the second HEAD uses the cached token.
  lcake::docker::RegistryOptions ro;
  ro.registry = reg;
  ro.scheme = "http";
  ro.credentials = lcake::docker::RegistryCredentials{"pusher", "pw-secret-1", "", "test"};
  ro.tokens = std::make_shared<lcake::docker::TokenCache>();
  std::vector<std::string> tokens;
  ro.redact = [&](const std::string& t) { tokens.push_back(t); };
  lcake::docker::RegistryClient client(ro);
  std::string digest = up.metadata["digest"];
  CHECK(client.head_manifest("lcake/tok", "tok-moving") == digest);
  CHECK(client.head_manifest("lcake/tok", digest) == digest);
  CHECK(ro.tokens->fetched == 1);
  CHECK(client.list_tags("lcake/tok").size() == 2);  // pull scope again: cached
  CHECK(ro.tokens->fetched == 1);
  REQUIRE(tokens.size() == 1);
  for (const auto& l : ctx.logs) CHECK(l.find(tokens[0]) == std::string::npos);

  // Renewed on 401: tokens that the registry refuses as expired...
  std::ofstream(tdir / "token-users") << "pusher:pw-secret-1\nexpires:-120\n";
  lcake::docker::RegistryClient expiring(ro);
  ro.tokens->authorization.clear();
  CHECK_THROWS_WITH_AS(expiring.head_manifest("lcake/tok", "tok-moving"), doctest::Contains("failed (HTTP 401)"),
                       lcake::BuildError);
  CHECK(ro.tokens->fetched == 2);
  // ...are replaced by a fresh one when the token server gives good ones again.
  std::ofstream(tdir / "token-users") << "pusher:pw-secret-1\nrefresh:identity-secret-2\n";
  CHECK(expiring.head_manifest("lcake/tok", "tok-moving") == digest);
  CHECK(ro.tokens->fetched == 3);
  CHECK(expiring.head_manifest("lcake/tok", "tok-moving") == digest);
  CHECK(ro.tokens->fetched == 3);

  // Anonymous: pull is granted, push is not; the error says to add credentials.
  lcake::docker::RegistryOptions anon = ro;
  anon.credentials.reset();
  anon.tokens = nullptr;
  lcake::docker::RegistryClient anonymous(anon);
  auto manifest = anonymous.get_manifest("lcake/tok", digest);
  REQUIRE(manifest.has_value());
  CHECK_THROWS_WITH_AS(anonymous.put_manifest("lcake/tok", "anon", *manifest),
                       doctest::Contains("failed (HTTP 401)"), lcake::BuildError);
  CHECK_THROWS_WITH_AS(anonymous.put_manifest("lcake/tok", "anon", *manifest),
                       doctest::Contains(("add credentials for " + reg).c_str()), lcake::BuildError);
  // An identity token goes to the token service as an OAuth2 refresh token (POST).
  lcake::docker::RegistryOptions ident = anon;
  ident.credentials = lcake::docker::RegistryCredentials{"", "", "identity-secret-2", "test identity"};
  lcake::docker::RegistryClient with_identity(ident);
  with_identity.put_manifest("lcake/tok", "by-identity", *manifest);
  CHECK(json_lines(tdir / "token-requests.log").back()["method"] == "POST");
  // Wrong credentials: the token service's refusal, naming where they came from.
  cfg.store(reg, "pusher", "wrong-password");
  TestContext bad_ctx;
  lcake::docker::DockerUploader wrong(settings);
  CHECK_THROWS_WITH_AS(wrong.publish(up, lcake::PublishRequest{req.layer, {{"moving_tags", {"nope"}}}}, bad_ctx),
                       doctest::Contains("refused a token as pusher (credentials from credsStore helper docker-credential-lcake-test"),
                       lcake::BuildError);
  CHECK_FALSE(bad_ctx.logged("wrong-password"));

  // remove() with token auth: other tags point at the digest, so it stays.
  cfg.store(reg, "pusher", "pw-secret-1");
  uploader.remove(up, ctx);
  CHECK(uploader.exists(up, ctx));
  CHECK((ctx.logged("other tags point at it (by-identity, tok-moving)") ||
         ctx.logged("other tags point at it (tok-moving, by-identity)")));
  svc.quiet(svc.scripts.string() + "/registry.sh stop " + tdir.string());
  check_clean(ctx);
}

namespace {
// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
void make_tls_files(const fs::path& d) {
  fs::create_directories(d);
  std::string q = "cd " + d.string() + " && ";
  sh(q + "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=lcake-test-ca "
         "-keyout ca-key.pem -out ca.pem 2>&1");
  sh(q + "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 "
         "-keyout server-key.pem -out server.csr 2>&1 && "
         "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' >server.ext && "
         "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext "
         "-out server-cert.pem 2>&1");
  sh(q + "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=client "
         "-keyout key.pem -out client.csr 2>&1 && printf 'extendedKeyUsage=clientAuth\\n' >client.ext && "
         "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext "
         "-out cert.pem 2>&1");
}
}  // namespace

TEST_CASE("engine over TLS: DOCKER_TLS_VERIFY/DOCKER_CERT_PATH and docker contexts, podman behind socat openssl-listen") {
  auto& svc = services();
  fs::path d = svc.dir / "tls";
  make_tls_files(d);
  int port = free_port();
  std::string sock = svc.docker_host.substr(7);
  // TLS in front of podman's socket, client certificates required (as dockerd --tlsverify).
  sh("socat OPENSSL-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork,cert=" + (d / "server-cert.pem").string() +
     ",key=" + (d / "server-key.pem").string() + ",cafile=" + (d / "ca.pem").string() + ",verify=1 UNIX-CONNECT:" + sock +
     " >" + (d / "socat.log").string() + " 2>&1 & echo $! >" + (d / "socat.pid").string());
  struct StopSocat {
    fs::path pid;
    ~StopSocat() { Services::quiet("kill $(cat " + pid.string() + ")"); }
  } stop{d / "socat.pid"};
  std::string host = "tcp://127.0.0.1:" + std::to_string(port);
  for (int i = 0; i < 50 && sh("curl -s -o /dev/null -w '%{http_code}' --cacert " + (d / "ca.pem").string() + " --cert " +
                                   (d / "cert.pem").string() + " --key " + (d / "key.pem").string() + " https://127.0.0.1:" +
                                   std::to_string(port) + "/_ping 2>&1 || true") != "200"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  DockerConfigDir cfg(json::object());

  SUBCASE("DOCKER_HOST=tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: a whole build over TLS") {
    EnvOverride env({{"DOCKER_HOST", host}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", d.string()}});
    TestContext ctx;
    lcake::docker::DockerBuilder builder(json{{"pull", "never"}});
    lcake::BuildRequest req;
    req.layer = layer_info("tls", '9');
    req.source = {{"image", svc.base_image}};
    auto session = builder.start(req, ctx);
    CHECK(ctx.open()[0].how["docker_host"] == host);
    Output o;
    CHECK(session->communicator().run("echo over-tls; exit 4", o.fn(), std::chrono::seconds(30)) == 4);
    CHECK(o.out == "over-tls\n");
    auto image = session->finish(ctx);
    session.reset();
    CHECK(builder.exists(image, ctx));
    builder.remove(image, ctx);
    check_clean(ctx);
    // A crashed build over TLS is reaped over TLS.
    auto orphan = builder.start(req, ctx);
    auto entry = ctx.open()[0];
    orphan.reset();
    builder.reap(entry, ctx);
    ctx.release(entry.id);
    check_clean(ctx);
  }
  SUBCASE("no client certificate: the engine refuses, one line naming the TLS files") {
    fs::path ca_only = d / "ca-only";
    fs::create_directories(ca_only);
    fs::copy_file(d / "ca.pem", ca_only / "ca.pem", fs::copy_options::overwrite_existing);
    EnvOverride env({{"DOCKER_HOST", host}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", ca_only.string()}});
    CHECK_THROWS_WITH_AS(EngineClient(EngineOptions{}).negotiate(), doctest::Contains("no client certificate) of DOCKER_HOST"),
                         lcake::BuildError);
  }
  SUBCASE("DOCKER_TLS_VERIFY without ca.pem is an input error naming the file") {
    fs::path empty = d / "empty";
    fs::create_directories(empty);
    EnvOverride env({{"DOCKER_HOST", host}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", empty.string()}});
    CHECK_THROWS_WITH_AS(EngineClient(EngineOptions{}), doctest::Contains(((empty / "ca.pem").string() + " is missing").c_str()),
                         lcake::InputError);
  }
  SUBCASE("plain HTTP to a TLS engine fails") {
    EnvOverride env({{"DOCKER_HOST", host}, {"DOCKER_TLS_VERIFY", std::nullopt}, {"DOCKER_TLS", std::nullopt}});
    CHECK_THROWS_AS(EngineClient(EngineOptions{}).negotiate(), lcake::BuildError);
  }
  SUBCASE("docker contexts: DOCKER_CONTEXT, currentContext, the docker_context setting") {
    auto id = sh("printf %s tls-ctx | sha256sum | cut -d' ' -f1");
    fs::path meta = cfg.tmp.path / "contexts/meta" / id;
    fs::path tls = cfg.tmp.path / "contexts/tls" / id / "docker";
    fs::create_directories(meta);
    fs::create_directories(tls);
    std::ofstream(meta / "meta.json") << json{{"Name", "tls-ctx"}, {"Metadata", json::object()},
                                               {"Endpoints", {{"docker", {{"Host", host}, {"SkipTLSVerify", false}}}}}}.dump();
    for (const char* f : {"ca.pem", "cert.pem", "key.pem"}) fs::copy_file(d / f, tls / f);
    EnvOverride env({{"DOCKER_HOST", std::nullopt}, {"DOCKER_TLS_VERIFY", std::nullopt}, {"DOCKER_CONTEXT", "tls-ctx"}});
    EngineClient by_env{EngineOptions{}};
    by_env.negotiate();
    CHECK(by_env.docker_host() == host);
    {
      EnvOverride no_ctx(EnvVars{{"DOCKER_CONTEXT", std::nullopt}});
      std::ofstream(cfg.tmp.path / "config.json") << json{{"currentContext", "tls-ctx"}}.dump();
      auto o = lcake::docker::engine_options(json::object(), nullptr);
      CHECK(o.docker_host == host);
      CHECK(o.source == "docker context 'tls-ctx' (from currentContext in " + (cfg.tmp.path / "config.json").string() + ")");
      EngineClient(o).negotiate();
      // The setting wins over $DOCKER_HOST, as docker's --context does.
      EnvOverride with_host(EnvVars{{"DOCKER_HOST", "unix:///nowhere.sock"}});
      EngineClient(lcake::docker::engine_options(json{{"docker_context", "tls-ctx"}}, nullptr)).negotiate();
      CHECK(lcake::docker::engine_options(json::object(), nullptr).docker_host == "unix:///nowhere.sock");
    }
    // A context that does not exist: one line naming meta.json and what to do (exit 2).
    EnvOverride missing(EnvVars{{"DOCKER_CONTEXT", "nope"}});
    CHECK_THROWS_WITH_AS(EngineClient(EngineOptions{}),
                         doctest::Contains(("docker context 'nope' (from DOCKER_CONTEXT): " +
                                            (cfg.tmp.path / "contexts/meta").string()).c_str()),
                         lcake::InputError);
  }
}
