// The qemu plugin's verifier role.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "lcake/roles.hpp"
#include "qemu_settings.h"

namespace lcake::qemu {

// Boots a throwaway overlay of the candidate; the candidate is never written.
class QemuVerifier : public Verifier {
 public:
  explicit QemuVerifier(const nlohmann::json& settings);
  std::unique_ptr<VerifySession> start(const VerifyRequest& request, Context& ctx) override;

 private:
  MachineSettings settings_;
};

}  // namespace lcake::qemu
