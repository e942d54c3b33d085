// A throwaway EC2 instance with its own key pair and security group: launched,
// waited for, described, and torn down (terminate → wait → delete group, retried
// while the instance still holds it → delete key). Ledger kinds: ec2-instance,
// ec2-security-group, ec2-key-pair; reap_instance_entry deletes each.
#pragma once
#include <optional>
#include <string>

#include "aws_client.h"
#include "lcake/context.hpp"

namespace lcake::aws {

struct LaunchSpec {
  std::string image_id, name;  // name: of the key pair and the group, and the instance's Name tag
  std::string public_key;              // OpenSSH line from ctx.generate_ssh_key
  std::string ssh_cidr;
  int ssh_port = 22;
  std::string instance_type, subnet_id, iam_instance_profile, user_data;
  std::optional<bool> associate_public_ip;
  nlohmann::json tags = nlohmann::json::object();
};

struct InstanceFacts {
  std::string state, public_ip, private_ip;
};

// Each call takes the client of the step it runs in (a session's finish() may
// get another Context than its start()); the client's region is the instance's.
class TemporaryInstance {
 public:

  // Key pair, group, instance, each ledgered first. Throws (leaving the entries
  // for tear_down or the host) when one cannot be made.
  void launch(const AwsClient& client, const LaunchSpec& spec);
  // Polls until running (and, if asked, until both status checks pass). Throws
  // BuildError when the instance stops or terminates, or the deadline passes.
  InstanceFacts wait_ready(const AwsClient& client, std::chrono::steady_clock::time_point deadline,
                           bool status_checks, std::chrono::milliseconds poll);
  InstanceFacts describe(const AwsClient& client);
  // The last `lines` lines of the serial console (GetConsoleOutput, base64-decoded).
  std::string console_tail(const AwsClient& client, std::size_t lines = 30);
  // Terminates and deletes everything launch() made; each entry released when gone.
  void tear_down(const AwsClient& client);
  const std::string& instance_id() const { return instance_id_; }

 private:
  std::string region_, key_name_, group_id_, instance_id_, token_;
  std::int64_t key_entry_ = 0, group_entry_ = 0, instance_entry_ = 0;
};

// Reaper of the three kinds; false for any other kind. Throws AlreadyGone when the
// resource was not there any more (an instance terminated already counts as gone).
bool reap_instance_entry(const AwsClient& any_region, const LedgerEntry& entry, Context& ctx);

}  // namespace lcake::aws
