// What `qemu-img info --output=json` says of a disk image: its format, virtual
// size and backing file. The one reader of that JSON for the backends that send
// disks somewhere (aws, openstack).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "lcake/context.hpp"

namespace lcake::common {

struct DiskInfo {
  std::string format;                  // qemu-img's "format": qcow2, raw, vmdk, ...
  std::uint64_t virtual_size = 0;      // bytes
  std::optional<std::string> backing;  // the backing file, absolute (resolved against the disk's directory)
  std::string backing_format;          // "backing-filename-format", may be empty
  bool has_backing() const { return backing.has_value(); }
};

// Parses qemu-img info's JSON output (warnings printed before the object are
// skipped); `disk` is the file it describes, for a relative backing file name.
// Throws BuildError naming the disk when there is no JSON object.
DiskInfo parse_disk_info(const std::string& output, const std::filesystem::path& disk);

// Runs `qemu-img info -U --output=json DISK` through ctx (120 s limit) and parses it.
DiskInfo disk_info(const std::filesystem::path& disk, Context& ctx);

}  // namespace lcake::common
