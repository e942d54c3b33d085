#include "aws_uploader.h"

#include <algorithm>

#include "ami_image.h"
#include "ebs_snapshot.h"
#include "ebs_upload.h"
#include "image_cleanup.h"
#include "import_uploader.h"
#include "publish.h"

namespace lcake::aws {

AwsUploader::AwsUploader(const nlohmann::json& settings) : settings_(UploaderSettings::from_json(settings)) {}

AwsClient AwsUploader::client(Context& ctx, const std::string& region) const {
  AwsConfig config = AwsConfig::load(process_env(), settings_.profile, settings_.region);
  auto creds = default_credentials(config, ctx);
  ClientOptions o;
  o.region = region;
  o.request_timeout = std::chrono::seconds(settings_.request_timeout_seconds);
  return AwsClient(config, creds, ctx, o);
}

Artifact AwsUploader::upload(const UploadRequest& request, Context& ctx) {
  if (settings_.mode == "ebs") return upload_ebs(request, settings_, client(ctx));
  if (settings_.mode == "import") {
    auto c = client(ctx);
    ImportedSnapshot snap = import_snapshot(c, ImportSettings::from_json(settings_.raw), request, ctx);
    ImageSpec spec;
    spec.name = image_name(settings_, request.layer);
    spec.description = !settings_.description.empty() ? settings_.description
                                                      : "lcake " + request.layer.pipeline + "/" +
                                                            request.layer.variant + "/" + request.layer.layer;
    spec.snapshot_id = snap.snapshot_id;
    spec.volume_size_gib = std::max<std::uint64_t>(1, snap.volume_gib);
    spec.tags = image_tags(settings_, UploadOptions::from_json(request.options), request.layer, spec.name);
    std::unique_ptr<LedgerScope> image_scope;
    std::string ami = register_image(c, settings_, spec, image_scope);
    Artifact a = ami_artifact(ami, c.region(), spec);
    a.metadata["mode"] = "import";
    image_scope->promote();
    ctx.ledger().release(snap.ledger_entry);  // the snapshot belongs to the image now
    return a;
  }
  throw InputError("aws uploader: mode '" + settings_.mode + "' is not available in this build");
}

std::optional<Artifact> AwsUploader::find(const FindRequest& request, Context& ctx) {
  return find_image(client(ctx), request.layer.upload_key);
}

std::vector<Artifact> AwsUploader::find_all(const FindRequest& request, Context& ctx) {
  return find_images(client(ctx), request.layer.upload_key);
}

bool AwsUploader::exists(const Artifact& artifact, Context& ctx) {
  auto c = client(ctx, artifact.metadata.value("region", ""));
  return image_state(c, artifact.id) == "available";
}

void AwsUploader::remove(const Artifact& artifact, Context& ctx) {
  // A published AMI (tag lcake:published, or public) is never touched.
  auto c = client(ctx, artifact.metadata.value("region", ""));
  remove_unpublished_image(c, artifact.id, {artifact.metadata.value("snapshot_id", "")});
}

Artifact AwsUploader::publish(const Artifact& uploaded, const PublishRequest& request, Context& ctx) {
  auto c = client(ctx, uploaded.metadata.value("region", ""));
  return publish_image(c, PublishSettings::from_json(settings_.raw), uploaded, request, ctx);
}

void AwsUploader::reap(const LedgerEntry& entry, Context& ctx) {
  auto c = client(ctx, entry.how.value("region", ""));
  if (entry.kind == kSnapshotKind) return delete_snapshot(c, entry);
  if (entry.kind == kImageKind) return reap_image(c, entry);
  if (reap_import_entry(c, entry, ctx) || reap_publish_entry(c, entry, ctx)) return;
  throw BuildError("aws uploader: don't know how to delete a '" + entry.kind + "' resource");
}

}  // namespace lcake::aws
