// Pushes built images to an OCI registry under immutable per-key tags, and at
// publish (after verification) points the moving tags at the pushed manifest,
// all or nothing.
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lcake/roles.hpp"

namespace lcake::docker {

struct TokenCache;
extern const char* const kUploaderSchema;
extern const char* const kPublishSchema;

// Expands ${variant} ${layer} ${key} ${key12} ${target} ${lcake_version} in a tag
// template and checks the result is a tag; `where` names the setting in errors.
// Throws lcake::ValueError(part, pointer, ...) for a bad template or tag.
std::string render_tag(const std::string& tmpl, const lcake::LayerInfo& layer, const std::string& part,
                       const std::string& pointer);

class DockerUploader : public lcake::Uploader {
 public:
  explicit DockerUploader(const nlohmann::json& settings);
  lcake::Artifact upload(const lcake::UploadRequest& request, lcake::Context& ctx) override;
  lcake::Artifact publish(const lcake::Artifact& uploaded, const lcake::PublishRequest& request,
                          lcake::Context& ctx) override;
  // The per-key tag (the first `tags` template that holds ${key} or ${key12}) in
  // the registry: a runner with an empty state dir gets a cache hit. Runners that
  // pushed the same key at once all use what this tag names (the last push).
  std::optional<lcake::Artifact> find(const lcake::FindRequest& request, lcake::Context& ctx) override;
  bool exists(const lcake::Artifact& artifact, lcake::Context& ctx) override;
  void remove(const lcake::Artifact& artifact, lcake::Context& ctx) override;

 private:
  class RegistryClient registry_client(lcake::Context& ctx, const std::string& registry) const;
  std::vector<std::string> render_tags(const lcake::LayerInfo& layer) const;
  std::size_t key_tag_index() const;
  lcake::Artifact pushed_artifact(const std::string& digest, const std::vector<std::string>& tags,
                                  const std::string& image_id) const;
  nlohmann::json settings_;
  std::string registry_;
  std::string repository_;
  std::shared_ptr<TokenCache> tokens_;  // registry tokens, shared by every call of this uploader
};

}  // namespace lcake::docker
