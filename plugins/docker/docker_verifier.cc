#include "docker_verifier.h"

#include "engine_client.h"
#include "exec_communicator.h"
#include "image_pull.h"
#include "lcake/errors.hpp"
#include "scratch_container.h"

namespace lcake::docker {

const char* const kVerifierSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "docker_host": {"type": "string"},
    "docker_context": {"type": "string", "minLength": 1, "description": "a docker context (~/.docker/contexts) to use unless docker_host is set; overrides $DOCKER_HOST, $DOCKER_CONTEXT and currentContext"},
    "network": {"type": "string", "default": "none"},
    "platform": {"type": "string"},
    "keep_alive_command": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                           "default": ["sleep", "infinity"]},
    "pull": {"enum": ["missing", "always", "never"], "default": "missing",
             "description": "for a pushed candidate: missing = use the local image with the same ID if present"},
    "api_timeout": {"type": "integer", "minimum": 1, "default": 60},
    "transfer_timeout": {"type": "integer", "minimum": 1, "default": 3600}
  }
})schema";

namespace {

class DockerVerifySession : public lcake::VerifySession {
 public:
  DockerVerifySession(EngineClient engine, const ContainerSpec& spec, const ExecOptions& defaults, lcake::Context& ctx)
      : engine_(std::move(engine)), container_(engine_, spec, ctx), comm_(engine_, container_.id(), defaults) {}
  lcake::Communicator& communicator() override { return comm_; }
  void finish(lcake::Context& ctx) override { container_.remove(ctx); }
  void abort(lcake::Context& ctx) noexcept override { container_.remove(ctx); }

 private:
  EngineClient engine_;
  ScratchContainer container_;
  ExecCommunicator comm_;
};

}  // namespace

DockerVerifier::DockerVerifier(const nlohmann::json& settings) : settings_(settings) {
  EngineClient probe(engine_options(settings_, nullptr));
  (void)probe;
}

std::unique_ptr<lcake::VerifySession> DockerVerifier::start(const lcake::VerifyRequest& request, lcake::Context& ctx) {
  const auto& candidate = request.candidate;
  if (candidate.type != "oci-image") {
    throw lcake::InputError("the docker verifier runs 'oci-image' candidates, not '" + candidate.type + "'");
  }
  EngineClient engine(engine_options(settings_, &ctx.cancel()));
  engine.negotiate();
  std::string policy = settings_.value("pull", "missing");
  std::string platform = settings_.value("platform", "");
  std::string image;
  if (candidate.id.rfind("sha256:", 0) == 0) {
    auto found = engine.inspect_image(candidate.id);
    if (!found) throw lcake::BuildError("candidate image " + candidate.id + " is not in the Docker engine at " + engine.docker_host());
    image = candidate.id;
  } else {
    // A pushed image: the same image ID means the same config and layers.
    std::string local = candidate.metadata.value("image_id", std::string());
    if (policy != "always" && !local.empty() && engine.inspect_image(local)) {
      image = local;
    } else {
      image = ensure_image(engine, candidate.id, policy == "never" ? "never" : "always", platform, ctx).at("Id");
    }
  }
  ContainerSpec spec;
  spec.image = image;
  spec.name = container_name("verify", request.layer.variant, request.layer.layer, request.layer.key);
  spec.network = settings_.value("network", "none");
  spec.platform = platform;
  spec.keep_alive = settings_.value("keep_alive_command", std::vector<std::string>{"sleep", "infinity"});
  // Known by its name (lcake-verify-…), like build containers, which cannot carry a role label.
  ExecOptions defaults;
  const auto& o = request.options;
  defaults.user = o.value("user", "");
  defaults.workdir = o.value("workdir", "");
  if (o.contains("env") && o["env"].is_object()) {
    for (auto& [k, v] : o["env"].items()) defaults.env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  }
  ctx.info("verifying " + candidate.id + " in a container from " + image.substr(0, 19));
  return std::make_unique<DockerVerifySession>(engine, spec, defaults, ctx);
}

void DockerVerifier::reap(const lcake::LedgerEntry& entry, lcake::Context& ctx) {
  reap_container(entry, ctx, engine_options(settings_, nullptr));
}

}  // namespace lcake::docker
