// Real Keystone + Glance for a test binary (tests/services/openstack/keystone-glance.sh),
// started on first use and stopped at exit; the binary exits 77 (skipped) when
// keystone or glance-api are not installed. Plus the independent client.
#pragma once
#include <filesystem>
#include <map>
#include <string>

namespace lcake::openstack::testing {

struct OpenStackServices {
  static OpenStackServices& get();  // starts them (once)
  std::filesystem::path dir;          // DIR of keystone-glance.sh: env, admin-env, clouds.yaml
  std::filesystem::path clouds_yaml() const { return dir / "clouds.yaml"; }
  std::map<std::string, std::string> env;  // DIR/env (the demo user's OS_* variables)
  std::map<std::string, std::string> admin_env;
  std::string glance_url;
  ~OpenStackServices();

 private:
  OpenStackServices();
};

// Runs `/usr/bin/openstack ARGS` as the demo user (OS_* from DIR/env, PYTHONPATH
// and VIRTUAL_ENV cleared); returns stdout; *status gets the exit status.
std::string openstack_cli(const std::string& args, int* status = nullptr, bool admin = false);
// A shell command's stdout (REQUIREs success unless status is given).
std::string sh(const std::string& cmd, int* status = nullptr);
// The process environment set to exactly these OS_* variables (others removed).
void set_os_env(const std::map<std::string, std::string>& vars);

}  // namespace lcake::openstack::testing
