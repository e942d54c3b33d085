// The qemu plugin's uploader role.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "lcake/roles.hpp"

namespace lcake::qemu {

// "Local artifact store": without output_directory the built artifact as is;
// with it, a standalone copy at <output_directory>/<variant>/<layer>.qcow2.
class QemuUploader : public Uploader {
 public:
  explicit QemuUploader(const nlohmann::json& settings);
  Artifact upload(const UploadRequest& request, Context& ctx) override;
  bool exists(const Artifact& artifact, Context& ctx) override;
  void remove(const Artifact& artifact, Context& ctx) override;

 private:
  std::string output_directory_;
  bool compress_ = false;
};

}  // namespace lcake::qemu
