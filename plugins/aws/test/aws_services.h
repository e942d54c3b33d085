// The AWS test services (tests/services/aws: moto with signature checks behind
// aws-sim), started once per test binary; exits the binary with 77 (skipped)
// when moto_server is not installed. Also the independent checks: Debian's
// awscli and the simulator's request log.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aws_test {

struct Services {
  std::filesystem::path dir;
  nlohmann::json env;  // env.json: AWS_ENDPOINT_URL, keys, region, AWS_TEST_ROLE_ARN, AWS_SIM_LOG...
  std::string get(const std::string& key) const { return env.value(key, ""); }
};

// Starts them on first use (stopped at exit) and exports their env into this process.
const Services& services();

// `aws --endpoint-url <sim> ARGS --output json` with the test user's keys; the parsed answer.
nlohmann::json awscli(const std::vector<std::string>& args);

// The simulator's request log events of one kind ("block-written", "request", ...).
std::vector<nlohmann::json> sim_events(const std::string& event);

// Runs a command line through /bin/sh; returns its exit code, stdout in `out`.
int shell(const std::string& command, std::string* out = nullptr);

}  // namespace aws_test
