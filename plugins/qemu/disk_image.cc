#include "disk_image.h"

#include <nlohmann/json.hpp>

#include "host_tools.h"

namespace fs = std::filesystem;

namespace lcake::qemu {

DiskInfo disk_info(const fs::path& disk, Context& ctx) {
  // -U: the image may be open in a running guest (e.g. a parent under a child).
  auto out = stdout_of(ctx, {"qemu-img", "info", "-U", "--output=json", disk.string()});
  auto j = nlohmann::json::parse(out);
  DiskInfo info;
  info.format = j.value("format", "");
  info.virtual_size = j.value("virtual-size", std::uint64_t{0});
  info.disk_bytes = j.value("actual-size", std::uint64_t{0});
  if (j.contains("full-backing-filename"))
    info.backing = j["full-backing-filename"].get<std::string>();
  else if (j.contains("backing-filename"))
    info.backing = j["backing-filename"].get<std::string>();
  return info;
}

void create_overlay(const fs::path& overlay, const fs::path& backing,
                    const std::string& backing_format, Context& ctx) {
  stdout_of(ctx, {"qemu-img", "create", "-q", "-f", "qcow2", "-b", fs::absolute(backing).string(), "-F",
                 backing_format, overlay.string()});
}

std::string check_disk(const fs::path& disk, const std::string& format, Context& ctx) {
  if (format != "qcow2") return "";
  auto r = ctx.run({.argv = {"qemu-img", "check", "-q", "-f", "qcow2", disk.string()}});
  // Exit codes of qemu-img check: 0 clean, 2 corrupted, 3 leaked clusters only.
  if (r.exit_code == 0) return "";
  if (r.exit_code == 3) return "qemu-img check: leaked clusters in " + disk.string() + " (harmless)";
  throw BuildError("qemu-img check found errors in " + disk.string() + " (exit " +
                   std::to_string(r.exit_code) + "): " + r.output.substr(0, 400));
}

void convert_disk(const fs::path& src, const fs::path& dst, const std::string& format,
                  bool compress, Context& ctx) {
  std::vector<std::string> argv = {"qemu-img", "convert", "-O", format};
  if (compress) {
    if (format != "qcow2") throw InputError("compress needs format qcow2 (got '" + format + "')");
    argv.push_back("-c");
  }
  argv.push_back(src.string());
  argv.push_back(dst.string());
  stdout_of(ctx, argv);
}

bool backing_chain_intact(const fs::path& disk, Context& ctx) {
  if (!fs::exists(disk)) return false;
  auto r = ctx.run({.argv = {"qemu-img", "info", "-U", "--backing-chain", disk.string()}});
  return r.exit_code == 0;
}

}  // namespace lcake::qemu
