// Settings of the qemu roles, and the guest facts an artifact carries down the
// layer chain (kernel, initrd, append, host key, SSH user...).
#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lcake::qemu {

// /target/builder/settings (the verifier uses the same names, fewer of them).
struct MachineSettings {
  std::string accelerator = "auto";  // "kvm" | "tcg" | "auto"
  int memory_mib = 512;
  int cpus = 1;
  std::string qemu_binary = "qemu-system-x86_64";
  std::string machine = "q35";  // boots a little faster than "pc" under TCG here
  std::chrono::seconds ssh_timeout{300};
  std::chrono::seconds shutdown_timeout{60};
  std::string ssh_user = "root";
  std::vector<std::string> qemuargs;

  static MachineSettings from_json(const nlohmann::json& settings);
};

// What it takes to boot a disk again: carried in artifact metadata from the
// source down the chain.
struct GuestFacts {
  std::string kernel, initrd, append;  // direct kernel boot when kernel is set
  std::string host_key;                // "ssh-ed25519 AAAA..."; empty: learn on first contact
  std::string ssh_user;
  bool cloud_init = true;              // attach a NoCloud seed with a per-boot key
  bool cloud_init_wait = true;         // wait for `cloud-init status --wait` before provisioning
  // The source's cloud_init object: user_data (merged with lcake's key), meta_data, network_config.
  nlohmann::json user_data = nlohmann::json::object(), meta_data = nlohmann::json::object(),
                 network_config = nullptr;
  std::string ssh_private_key;         // only when cloud_init is off: a key the image accepts

  static GuestFacts from_metadata(const nlohmann::json& metadata);
  // The source's "cloud_init": true/false or {"wait", "user_data", "meta_data", "network_config"}.
  void set_cloud_init(const nlohmann::json& value);
  void to_metadata(nlohmann::json& metadata) const;
};

}  // namespace lcake::qemu
