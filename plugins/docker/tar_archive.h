// Tar streams for the Engine API's archive endpoints, made and read with libarchive.
#pragma once
#include <filesystem>
#include <string>

namespace lcake::docker {

// A tar holding `local` (a file, or a directory and everything below it) under
// the name `name`; modes and symlinks are kept, owners become root.
std::string tar_path(const std::filesystem::path& local, const std::string& name);

// Extracts a tar from GET …/archive. A single regular file is written to
// `local`; a directory's content is written below `local` (its top name dropped).
void untar_to(const std::string& tar, const std::filesystem::path& local);

}  // namespace lcake::docker
