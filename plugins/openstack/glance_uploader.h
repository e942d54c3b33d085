// The uploader role: a built qcow2/raw disk becomes a private Glance image
// carrying its upload key as a property (so find() gives any runner a cache
// hit); publish() sets visibility, members, moving names/tags, protection.
#pragma once
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth.h"
#include "glance_client.h"
#include "lcake/roles.hpp"

namespace lcake::openstack {

// JSON Schemas (draft 7) of the uploader's settings, layer options and publish options.
const char* glance_settings_schema();
const char* glance_options_schema();
const char* glance_publish_schema();

class GlanceUploader : public Uploader {
 public:
  explicit GlanceUploader(const nlohmann::json& settings);
  Artifact upload(const UploadRequest& request, Context& ctx) override;
  // The winner among the upload key's images: published first, then created first, then lowest id.
  std::optional<Artifact> find(const FindRequest& request, Context& ctx) override;
  std::vector<Artifact> find_all(const FindRequest& request, Context& ctx) override;
  Artifact publish(const Artifact& uploaded, const PublishRequest& request, Context& ctx) override;
  bool exists(const Artifact& artifact, Context& ctx) override;
  void remove(const Artifact& artifact, Context& ctx) override;
  void reap(const LedgerEntry& entry, Context& ctx) override;

  // Tests use a private session (e.g. with fault-injecting endpoints) and lower retries.
  void use_session(std::shared_ptr<KeystoneSession> session) { session_ = std::move(session); }
  http::RetryPolicy retry;  // attempts 0: ServiceClient's default

 private:
  std::shared_ptr<KeystoneSession> session(Context& ctx);
  GlanceClient glance(Context& ctx, bool cancellable = true);
  Artifact to_artifact(const nlohmann::json& image, Context& ctx);
  std::vector<nlohmann::json> keyed_images(const FindRequest& request, Context& ctx);
  Artifact found_artifact(const nlohmann::json& image, Context& ctx);
  Artifact adopt(const UploadRequest& request, const nlohmann::json& spec, const std::string& name, Context& ctx);
  nlohmann::json settings_;
  std::mutex mu_;
  std::shared_ptr<KeystoneSession> session_;
};

}  // namespace lcake::openstack
