// The aws plugin's Uploader: dispatches on settings.mode (`ebs` here; `import`
// from import_upload.h), finds earlier uploads by their lcake:key tag, and
// deletes what the ledger or `lcake gc` hands it.
#pragma once
#include <nlohmann/json.hpp>

#include "aws_client.h"
#include "lcake/roles.hpp"
#include "uploader_settings.h"

namespace lcake::aws {

class AwsUploader : public Uploader {
 public:
  explicit AwsUploader(const nlohmann::json& settings);
  Artifact upload(const UploadRequest& request, Context& ctx) override;
  std::optional<Artifact> find(const FindRequest& request, Context& ctx) override;
  std::vector<Artifact> find_all(const FindRequest& request, Context& ctx) override;
  bool exists(const Artifact& artifact, Context& ctx) override;
  void remove(const Artifact& artifact, Context& ctx) override;
  void reap(const LedgerEntry& entry, Context& ctx) override;
  // CopyImage to the configured regions, launch permissions, SSM names (publish.h).
  Artifact publish(const Artifact& uploaded, const PublishRequest& request, Context& ctx) override;

  const UploaderSettings& settings() const { return settings_; }
  // A client for the settings' profile, in `region` (empty: the configured one).
  AwsClient client(Context& ctx, const std::string& region = "") const;

 private:
  UploaderSettings settings_;
};

}  // namespace lcake::aws
