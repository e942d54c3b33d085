// A disk seen as EBS's 512 KiB blocks: which blocks can hold data (from
// `qemu-img map`), the disk as a raw file to read them from, and reading one
// block at a time (constant memory).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lcake/common/disk_info.h"
#include "lcake/context.hpp"

namespace lcake::aws {

constexpr std::uint64_t kEbsBlockSize = 512 * 1024;
constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;

// qemu-img info (lcake/common/disk_info.h); a missing disk is an input error.
using DiskFacts = lcake::common::DiskInfo;
DiskFacts disk_facts(const std::filesystem::path& disk, Context& ctx);

// One entry of `qemu-img map --output=json`: depth 0 is the image's own layer.
struct MapExtent {
  std::uint64_t start = 0, length = 0;
  int depth = 0;
  bool data = false, zero = false;
};
std::vector<MapExtent> image_map(const std::filesystem::path& disk, Context& ctx);
std::vector<MapExtent> parse_image_map(const std::string& json);

// Sorted block indices that may differ from a base: own_layer_only (a child
// overlay against its backing file): every block its own layer touched,
// written or zeroed; else (against an empty disk): every block holding data.
std::vector<std::uint64_t> candidate_blocks(const std::vector<MapExtent>& map, bool own_layer_only,
                                            std::uint64_t virtual_size);

// The disk's content as a sparse raw file: `disk` itself when raw without
// backing, else `qemu-img convert -O raw` into `scratch`.
std::filesystem::path raw_view(const std::filesystem::path& disk, const DiskFacts& facts,
                               const std::filesystem::path& scratch, Context& ctx);

// Reads whole blocks of a raw file; past its end reads zeros. Thread-safe (pread).
class BlockReader {
 public:
  explicit BlockReader(const std::filesystem::path& raw);
  ~BlockReader();
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;
  void read(std::uint64_t index, std::string& block) const;  // resized to kEbsBlockSize

 private:
  int fd_;
  std::string path_;
};

bool all_zero(const std::string& block);
// EBS volume size: the virtual size in GiB, rounded up (at least 1).
std::uint64_t volume_size_gib(std::uint64_t virtual_size);

}  // namespace lcake::aws
