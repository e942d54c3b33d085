#include "source_fetch.h"


#include <fstream>
#include <memory>
#include <sstream>

#include "disk_image.h"
#include "lcake/common/http_client.h"
#include "lcake/files.hpp"

namespace fs = std::filesystem;

namespace lcake::qemu {

std::string strip_file_scheme(const std::string& location) {
  return location.rfind("file://", 0) == 0 ? location.substr(7) : location;
}

static bool is_http(const std::string& location) {
  return location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0;
}

static std::string lower_hex(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

static bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string expected_sha256(const nlohmann::json& checksum, const std::string& disk_name) {
  if (!checksum.is_string())
    throw ValueError("source", "/checksum", "is required: \"sha256:HEX\" or \"file:PATH\" (a sha256sum file)");
  auto text = checksum.get<std::string>();
  if (text.rfind("sha256:", 0) == 0) {
    auto hex = lower_hex(text.substr(7));
    if (!is_sha256_hex(hex)) throw ValueError("source", "/checksum", "'" + text + "' is not sha256:<64 hex digits>");
    return hex;
  }
  if (text.rfind("file:", 0) == 0) {
    auto sums = strip_file_scheme(text.substr(0, 7) == "file://" ? text : text.substr(5));
    std::ifstream in(sums);
    if (!in) throw ValueError("source", "/checksum", "cannot read checksum file " + sums);
    // sha256sum lines: "HEX  NAME" or "HEX *NAME"; pick the disk's line, or the only one.
    std::string line, only;
    int lines = 0;
    auto base = fs::path(disk_name).filename().string();
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string hex, name;
      if (!(fields >> hex)) continue;
      fields >> name;
      if (!name.empty() && name[0] == '*') name.erase(0, 1);
      ++lines, only = hex;
      if (fs::path(name).filename() == base && is_sha256_hex(lower_hex(hex))) return lower_hex(hex);
    }
    if (lines == 1 && is_sha256_hex(lower_hex(only))) return lower_hex(only);
    throw ValueError("source", "/checksum", "no sha256 for '" + base + "' in " + sums);
  }
  throw ValueError("source", "/checksum", "'" + text + "' must start with sha256: or file:");
}

void download(const std::string& url, const fs::path& dest, Context& ctx) {
  std::ofstream out(dest, std::ios::binary | std::ios::trunc);
  if (!out) throw BuildError("cannot write " + dest.string());
  http::HttpRequest req;
  req.url = url;
  req.cancel = &ctx.cancel();
  req.connect_timeout = std::chrono::seconds(30);
  req.stall_timeout = std::chrono::seconds(60);  // a server that stops sending
  std::uint64_t done = 0;
  req.on_body = [&](std::string_view chunk) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    done += chunk.size();
    ctx.progress_bytes(done, 0, "downloading source disk");
  };
  http::HttpResponse r;
  try {
    r = http::http_perform(req);
  } catch (const http::HttpFailure& e) {
    throw BuildError("download of " + url + " failed: " + e.what());
  }
  out.close();
  if (r.status < 200 || r.status > 299)
    throw BuildError("download of " + url + " failed: HTTP " + std::to_string(r.status));
  if (!out) throw BuildError("cannot write " + dest.string());
}

SourceDisk fetch_source_disk(const nlohmann::json& source, const std::string& where,
                             const fs::path& store_dir, Context& ctx) {
  if (!source.is_object() || !source.contains("disk") || !source["disk"].is_string())
    throw ValueError("source", "/disk", "is required: a path, file:// or http(s):// URL of the source disk");
  auto location = source["disk"].get<std::string>();
  auto want = expected_sha256(source.value("checksum", nlohmann::json()), location);
  auto want_format = source.value("format", std::string());

  // Cached by checksum: a copy is renamed into place only after it verified.
  fs::create_directories(store_dir);
  auto name = "source-" + want.substr(0, 16) + ".img";
  auto cached = store_dir / name;
  std::int64_t entry = 0;
  if (!fs::exists(cached)) {
    // Recorded before it exists: a build that fails (or dies) from here on does not leak it.
    entry = ctx.ledger().intend("path", cached.string(), {{"path", cached.string()}});
    auto part = fs::path(cached.string() + ".part");
    try {
      std::error_code ec;
      fs::path sibling;
      for (auto& dir : fs::directory_iterator(store_dir.parent_path(), ec)) {
        auto candidate = dir.path() / name;
        if (dir.path() != store_dir && fs::is_regular_file(candidate, ec)) {
          sibling = candidate;
          break;
        }
      }
      std::error_code link_ec;
      if (!sibling.empty()) fs::create_hard_link(sibling, cached, link_ec);
      if (!sibling.empty() && !link_ec) {
        ctx.info("source disk already in the store (" + sibling.parent_path().filename().string() +
                 "): linked, not copied");
      } else {
        if (is_http(location)) {
          ctx.info("downloading source disk " + location);
          download(location, part, ctx);
        } else {
          auto local = strip_file_scheme(location);
          if (!fs::is_regular_file(local))
            throw ValueError("source", "/disk", "no such file " + local + ": fix the path");
          // Copy first, then hash the copy: what is verified is what is used.
          fs::copy_file(local, part, fs::copy_options::overwrite_existing);
        }
        auto got = sha256_file(part, &ctx.cancel());
        if (got != want)
          throw BuildError("source disk " + location + ": checksum mismatch: expected sha256:" + want +
                           ", got sha256:" + got + ": fix the checksum of " + where + " or the disk");
        fs::rename(part, cached);
      }
    } catch (...) {
      std::error_code ec;
      fs::remove(part, ec);
      fs::remove(cached, ec);
      ctx.ledger().release(entry);
      throw;
    }
  }
  auto info = disk_info(cached, ctx);
  if (info.backing)
    throw ValueError("source", "/disk", location + " has a backing file; give a standalone image");
  SourceDisk disk{cached, info.format, want, entry};
  if (disk.format != "qcow2" && disk.format != "raw")
    throw ValueError("source", "/disk", "format '" + disk.format + "' is not supported: use qcow2 or raw");
  if (!want_format.empty() && want_format != disk.format)
    throw ValueError("source", "/format", "\"format\" says " + want_format + " but " + location + " is " + disk.format);
  return disk;
}

}  // namespace lcake::qemu
