#include "ec2_instance.h"

#include <pugixml.hpp>
#include <random>
#include <thread>

#include "lcake/common/http_client.h"

using namespace std::chrono_literals;

namespace lcake::aws {
namespace {

// The instance inside a DescribeInstances or RunInstances answer.
pugi::xml_node first_instance(const pugi::xml_document& doc) {
  auto root = doc.first_child();
  if (auto direct = root.child("instancesSet").child("item")) return direct;  // RunInstances
  return root.child("reservationSet").child("item").child("instancesSet").child("item");
}

InstanceFacts facts_of(pugi::xml_node item) {
  return {item.child("instanceState").child_value("name"), item.child_value("ipAddress"),
          item.child_value("privateIpAddress")};
}

// Cleanup waits are not cancellable (they run after Ctrl-C) but are bounded.
void pause(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

// Returns false when the instance was gone or terminated already.
bool terminate_and_wait(const AwsClient& client, const std::string& id) {
  Context& ctx = client.context();
  try {
    auto doc = client.ec2("TerminateInstances", {{"InstanceId.1", id}}, false);
    auto previous = doc.select_node("//*[local-name()='previousState']/*[local-name()='name']");
    if (previous && std::string(previous.node().text().get()) == "terminated") return false;
  } catch (const AwsError& e) {
    if (e.code == "InvalidInstanceID.NotFound") return false;
    throw;
  }
  auto deadline = std::chrono::steady_clock::now() + 10min;
  while (std::chrono::steady_clock::now() < deadline) {
    auto doc = client.ec2("DescribeInstances", {{"InstanceId.1", id}}, false);
    auto item = first_instance(doc);
    if (!item || std::string(item.child("instanceState").child_value("name")) == "terminated") {
      ctx.info("instance " + id + " terminated");
      return true;
    }
    pause(2s);
  }
  throw BuildError("instance " + id + " in " + client.region() + " was not terminated within 10 minutes");
}

// The group can be deleted only once no instance uses it (DependencyViolation
// until then); instances still in it are ours (the group was made for them).
// Returns false when the group was gone already.
bool delete_group(const AwsClient& client, const std::string& group_id) {
  Context& ctx = client.context();
  auto deadline = std::chrono::steady_clock::now() + 10min;
  bool terminated_holders = false;
  for (;;) {
    try {
      client.ec2("DeleteSecurityGroup", {{"GroupId", group_id}}, false);
      ctx.info("deleted security group " + group_id);
      return true;
    } catch (const AwsError& e) {
      if (e.code == "InvalidGroup.NotFound") return false;
      if (e.code != "DependencyViolation" || std::chrono::steady_clock::now() > deadline) throw;
    }
    if (!terminated_holders) {
      auto doc = client.ec2("DescribeInstances",
                            {{"Filter.1.Name", "instance.group-id"}, {"Filter.1.Value.1", group_id}}, false);
      for (auto r : doc.first_child().child("reservationSet").children("item"))
        for (auto i : r.child("instancesSet").children("item"))
          if (std::string(i.child("instanceState").child_value("name")) != "terminated")
            terminate_and_wait(client, i.child_value("instanceId"));
      terminated_holders = true;
    }
    pause(3s);
  }
}

// DeleteKeyPair succeeds for a missing name too; the answer names the key's ID only when it
// existed. Returns whether it did.
bool delete_key(const AwsClient& client, const std::string& name) {
  Context& ctx = client.context();
  auto doc = client.ec2("DeleteKeyPair", {{"KeyName", name}}, false);
  if (xml_text(doc.document_element(), "keyPairId").empty()) return false;
  ctx.info("deleted key pair " + name);
  return true;
}

std::string random_token() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string s;
  for (int i = 0; i < 16; ++i) s += "0123456789abcdef"[hex(rd)];
  return s;
}

}  // namespace

void TemporaryInstance::launch(const AwsClient& client_, const LaunchSpec& spec) {
  Context& ctx_ = client_.context();
  region_ = client_.region();
  key_name_ = spec.name;

  key_entry_ = ctx_.ledger().intend("ec2-key-pair", spec.name, {{"region", region_}, {"name", spec.name}});
  client_.ec2("ImportKeyPair",
              {{"KeyName", spec.name}, {"PublicKeyMaterial", http::base64_encode(spec.public_key)}}, true);

  std::string vpc;
  if (!spec.subnet_id.empty()) {
    auto doc = client_.ec2("DescribeSubnets", {{"SubnetId.1", spec.subnet_id}}, true);
    vpc = doc.first_child().child("subnetSet").child("item").child_value("vpcId");
    if (vpc.empty())
      throw InputError("subnet " + spec.subnet_id + " (verifier.settings.subnet_id) does not exist in " + region_);
  }
  group_entry_ = ctx_.ledger().intend("ec2-security-group", spec.name, {{"region", region_}, {"name", spec.name}});
  std::vector<std::pair<std::string, std::string>> group = {
      {"GroupName", spec.name}, {"GroupDescription", "lcake verify: SSH from " + spec.ssh_cidr + " only"}};
  if (!vpc.empty()) group.emplace_back("VpcId", vpc);
  auto made = client_.ec2("CreateSecurityGroup", group, true);
  group_id_ = made.first_child().child_value("groupId");
  if (group_id_.empty()) throw BuildError("CreateSecurityGroup in " + region_ + " answered without a groupId");
  ctx_.ledger().confirm(group_entry_, group_id_, {{"region", region_}, {"group_id", group_id_}});
  client_.ec2("AuthorizeSecurityGroupIngress",
              {{"GroupId", group_id_},
               {"IpPermissions.1.IpProtocol", "tcp"},
               {"IpPermissions.1.FromPort", std::to_string(spec.ssh_port)},
               {"IpPermissions.1.ToPort", std::to_string(spec.ssh_port)},
               {"IpPermissions.1.IpRanges.1.CidrIp", spec.ssh_cidr},
               {"IpPermissions.1.IpRanges.1.Description", "lcake verify SSH"}},
              true);

  // The client token finds the instance again if RunInstances' answer is lost.
  token_ = "lcake-" + random_token();
  const std::string& token = token_;
  instance_entry_ = ctx_.ledger().intend("ec2-instance", "", {{"region", region_}, {"client_token", token}});
  std::vector<std::pair<std::string, std::string>> run = {
      {"ImageId", spec.image_id}, {"InstanceType", spec.instance_type}, {"MinCount", "1"}, {"MaxCount", "1"},
      {"KeyName", key_name_}, {"ClientToken", token},
      {"InstanceInitiatedShutdownBehavior", "terminate"},
      {"MetadataOptions.HttpTokens", "required"},
      {"TagSpecification.1.ResourceType", "instance"},
      {"TagSpecification.1.Tag.1.Key", "Name"}, {"TagSpecification.1.Tag.1.Value", spec.name}};
  int tag = 2;
  for (auto& [k, v] : spec.tags.items()) {
    run.emplace_back("TagSpecification.1.Tag." + std::to_string(tag) + ".Key", k);
    run.emplace_back("TagSpecification.1.Tag." + std::to_string(tag++) + ".Value", v.get<std::string>());
  }
  if (spec.associate_public_ip.has_value()) {
    // Choosing the public address takes the network-interface form of the call.
    run.insert(run.end(), {{"NetworkInterface.1.DeviceIndex", "0"},
                           {"NetworkInterface.1.AssociatePublicIpAddress", *spec.associate_public_ip ? "true" : "false"},
                           {"NetworkInterface.1.SecurityGroupId.1", group_id_},
                           {"NetworkInterface.1.DeleteOnTermination", "true"}});
    if (!spec.subnet_id.empty()) run.emplace_back("NetworkInterface.1.SubnetId", spec.subnet_id);
  } else {
    run.emplace_back("SecurityGroupId.1", group_id_);
    if (!spec.subnet_id.empty()) run.emplace_back("SubnetId", spec.subnet_id);
  }
  if (!spec.iam_instance_profile.empty())
    run.emplace_back(spec.iam_instance_profile.rfind("arn:", 0) == 0 ? "IamInstanceProfile.Arn" : "IamInstanceProfile.Name",
                     spec.iam_instance_profile);
  if (!spec.user_data.empty()) run.emplace_back("UserData", http::base64_encode(spec.user_data));
  auto doc = client_.ec2("RunInstances", run, true);
  instance_id_ = first_instance(doc).child_value("instanceId");
  if (instance_id_.empty()) throw BuildError("RunInstances in " + region_ + " answered without an instanceId");
  ctx_.ledger().confirm(instance_entry_, instance_id_, {{"region", region_}, {"instance_id", instance_id_}});
  ctx_.info("launched " + instance_id_ + " (" + spec.instance_type + ") from " + spec.image_id);
}

InstanceFacts TemporaryInstance::describe(const AwsClient& client_) {
  auto doc = client_.ec2("DescribeInstances", {{"InstanceId.1", instance_id_}}, true);
  auto item = first_instance(doc);
  if (!item) throw BuildError("instance " + instance_id_ + " disappeared from " + region_);
  return facts_of(item);
}

InstanceFacts TemporaryInstance::wait_ready(const AwsClient& client_, std::chrono::steady_clock::time_point deadline,
                                            bool status_checks, std::chrono::milliseconds poll) {
  Context& ctx_ = client_.context();
  auto started = std::chrono::steady_clock::now();
  auto total = std::chrono::duration<double>(deadline - started).count();
  for (;;) {
    InstanceFacts f = describe(client_);
    if (f.state == "stopped" || f.state == "stopping" || f.state == "terminated" || f.state == "shutting-down")
      throw BuildError("instance " + instance_id_ + " went " + f.state + " while booting");
    if (f.state == "running") {
      if (!status_checks) return f;
      auto doc = client_.ec2("DescribeInstanceStatus", {{"InstanceId.1", instance_id_}}, true);
      auto item = doc.first_child().child("instanceStatusSet").child("item");
      std::string sys = item.child("systemStatus").child_value("status");
      std::string inst = item.child("instanceStatus").child_value("status");
      if (sys == "impaired" || inst == "impaired")
        throw BuildError("instance " + instance_id_ + " failed its status checks (system " + sys + ", instance " + inst + ")");
      if (sys == "ok" && inst == "ok") return f;
    }
    auto now = std::chrono::steady_clock::now();
    if (now > deadline) throw BuildError("instance " + instance_id_ + " was not ready in time (state " + f.state + ")");
    ctx_.progress(std::chrono::duration<double>(now - started).count() / total,
                  "waiting for " + instance_id_ + " (" + f.state + (f.state == "running" ? ", status checks" : "") + ")");
    if (ctx_.cancel().wait_for(poll)) throw Cancelled();
  }
}

std::string TemporaryInstance::console_tail(const AwsClient& client_, std::size_t lines) {
  if (instance_id_.empty()) return {};
  try {
    auto doc = client_.ec2("GetConsoleOutput", {{"InstanceId", instance_id_}, {"Latest", "true"}}, false);
    std::string text = http::base64_decode(doc.first_child().child_value("output"));
    std::size_t pos = text.size();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back(), pos = text.size();
    for (std::size_t n = 0; n < lines && pos > 0; ++n) {
      pos = text.rfind('\n', pos - 1);
      if (pos == std::string::npos) pos = 0;
    }
    std::string tail = text.substr(pos == 0 ? 0 : pos + 1);
    return tail.empty() ? "(the console output is empty)" : tail;
  } catch (const std::exception& e) {
    return std::string("(no console output: ") + e.what() + ")";
  }
}

void TemporaryInstance::tear_down(const AwsClient& client_) {
  Context& ctx_ = client_.context();
  if (instance_entry_) {
    if (!instance_id_.empty()) terminate_and_wait(client_, instance_id_);
    else {
      LedgerEntry by_token;
      by_token.kind = "ec2-instance";
      by_token.how = {{"region", region_}, {"client_token", token_}};
      try {
        reap_instance_entry(client_, by_token, ctx_);
      } catch (const AlreadyGone&) {
        // RunInstances made nothing under this token
      }
    }
    ctx_.ledger().release(instance_entry_), instance_entry_ = 0;
  }
  if (group_entry_) {
    if (!group_id_.empty()) delete_group(client_, group_id_);
    ctx_.ledger().release(group_entry_), group_entry_ = 0;
  }
  if (key_entry_) {
    delete_key(client_, key_name_);
    ctx_.ledger().release(key_entry_), key_entry_ = 0;
  }
}

bool reap_instance_entry(const AwsClient& any_region, const LedgerEntry& entry, Context& ctx) {
  (void)ctx;
  const auto& how = entry.how;
  AwsClient client = any_region.in_region(how.value("region", any_region.region()));
  const std::string where = " in " + client.region();
  if (entry.kind == "ec2-instance") {
    bool deleted = false;
    std::string id = how.value("instance_id", std::string());
    if (!id.empty()) {
      deleted = terminate_and_wait(client, id);
    } else if (how.contains("client_token")) {  // RunInstances' answer never arrived
      auto doc = client.ec2("DescribeInstances",
                            {{"Filter.1.Name", "client-token"}, {"Filter.1.Value.1", how["client_token"]}}, false);
      for (auto r : doc.first_child().child("reservationSet").children("item"))
        for (auto i : r.child("instancesSet").children("item"))
          deleted = terminate_and_wait(client, i.child_value("instanceId")) || deleted;
    }
    if (!deleted)
      throw AlreadyGone("instance " + (id.empty() ? "of token " + how.value("client_token", std::string()) : id) +
                        where + " is already terminated");
    return true;
  }
  if (entry.kind == "ec2-security-group") {
    std::string id = how.value("group_id", std::string());
    if (id.empty() && how.contains("name")) {  // created, but the answer never arrived
      try {
        auto doc = client.ec2("DescribeSecurityGroups", {{"GroupName.1", how["name"]}}, false);
        id = doc.first_child().child("securityGroupInfo").child("item").child_value("groupId");
      } catch (const AwsError& e) {
        if (e.code != "InvalidGroup.NotFound") throw;
      }
    }
    if (id.empty() || !delete_group(client, id))
      throw AlreadyGone("security group " + (id.empty() ? how.value("name", std::string()) : id) + where +
                        " is already gone");
    return true;
  }
  if (entry.kind == "ec2-key-pair") {
    std::string name = how.value("name", std::string());
    if (name.empty() || !delete_key(client, name)) throw AlreadyGone("key pair " + name + where + " is already gone");
    return true;
  }
  return false;
}

}  // namespace lcake::aws
