// The settings of the Nova builder and verifier (target.<role>.settings): the
// cloud (auth.h), what server to boot and how to reach it over SSH.
#pragma once
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "auth.h"
#include "nova_client.h"

namespace lcake::openstack {

struct ServerSettings {
  AuthSettings auth;
  std::string flavor;
  nlohmann::json networks = "auto";  // "auto" | "none" | [{"uuid": ...}]
  std::vector<std::string> security_groups;
  std::string availability_zone;
  bool keypair = true;       // false: the key goes in through user data + config drive
  bool config_drive = false;
  std::string address = "first";  // first | fixed | floating | <network name>
  // Non-empty: a floating IP is allocated from this external network (name or id), associated
  // with the server's port and used for SSH; released with the server.
  std::string floating_ip_network;
  std::string ssh_user = "root";
  int ssh_port = 22;
  std::chrono::seconds ssh_timeout{300}, boot_timeout{600}, stop_timeout{300}, image_timeout{1800};
  std::chrono::milliseconds poll{2000};
  std::optional<BootVolume> boot_volume;
  std::map<std::string, std::string> metadata;  // server metadata

  static ServerSettings from_json(const nlohmann::json& settings);
};

// The settings schema of the Nova builder and verifier (JSON Schema text).
const char* nova_settings_schema();

}  // namespace lcake::openstack
