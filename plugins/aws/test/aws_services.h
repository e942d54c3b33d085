// The AWS test services (tests/services/aws: moto_server with signature checks
// behind the aws-sim simulator), started once per test binary and stopped at
// exit; the one C++ fixture for them (plugin tests and tests/e2e). A binary whose
// services cannot start because moto_server is missing prints a SKIPPED line and
// exits 77 (ctest SKIP_RETURN_CODE). Also the independent checks: Debian's
// awscli and the simulator's request log.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aws_test {

struct Services {
  std::filesystem::path dir;  // the launcher's state dir (logs, sim/requests.jsonl)
  nlohmann::json env;  // env.json: AWS_ENDPOINT_URL, keys, region, AWS_TEST_ROLE_ARN, AWS_SIM_LOG...
  std::string admin_key, admin_secret;  // the services' admin (Allow *), for checks
  std::string get(const std::string& key) const { return env.value(key, ""); }
};

// Starts them on first use (stopped at exit; LCAKE_KEEP_AWS_SIM=1 keeps their
// directory) and exports their env into this process: the test user's keys,
// no config files of the machine's user, no IMDS.
const Services& services();

// `aws --endpoint-url <sim> ARGS --output json` with the test user's keys; the parsed answer.
// Throws with awscli's output when it exits non-zero.
nlohmann::json awscli(const std::vector<std::string>& args);

// The same as the services' admin (sees everything; checks do not depend on the
// test user's policy), in `region` (empty: AWS_REGION). admin_aws throws on a
// non-zero exit and returns stdout; admin_aws_status returns the exit code.
std::string admin_aws(const std::vector<std::string>& args, const std::string& region = "");
int admin_aws_status(const std::vector<std::string>& args, std::string& out, const std::string& region = "");
// admin_aws parsed as JSON ({} for an empty answer).
nlohmann::json admin_awscli(const std::vector<std::string>& args, const std::string& region = "");

// The simulator's request log events of one kind ("block-written", "request", ...).
std::vector<nlohmann::json> sim_events(const std::string& event);

// aws-sim's failure injection (tests/services/aws/README.md, "Failure injection"): adds a rule
// ({"operation": "PutSnapshotBlock", "kind": "throttle", "count": 3, ...}); lists the rules
// (with their hits); removes them all (releasing requests held by a "hang").
void add_fault(const nlohmann::json& rule);
nlohmann::json faults();
void clear_faults();

// Runs a command line through /bin/sh; returns its exit code, stdout in `out`.
int shell(const std::string& command, std::string* out = nullptr);

}  // namespace aws_test
