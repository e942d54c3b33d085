#include "image_cleanup.h"

#include <algorithm>
#include <pugixml.hpp>
#include <thread>

namespace lcake::aws {

std::string AmiFacts::tag(const std::string& key) const {
  for (const auto& [k, v] : tags)
    if (k == key) return v;
  return {};
}

AmiFacts describe_image(const AwsClient& client, const std::string& image_id, bool cancellable) {
  AmiFacts f;
  pugi::xml_document doc;
  try {
    doc = client.ec2("DescribeImages", {{"ImageId.1", image_id}}, cancellable);
  } catch (const AwsError& e) {
    if (e.code == "InvalidAMIID.NotFound" || e.code == "InvalidAMIID.Unavailable") return f;
    throw;
  }
  auto item = doc.first_child().child("imagesSet").child("item");
  if (!item) return f;
  f.found = true;
  f.state = item.child_value("imageState");
  f.name = item.child_value("name");
  f.owner = item.child_value("imageOwnerId");
  f.is_public = std::string(item.child_value("isPublic")) == "true";
  for (auto m : item.child("blockDeviceMapping").children("item")) {
    std::string snap = m.child("ebs").child_value("snapshotId");
    if (!snap.empty()) f.snapshots.push_back(snap);
  }
  for (auto t : item.child("tagSet").children("item")) f.tags.emplace_back(t.child_value("key"), t.child_value("value"));
  return f;
}

bool deregister_with_snapshots(const AwsClient& client, const std::string& image_id,
                               const std::vector<std::string>& known_snapshots) {
  Context& ctx = client.context();
  bool deleted = false;
  AmiFacts f = describe_image(client, image_id, false);
  if (f.found && f.state != "deregistered") {
    client.ec2("DeregisterImage", {{"ImageId", image_id}}, false);
    ctx.info("deregistered " + image_id + " in " + client.region());
    deleted = true;
  }
  std::vector<std::string> snapshots = f.found ? f.snapshots : std::vector<std::string>{};
  for (const auto& s : known_snapshots)
    if (!s.empty() && std::find(snapshots.begin(), snapshots.end(), s) == snapshots.end()) snapshots.push_back(s);
  for (const auto& snap : snapshots) {
    // The snapshot stays "in use" for a moment after the image goes.
    for (int attempt = 0;; ++attempt) {
      try {
        client.ec2("DeleteSnapshot", {{"SnapshotId", snap}}, false);
        ctx.info("deleted snapshot " + snap);
        deleted = true;
        break;
      } catch (const AwsError& e) {
        if (e.code == "InvalidSnapshot.NotFound") break;
        if (e.code != "InvalidSnapshot.InUse" || attempt >= 10) throw;
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  return deleted;
}

bool remove_unpublished_image(const AwsClient& client, const std::string& image_id,
                              const std::vector<std::string>& known_snapshots) {
  AmiFacts f = describe_image(client, image_id, false);
  if (f.found && (f.tag("lcake:published") == "true" || f.is_public)) {
    client.context().info("keeping " + image_id + " in " + client.region() + ": it was published");
    return false;
  }
  if (!f.found && known_snapshots.empty()) return false;
  return deregister_with_snapshots(client, image_id, known_snapshots);
}

}  // namespace lcake::aws
