// The AWS test services (tests/services/aws: moto with signature checks behind
// the aws-sim simulator), started once per test binary and stopped at exit. A
// binary whose services cannot start because moto_server is missing prints a
// SKIPPED line and exits 77 (ctest SKIP_RETURN_CODE).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lcake::aws::test {

struct SimServices {
  std::filesystem::path dir;                 // the launcher's state dir (logs, requests.jsonl)
  std::map<std::string, std::string> env;    // AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...
  // Starts them on first use and exports their env (AWS_* of the test user) to this process.
  static SimServices& get();
  // Debian's awscli against the simulator, as the services' admin (sees
  // everything; the checks do not depend on the test user's policy): stdout,
  // or a doctest failure with stderr when it exits non-zero.
  std::string aws(const std::vector<std::string>& args, const std::string& region = "") const;
  // The same, returning the exit code and leaving failures to the caller.
  int aws_status(const std::vector<std::string>& args, std::string& out, const std::string& region = "") const;
  std::string admin_key, admin_secret;
};

}  // namespace lcake::aws::test
