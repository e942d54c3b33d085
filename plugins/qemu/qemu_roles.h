// The three roles of the qemu plugin.
#pragma once
#include <nlohmann/json.hpp>

#include "lcake/roles.hpp"
#include "qemu_settings.h"

namespace lcake::qemu {

// Boots the parent disk (or the verified source) as a qcow2 overlay, lets the
// host provision it over SSH, shuts it down cleanly; the overlay is the artifact.
class QemuBuilder : public Builder {
 public:
  explicit QemuBuilder(const nlohmann::json& settings);
  std::unique_ptr<BuildSession> start(const BuildRequest& request, Context& ctx) override;
  bool exists(const Artifact& artifact, Context& ctx) override;
  void remove(const Artifact& artifact, Context& ctx) override;

 private:
  MachineSettings settings_;
};

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

// Boots a throwaway overlay of the candidate; the candidate is never written.
class QemuVerifier : public Verifier {
 public:
  explicit QemuVerifier(const nlohmann::json& settings);
  std::unique_ptr<VerifySession> start(const VerifyRequest& request, Context& ctx) override;

 private:
  MachineSettings settings_;
};

}  // namespace lcake::qemu
