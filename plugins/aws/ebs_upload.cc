#include "ebs_upload.h"

#include "ami_image.h"
#include "disk_blocks.h"
#include "ebs_snapshot.h"

namespace lcake::aws {
namespace fs = std::filesystem;

namespace {

// The parent snapshot to build on, when the parent layer was uploaded here too.
std::string parent_snapshot(const UploadRequest& request, const AwsClient& client) {
  if (!request.parent_upload) return "";
  const auto& m = request.parent_upload->metadata;
  std::string snap = m.value("snapshot_id", "");
  if (snap.empty() || m.value("region", client.region()) != client.region()) {
    client.context().warn("aws: the parent layer's upload has no snapshot in " + client.region() +
                          "; uploading the whole disk");
    return "";
  }
  return snap;
}

}  // namespace

Artifact upload_ebs(const UploadRequest& request, const UploaderSettings& settings, const AwsClient& client) {
  Context& ctx = client.context();
  const Artifact& built = request.built;
  if (built.type != "qcow2" && built.type != "raw")
    throw InputError("aws uploader (mode ebs): cannot upload a '" + built.type + "' artifact; it takes qcow2 or raw disks");
  const fs::path disk = built.id;
  DiskFacts facts = disk_facts(disk, ctx);
  UploadOptions options = UploadOptions::from_json(request.options);
  const std::string name = image_name(settings, request.layer);
  auto tags = image_tags(settings, options, request.layer, name);

  std::string parent = parent_snapshot(request, client);
  // A child overlay's own allocation says which blocks can differ; its backing
  // file is the parent's disk to compare them with.
  bool diff_against_parent = !parent.empty() && facts.backing.has_value();
  if (!parent.empty() && !diff_against_parent) {
    ctx.warn("aws: " + disk.string() + " has no backing file to compare with; uploading the whole disk");
    parent.clear();
  }
  std::uint64_t volume = volume_size_gib(facts.virtual_size);
  if (!parent.empty())
    volume = std::max<std::uint64_t>(volume, request.parent_upload->metadata.value("volume_size_gib", std::uint64_t{0}));

  auto map = image_map(disk, ctx);
  BlockSource source;
  source.candidates = candidate_blocks(map, diff_against_parent, facts.virtual_size);
  const fs::path raw = raw_view(disk, facts, ctx.work_dir() / "aws-ebs" / "disk.raw", ctx);
  BlockReader reader(raw);
  std::unique_ptr<BlockReader> parent_reader;
  if (diff_against_parent) {
    DiskFacts pf = disk_facts(*facts.backing, ctx);
    parent_reader = std::make_unique<BlockReader>(
        raw_view(*facts.backing, pf, ctx.work_dir() / "aws-ebs" / "parent.raw", ctx));
  }
  source.wanted = [&](std::uint64_t index, std::string& block, std::string& scratch) {
    reader.read(index, block);
    if (!parent_reader) return !all_zero(block);
    parent_reader->read(index, scratch);
    return block != scratch;
  };

  SnapshotPlan plan;
  plan.volume_size_gib = volume;
  plan.parent_snapshot_id = parent;
  plan.description = "lcake " + request.layer.pipeline + "/" + request.layer.variant + "/" + request.layer.layer +
                     " " + request.layer.upload_key.substr(0, 16);
  plan.timeout_minutes = settings.snapshot_timeout_minutes;
  plan.workers = settings.workers;
  plan.image_name = name;
  std::unique_ptr<LedgerScope> snapshot_scope, image_scope;
  SnapshotResult snap = write_snapshot(client, plan, source, snapshot_scope);

  ImageSpec spec;
  spec.name = name;
  spec.description = !options.description.empty() ? options.description
                     : !settings.description.empty() ? settings.description
                                                     : plan.description;
  spec.snapshot_id = snap.snapshot_id;
  spec.volume_size_gib = volume;
  spec.tags = tags;
  std::string ami = register_image(client, settings, spec, image_scope);

  Artifact a = ami_artifact(ami, client.region(), spec);
  a.metadata["mode"] = "ebs";
  a.metadata["parent_snapshot_id"] = parent.empty() ? nlohmann::json() : nlohmann::json(parent);
  a.metadata["blocks_written"] = snap.blocks_written;
  a.metadata["bytes_sent"] = snap.blocks_written * kEbsBlockSize;
  a.metadata["virtual_size"] = facts.virtual_size;
  a.metadata["source_disk"] = built.id;
  image_scope->promote();
  snapshot_scope->promote();
  std::error_code ec;
  fs::remove_all(ctx.work_dir() / "aws-ebs", ec);
  return a;
}

}  // namespace lcake::aws
