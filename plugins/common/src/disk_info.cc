#include "lcake/common/disk_info.h"

#include <nlohmann/json.hpp>

#include "lcake/errors.hpp"

namespace lcake::common {

DiskInfo parse_disk_info(const std::string& output, const std::filesystem::path& disk) {
  auto brace = output.find('{');
  auto j = brace == std::string::npos ? nlohmann::json() : nlohmann::json::parse(output.substr(brace), nullptr, false);
  if (!j.is_object()) throw BuildError("qemu-img info " + disk.string() + " printed no JSON");
  DiskInfo d;
  d.format = j.value("format", "");
  d.virtual_size = j.value("virtual-size", std::uint64_t{0});
  if (j.contains("full-backing-filename") && j["full-backing-filename"].is_string()) {
    d.backing = j["full-backing-filename"].get<std::string>();
  } else if (j.contains("backing-filename") && j["backing-filename"].is_string()) {
    std::filesystem::path b = j["backing-filename"].get<std::string>();
    d.backing = (b.is_absolute() ? b : disk.parent_path() / b).string();
  }
  d.backing_format = j.value("backing-filename-format", "");
  return d;
}

DiskInfo disk_info(const std::filesystem::path& disk, Context& ctx) {
  std::string out = ctx.run_checked({.argv = {"qemu-img", "info", "-U", "--output=json", disk.string()},
                                     .timeout = std::chrono::seconds(120)});
  return parse_disk_info(out, disk);
}

}  // namespace lcake::common
