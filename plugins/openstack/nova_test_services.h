// The OpenStack services the Nova tests run against, started once per test
// binary from tests/services/openstack and stopped at exit: real Keystone +
// Glance, plus real Nova with the fake driver or the Nova simulator. When they
// cannot run here the binary prints a SKIPPED line and exits 77.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace lcake::openstack::test {

enum class Nova { fake, simulator };

struct Stack {
  std::filesystem::path root, keystone_dir, nova_dir;
  std::string compute_url;  // the Nova endpoint
  std::map<std::string, std::string> env;  // OS_* of the demo user (keystone_dir/env)
};

// Starts the stack on first use (OS_CLIENT_CONFIG_FILE then names its clouds.yaml, cloud "lcake-test").
const Stack& stack(Nova nova);

// Runs a shell command; returns stdout, sets *rc (or fails the test when rc is null and it exits non-zero).
std::string sh(const std::string& command, int* rc = nullptr);
// `openstack ARGS` (python3-openstackclient, the independent client) as the demo user.
std::string openstack_cli(const Stack& s, const std::string& args, int* rc = nullptr);
// The simulator's control API (/_sim/...): method, path, JSON body.
nlohmann::json sim_control(const Stack& s, const std::string& method, const std::string& path,
                           const nlohmann::json& body = nullptr);

[[noreturn]] void skip(const std::string& why);

}  // namespace lcake::openstack::test
