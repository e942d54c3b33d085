// A NoCloud seed: a small vfat disk labelled "cidata" holding user-data and
// meta-data, read by cloud-init (and by the test guest) to install SSH keys.
#pragma once
#include <filesystem>
#include <string>

#include "lcake/context.hpp"

namespace lcake::qemu {

struct SeedContent {
  std::string public_key;   // "ssh-ed25519 AAAA..."
  std::string user;         // the SSH user the key is for
  std::string instance_id;  // new per boot, so cloud-init applies the new key
  std::string hostname = "lcake";
};

// The #cloud-config user-data for `content`.
std::string seed_user_data(const SeedContent& content);

// Writes the seed image to `image` (mkfs.vfat -n cidata -C, then mcopy).
void write_nocloud_seed(const std::filesystem::path& image, const SeedContent& content,
                        Context& ctx);

}  // namespace lcake::qemu
