#include "openstack_test_services.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <vector>

extern char** environ;

namespace lcake::openstack::testing {
namespace fs = std::filesystem;

namespace {

std::string scripts_dir() {
  const char* src = std::getenv("LCAKE_SOURCE_DIR");
  return std::string(src ? src : LCAKE_TEST_SOURCE_DIR) + "/tests/services/openstack";
}

// Skipped, not failed, on a machine without the services (ctest SKIP_RETURN_CODE 77).
const bool kInstalled = [] {
  for (const char* tool : {"/usr/bin/keystone-manage", "/usr/bin/glance-api", "/usr/bin/openstack", "/usr/bin/uwsgi"}) {
    if (::access(tool, X_OK) != 0) {
      std::cout << "SKIPPED: " << tool
                << " is not installed (apt-get install keystone glance-api python3-openstackclient uwsgi-core "
                   "uwsgi-plugin-python3; see scripts/setup-deps.sh)\n";
      std::exit(77);
    }
  }
  return true;
}();

std::map<std::string, std::string> read_env(const fs::path& file) {
  std::map<std::string, std::string> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace

std::string sh(const std::string& cmd, int* status) {
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

OpenStackServices::OpenStackServices() {
  (void)kInstalled;
  char tmpl[] = "/tmp/lcake-openstack-test-XXXXXX";
  dir = mkdtemp(tmpl);
  // Short-lived tokens (30 s), so the renewal test waits 17 s, not an hour (keystone_test.cc).
  int rc = 0;
  std::string out = sh(scripts_dir() + "/keystone-glance.sh start " + dir.string() + " --token-expiration 30 2>&1", &rc);
  if (rc != 0) {
    sh(scripts_dir() + "/keystone-glance.sh stop " + dir.string() + " 2>&1", &rc);
    FAIL("keystone-glance.sh start failed: " << out);
  }
  env = read_env(dir / "env");
  admin_env = read_env(dir / "admin-env");
  auto ports = read_env(dir / "ports");
  glance_url = "http://127.0.0.1:" + ports["GLANCE_PORT"];
}

OpenStackServices::~OpenStackServices() {
  // After doctest has shut down: plain system(), no REQUIRE.
  std::string stop = scripts_dir() + "/keystone-glance.sh stop " + dir.string() + " >/dev/null 2>&1";
  if (std::system(stop.c_str()) != 0) std::cerr << "keystone-glance.sh stop " << dir << " failed\n";
  if (!std::getenv("LCAKE_KEEP_TEST_DIR")) fs::remove_all(dir);
}

OpenStackServices& OpenStackServices::get() {
  static OpenStackServices services;
  return services;
}

std::string openstack_cli(const std::string& args, int* status, bool admin) {
  auto& s = OpenStackServices::get();
  std::string cmd = "env -i PATH=/usr/bin:/bin HOME=" + s.dir.string();
  for (const auto& [k, v] : admin ? s.admin_env : s.env) cmd += " " + k + "='" + v + "'";
  return sh(cmd + " /usr/bin/openstack " + args + (status ? " 2>&1" : ""), status);
}

void set_os_env(const std::map<std::string, std::string>& vars) {
  std::vector<std::string> drop;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("OS_", 0) == 0) drop.push_back(kv.substr(0, kv.find('=')));
  }
  for (const auto& k : drop) unsetenv(k.c_str());
  for (const auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1);
}

}  // namespace lcake::openstack::testing
