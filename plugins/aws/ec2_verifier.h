// The aws verifier: boots the candidate AMI on EC2 with a temporary key pair and
// a temporary security group admitting SSH only from `ssh_cidr`, waits for
// running and the status checks, and hands the host an SSH communicator. After
// the verify steps the instance is terminated and the group and key deleted.
// Every one of the three is in the ledger before it is created.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "lcake/roles.hpp"

namespace lcake::aws {

extern const char* const kVerifierSchema;

struct VerifierSettings {
  nlohmann::json client;  // what the AWS client reads (region, profile, endpoints)
  std::string region;
  std::string instance_type = "t3.micro";
  std::string subnet_id;
  std::optional<bool> associate_public_ip;
  std::string iam_instance_profile;  // a name, or an ARN
  std::string ssh_cidr;
  std::string ssh_address = "public";  // public | private
  std::string ssh_user = "root";
  int ssh_port = 22;
  std::string user_data;
  std::chrono::seconds boot_timeout{900};
  std::chrono::seconds request_timeout{120};  // each try of one AWS request
  bool wait_status_checks = true;
  std::chrono::milliseconds poll_interval{5000};
  static VerifierSettings from_json(const nlohmann::json& settings);
};

class Ec2Verifier : public Verifier {
 public:
  explicit Ec2Verifier(const nlohmann::json& settings);
  std::unique_ptr<VerifySession> start(const VerifyRequest& request, Context& ctx) override;
  void reap(const LedgerEntry& entry, Context& ctx) override;

 private:
  nlohmann::json raw_settings_;
  VerifierSettings settings_;
};

}  // namespace lcake::aws
