// The Nova builder: boots a server from a Glance image (the variant's source
// image for the first layer, the parent layer's snapshot for a child), lets the
// host provision it over SSH, stops it and snapshots it with createImage. The
// snapshot (a Glance image) is the artifact; the server and key pair are deleted.
#pragma once
#include <nlohmann/json.hpp>

#include "lcake/roles.hpp"
#include "nova_settings.h"

namespace lcake::openstack {

// Ledger kind of a snapshot image not yet an artifact (how = {"name": ..., "id": ...}).
inline constexpr const char* kImageKind = "glance-image";

class NovaBuilder : public Builder {
 public:
  explicit NovaBuilder(const nlohmann::json& settings);
  std::unique_ptr<BuildSession> start(const BuildRequest& request, Context& ctx) override;
  void reap(const LedgerEntry& entry, Context& ctx) override;
  bool exists(const Artifact& artifact, Context& ctx) override;
  void remove(const Artifact& artifact, Context& ctx) override;

 private:
  ServerSettings settings_;
};

// Schemas of the builder's source (variants.V.sources.openstack) and options (layers.L.builder).
extern const char* const kNovaSourceSchema;
extern const char* const kNovaBuildOptionsSchema;

}  // namespace lcake::openstack
