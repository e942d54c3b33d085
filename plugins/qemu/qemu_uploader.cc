#include <fstream>

#include "disk_image.h"
#include "qemu_uploader.h"
#include "lcake/files.hpp"
#include "source_fetch.h"

namespace fs = std::filesystem;

namespace lcake::qemu {

QemuUploader::QemuUploader(const nlohmann::json& settings)
    : output_directory_(settings.value("output_directory", std::string())),
      compress_(settings.value("compress", false)) {}

// Writes `dest` through a ledgered temporary file renamed into place.
template <class WriteFn>
static void write_atomically(const fs::path& dest, Context& ctx, WriteFn write) {
  auto temp = fs::path(dest.string() + ".tmp");
  auto entry = ctx.ledger().intend("path", temp.string(), {{"path", temp.string()}});
  try {
    write(temp);
    fs::rename(temp, dest);
  } catch (...) {
    std::error_code ec;
    fs::remove(temp, ec);
    ctx.ledger().release(entry);
    throw;
  }
  ctx.ledger().release(entry);
}

Artifact QemuUploader::upload(const UploadRequest& request, Context& ctx) {
  const auto& built = request.built;
  if (output_directory_.empty()) return built;  // it already lives in the store
  if (built.type != "qcow2" && built.type != "raw")
    throw InputError("the qemu uploader stores qcow2 or raw disks, not '" + built.type + "'");
  auto dir = fs::absolute(output_directory_) / request.layer.variant;
  fs::create_directories(dir);
  const auto& layer = request.layer.layer;
  auto disk = dir / (layer + ".qcow2");
  ctx.info("writing a standalone copy to " + disk.string());
  write_atomically(disk, ctx, [&](const fs::path& temp) {
    convert_disk(built.id, temp, "qcow2", compress_, ctx);
  });

  Artifact a;
  a.type = "qcow2";
  a.id = disk.string();
  a.metadata = built.metadata;
  a.metadata["backing"] = nullptr;
  a.metadata["format"] = "qcow2";
  a.metadata.erase("store_files");
  a.metadata["built"] = built.id;
  // Boot files travel with the disk so the copy is usable on its own.
  for (auto [key, suffix] : {std::pair{"kernel", ".vmlinuz"}, std::pair{"initrd", ".initrd.img"}}) {
    auto from = built.metadata.value(key, nlohmann::json());
    if (!from.is_string()) continue;
    auto to = dir / (layer + suffix);
    write_atomically(to, ctx, [&](const fs::path& temp) { fs::copy_file(from.get<std::string>(), temp); });
    a.metadata[key] = to.string();
  }
  auto info = disk_info(disk, ctx);
  a.metadata["virtual_size"] = info.virtual_size;
  a.metadata["disk_bytes"] = info.disk_bytes;
  a.metadata["sha256"] = sha256_file(disk, &ctx.cancel());
  auto description = dir / (layer + ".json");
  nlohmann::json doc = {{"layer", request.layer.layer}, {"variant", request.layer.variant},
                        {"key", request.layer.key}, {"type", a.type}, {"disk", a.id},
                        {"metadata", a.metadata}};
  write_atomically(description, ctx, [&](const fs::path& temp) { std::ofstream(temp) << doc.dump(2) << "\n"; });
  a.metadata["description"] = description.string();
  return a;
}

bool QemuUploader::exists(const Artifact& artifact, Context& ctx) {
  (void)ctx;
  if (!fs::is_regular_file(artifact.id)) return false;
  for (auto key : {"kernel", "initrd"}) {
    auto f = artifact.metadata.value(key, nlohmann::json());
    if (f.is_string() && !fs::exists(f.get<std::string>())) return false;
  }
  return true;
}

void QemuUploader::remove(const Artifact& artifact, Context& ctx) {
  (void)ctx;
  // Without output_directory the upload is the built artifact: the builder owns it.
  if (!artifact.metadata.contains("description")) return;
  std::error_code ec;
  fs::remove(artifact.id, ec);
  for (auto key : {"kernel", "initrd", "description"}) {
    auto f = artifact.metadata.value(key, nlohmann::json());
    if (f.is_string()) fs::remove(f.get<std::string>(), ec);
  }
}

}  // namespace lcake::qemu
