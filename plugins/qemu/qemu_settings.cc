#include "qemu_settings.h"

namespace lcake::qemu {

MachineSettings MachineSettings::from_json(const nlohmann::json& s) {
  MachineSettings m;
  if (!s.is_object()) return m;
  m.accelerator = s.value("accelerator", m.accelerator);
  m.memory_mib = s.value("memory", m.memory_mib);
  m.cpus = s.value("cpus", m.cpus);
  m.qemu_binary = s.value("qemu_binary", m.qemu_binary);
  m.machine = s.value("machine", m.machine);
  m.ssh_timeout = std::chrono::seconds(s.value("ssh_timeout", static_cast<int>(m.ssh_timeout.count())));
  m.shutdown_timeout =
      std::chrono::seconds(s.value("shutdown_timeout", static_cast<int>(m.shutdown_timeout.count())));
  m.ssh_user = s.value("ssh_user", m.ssh_user);
  m.qemuargs = s.value("qemuargs", m.qemuargs);
  return m;
}

static std::string text_or_empty(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

GuestFacts GuestFacts::from_metadata(const nlohmann::json& m) {
  GuestFacts f;
  if (!m.is_object()) return f;
  f.kernel = text_or_empty(m, "kernel");
  f.initrd = text_or_empty(m, "initrd");
  f.append = text_or_empty(m, "append");
  f.host_key = text_or_empty(m, "host_key");
  f.ssh_user = text_or_empty(m, "ssh_user");
  f.set_cloud_init(m.contains("cloud_init") ? m["cloud_init"] : nlohmann::json(true));
  f.ssh_private_key = text_or_empty(m, "ssh_private_key");
  return f;
}

void GuestFacts::set_cloud_init(const nlohmann::json& v) {
  if (v.is_boolean()) {
    cloud_init = v.get<bool>();
    return;
  }
  if (!v.is_object()) return;
  cloud_init = true;
  cloud_init_wait = v.value("wait", true);
  if (v.contains("user_data") && v["user_data"].is_object()) user_data = v["user_data"];
  if (v.contains("meta_data") && v["meta_data"].is_object()) meta_data = v["meta_data"];
  if (v.contains("network_config") && v["network_config"].is_object()) network_config = v["network_config"];
}

void GuestFacts::to_metadata(nlohmann::json& m) const {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
  m["kernel"] = or_null(kernel);
  m["initrd"] = or_null(initrd);
  m["append"] = or_null(append);
  m["host_key"] = or_null(host_key);
  m["ssh_user"] = ssh_user;
  if (!cloud_init) {
    m["cloud_init"] = false;
  } else {
    m["cloud_init"] = {{"wait", cloud_init_wait}, {"user_data", user_data}, {"meta_data", meta_data}};
    if (!network_config.is_null()) m["cloud_init"]["network_config"] = network_config;
  }
  if (!ssh_private_key.empty()) m["ssh_private_key"] = ssh_private_key;
}

}  // namespace lcake::qemu
