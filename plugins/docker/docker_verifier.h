// Verifies a candidate image: a keep-alive container from it (network none), the
// host runs verify steps through exec, the container is removed afterwards.
#pragma once
#include <nlohmann/json.hpp>

#include "lcake/roles.hpp"

namespace lcake::docker {

extern const char* const kVerifierSchema;

class DockerVerifier : public lcake::Verifier {
 public:
  explicit DockerVerifier(const nlohmann::json& settings);
  std::unique_ptr<lcake::VerifySession> start(const lcake::VerifyRequest& request, lcake::Context& ctx) override;
  void reap(const lcake::LedgerEntry& entry, lcake::Context& ctx) override;

 private:
  nlohmann::json settings_;
};

}  // namespace lcake::docker
