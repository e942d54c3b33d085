#include "disk_blocks.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "lcake/errors.hpp"

namespace lcake::aws {
namespace fs = std::filesystem;

static ProcessSpec qemu_img(std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {"qemu-img"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  return spec;
}

DiskFacts disk_facts(const fs::path& disk, Context& ctx) {
  if (!fs::exists(disk)) throw InputError("disk image " + disk.string() + " does not exist");
  return lcake::common::disk_info(disk, ctx);
}

std::vector<MapExtent> parse_image_map(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_array()) throw BuildError("qemu-img map: unreadable answer");
  std::vector<MapExtent> out;
  out.reserve(j.size());
  for (const auto& e : j)
    out.push_back({e.value("start", std::uint64_t{0}), e.value("length", std::uint64_t{0}), e.value("depth", 0),
                   e.value("data", false), e.value("zero", false)});
  return out;
}

std::vector<MapExtent> image_map(const fs::path& disk, Context& ctx) {
  ProcessSpec spec = qemu_img({"map", "-U", "--output=json", disk.string()});
  std::string text;
  spec.on_output = [&](std::string_view line, bool is_stderr) {
    if (!is_stderr) text.append(line).push_back('\n');
  };
  auto p = ctx.spawn(spec);
  if (int code = p->wait(); code != 0)
    throw BuildError("qemu-img map " + disk.string() + " exited with " + std::to_string(code));
  return parse_image_map(text);
}

std::vector<std::uint64_t> candidate_blocks(const std::vector<MapExtent>& map, bool own_layer_only,
                                            std::uint64_t virtual_size) {
  std::vector<std::uint64_t> out;
  for (const auto& e : map) {
    bool wanted = own_layer_only ? e.depth == 0 && (e.data || e.zero) : e.data && !e.zero;
    if (!wanted || e.length == 0 || e.start >= virtual_size) continue;
    std::uint64_t first = e.start / kEbsBlockSize;
    std::uint64_t last = (std::min(e.start + e.length, virtual_size) - 1) / kEbsBlockSize;
    if (!out.empty() && out.back() >= first) first = out.back() + 1;
    for (std::uint64_t b = first; b <= last; ++b) out.push_back(b);
  }
  return out;
}

fs::path raw_view(const fs::path& disk, const DiskFacts& facts, const fs::path& scratch, Context& ctx) {
  if (facts.format == "raw" && !facts.backing) return disk;
  fs::create_directories(scratch.parent_path());
  ctx.run_checked(qemu_img({"convert", "-U", "-O", "raw", disk.string(), scratch.string()}));
  return scratch;
}

BlockReader::BlockReader(const fs::path& raw) : fd_(::open(raw.c_str(), O_RDONLY | O_CLOEXEC)), path_(raw) {
  if (fd_ < 0) throw BuildError("cannot open " + path_ + ": " + std::strerror(errno));
}

BlockReader::~BlockReader() { ::close(fd_); }

void BlockReader::read(std::uint64_t index, std::string& block) const {
  block.assign(kEbsBlockSize, '\0');
  std::uint64_t off = index * kEbsBlockSize;
  std::size_t done = 0;
  while (done < kEbsBlockSize) {
    ssize_t n = ::pread(fd_, block.data() + done, kEbsBlockSize - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw BuildError("cannot read " + path_ + ": " + std::strerror(errno));
    if (n == 0) break;  // past the end: the rest stays zero
    done += static_cast<std::size_t>(n);
  }
}

bool all_zero(const std::string& block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == 0; });
}

std::uint64_t volume_size_gib(std::uint64_t virtual_size) {
  return std::max<std::uint64_t>(1, (virtual_size + kGiB - 1) / kGiB);
}

}  // namespace lcake::aws
