#include "glance_disk.h"

#include "lcake/errors.hpp"

namespace lcake::openstack {
namespace fs = std::filesystem;

DiskFacts inspect_disk(const fs::path& file, Context& ctx) {
  if (!fs::is_regular_file(file)) throw BuildError("built disk " + file.string() + " is missing: rebuild the layer");
  return lcake::common::disk_info(file, ctx);
}

PreparedDisk prepare_disk(const fs::path& built, const std::string& disk_format, Context& ctx) {
  PreparedDisk p{built, inspect_disk(built, ctx), false};
  if (p.facts.format == disk_format && !p.facts.has_backing()) return p;
  fs::path out = ctx.work_dir() / ("glance-upload." + disk_format);
  ctx.info(std::string(p.facts.has_backing() ? "flattening" : "converting") + " " + built.filename().string() + " (" +
           p.facts.format + ") into a standalone " + disk_format + " for Glance");
  ctx.progress(-1, "converting disk for Glance");
  ctx.run_checked({.argv = {"qemu-img", "convert", "-U", "-O", disk_format, built.string(), out.string()}});
  p.file = out;
  p.converted = true;
  p.facts = inspect_disk(out, ctx);
  if (p.facts.format != disk_format || p.facts.has_backing())
    throw BuildError("qemu-img convert of " + built.string() + " gave a " + p.facts.format + " disk, not " + disk_format);
  return p;
}

}  // namespace lcake::openstack
