#include "publish.h"

#include <pugixml.hpp>
#include <regex>

#include "ami_image.h"
#include "image_cleanup.h"

namespace lcake::aws {

const char* const kPublishSettingsProperties = R"json(
    "regions": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$"}, "uniqueItems": true, "default": [],
                "description": "publish: regions the verified AMI is copied into (besides its own)"},
    "kms_key_ids": {"type": "object", "additionalProperties": {"type": "string"}, "default": {},
                    "description": "publish: region -> KMS key ID/ARN; the copy into that region is encrypted with it"},
    "launch_permission": {"type": "array", "uniqueItems": true, "default": [],
                          "items": {"type": "string", "pattern": "^(public|[0-9]{12}|arn:aws[a-z-]*:organizations::[0-9]{12}:(organization/o-[a-z0-9]+|ou/o-[a-z0-9]+/ou-[a-z0-9-]+))$"},
                          "description": "publish: who may launch the AMI in every region: public, account IDs, organization ARNs, OU ARNs"},
    "snapshot_permission": {"type": "boolean", "default": false,
                            "description": "publish: also give the public / the listed accounts createVolumePermission on the AMI's snapshots"},
    "deprecate_after_days": {"type": "integer", "minimum": 0, "default": 0,
                             "description": "publish: set the AMI's deprecation time this many days after publishing (0: never)"},
    "ssm_prefix": {"type": "string", "pattern": "^(/[a-zA-Z0-9_.-]+)*/$", "default": "/lcake/",
                   "description": "publish: each moving tag of a layer becomes the SSM parameter <ssm_prefix><tag> (data type aws:ec2:image) in every region"},
    "copy_timeout_minutes": {"type": "integer", "minimum": 1, "default": 60,
                             "description": "publish: how long a CopyImage may take to become available"},
    "publish_poll_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5})json";

const char* const kPublishOptionsSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "moving_tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*$"}, "default": [],
                    "description": "names moved to this layer's newest AMI: SSM parameters <ssm_prefix><tag> in every region"}
  }
})schema";

PublishSettings PublishSettings::from_json(const nlohmann::json& s) {
  PublishSettings p;
  p.regions = s.value("regions", std::vector<std::string>{});
  p.kms_keys = s.value("kms_key_ids", std::map<std::string, std::string>{});
  p.launch_permission = s.value("launch_permission", std::vector<std::string>{});
  p.snapshot_permission = s.value("snapshot_permission", false);
  p.deprecate_after_days = s.value("deprecate_after_days", 0);
  p.ssm_prefix = s.value("ssm_prefix", p.ssm_prefix);
  p.copy_timeout = std::chrono::minutes(s.value("copy_timeout_minutes", 60));
  p.poll_interval = std::chrono::milliseconds(static_cast<long>(s.value("publish_poll_seconds", 5.0) * 1000));
  return p;
}

namespace {

Pairs tag_params(const std::vector<std::string>& resources, const std::vector<std::pair<std::string, std::string>>& tags) {
  Pairs p;
  for (std::size_t i = 0; i < resources.size(); ++i) p.emplace_back("ResourceId." + std::to_string(i + 1), resources[i]);
  for (std::size_t i = 0; i < tags.size(); ++i) {
    p.emplace_back("Tag." + std::to_string(i + 1) + ".Key", tags[i].first);
    p.emplace_back("Tag." + std::to_string(i + 1) + ".Value", tags[i].second);
  }
  return p;
}

AmiFacts wait_available(const AwsClient& client, const std::string& image, const PublishSettings& settings, Context& ctx) {
  auto deadline = std::chrono::steady_clock::now() + settings.copy_timeout;
  for (;;) {
    AmiFacts f = describe_image(client, image);
    if (f.found && f.state == "available") return f;
    if (f.found && (f.state == "failed" || f.state == "invalid" || f.state == "error"))
      throw BuildError("copy " + image + " in " + client.region() + " ended " + f.state);
    if (std::chrono::steady_clock::now() > deadline)
      throw BuildError("copy " + image + " in " + client.region() + " was not available within " +
                       std::to_string(settings.copy_timeout.count() / 60) + " minutes");
    ctx.progress(-1, "waiting for copy " + image + " in " + client.region() + " (" + (f.found ? f.state : "not yet listed") + ")");
    if (ctx.cancel().wait_for(settings.poll_interval)) throw Cancelled();
  }
}

std::string copy_description(const std::string& source, const std::string& region) {
  return "lcake copy of " + source + " from " + region;
}

// The copy of `source` a previous publish made in this region, if any.
// Only images of the source's owner count (a tag filter alone would match anyone's public image).
std::string existing_copy(const AwsClient& client, const std::string& source, const std::string& owner) {
  auto doc = client.ec2("DescribeImages", {{"Filter.1.Name", "tag:lcake:source-image"}, {"Filter.1.Value.1", source}});
  for (auto item : doc.first_child().child("imagesSet").children("item")) {
    if (item.child_value("imageOwnerId") != owner) continue;
    std::string state = item.child_value("imageState");
    if (state == "available" || state == "pending") return item.child_value("imageId");
  }
  return {};
}

std::string copy_into(const AwsClient& source_client, const AwsClient& dest, const AmiFacts& source,
                      const std::string& source_id, const PublishSettings& settings, Context& ctx) {
  if (std::string found = existing_copy(dest, source_id, source.owner); !found.empty()) {
    ctx.info("reusing " + found + ", the copy of " + source_id + " already in " + dest.region());
    wait_available(dest, found, settings, ctx);
    return found;
  }
  std::string token = "lcake-" + source_id + "-" + dest.region();
  // The description finds the copy again should CopyImage's answer be lost.
  std::string description = copy_description(source_id, source_client.region());
  LedgerScope copy(ctx.ledger(), "ami-copy", "",
                   {{"region", dest.region()}, {"description", description}, {"owner", source.owner}});
  Pairs params = {{"Name", source.name},
                  {"SourceImageId", source_id},
                  {"SourceRegion", source_client.region()},
                  {"Description", description},
                  {"ClientToken", token}};
  if (auto key = settings.kms_keys.find(dest.region()); key != settings.kms_keys.end())
    params.insert(params.end(), {{"Encrypted", "true"}, {"KmsKeyId", key->second}});
  auto doc = dest.ec2("CopyImage", params);
  std::string id = doc.first_child().child_value("imageId");
  if (id.empty()) throw BuildError("CopyImage into " + dest.region() + " answered without an imageId");
  copy.confirmed(id, {{"region", dest.region()}, {"image_id", id}});
  ctx.info("copying " + source_id + " into " + dest.region() + " as " + id);

  AmiFacts made = wait_available(dest, id, settings, ctx);
  // CopyImage copies no tags: the copy and its snapshots get the source's.
  auto tags = source.tags;
  tags.emplace_back("lcake:source-image", source_id);
  tags.emplace_back("lcake:source-region", source_client.region());
  std::vector<std::string> resources = {id};
  resources.insert(resources.end(), made.snapshots.begin(), made.snapshots.end());
  dest.ec2("CreateTags", tag_params(resources, tags));
  copy.promote();  // from here it is published with the source; never gc'd
  return id;
}

void grant(const AwsClient& client, const std::string& image, const PublishSettings& settings, Context& ctx) {
  if (!settings.launch_permission.empty()) {
    Pairs p = {{"ImageId", image}};
    int n = 1;
    for (const auto& who : settings.launch_permission) {
      std::string prefix = "LaunchPermission.Add." + std::to_string(n++) + ".";
      if (who == "public") p.emplace_back(prefix + "Group", "all");
      else if (who.find(":organization/") != std::string::npos) p.emplace_back(prefix + "OrganizationArn", who);
      else if (who.find(":ou/") != std::string::npos) p.emplace_back(prefix + "OrganizationalUnitArn", who);
      else p.emplace_back(prefix + "UserId", who);
    }
    client.ec2("ModifyImageAttribute", p);
    ctx.info("launch permission on " + image + " in " + client.region() + " for " + nlohmann::json(settings.launch_permission).dump());
  }
  if (settings.snapshot_permission) {
    // createVolumePermission knows only accounts and "all": organization ARNs have no equivalent.
    Pairs who;
    int users = 1;
    for (const auto& w : settings.launch_permission) {
      // (the query names are the model's locationNames: UserGroup.N, UserId.N)
      if (w == "public") who.emplace_back("UserGroup.1", "all");
      else if (w.rfind("arn:", 0) != 0) who.emplace_back("UserId." + std::to_string(users++), w);
    }
    if (!who.empty())
      for (const auto& snap : describe_image(client, image).snapshots) {
        Pairs p = {{"SnapshotId", snap}, {"Attribute", "createVolumePermission"}, {"OperationType", "add"}};
        p.insert(p.end(), who.begin(), who.end());
        client.ec2("ModifySnapshotAttribute", p);
      }
  }
  if (settings.deprecate_after_days > 0) {
    auto at = std::chrono::system_clock::now() + std::chrono::hours(24 * settings.deprecate_after_days);
    std::time_t t = std::chrono::system_clock::to_time_t(at);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:00Z", std::gmtime(&t));
    client.ec2("EnableImageDeprecation", {{"ImageId", image}, {"DeprecateAt", buf}});
    ctx.info(image + " in " + client.region() + " deprecates at " + buf);
  }
  client.ec2("CreateTags", tag_params({image}, {{kPublishedTag, "true"}}));
}

}  // namespace

Artifact publish_image(const AwsClient& client, const PublishSettings& settings, const Artifact& uploaded,
                       const PublishRequest& request, Context& ctx) {
  const std::string& source_id = uploaded.id;
  AmiFacts source = describe_image(client, source_id);
  if (!source.found)
    throw BuildError("AMI " + source_id + " is no longer in " + client.region() + ": upload the layer again");
  if (source.state != "available")
    throw BuildError("AMI " + source_id + " in " + client.region() + " is " + source.state + ", not available");

  std::vector<std::string> tags;
  for (const auto& t : request.options.value("moving_tags", std::vector<std::string>{})) tags.push_back(t);

  std::map<std::string, std::string> in_region = {{client.region(), source_id}};
  for (const auto& region : settings.regions) {
    if (in_region.count(region)) continue;
    AwsClient dest = client.in_region(region);
    in_region[region] = copy_into(client, dest, source, source_id, settings, ctx);
  }

  nlohmann::json parameters = nlohmann::json::array();
  for (const auto& [region, image] : in_region) {
    AwsClient here = client.in_region(region);
    grant(here, image, settings, ctx);
    for (const auto& tag : tags) {
      std::string name = settings.ssm_prefix + tag;
      here.json_rpc(Service::ssm, "AmazonSSM", "PutParameter",
                    {{"Name", name}, {"Value", image}, {"Type", "String"}, {"DataType", "aws:ec2:image"},
                     {"Overwrite", true}, {"Description", "lcake: newest " + request.layer.variant + "/" + request.layer.layer}});
      ctx.info("SSM parameter " + name + " in " + region + " → " + image);
      parameters.push_back({{"region", region}, {"name", name}, {"image", image}});
    }
  }
  Artifact out = uploaded;
  out.metadata["published"] = true;
  out.metadata["regions"] = in_region;
  out.metadata["ssm_parameters"] = parameters;
  // The names people resolve (lcake outputs): the SSM parameters, the same in every region.
  nlohmann::json names = nlohmann::json::array();
  for (const auto& tag : tags) names.push_back(settings.ssm_prefix + tag);
  out.metadata["moving_names"] = names;
  return out;
}

bool reap_publish_entry(const AwsClient& any_region, const LedgerEntry& entry, Context& ctx) {
  if (entry.kind != "ami-copy") return false;
  const auto& how = entry.how;
  AwsClient client = any_region.in_region(how.value("region", any_region.region()));
  (void)ctx;
  std::vector<std::string> ids;
  if (how.contains("image_id")) {
    ids.push_back(how["image_id"]);
  } else if (how.contains("description")) {  // CopyImage's answer never arrived
    auto doc = client.ec2("DescribeImages", {{"Filter.1.Name", "description"},
                                             {"Filter.1.Value.1", how["description"].get<std::string>()}}, false);
    for (auto item : doc.first_child().child("imagesSet").children("item"))
      if (item.child_value("imageOwnerId") == how.value("owner", std::string())) ids.push_back(item.child_value("imageId"));
  }
  bool deleted = false;
  for (const auto& id : ids) deleted = deregister_with_snapshots(client, id) || deleted;
  if (!deleted)
    throw AlreadyGone("copy " + (ids.empty() ? how.value("description", std::string()) : ids.front()) + " in " +
                      client.region() + " is already gone");
  return true;
}

}  // namespace lcake::aws
