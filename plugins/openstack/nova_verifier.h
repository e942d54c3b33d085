// The Nova verifier: boots a server from the candidate Glance image, lets the
// host run the verify steps over SSH, deletes the server and key pair.
#pragma once
#include <nlohmann/json.hpp>

#include "lcake/roles.hpp"
#include "nova_settings.h"

namespace lcake::openstack {

class NovaVerifier : public Verifier {
 public:
  explicit NovaVerifier(const nlohmann::json& settings);
  std::unique_ptr<VerifySession> start(const VerifyRequest& request, Context& ctx) override;
  void reap(const LedgerEntry& entry, Context& ctx) override;

 private:
  ServerSettings settings_;
};

}  // namespace lcake::openstack
