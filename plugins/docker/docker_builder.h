// Builds a layer as a container image: a container from the parent image (or
// the variant's source image) kept alive while the host runs provisioners
// through exec, then committed with the layer's changes and lcake's labels.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lcake/roles.hpp"

namespace lcake::docker {

extern const char* const kBuilderSchema;
extern const char* const kSourceSchema;   // variants.V.sources.docker
extern const char* const kOptionsSchema;  // layers.L.builder and layers.L.verifier

// What the committed image's config must say, worked out from the parent
// image's config and the layer's options (user, workdir, env, changes).
// CMD and ENTRYPOINT are the parent's unless the layer sets them (setting only
// ENTRYPOINT clears CMD, as in a Dockerfile); the keep-alive command never leaks.
// Throws lcake::ValueError("options", "/changes/N") for an instruction `docker commit` does not take.
std::vector<std::string> commit_changes(const nlohmann::json& parent_config, const nlohmann::json& layer_options,
                                        const std::map<std::string, std::string>& labels);

class DockerBuilder : public lcake::Builder {
 public:
  explicit DockerBuilder(const nlohmann::json& settings);
  std::unique_ptr<lcake::BuildSession> start(const lcake::BuildRequest& request, lcake::Context& ctx) override;
  void reap(const lcake::LedgerEntry& entry, lcake::Context& ctx) override;
  bool exists(const lcake::Artifact& artifact, lcake::Context& ctx) override;
  void remove(const lcake::Artifact& artifact, lcake::Context& ctx) override;

 private:
  nlohmann::json settings_;
};

}  // namespace lcake::docker
