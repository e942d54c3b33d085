// The OpenStack services the openstack tests run against, started once per test
// binary from tests/services/openstack and stopped at exit: real Keystone + Glance,
// plus (optionally) real Nova with the fake driver or the Nova simulator. When they
// cannot run here the binary prints a SKIPPED line and exits 77. The one fixture of
// openstack_glance_test, nova_conformance_test, nova_sim_test and openstack_e2e_test.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::openstack::test {

enum class Nova { none, fake, simulator };  // none: Keystone + Glance only

struct Stack {
  std::filesystem::path root, keystone_dir, nova_dir;
  std::string compute_url;  // the Nova endpoint (empty with Nova::none)
  std::string glance_url;   // http://127.0.0.1:PORT
  std::map<std::string, std::string> env;        // OS_* of the demo user (keystone_dir/env)
  std::map<std::string, std::string> admin_env;  // OS_* of the admin (keystone_dir/admin-env)
  std::filesystem::path clouds_yaml() const { return keystone_dir / "clouds.yaml"; }  // lcake-test, lcake-test-admin
};

// Starts the stack on first use (OS_CLIENT_CONFIG_FILE then names its clouds.yaml, cloud "lcake-test").
// token_expiration: Keystone's token lifetime in seconds (0: its default, an hour), so a test
// run outlives its tokens and lcake must renew them.
const Stack& stack(Nova nova, int token_expiration = 0);
// openstack_glance_test's: Keystone + Glance with 30 s tokens (the renewal test waits 17 s).
inline const Stack& keystone_glance() { return stack(Nova::none, 30); }

// Runs a shell command (Debian's PATH, no python virtualenv); returns stdout without its
// trailing newlines, sets *rc (or throws, failing the test, when rc is null and it exits non-zero).
std::string sh(const std::string& command, int* rc = nullptr);
// `openstack ARGS` (python3-openstackclient, the independent client) as the demo user (or the
// admin), with only those OS_* variables; with rc, stderr is in the answer too.
std::string openstack_cli(const Stack& s, const std::string& args, int* rc = nullptr, bool admin = false);
// The process environment's OS_* variables set to exactly these (all others removed).
void set_os_env(const std::map<std::string, std::string>& vars);
// The simulator's control API (/_sim/...): method, path, JSON body.
nlohmann::json sim_control(const Stack& s, const std::string& method, const std::string& path,
                           const nlohmann::json& body = nullptr);

[[noreturn]] void skip(const std::string& why);

}  // namespace lcake::openstack::test
