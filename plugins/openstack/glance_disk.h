// The disk file sent to Glance: what qemu-img says the bytes are, and a
// standalone copy in the wanted format when the built disk has a backing file
// or another format (Glance stores one file and never checks its format).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "lcake/common/disk_info.h"
#include "lcake/context.hpp"

namespace lcake::openstack {

using DiskFacts = lcake::common::DiskInfo;

// qemu-img info --output=json FILE (through ctx.run); a missing file is an error saying to rebuild.
DiskFacts inspect_disk(const std::filesystem::path& file, Context& ctx);

struct PreparedDisk {
  std::filesystem::path file;  // what to upload
  DiskFacts facts;             // of `file`
  bool converted = false;      // a copy in the work dir
};

// `disk_format` is "qcow2" or "raw". Flattens/converts with qemu-img convert into
// ctx.work_dir() when needed, then checks the result really is `disk_format`.
PreparedDisk prepare_disk(const std::filesystem::path& built, const std::string& disk_format, Context& ctx);

}  // namespace lcake::openstack
