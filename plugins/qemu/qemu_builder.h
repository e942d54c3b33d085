// The qemu plugin's builder role.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace lcake::qemu
