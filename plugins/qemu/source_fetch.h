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
};

// Input problems are lcake::ValueError about the source ("/disk", "/checksum"); `where`
// names the source in a checksum mismatch (a BuildError), e.g. "the source of variant x".
SourceDisk fetch_source_disk(const nlohmann::json& source, const std::string& where,
                             const std::filesystem::path& store_dir, Context& ctx);

// The expected hex sha256 of `disk_name` from "sha256:HEX" or "file:PATH" (sha256sum format).
std::string expected_sha256(const nlohmann::json& checksum, const std::string& disk_name);

// Downloads `url` to `dest` (plugins/common's HTTP client), reporting progress and honouring cancel.
void download(const std::string& url, const std::filesystem::path& dest, Context& ctx);

// "file:///x" → "/x"; other strings unchanged.
std::string strip_file_scheme(const std::string& location);

}  // namespace lcake::qemu
