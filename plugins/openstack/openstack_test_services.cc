#include "openstack_test_services.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>

namespace fs = std::filesystem;

namespace lcake::openstack::test {
namespace {

fs::path source_dir() {
  const char* v = std::getenv("LCAKE_SOURCE_DIR");
  return v && *v ? fs::path(v) : fs::path(__FILE__).parent_path().parent_path().parent_path();
}

fs::path services_dir() { return source_dir() / "tests" / "services" / "openstack"; }

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::map<std::string, std::string> read_env(const fs::path& file) {
  std::map<std::string, std::string> env;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos && line[0] != '#') env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

struct Running {
  Stack stack;
  Nova nova;
  int token_expiration = 0;
  bool reused = false;  // started outside the test (LCAKE_TEST_OPENSTACK_ROOT): left running
  ~Running() {
    if (reused) return;
    int rc = 0;
    if (nova != Nova::none) {
      auto script = nova == Nova::fake ? "nova-fake.sh" : "nova-sim.sh";
      sh("bash " + quote((services_dir() / script).string()) + " stop " + quote(stack.nova_dir.string()), &rc);
    }
    sh("bash " + quote((services_dir() / "keystone-glance.sh").string()) + " stop " +
           quote(stack.keystone_dir.string()),
       &rc);
    if (!std::getenv("LCAKE_KEEP_TEST_SERVICES")) fs::remove_all(stack.root);
  }
};

std::unique_ptr<Running> running;

}  // namespace

// The test's own cloud only: OS_* variables of the caller's shell would override clouds.yaml.
static void use_clouds_yaml(const fs::path& file) { set_os_env({{"OS_CLIENT_CONFIG_FILE", file.string()}}); }

static void read_stack_files(Stack& s) {
  s.env = read_env(s.keystone_dir / "env");
  s.admin_env = read_env(s.keystone_dir / "admin-env");
  s.glance_url = "http://127.0.0.1:" + read_env(s.keystone_dir / "ports")["GLANCE_PORT"];
  use_clouds_yaml(s.clouds_yaml());
}

void skip(const std::string& why) {
  std::cout << "SKIPPED: " << why << std::endl;
  std::cerr << "SKIPPED: " << why << std::endl;
  running.reset();
  std::_Exit(77);
}

std::string sh(const std::string& command, int* rc) {
  std::string full = "env -u PYTHONPATH -u VIRTUAL_ENV -u PYTHONHOME PATH=/usr/sbin:/usr/bin:/sbin:/bin " +
                     std::string("bash -c ") + quote(command);
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + command);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = ::pclose(p);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (rc) *rc = code;
  else if (code != 0)
    throw std::runtime_error("command failed (" + std::to_string(code) + "): " + command + "\n" + out);
  return out;
}

std::string openstack_cli(const Stack& s, const std::string& args, int* rc, bool admin) {
  std::string env = "env -i PATH=/usr/bin:/bin HOME=" + quote(s.keystone_dir.string()) + " ";
  for (auto& [k, v] : admin ? s.admin_env : s.env) env += k + "=" + quote(v) + " ";
  return sh(env + "/usr/bin/openstack " + args + (rc ? " 2>&1" : ""), rc);
}

void set_os_env(const std::map<std::string, std::string>& vars) {
  std::vector<std::string> names;
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).rfind("OS_", 0) == 0) names.emplace_back(*e, std::strchr(*e, '=') - *e);
  for (auto& n : names) ::unsetenv(n.c_str());
  for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
}

nlohmann::json sim_control(const Stack& s, const std::string& method, const std::string& path,
                           const nlohmann::json& body) {
  auto root = s.compute_url.substr(0, s.compute_url.find("/v2.1"));
  std::string cmd = "curl -sS -X " + method + " " + quote(root + path);
  if (!body.is_null()) cmd += " -H 'Content-Type: application/json' -d " + quote(body.dump());
  auto out = sh(cmd);
  return out.empty() ? nlohmann::json() : nlohmann::json::parse(out);
}

const Stack& stack(Nova nova, int token_expiration) {
  if (running) {
    if (running->nova != nova || running->token_expiration != token_expiration)
      throw std::logic_error("one Nova kind and token lifetime per test binary");
    return running->stack;
  }
  if (::access("/usr/bin/openstack", X_OK) != 0)
    skip("/usr/bin/openstack (python3-openstackclient, the tests' independent client) is not installed");
  if (::geteuid() != 0 && nova == Nova::simulator)
    skip("the Nova simulator gives each server 127.0.0.N:22, which needs root");
  auto r = std::make_unique<Running>();
  r->nova = nova;
  r->token_expiration = token_expiration;
  // A stack started by hand (the same layout, plus ROOT/compute-url), for quick reruns.
  if (const char* root = std::getenv("LCAKE_TEST_OPENSTACK_ROOT"); root && *root) {
    r->reused = true;
    auto& s = r->stack;
    s.root = root, s.keystone_dir = s.root / "keystone", s.nova_dir = s.root / "nova";
    std::ifstream(s.root / "compute-url") >> s.compute_url;
    if (s.compute_url.empty() && nova != Nova::none)
      throw std::runtime_error("LCAKE_TEST_OPENSTACK_ROOT has no compute-url");
    read_stack_files(s);
    running = std::move(r);
    return running->stack;
  }
  const char* bin = std::getenv("LCAKE_BINARY_DIR");
  auto base = (bin && *bin ? fs::path(bin) / "tmp" : fs::temp_directory_path());
  fs::create_directories(base);
  std::string tmpl = (base / "lcake-openstack-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  r->stack.root = tmpl;
  r->stack.keystone_dir = r->stack.root / "keystone";
  r->stack.nova_dir = r->stack.root / "nova";
  running = std::move(r);  // from here on, exit stops what was started
  std::atexit([] { running.reset(); });
  auto& s = running->stack;

  int rc = 0;
  auto out = sh("bash " + quote((services_dir() / "keystone-glance.sh").string()) + " start " +
                    quote(s.keystone_dir.string()) +
                    (token_expiration > 0 ? " --token-expiration " + std::to_string(token_expiration) : "") + " 2>&1",
                &rc);
  if (rc == 3) skip("Keystone/Glance cannot run here: " + out);
  if (rc != 0) throw std::runtime_error("keystone-glance.sh start failed: " + out);
  if (nova == Nova::none) {
    read_stack_files(s);
    return s;
  }
  auto script = nova == Nova::fake ? "nova-fake.sh" : "nova-sim.sh";
  out = sh("bash " + quote((services_dir() / script).string()) + " start " + quote(s.nova_dir.string()) + " " +
               quote(s.keystone_dir.string()) + " 2>" + quote((s.root / "nova-start.err").string()),
           &rc);
  if (rc == 3) skip(std::string(script) + " cannot run here: " + sh("cat " + quote((s.root / "nova-start.err").string())));
  if (rc != 0)
    throw std::runtime_error(std::string(script) + " start failed: " + out +
                             sh("cat " + quote((s.root / "nova-start.err").string())));
  s.compute_url = out.substr(out.rfind("http"));
  while (!s.compute_url.empty() && std::isspace(static_cast<unsigned char>(s.compute_url.back())))
    s.compute_url.pop_back();
  std::ofstream(s.root / "compute-url") << s.compute_url << "\n";
  read_stack_files(s);
  return s;
}

}  // namespace lcake::openstack::test
