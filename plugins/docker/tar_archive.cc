#include "tar_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <vector>

#include "lcake/errors.hpp"

namespace lcake::docker {
namespace fs = std::filesystem;
namespace {

la_ssize_t append_to_string(struct archive*, void* user, const void* buf, size_t n) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

void check(struct archive* a, int rc, const std::string& what) {
  if (rc < ARCHIVE_WARN) throw lcake::BuildError(what + ": " + archive_error_string(a));
}

void add_entry(struct archive* a, const fs::path& local, const std::string& name) {
  struct stat st {};
  if (::lstat(local.c_str(), &st) != 0) throw lcake::BuildError("cannot read " + local.string() + " for upload");
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), &archive_entry_free);
  archive_entry_copy_stat(e.get(), &st);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_uname(e.get(), "root");
  archive_entry_set_gname(e.get(), "root");
  std::string content;
  if (S_ISLNK(st.st_mode)) {
    archive_entry_set_symlink(e.get(), fs::read_symlink(local).c_str());
    archive_entry_set_size(e.get(), 0);
  } else if (S_ISREG(st.st_mode)) {
    std::ifstream in(local, std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(content.size()));
  } else {
    archive_entry_set_size(e.get(), 0);
  }
  check(a, archive_write_header(a, e.get()), "tar " + local.string());
  if (!content.empty() && archive_write_data(a, content.data(), content.size()) < 0) {
    throw lcake::BuildError("tar " + local.string() + ": " + archive_error_string(a));
  }
}

}  // namespace

std::string tar_path(const fs::path& local, const std::string& name) {
  std::string out;
  std::unique_ptr<struct archive, decltype(&archive_write_free)> a(archive_write_new(), &archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_per_block(a.get(), 0);
  check(a.get(), archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr), "tar");
  add_entry(a.get(), local, name);
  if (fs::is_directory(fs::symlink_status(local))) {
    std::vector<fs::path> below;
    for (const auto& entry : fs::recursive_directory_iterator(local)) below.push_back(entry.path());
    std::sort(below.begin(), below.end());
    for (const auto& p : below) add_entry(a.get(), p, name + "/" + fs::relative(p, local).generic_string());
  }
  check(a.get(), archive_write_close(a.get()), "tar");
  return out;
}

void untar_to(const std::string& tar, const fs::path& local) {
  std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(), &archive_read_free);
  archive_read_support_format_tar(a.get());
  check(a.get(), archive_read_open_memory(a.get(), tar.data(), tar.size()), "untar");
  archive_entry* e = nullptr;
  std::string top;
  bool first = true;
  while (true) {
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    check(a.get(), rc, "untar");
    std::string name = archive_entry_pathname(e);
    while (!name.empty() && name.back() == '/') name.pop_back();
    auto type = archive_entry_filetype(e);
    fs::path dest;
    if (first) {
      top = name;
      first = false;
      dest = local;
    } else {
      std::string rel = name.rfind(top + "/", 0) == 0 ? name.substr(top.size() + 1) : name;
      // Never write outside `local`.
      if (rel.empty() || rel.find("..") != std::string::npos) continue;
      dest = local / rel;
    }
    if (type == AE_IFDIR) {
      fs::create_directories(dest);
    } else if (type == AE_IFLNK) {
      std::error_code ec;
      fs::remove(dest, ec);
      fs::create_symlink(archive_entry_symlink(e), dest);
    } else if (type == AE_IFREG) {
      if (dest.has_parent_path()) fs::create_directories(dest.parent_path());
      std::ofstream out(dest, std::ios::binary | std::ios::trunc);
      if (!out) throw lcake::BuildError("cannot write " + dest.string());
      const void* buf;
      size_t size;
      la_int64_t offset;
      while ((rc = archive_read_data_block(a.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        out.write(static_cast<const char*>(buf), static_cast<std::streamsize>(size));
      }
      check(a.get(), rc == ARCHIVE_EOF ? ARCHIVE_OK : rc, "untar " + name);
      out.close();
      fs::permissions(dest, static_cast<fs::perms>(archive_entry_perm(e) & 07777));
    }
  }
}

}  // namespace lcake::docker
