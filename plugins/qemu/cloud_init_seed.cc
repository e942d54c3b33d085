#include "cloud_init_seed.h"

#include <fstream>

#include "host_tools.h"

namespace fs = std::filesystem;

namespace lcake::qemu {

std::string seed_user_data(const SeedContent& c) {
  std::string text = "#cloud-config\n";
  // Keep the image's SSH host keys across layers and verify boots: the host
  // key recorded for the first layer is enforced on every later boot.
  text += "ssh_deletekeys: false\n";
  // Keys go to the image's default user, and to root too once disable_root is
  // off: ssh_user must be root or the image's default cloud-init user.
  if (c.user == "root") text += "disable_root: false\n";
  text += "ssh_authorized_keys:\n  - " + c.public_key + "\n";
  return text;
}

void write_nocloud_seed(const fs::path& image, const SeedContent& content, Context& ctx) {
  auto dir = image.parent_path() / (image.filename().string() + ".d");
  fs::create_directories(dir);
  std::ofstream(dir / "user-data") << seed_user_data(content);
  std::ofstream(dir / "meta-data") << "instance-id: " << content.instance_id
                                   << "\nlocal-hostname: " << content.hostname << "\n";
  fs::remove(image);
  stdout_of(ctx, {"mkfs.vfat", "-n", "cidata", "-C", image.string(), "1024"});
  stdout_of(ctx, {"mcopy", "-o", "-i", image.string(), (dir / "user-data").string(), (dir / "meta-data").string(), "::"});
  fs::remove_all(dir);
}

}  // namespace lcake::qemu
