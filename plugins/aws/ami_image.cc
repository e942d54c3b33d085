#include "ami_image.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <tuple>

namespace lcake::aws {
namespace {

pugi::xpath_node_set image_items(const pugi::xml_document& doc) {
  return doc.select_nodes("//*[local-name()='imagesSet']/*[local-name()='item']");
}

std::vector<std::string> image_snapshots(const pugi::xml_node& image) {
  std::vector<std::string> out;
  for (auto n : image.select_nodes(".//*[local-name()='blockDeviceMapping']/*[local-name()='item']")) {
    std::string s = xml_text(n.node(), "snapshotId");
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

}  // namespace

std::string image_name(const UploaderSettings& settings, const LayerInfo& layer) {
  std::string raw = settings.name_prefix + "-" + layer.pipeline + "-" + layer.variant + "-" + layer.layer + "-" +
                    layer.upload_key.substr(0, 16);
  std::string out;
  for (char c : raw) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || std::string_view("()[] ./-'@_").find(c) != std::string_view::npos;
    out.push_back(ok ? c : '-');
  }
  if (out.size() > 128) out = out.substr(out.size() - 128);
  return out;
}

std::vector<std::pair<std::string, std::string>> image_tags(const UploaderSettings& settings,
                                                            const UploadOptions& options, const LayerInfo& layer,
                                                            const std::string& name) {
  std::vector<std::pair<std::string, std::string>> tags = {
      {"lcake:key", layer.upload_key}, {"lcake:layer-key", layer.key}, {"lcake:variant", layer.variant},
      {"lcake:layer", layer.layer},    {"lcake:pipeline", layer.pipeline}, {"lcake:target", layer.target},
      {"Name", name}};
  std::map<std::string, std::string> extra = settings.tags;
  for (const auto& [k, v] : options.tags) extra[k] = v;
  for (const auto& [k, v] : extra) {
    if (k == "Name") tags[6].second = v;
    else tags.emplace_back(k, v);
  }
  return tags;
}

namespace {

Pairs register_params(const UploaderSettings& s, const ImageSpec& spec) {
  Pairs p = {{"Name", spec.name},
             {"Description", spec.description.substr(0, 255)},
             {"Architecture", s.architecture},
             {"RootDeviceName", "/dev/xvda"},
             {"VirtualizationType", "hvm"},
             {"BlockDeviceMapping.1.DeviceName", "/dev/xvda"},
             {"BlockDeviceMapping.1.Ebs.SnapshotId", spec.snapshot_id},
             {"BlockDeviceMapping.1.Ebs.VolumeSize", std::to_string(spec.volume_size_gib)},
             {"BlockDeviceMapping.1.Ebs.VolumeType", s.volume_type},
             {"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"},
             {"EnaSupport", s.ena_support ? "true" : "false"},
             {"BootMode", s.boot_mode}};
  if (!s.imds_support.empty()) p.emplace_back("ImdsSupport", s.imds_support);
  return p;
}

// `taken` with "-<UTC time>-<4 hex>" added, cut from the front to AMI names' 128 characters
// (the key at the end stays, as in image_name).
std::string another_name(const std::string& taken) {
  char when[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
  char rnd[8];
  std::snprintf(rnd, sizeof rnd, "%04x", static_cast<unsigned>(std::random_device{}() & 0xffff));
  std::string out = taken + "-" + when + "-" + rnd;
  return out.size() > 128 ? out.substr(out.size() - 128) : out;
}

}  // namespace

std::string register_image(const AwsClient& client, const UploaderSettings& s, ImageSpec& spec,
                           std::unique_ptr<LedgerScope>& scope) {
  Context& ctx = client.context();
  nlohmann::json how;
  pugi::xml_document doc;
  // AMI names are unique per account and region: a second upload of one upload key (another
  // runner's at the same time, or a --force rebuild) finds its name taken, and registers under
  // another one. Both AMIs carry the key; the winner rule (docs/ci.md) picks one.
  for (int attempt = 1;; ++attempt) {
    how = {{"region", client.region()}, {"name", spec.name}, {"snapshot_id", spec.snapshot_id}};
    scope = std::make_unique<LedgerScope>(ctx.ledger(), kImageKind, "", how);
    try {
      doc = client.ec2("RegisterImage", register_params(s, spec));
      break;
    } catch (const AwsError& e) {
      if (e.code != "InvalidAMIName.Duplicate" || attempt >= 3) throw;
      scope->deleted();  // refused: nothing was registered under this name
      std::string taken = spec.name;
      spec.name = another_name(taken);
      for (auto& [k, v] : spec.tags)
        if (k == "Name" && v == taken) v = spec.name;
      ctx.info("aws: the AMI name " + taken + " is taken in " + client.region() +
               " (another upload of this key: a runner at the same time, or a --force rebuild); registering as " +
               spec.name);
    }
  }
  std::string id = xml_text(doc.document_element(), "imageId");
  if (id.empty()) throw BuildError("aws ec2 RegisterImage: the answer has no imageId");
  how["image_id"] = id;
  scope->confirmed(id, how);
  Pairs t = {{"ResourceId.1", id}, {"ResourceId.2", spec.snapshot_id}};
  for (std::size_t i = 0; i < spec.tags.size(); ++i) {
    t.emplace_back("Tag." + std::to_string(i + 1) + ".Key", spec.tags[i].first);
    t.emplace_back("Tag." + std::to_string(i + 1) + ".Value", spec.tags[i].second);
  }
  client.ec2("CreateTags", t);
  ctx.info("aws: registered " + id + " (" + spec.name + ") in " + client.region());
  return id;
}

Artifact ami_artifact(const std::string& image_id, const std::string& region, const ImageSpec& spec) {
  Artifact a;
  a.type = "ami";
  a.id = image_id;
  a.metadata = {{"region", region}, {"image_id", image_id}, {"snapshot_id", spec.snapshot_id},
                {"name", spec.name}, {"volume_size_gib", spec.volume_size_gib}};
  nlohmann::json tags = nlohmann::json::object();
  for (const auto& [k, v] : spec.tags) tags[k] = v;
  a.metadata["tags"] = tags;
  return a;
}

std::vector<Artifact> find_images(const AwsClient& client, const std::string& upload_key) {
  auto doc = client.ec2("DescribeImages", {{"Owner.1", "self"}, {"Filter.1.Name", "tag:lcake:key"},
                                           {"Filter.1.Value.1", upload_key}});
  struct Found {
    bool unpublished;
    std::string created, id;
    Artifact artifact;
  };
  std::vector<Found> found;
  for (auto n : image_items(doc)) {
    pugi::xml_node img = n.node();
    if (xml_text(img, "imageState") != "available") continue;
    auto snaps = image_snapshots(img);
    ImageSpec spec;
    spec.name = xml_text(img, "name");
    spec.snapshot_id = snaps.empty() ? "" : snaps.front();
    std::string size = xml_text(img.select_node(".//*[local-name()='blockDeviceMapping']").node(), "volumeSize");
    spec.volume_size_gib = size.empty() ? 0 : std::stoull(size);
    bool published = xml_text(img, "isPublic") == "true";
    for (auto t : img.select_nodes("./*[local-name()='tagSet']/*[local-name()='item']")) {
      spec.tags.emplace_back(xml_text(t.node(), "key"), xml_text(t.node(), "value"));
      if (spec.tags.back().first == kPublishedTag && spec.tags.back().second == "true") published = true;
    }
    std::string id = xml_text(img, "imageId"), created = xml_text(img, "creationDate");
    Artifact a = ami_artifact(id, client.region(), spec);
    a.metadata["found"] = true;
    a.metadata["lcake_created"] = created;
    // What the AMI remembers (the host records the found upload so: not verified or published
    // again); a public AMI without lcake's published tag (a publish cut short) is published again.
    bool verified = false, tagged_published = false;
    for (const auto& [k, v] : spec.tags) {
      if (k == kVerifiedTag && !v.empty()) verified = true;
      if (k == kPublishedTag && v == "true") tagged_published = true;
    }
    a.metadata["lcake_found"] = {{"verified", verified}, {"published", tagged_published}};
    found.push_back({!published, created, id, std::move(a)});
  }
  // The winner first: published, then created first, then the lowest id (docs/ci.md).
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::tie(a.unpublished, a.created, a.id) < std::tie(b.unpublished, b.created, b.id);
  });
  std::vector<Artifact> out;
  for (auto& f : found) out.push_back(std::move(f.artifact));
  return out;
}

std::optional<Artifact> find_image(const AwsClient& client, const std::string& upload_key) {
  auto all = find_images(client, upload_key);
  if (all.empty()) return std::nullopt;
  return all.front();
}

std::string image_state(const AwsClient& client, const std::string& image_id) {
  try {
    auto doc = client.ec2("DescribeImages", {{"ImageId.1", image_id}}, false);
    auto items = image_items(doc);
    return items.empty() ? "" : xml_text(items.first().node(), "imageState");
  } catch (const AwsError& e) {
    if (e.code == "InvalidAMIID.NotFound" || e.code == "InvalidAMIID.Unavailable") return "";
    throw;
  }
}

void reap_image(const AwsClient& client, const LedgerEntry& entry) {
  std::string id = entry.resource_id;
  const std::string name = entry.how.value("name", "");
  const std::string gone = "image " + (id.empty() ? name : id) + " in " + client.region() + " is already gone";
  if (id.empty()) {
    if (name.empty()) throw AlreadyGone(gone);
    auto doc = client.ec2("DescribeImages", {{"Owner.1", "self"}, {"Filter.1.Name", "name"},
                                             {"Filter.1.Value.1", name}}, false);
    auto items = image_items(doc);
    if (items.empty()) throw AlreadyGone(gone);
    // The name may be another upload's (a runner that registered it first): only an image of
    // this entry's snapshot is ours to deregister.
    const std::string snapshot = entry.how.value("snapshot_id", "");
    auto snaps = image_snapshots(items.first().node());
    if (!snapshot.empty() && std::find(snaps.begin(), snaps.end(), snapshot) == snaps.end()) throw AlreadyGone(gone);
    id = xml_text(items.first().node(), "imageId");
  }
  // The snapshot is a ledger entry of its own; deregistering is enough here.
  try {
    std::string state = image_state(client, id);
    if (state.empty() || state == "deregistered") throw AlreadyGone(gone);
    client.ec2("DeregisterImage", {{"ImageId", id}}, false);
  } catch (const AwsError& e) {
    if (e.code != "InvalidAMIID.NotFound" && e.code != "InvalidAMIID.Unavailable") throw;
    throw AlreadyGone(gone);
  }
}

}  // namespace lcake::aws
