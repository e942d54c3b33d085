#include "docker_builder.h"

#include <algorithm>
#include <cctype>

#include "engine_client.h"
#include "exec_communicator.h"
#include "image_pull.h"
#include "lcake/errors.hpp"
#include "scratch_container.h"

namespace lcake::docker {

const char* const kBuilderSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "docker_host": {"type": "string", "description": "overrides $DOCKER_HOST (unix:///path or tcp://host:port)"},
    "docker_context": {"type": "string", "minLength": 1, "description": "a docker context (~/.docker/contexts) to use unless docker_host is set; overrides $DOCKER_HOST, $DOCKER_CONTEXT and currentContext"},
    "network": {"type": "string", "default": "none", "description": "HostConfig.NetworkMode of build containers"},
    "platform": {"type": "string", "description": "e.g. linux/amd64"},
    "keep_alive_command": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                           "default": ["sleep", "infinity"]},
    "pull": {"enum": ["missing", "always", "never"], "default": "missing"},
    "api_timeout": {"type": "integer", "minimum": 1, "default": 60},
    "transfer_timeout": {"type": "integer", "minimum": 1, "default": 3600}
  }
})schema";

// pipeline variants.V.sources.docker
const char* const kSourceSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "required": ["image"],
  "properties": {
    "image": {"type": "string", "minLength": 1, "description": "the base image of the first layer, e.g. \"centos:7\""}
  }
})schema";

// pipeline layers.L.builder (and layers.L.verifier: the same user, workdir and env)
const char* const kOptionsSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "user": {"type": "string", "description": "provisioners run as this user; committed as USER"},
    "workdir": {"type": "string", "description": "provisioners run here; committed as WORKDIR"},
    "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
    "changes": {"type": "array", "items": {"type": "string"},
                "description": "docker commit changes, e.g. \"USER lsst\" (builder only)"}
  }
})schema";

namespace {

const std::vector<std::string> kCommitInstructions = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL",
                                                      "ONBUILD", "USER", "VOLUME", "WORKDIR"};

std::string instruction_of(const std::string& change) {
  std::string word;
  for (char c : change) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (word.empty()) continue;
      break;
    }
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return word;
}

std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The image config's array (Cmd/Entrypoint) in Dockerfile JSON form; null → [].
std::string json_form(const nlohmann::json& config, const char* field) {
  if (!config.is_object() || !config.contains(field) || !config[field].is_array()) return "[]";
  return config[field].dump();
}

// A string field of an inspect object; engines send "" or null interchangeably.
std::string text(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

nlohmann::json image_config(const nlohmann::json& image) {
  return image.is_object() && image.contains("Config") && image["Config"].is_object() ? image["Config"]
                                                                                      : nlohmann::json::object();
}

std::string lower_name(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
  }
  return s;
}

class DockerBuildSession : public lcake::BuildSession {
 public:
  DockerBuildSession(EngineClient engine, const lcake::BuildRequest& request, nlohmann::json base_image,
                     const nlohmann::json& settings, lcake::Context& ctx)
      : engine_(std::move(engine)), request_(request), base_image_(std::move(base_image)) {
    ContainerSpec spec;
    spec.image = base_image_.at("Id").get<std::string>();
    spec.name = container_name("build", request.layer.variant, request.layer.layer, request.layer.key);
    spec.network = settings.value("network", "none");
    spec.platform = settings.value("platform", "");
    spec.keep_alive = settings.value("keep_alive_command", std::vector<std::string>{"sleep", "infinity"});
    // No labels: commit copies the container's labels into the image (Docker and
    // podman alike, and neither can drop one), so every container a user starts
    // from it would carry them. lcake's containers are known by name instead.
    container_ = std::make_unique<ScratchContainer>(engine_, spec, ctx);

    const auto& o = request.options;
    ExecOptions defaults;
    defaults.user = o.value("user", "");
    defaults.workdir = o.value("workdir", "");
    if (o.contains("env") && o["env"].is_object()) {
      for (auto& [k, v] : o["env"].items()) defaults.env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    }
    comm_ = std::make_unique<ExecCommunicator>(engine_, container_->id(), defaults);
    if (!defaults.workdir.empty()) prepare_workdir(defaults, ctx);
  }

  lcake::Communicator& communicator() override { return *comm_; }

  lcake::Artifact finish(lcake::Context& ctx) override {
    const auto& layer = request_.layer;
    std::map<std::string, std::string> labels = {
        {"org.lcake.layer-key", layer.key}, {"org.lcake.layer", layer.layer},
        {"org.lcake.variant", layer.variant}, {"org.lcake.version", layer.lcake_version}};
    if (!layer.target.empty()) labels["org.lcake.target"] = layer.target;
    auto changes = commit_changes(image_config(base_image_), request_.options, labels);
    std::string repo = "localhost/lcake/" + (layer.target.empty() ? "" : lower_name(layer.target) + "/") +
                       lower_name(layer.variant + "-" + layer.layer);
    std::string tag = layer.key.substr(0, std::min<size_t>(12, layer.key.size()));
    if (tag.empty()) tag = "latest";
    nlohmann::json body = {{"Labels", labels}};
    ctx.info("committing container " + container_->name() + " as " + repo + ":" + tag);
    std::string image_id = engine_.commit(container_->id(), repo, tag, changes, body);
    container_->remove(ctx);

    auto image = engine_.inspect_image(image_id);
    if (!image) throw lcake::BuildError("committed image " + image_id + " vanished from the Docker engine at " + engine_.docker_host());
    const auto config = image_config(*image);
    lcake::Artifact a;
    a.type = "oci-image";
    a.id = (*image)["Id"].get<std::string>();
    if (a.id.rfind("sha256:", 0) != 0) a.id = "sha256:" + a.id;
    a.metadata = {{"repo_tag", repo + ":" + tag},
                  {"docker_host", engine_.docker_host()},
                  {"cmd", config.value("Cmd", nlohmann::json())},
                  {"entrypoint", config.value("Entrypoint", nlohmann::json())},
                  {"user", text(config, "User")},
                  {"workdir", text(config, "WorkingDir")},
                  {"labels", config.contains("Labels") && config["Labels"].is_object() ? config["Labels"] : nlohmann::json::object()},
                  {"parent_image", base_image_["Id"]}};
    return a;
  }

  void abort(lcake::Context& ctx) noexcept override {
    if (container_) container_->remove(ctx);
  }

 private:
  void prepare_workdir(const ExecOptions& defaults, lcake::Context& ctx) {
    ExecOptions root = defaults;
    root.user = "0";
    root.workdir = "/";
    root.timeout = std::chrono::seconds(60);
    // Owned by whoever the provisioners run as: the layer's user, else the image's.
    std::string user = defaults.user;
    if (user.empty()) user = text(image_config(base_image_), "User");
    std::string cmd = "mkdir -p \"$1\"" + std::string(user.empty() ? "" : " && chown \"$2\" \"$1\"");
    std::string out;
    int code = engine_.exec(container_->id(), {"/bin/sh", "-c", cmd, "sh", defaults.workdir, user}, root,
                            [&](std::string_view chunk, bool) { out.append(chunk); });
    if (code != 0) ctx.warn("could not prepare workdir " + defaults.workdir + ": " + out);
  }

  EngineClient engine_;
  lcake::BuildRequest request_;
  nlohmann::json base_image_;
  std::unique_ptr<ScratchContainer> container_;
  std::unique_ptr<ExecCommunicator> comm_;
};

}  // namespace

std::vector<std::string> commit_changes(const nlohmann::json& parent_config, const nlohmann::json& layer_options,
                                        const std::map<std::string, std::string>& labels) {
  std::vector<std::string> layer_changes;
  const auto list = layer_options.value("changes", nlohmann::json::array());  // strings: the schema says so
  for (size_t i = 0; i < list.size(); ++i) {
    std::string change = list[i];
    std::string instr = instruction_of(change);
    if (std::find(kCommitInstructions.begin(), kCommitInstructions.end(), instr) == kCommitInstructions.end()) {
      throw lcake::ValueError("options", "/changes/" + std::to_string(i),
                              "'" + change + "' is not a commit change; use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME or WORKDIR");
    }
    layer_changes.push_back(change);
  }
  auto sets = [&](const char* instr) {
    return std::any_of(layer_changes.begin(), layer_changes.end(),
                       [&](const std::string& c) { return instruction_of(c) == instr; });
  };
  std::vector<std::string> out;
  // The build container ran the keep-alive command; commit would record it.
  bool sets_entrypoint = sets("ENTRYPOINT");
  if (!sets_entrypoint) out.push_back("ENTRYPOINT " + json_form(parent_config, "Entrypoint"));
  if (!sets("CMD")) out.push_back("CMD " + (sets_entrypoint ? std::string("[]") : json_form(parent_config, "Cmd")));
  if (layer_options.contains("user") && layer_options["user"].is_string()) out.push_back("USER " + layer_options["user"].get<std::string>());
  if (layer_options.contains("workdir") && layer_options["workdir"].is_string()) out.push_back("WORKDIR " + layer_options["workdir"].get<std::string>());
  if (layer_options.contains("env") && layer_options["env"].is_object()) {
    for (auto& [k, v] : layer_options["env"].items()) out.push_back("ENV " + k + "=" + quoted(v.is_string() ? v.get<std::string>() : v.dump()));
  }
  out.insert(out.end(), layer_changes.begin(), layer_changes.end());
  for (const auto& [k, v] : labels) out.push_back("LABEL " + k + "=" + quoted(v));
  return out;
}

DockerBuilder::DockerBuilder(const nlohmann::json& settings) : settings_(settings) {
  EngineClient probe(engine_options(settings_, nullptr));  // rejects a bad docker_host early
  (void)probe;
}

std::unique_ptr<lcake::BuildSession> DockerBuilder::start(const lcake::BuildRequest& request, lcake::Context& ctx) {
  EngineClient engine(engine_options(settings_, &ctx.cancel()));
  engine.negotiate();
  std::string policy = settings_.value("pull", "missing");
  std::string platform = settings_.value("platform", "");
  nlohmann::json base;
  if (request.parent) {
    if (request.parent->type != "oci-image") {
      throw lcake::InputError("the docker builder cannot build FROM a '" + request.parent->type +
                              "' artifact; the parent layer must be built by the docker builder too");
    }
    auto found = engine.inspect_image(request.parent->id);
    if (!found) {
      throw lcake::BuildError("parent image " + request.parent->id + " is no longer in the Docker engine at " +
                              engine.docker_host() + ": rebuild the parent layer (lcake build --force)");
    }
    base = *found;
  } else {
    if (!request.source.is_object() || !request.source.contains("image") || !request.source["image"].is_string())
      throw lcake::ValueError("source", "", "must be {\"image\": \"name:tag\"} for the first layer " + request.layer.layer);
    base = ensure_image(engine, request.source["image"], policy, platform, ctx);
  }
  ctx.info("building " + request.layer.layer + " from " + base["Id"].get<std::string>().substr(0, 19));
  return std::make_unique<DockerBuildSession>(engine, request, base, settings_, ctx);
}

void DockerBuilder::reap(const lcake::LedgerEntry& entry, lcake::Context& ctx) {
  reap_container(entry, ctx, engine_options(settings_, nullptr));
}

bool DockerBuilder::exists(const lcake::Artifact& artifact, lcake::Context& ctx) {
  EngineClient engine(engine_options(settings_, &ctx.cancel()));
  engine.negotiate();
  return engine.inspect_image(artifact.id).has_value();
}

void DockerBuilder::remove(const lcake::Artifact& artifact, lcake::Context& ctx) {
  EngineClient engine(engine_options(settings_, &ctx.cancel()));
  engine.negotiate();
  engine.remove_image(artifact.id, true, false);
}

}  // namespace lcake::docker
