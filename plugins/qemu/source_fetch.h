// The first layer's source disk: fetched (local path, file:// or http(s)://),
// checksum-verified, and copied into the layer's store so the artifact chain
// never depends on a file the user may change or delete.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "lcake/context.hpp"

namespace lcake::qemu {

struct SourceDisk {
  std::filesystem::path path;  // the verified copy in the store
  std::string format;          // "qcow2" | "raw"
  std::string sha256;          // hex
  // Set when this call created the copy: a ledger entry ("path") for it, open until the
  // caller releases it (the copy became part of an artifact). A failed build's copy is
  // deleted with its other leftovers (or by `lcake gc` after --on-error abort or a crash).
  std::int64_t entry = 0;
};

// Input problems are lcake::ValueError about the source ("/disk", "/checksum"); `where`
// names the source in a checksum mismatch (a BuildError), e.g. "the source of variant x".
// A verified copy of the same disk in a sibling store dir (another key of the same layer:
// the source's append or kernel changed) is hard-linked instead of copied again.
SourceDisk fetch_source_disk(const nlohmann::json& source, const std::string& where,
                             const std::filesystem::path& store_dir, Context& ctx);

// The expected hex sha256 of `disk_name` from "sha256:HEX" or "file:PATH" (sha256sum format).
std::string expected_sha256(const nlohmann::json& checksum, const std::string& disk_name);

// Downloads `url` to `dest` (plugins/common's HTTP client), reporting progress and honouring cancel.
void download(const std::string& url, const std::filesystem::path& dest, Context& ctx);

// "file:///x" → "/x"; other strings unchanged.
std::string strip_file_scheme(const std::string& location);

}  // namespace lcake::qemu
