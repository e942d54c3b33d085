// A NoCloud seed: a small vfat disk labelled "cidata" holding user-data and
// meta-data, read by cloud-init (and by the test guest) to install SSH keys.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "lcake/context.hpp"

namespace lcake::qemu {

struct SeedContent {
  std::string public_key;   // "ssh-ed25519 AAAA..."
  std::string user;         // the SSH user the key is for
  std::string instance_id;  // stable per build (and per verify of a build)
  nlohmann::json user_data = nlohmann::json::object();  // the source's #cloud-config keys
  nlohmann::json meta_data = nlohmann::json::object();  // local-hostname (default "lcake"), ...
  nlohmann::json network_config = nullptr;               // written as network-config when set
};

// The #cloud-config user-data for `content`.
std::string seed_user_data(const SeedContent& content);

// The meta-data: the source's, with instance-id set and local-hostname defaulted to "lcake".
std::string seed_meta_data(const SeedContent& content);

// Writes the seed image to `image` (mkfs.vfat -n cidata -C, then mcopy).
void write_nocloud_seed(const std::filesystem::path& image, const SeedContent& content,
                        Context& ctx);

}  // namespace lcake::qemu
