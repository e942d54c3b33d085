#include "aws_uploader.h"

#include "ami_image.h"
#include "ebs_snapshot.h"
#include "ebs_upload.h"

namespace lcake::aws {

AwsUploader::AwsUploader(const nlohmann::json& settings) : settings_(UploaderSettings::from_json(settings)) {}

AwsClient AwsUploader::client(Context& ctx, const std::string& region) const {
  AwsConfig config = AwsConfig::load(process_env(), settings_.profile, settings_.region);
  auto creds = default_credentials(config, ctx);
  ClientOptions o;
  o.region = region;
  return AwsClient(config, creds, ctx, o);
}

Artifact AwsUploader::upload(const UploadRequest& request, Context& ctx) {
  if (settings_.mode == "ebs") return upload_ebs(request, settings_, client(ctx));
  throw InputError("aws uploader: mode '" + settings_.mode + "' is not available in this build");
}

std::optional<Artifact> AwsUploader::find(const FindRequest& request, Context& ctx) {
  return find_image(client(ctx), request.layer.upload_key);
}

bool AwsUploader::exists(const Artifact& artifact, Context& ctx) {
  auto c = client(ctx, artifact.metadata.value("region", ""));
  return image_state(c, artifact.id) == "available";
}

void AwsUploader::remove(const Artifact& artifact, Context& ctx) {
  auto c = client(ctx, artifact.metadata.value("region", ""));
  std::vector<std::string> snaps;
  if (auto s = artifact.metadata.value("snapshot_id", ""); !s.empty()) snaps.push_back(s);
  deregister_image(c, artifact.id, snaps);
}

void AwsUploader::reap(const LedgerEntry& entry, Context& ctx) {
  auto c = client(ctx, entry.how.value("region", ""));
  if (entry.kind == kSnapshotKind) return delete_snapshot(c, entry);
  if (entry.kind == kImageKind) return reap_image(c, entry);
  throw BuildError("aws uploader: don't know how to delete a '" + entry.kind + "' resource");
}

}  // namespace lcake::aws
