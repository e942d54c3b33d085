#include "glance_disk.h"

#include <nlohmann/json.hpp>

#include "lcake/errors.hpp"

namespace lcake::openstack {
namespace fs = std::filesystem;

DiskFacts inspect_disk(const fs::path& file, Context& ctx) {
  if (!fs::is_regular_file(file)) throw BuildError("built disk " + file.string() + " is missing: rebuild the layer");
  std::string out = ctx.run_checked({.argv = {"qemu-img", "info", "--output=json", "-U", file.string()},
                                     .timeout = std::chrono::seconds(120)});
  // qemu-img may print warnings before the JSON object.
  auto brace = out.find('{');
  auto j = nlohmann::json::parse(brace == std::string::npos ? out : out.substr(brace), nullptr, false);
  if (!j.is_object()) throw BuildError("qemu-img info " + file.string() + " printed no JSON");
  DiskFacts f;
  f.format = j.value("format", "");
  f.virtual_size = j.value("virtual-size", std::uint64_t{0});
  f.has_backing = j.contains("backing-filename") || j.contains("full-backing-filename");
  return f;
}

PreparedDisk prepare_disk(const fs::path& built, const std::string& disk_format, Context& ctx) {
  PreparedDisk p{built, inspect_disk(built, ctx), false};
  if (p.facts.format == disk_format && !p.facts.has_backing) return p;
  fs::path out = ctx.work_dir() / ("glance-upload." + disk_format);
  ctx.info(std::string(p.facts.has_backing ? "flattening" : "converting") + " " + built.filename().string() + " (" +
           p.facts.format + ") into a standalone " + disk_format + " for Glance");
  ctx.progress(-1, "converting disk for Glance");
  ctx.run_checked({.argv = {"qemu-img", "convert", "-U", "-O", disk_format, built.string(), out.string()}});
  p.file = out;
  p.converted = true;
  p.facts = inspect_disk(out, ctx);
  if (p.facts.format != disk_format || p.facts.has_backing)
    throw BuildError("qemu-img convert of " + built.string() + " gave a " + p.facts.format + " disk, not " + disk_format);
  return p;
}

}  // namespace lcake::openstack
