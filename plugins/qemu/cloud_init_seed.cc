#include "cloud_init_seed.h"

#include <fstream>

#include "host_tools.h"
#include <vector>

namespace fs = std::filesystem;

namespace lcake::qemu {

namespace {

// A YAML scalar: plain when it is a safe word (what the test guest's seed reader expects),
// else JSON (YAML reads JSON values as flow style).
std::string yaml_value(const nlohmann::json& v) {
  if (v.is_string()) {
    auto t = v.get<std::string>();
    if (!t.empty() && t.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
                          std::string::npos &&
        t != "true" && t != "false" && t != "null" && t != "yes" && t != "no")
      return t;
  }
  return v.dump();
}

}  // namespace

std::string seed_user_data(const SeedContent& c) {
  auto doc = c.user_data.is_object() ? c.user_data : nlohmann::json::object();
  // Keep the image's SSH host keys across layers and verify boots: the host
  // key recorded for the first layer is enforced on every later boot.
  if (!doc.contains("ssh_deletekeys")) doc["ssh_deletekeys"] = false;
  // Keys go to the image's default user, and to root too once disable_root is
  // off: ssh_user must be root or the image's default cloud-init user.
  if (c.user == "root") doc["disable_root"] = false;
  auto keys = doc.contains("ssh_authorized_keys") && doc["ssh_authorized_keys"].is_array()
                  ? doc["ssh_authorized_keys"]
                  : nlohmann::json::array();
  keys.push_back(c.public_key);
  doc.erase("ssh_authorized_keys");
  // One top-level key per line, values in JSON's flow style; the keys as a block list.
  std::string text = "#cloud-config\n";
  for (auto it = doc.begin(); it != doc.end(); ++it) text += nlohmann::json(it.key()).dump() + ": " + it.value().dump() + "\n";
  text += "ssh_authorized_keys:\n";
  for (auto& k : keys) text += "  - " + (k.is_string() ? k.get<std::string>() : k.dump()) + "\n";
  return text;
}

std::string seed_meta_data(const SeedContent& c) {
  auto doc = c.meta_data.is_object() ? c.meta_data : nlohmann::json::object();
  if (doc.contains("hostname") && !doc.contains("local-hostname")) doc["local-hostname"] = doc["hostname"];
  doc.erase("hostname");
  if (!doc.contains("local-hostname")) doc["local-hostname"] = "lcake";
  doc["instance-id"] = c.instance_id;
  std::string text;
  for (auto it = doc.begin(); it != doc.end(); ++it) text += it.key() + ": " + yaml_value(it.value()) + "\n";
  return text;
}

void write_nocloud_seed(const fs::path& image, const SeedContent& content, Context& ctx) {
  auto dir = image.parent_path() / (image.filename().string() + ".d");
  fs::create_directories(dir);
  std::ofstream(dir / "user-data") << seed_user_data(content);
  std::ofstream(dir / "meta-data") << seed_meta_data(content);
  std::vector<std::string> files = {(dir / "user-data").string(), (dir / "meta-data").string()};
  if (content.network_config.is_object()) {
    std::ofstream(dir / "network-config") << content.network_config.dump(2) << "\n";
    files.push_back((dir / "network-config").string());
  }
  fs::remove(image);
  stdout_of(ctx, {"mkfs.vfat", "-n", "cidata", "-C", image.string(), "1024"});
  std::vector<std::string> mcopy = {"mcopy", "-o", "-i", image.string()};
  mcopy.insert(mcopy.end(), files.begin(), files.end());
  mcopy.push_back("::");
  stdout_of(ctx, mcopy);
  fs::remove_all(dir);
}

}  // namespace lcake::qemu
