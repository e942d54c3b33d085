#include "ec2_verifier.h"
#include "lcake/common/json_text.h"

#include <ctime>
#include <random>

#include "ami_image.h"
#include "aws_client.h"
#include "ec2_instance.h"

using namespace std::chrono_literals;

namespace lcake::aws {

const char* const kVerifierSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "required": ["ssh_cidr"],
  "properties": {
    "region": {"type": "string", "description": "region to boot in; default: AWS_REGION, AWS_DEFAULT_REGION, the profile's"},
    "profile": {"type": "string", "description": "AWS CLI profile; default: AWS_PROFILE, else default"},
    "instance_type": {"type": "string", "default": "t3.micro"},
    "subnet_id": {"type": "string", "description": "subnet to launch in (its VPC gets the temporary security group); default: the default VPC"},
    "associate_public_ip": {"type": "boolean", "description": "give the instance a public IPv4 address or not; default: the subnet's setting"},
    "iam_instance_profile": {"type": "string", "description": "instance profile name or ARN for the instance"},
    "ssh_cidr": {"type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$",
                 "description": "the only source the temporary security group admits SSH from, e.g. 203.0.113.7/32 (0.0.0.0/0 is refused)"},
    "ssh_address": {"enum": ["public", "private"], "default": "public", "description": "which of the instance's addresses lcake connects to"},
    "ssh_user": {"type": "string", "default": "root"},
    "ssh_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 22},
    "user_data": {"type": "string", "description": "user data for the instance (plain text; lcake base64-encodes it)"},
    "boot_timeout_minutes": {"type": "integer", "minimum": 1, "default": 15,
                             "description": "from RunInstances until SSH answers"},
    "wait_status_checks": {"type": "boolean", "default": true, "description": "wait for both EC2 status checks to pass before SSH"},
    "poll_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
    "request_timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 120,
                                "description": "limit on each try of one AWS request (a server that does not answer)"}
  }
})schema";

VerifierSettings VerifierSettings::from_json(const nlohmann::json& s) {
  VerifierSettings v;
  v.client = s;
  v.region = s.value("region", std::string());
  v.instance_type = s.value("instance_type", v.instance_type);
  v.subnet_id = s.value("subnet_id", std::string());
  if (s.contains("associate_public_ip")) v.associate_public_ip = s["associate_public_ip"].get<bool>();
  v.iam_instance_profile = s.value("iam_instance_profile", std::string());
  v.ssh_cidr = s.value("ssh_cidr", std::string());
  if (v.ssh_cidr.empty())
    throw ValueError("settings", "/ssh_cidr",
                     "the aws verifier needs ssh_cidr, the only address range its security group admits SSH from "
                     "(e.g. your runner's address/32)");
  if (v.ssh_cidr.ends_with("/0"))
    throw ValueError("settings", "/ssh_cidr",
                     "ssh_cidr " + v.ssh_cidr + " opens SSH to the whole internet: name your runner's range instead");
  v.ssh_address = s.value("ssh_address", v.ssh_address);
  v.ssh_user = s.value("ssh_user", v.ssh_user);
  v.ssh_port = s.value("ssh_port", 22);
  v.user_data = s.value("user_data", std::string());
  v.boot_timeout = std::chrono::minutes(s.value("boot_timeout_minutes", 15));
  v.wait_status_checks = s.value("wait_status_checks", true);
  v.poll_interval = std::chrono::milliseconds(static_cast<long>(s.value("poll_seconds", 5.0) * 1000));
  v.request_timeout = std::chrono::seconds(s.value("request_timeout_seconds", 120));
  return v;
}

namespace {

AwsClient client_for(const VerifierSettings& s, Context& ctx) {
  AwsConfig config = AwsConfig::load(process_env(), s.client.value("profile", std::string()), s.region);
  config.require_region();
  auto credentials = default_credentials(config, ctx);
  ClientOptions o;
  o.request_timeout = s.request_timeout;
  return AwsClient(std::move(config), std::move(credentials), ctx, o);
}

std::string suffix() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string s;
  for (int i = 0; i < 8; ++i) s += "0123456789abcdef"[hex(rd)];
  return s;
}

class Ec2VerifySession : public VerifySession {
 public:
  Ec2VerifySession(VerifierSettings settings, std::string image)
      : settings_(std::move(settings)), image_(std::move(image)) {}

  Communicator& communicator() override {
    if (!ssh_) throw BuildError("the aws verify session is finished");
    return *ssh_;
  }
  // The verify steps passed: the instance goes, and the AMI remembers it (tag
  // lcake:verified, UTC time), so a runner with an empty state that finds the AMI
  // (the uploader's find) records it verified instead of booting it again.
  void finish(Context& ctx) override {
    tear_down(ctx);
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    try {
      AwsClient client = client_for(settings_, ctx);
      client.ec2("CreateTags", {{"ResourceId.1", image_}, {"Tag.1.Key", std::string(kVerifiedTag)}, {"Tag.1.Value", stamp}});
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {  // verified all the same; a fresh runner verifies it again
      ctx.warn("could not mark AMI " + image_ + " verified (tag " + kVerifiedTag + "): " + e.what());
    }
  }
  void abort(Context& ctx) noexcept override {
    try {
      tear_down(ctx);
    } catch (const std::exception& e) {
      ctx.warn(std::string("tearing down the verify instance: ") + e.what() + " (left to the ledger)");
    } catch (...) {
    }
  }

  void boot(const VerifyRequest& request, Context& ctx) {
    AwsClient client = client_for(settings_, ctx);
    const LayerInfo& layer = request.layer;
    auto key_dir = ctx.work_dir() / "verify-ssh";
    LaunchSpec spec;
    spec.image_id = request.candidate.id;
    spec.name = "lcake-verify-" + layer.variant + "-" + layer.layer + "-" + suffix();
    spec.public_key = ctx.generate_ssh_key(key_dir);
    spec.ssh_cidr = settings_.ssh_cidr;
    spec.ssh_port = settings_.ssh_port;
    spec.instance_type = settings_.instance_type;
    spec.subnet_id = settings_.subnet_id;
    spec.associate_public_ip = settings_.associate_public_ip;
    spec.iam_instance_profile = settings_.iam_instance_profile;
    spec.user_data = settings_.user_data;
    spec.tags = {{"lcake:verify", layer.key}, {"lcake:variant", layer.variant}, {"lcake:layer", layer.layer}};
    auto deadline = std::chrono::steady_clock::now() + settings_.boot_timeout;
    try {
      instance_.launch(client, spec);
      InstanceFacts facts = instance_.wait_ready(client, deadline, settings_.wait_status_checks, settings_.poll_interval);
      std::string address = settings_.ssh_address == "private" ? facts.private_ip : facts.public_ip;
      if (address.empty())
        throw BuildError("instance " + instance_.instance_id() + " has no " + settings_.ssh_address +
                         " address: set verifier.settings.ssh_address, associate_public_ip or subnet_id");
      ctx.info("instance " + instance_.instance_id() + " is running at " + address + "; connecting over SSH");

      SshOptions ssh;
      ssh.host = address;
      ssh.port = settings_.ssh_port;
      ssh.user = settings_.ssh_user;
      ssh.private_key = key_dir / "id_ed25519";
      ssh.expected_host_key = lcake::common::text_or(request.built.metadata, "host_key", "");
      ssh.connect_timeout = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
      if (ssh.connect_timeout < 30s) ssh.connect_timeout = 30s;
      auto last_check = std::chrono::steady_clock::now();
      ssh.still_alive = [&] {
        if (std::chrono::steady_clock::now() - last_check < 10s) return;
        last_check = std::chrono::steady_clock::now();
        auto f = instance_.describe(client);
        if (f.state != "running") throw BuildError("instance " + instance_.instance_id() + " went " + f.state);
      };
      ssh_ = ctx.connect_ssh(ssh);
    } catch (const Cancelled&) {
      throw;
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& e) {
      std::string tail = instance_.instance_id().empty() ? "" : instance_.console_tail(client);
      throw BuildError(std::string(e.what()) +
                       (tail.empty() ? "" : "\n--- console output of " + instance_.instance_id() + " (last lines) ---\n" + tail));
    }
  }

 private:
  void tear_down(Context& ctx) {
    ssh_.reset();
    if (done_) return;
    AwsClient client = client_for(settings_, ctx);
    instance_.tear_down(client);
    done_ = true;
  }

  VerifierSettings settings_;
  std::string image_;
  TemporaryInstance instance_;
  std::unique_ptr<SshCommunicator> ssh_;
  bool done_ = false;
};

}  // namespace

Ec2Verifier::Ec2Verifier(const nlohmann::json& settings)
    : raw_settings_(settings), settings_(VerifierSettings::from_json(settings)) {}

std::unique_ptr<VerifySession> Ec2Verifier::start(const VerifyRequest& request, Context& ctx) {
  if (request.candidate.type != "ami" || request.candidate.id.rfind("ami-", 0) != 0)
    throw InputError("the aws verifier boots AMIs, not '" + request.candidate.type + "' (" + request.candidate.id +
                     "): use the aws uploader in this target");
  VerifierSettings settings = settings_;
  // Boot where the AMI is, unless the target names the region.
  if (settings.region.empty()) settings.region = request.candidate.metadata.value("region", std::string());
  auto session = std::make_unique<Ec2VerifySession>(std::move(settings), request.candidate.id);
  try {
    session->boot(request, ctx);
  } catch (...) {
    session->abort(ctx);
    throw;
  }
  return session;
}

void Ec2Verifier::reap(const LedgerEntry& entry, Context& ctx) {
  AwsClient client = client_for(settings_, ctx);
  if (!reap_instance_entry(client, entry, ctx))
    throw BuildError("the aws verifier does not know how to delete a '" + entry.kind + "' resource");
}

}  // namespace lcake::aws
