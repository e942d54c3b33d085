#include "nova_settings.h"

namespace lcake::openstack {
namespace {

using nlohmann::json;

const char* kServerProperties = R"json({
  "flavor": {"type": "string", "minLength": 1, "description": "flavor name or id of the server"},
  "networks": {"description": "\"auto\", \"none\", or a list of network UUIDs to attach",
    "default": "auto",
    "oneOf": [{"enum": ["auto", "none"]},
              {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]},
  "security_groups": {"type": "array", "items": {"type": "string", "minLength": 1},
    "description": "security group names (default: the project's default group)"},
  "availability_zone": {"type": "string", "description": "availability zone for the server"},
  "keypair": {"type": "boolean", "default": true,
    "description": "create a Nova key pair; false: pass the key in cloud-config user data on a config drive"},
  "config_drive": {"type": "boolean", "default": false, "description": "attach a config drive"},
  "address": {"type": "string", "default": "first", "minLength": 1,
    "description": "where SSH connects: first, fixed, floating, or a network name"},
  "floating_ip_network": {"type": "string", "minLength": 1,
    "description": "allocate a floating IP from this external network (name or id), associate it with the server and SSH to it; released with the server"},
  "ssh_user": {"type": "string", "default": "root", "minLength": 1,
    "description": "SSH user (the source's or parent's ssh_user wins)"},
  "ssh_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 22},
  "ssh_timeout": {"type": "integer", "minimum": 1, "default": 300,
    "description": "seconds from ACTIVE until SSH must answer"},
  "boot_timeout": {"type": "integer", "minimum": 1, "default": 600, "description": "seconds to reach ACTIVE"},
  "stop_timeout": {"type": "integer", "minimum": 1, "default": 300, "description": "seconds to reach SHUTOFF"},
  "image_timeout": {"type": "integer", "minimum": 1, "default": 1800,
    "description": "seconds until the snapshot image is active in Glance"},
  "poll_interval": {"type": "number", "exclusiveMinimum": 0, "default": 2,
    "description": "seconds between status polls"},
  "boot_volume": {"type": "object", "additionalProperties": false,
    "description": "boot from a new volume made from the image",
    "properties": {"size": {"type": "integer", "minimum": 1, "description": "GiB (default: the image's)"},
                   "delete_on_termination": {"type": "boolean", "default": true},
                   "volume_type": {"type": "string"}}},
  "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
    "description": "server metadata"}
})json";

}  // namespace

const char* nova_settings_schema() {
  static const std::string text = [] {
    json props = json::parse(kServerProperties);
    const json auth = auth_schema_properties();  // kept alive: items() of a temporary would dangle
    for (auto& [k, v] : auth.items()) props[k] = v;
    json schema = {{"$schema", "http://json-schema.org/draft-07/schema#"},
                   {"type", "object"},
                   {"additionalProperties", false},
                   {"required", {"flavor"}},
                   {"properties", props}};
    return schema.dump();
  }();
  return text.c_str();
}

ServerSettings ServerSettings::from_json(const json& j) {
  ServerSettings s;
  s.auth = AuthSettings::from_json(j);
  if (!j.contains("flavor") || !j["flavor"].is_string() || j["flavor"].get<std::string>().empty())
    throw ValueError("settings", "/flavor", "the Nova roles need a flavor (name or id): set settings.flavor");
  s.flavor = j["flavor"];
  if (j.contains("networks")) {
    auto& n = j["networks"];
    if (n.is_string()) {
      if (n != "auto" && n != "none")
        throw ValueError("settings", "/networks", "networks must be \"auto\", \"none\" or a list of network UUIDs");
      s.networks = n;
    } else if (n.is_array() && !n.empty()) {
      s.networks = json::array();
      for (auto& u : n) s.networks.push_back({{"uuid", u.get<std::string>()}});
    } else {
      throw ValueError("settings", "/networks", "networks must be \"auto\", \"none\" or a list of network UUIDs");
    }
  }
  s.security_groups = j.value("security_groups", std::vector<std::string>{});
  s.availability_zone = j.value("availability_zone", "");
  s.keypair = j.value("keypair", true);
  s.config_drive = j.value("config_drive", false) || !s.keypair;
  s.address = j.value("address", "first");
  s.floating_ip_network = j.value("floating_ip_network", "");
  s.ssh_user = j.value("ssh_user", "root");
  s.ssh_port = j.value("ssh_port", 22);
  s.ssh_timeout = std::chrono::seconds(j.value("ssh_timeout", 300));
  s.boot_timeout = std::chrono::seconds(j.value("boot_timeout", 600));
  s.stop_timeout = std::chrono::seconds(j.value("stop_timeout", 300));
  s.image_timeout = std::chrono::seconds(j.value("image_timeout", 1800));
  s.poll = std::chrono::milliseconds(static_cast<long>(j.value("poll_interval", 2.0) * 1000));
  if (j.contains("boot_volume")) {
    BootVolume v;
    v.size_gb = j["boot_volume"].value("size", 0);
    v.delete_on_termination = j["boot_volume"].value("delete_on_termination", true);
    v.volume_type = j["boot_volume"].value("volume_type", "");
    s.boot_volume = v;
  }
  s.metadata = j.value("metadata", std::map<std::string, std::string>{});
  if (s.networks == "none" && s.address != "first")
    throw ValueError("settings", "/address", "a server with networks \"none\" has no address to reach it by");
  if (!s.floating_ip_network.empty() && s.networks == "none")
    throw ValueError("settings", "/floating_ip_network",
                     "a server with networks \"none\" has no port for a floating IP: drop one of the two");
  if (!s.floating_ip_network.empty() && s.address != "first" && s.address != "floating")
    throw ValueError("settings", "/address",
                     "with floating_ip_network SSH uses the allocated floating IP: leave address unset (or \"floating\")");
  return s;
}

}  // namespace lcake::openstack
