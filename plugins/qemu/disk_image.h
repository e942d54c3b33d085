// Disk images through qemu-img: overlays, checks, conversions, facts.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "lcake/context.hpp"

namespace lcake::qemu {

struct DiskInfo {
  std::string format;  // "qcow2", "raw"
  std::uint64_t virtual_size = 0;
  std::uint64_t disk_bytes = 0;  // allocated on the host
  std::optional<std::string> backing;  // backing file as recorded in the image
};

DiskInfo disk_info(const std::filesystem::path& disk, Context& ctx);

// qemu-img create -f qcow2 -b BACKING -F BACKING_FORMAT overlay
void create_overlay(const std::filesystem::path& overlay, const std::filesystem::path& backing,
                    const std::string& backing_format, Context& ctx);

// qemu-img check: throws BuildError on corruption; leaked clusters only warn.
// Returns a note for the log ("" when clean). Raw images have nothing to check.
std::string check_disk(const std::filesystem::path& disk, const std::string& format,
                       Context& ctx);

// qemu-img convert -O FORMAT [-c] src dst: a standalone image without backing file.
void convert_disk(const std::filesystem::path& src, const std::filesystem::path& dst,
                  const std::string& format, bool compress, Context& ctx);

// Every file of the backing chain opens (qemu-img info --backing-chain).
bool backing_chain_intact(const std::filesystem::path& disk, Context& ctx);

}  // namespace lcake::qemu
