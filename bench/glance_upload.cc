// One upload of a disk file to Glance by lcake's openstack uploader: the plugin's own
// upload() (qemu-img info, streamed PUT with sha512 on the way, size and os_hash_value
// checked), as `lcake --target qemu-openstack` runs it for a layer. For bench/glance_bench.py.
//   lcake-bench-glance-upload CLOUD FILE FORMAT   (clouds.yaml: OS_CLIENT_CONFIG_FILE)
// prints one JSON line {"id", "bytes", "seconds"}; exit 1 on failure.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <unistd.h>

#include "glance_uploader.h"
#include "lcake/testing.hpp"

namespace {
// The host's context keeps no history of progress reports; neither does this one (the test
// context would, and its memory would count against the upload's).
struct BenchContext : lcake::testing::FakeContext {
  using FakeContext::FakeContext;
  using Context::progress;
  void progress(const lcake::Progress&) override {}
};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: lcake-bench-glance-upload CLOUD FILE FORMAT\n";
    return 2;
  }
  namespace fs = std::filesystem;
  fs::path work = fs::temp_directory_path() / ("lcake-bench-upload-" + std::to_string(::getpid()));
  fs::create_directories(work);
  try {
    BenchContext ctx(work);
    lcake::openstack::GlanceUploader up({{"cloud", argv[1]}, {"disk_format", argv[3]}, {"name", "lcake-bench-${key12}"}});
    std::mt19937_64 rng(std::random_device{}());
    auto hex = [&] {
      std::string s;
      for (int i = 0; i < 4; ++i) {
        char b[17];
        std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(rng()));
        s += b;
      }
      return s;
    };
    lcake::LayerInfo layer;
    layer.target = "bench", layer.variant = "bench", layer.layer = "upload", layer.pipeline = "bench";
    layer.key = hex(), layer.upload_key = hex(), layer.lcake_version = "bench";
    lcake::UploadRequest req;
    req.layer = layer;
    req.built.type = argv[3], req.built.id = argv[2], req.built.plugin = "qemu";
    auto t0 = std::chrono::steady_clock::now();
    lcake::Artifact a = up.upload(req, ctx);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << nlohmann::json({{"id", a.id}, {"bytes", a.metadata["size"]}, {"seconds", secs}}).dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "upload failed: " << e.what() << "\n";
    fs::remove_all(work);
    return 1;
  }
  fs::remove_all(work);
  return 0;
}
