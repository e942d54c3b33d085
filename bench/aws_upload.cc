// One upload by lcake's aws uploader, for bench/aws_bench.py: the plugin's own code, as
// `lcake --target aws-ami` runs it for a layer.
//   lcake-bench-aws-upload ebs WORKERS DISK [PARENT_SNAPSHOT PARENT_VOLUME_GIB]
//     AwsUploader::upload in mode ebs (qemu-img info/map, zero blocks skipped, a child overlay
//     compared with its backing file, PutSnapshotBlock from WORKERS threads, CompleteSnapshot,
//     RegisterImage); prints {"id", "snapshot_id", "blocks_written", "bytes_sent", "seconds"}.
//   lcake-bench-aws-upload s3 WORKERS PART_MIB FILE BUCKET KEY
//     upload_multipart of the import mode (parallel signed parts with Content-MD5); prints
//     {"bytes", "seconds"}. The object is left for the caller to delete.
// Credentials, region and endpoints from the environment, as the AWS CLI finds them.
// Exit 1 on failure.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>

#include "aws_uploader.h"
#include "lcake/testing.hpp"
#include "s3_staging.h"

namespace {
// The host's context keeps no history of progress reports; neither does this one.
struct BenchContext : lcake::testing::FakeContext {
  using FakeContext::FakeContext;
  using Context::progress;
  void progress(const lcake::Progress&) override {}
};

std::string random_hex() {
  std::mt19937_64 rng(std::random_device{}());
  std::string s;
  for (int i = 0; i < 4; ++i) {
    char b[17];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(rng()));
    s += b;
  }
  return s;
}

int usage() {
  std::cerr << "usage: lcake-bench-aws-upload ebs WORKERS DISK [PARENT_SNAPSHOT PARENT_VOLUME_GIB]\n"
               "       lcake-bench-aws-upload s3 WORKERS PART_MIB FILE BUCKET KEY\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (!((mode == "ebs" && (argc == 4 || argc == 6)) || (mode == "s3" && argc == 7))) return usage();
  fs::path work = fs::temp_directory_path() / ("lcake-bench-aws-" + std::to_string(::getpid()));
  fs::create_directories(work);
  int rc = 0;
  try {
    BenchContext ctx(work);
    int workers = std::stoi(argv[2]);
    lcake::aws::AwsUploader up({{"workers", workers}, {"upload_workers", workers}, {"name_prefix", "lcake-bench"}});
    auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    if (mode == "ebs") {
      lcake::LayerInfo layer;
      layer.target = "bench", layer.variant = "bench", layer.layer = argc == 6 ? "child" : "first";
      layer.pipeline = "bench", layer.key = random_hex(), layer.upload_key = random_hex(), layer.lcake_version = "bench";
      lcake::UploadRequest req;
      req.layer = layer;
      std::string disk = argv[3];
      req.built.type = disk.ends_with(".qcow2") ? "qcow2" : "raw", req.built.id = disk, req.built.plugin = "qemu";
      if (argc == 6) {
        lcake::Artifact parent;
        parent.type = "ami", parent.id = "parent";
        parent.metadata = {{"snapshot_id", argv[4]}, {"volume_size_gib", std::stoull(argv[5])}};
        req.parent_upload = parent;
      }
      lcake::Artifact a = up.upload(req, ctx);
      std::cout << json({{"id", a.id}, {"snapshot_id", a.metadata["snapshot_id"]},
                         {"blocks_written", a.metadata["blocks_written"]}, {"bytes_sent", a.metadata["bytes_sent"]},
                         {"seconds", seconds()}})
                       .dump()
                << std::endl;
    } else {
      auto client = up.client(ctx);
      lcake::aws::S3Location where{client.region(), argv[5], argv[6]};
      lcake::aws::MultipartOptions o;
      o.workers = workers;
      o.part_size = std::stoull(argv[3]) << 20;
      std::int64_t entry = lcake::aws::upload_multipart(client, where, argv[4], o, ctx);
      double secs = seconds();
      ctx.ledger().release(entry);  // the caller deletes the object
      std::cout << json({{"bytes", fs::file_size(argv[4])}, {"seconds", secs}}).dump() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "upload failed: " << e.what() << "\n";
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return rc;
}
