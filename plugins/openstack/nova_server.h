// A Nova server booted for a build or a verification, reachable over SSH:
// key pair (or cloud-config user data), server, wait for ACTIVE, address,
// SSH. Every resource is in the ledger before it is created; tear_down()
// deletes the server (waiting until it is gone) and the key pair.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "lcake/roles.hpp"
#include "nova_client.h"
#include "nova_settings.h"

namespace lcake::openstack {

// Ledger kinds of the Nova roles (how = {"name": ...}).
inline constexpr const char* kServerKind = "nova-server";
inline constexpr const char* kKeypairKind = "nova-keypair";
// A floating IP allocated for SSH (how = {"description": server name[, "id", "address"]}).
inline constexpr const char* kFloatingIpKind = "neutron-floatingip";

struct BootRequest {
  std::string name;      // server and key pair name (unique per run)
  std::string image_id;  // Glance image to boot
  std::string ssh_user;
  std::map<std::string, std::string> metadata;  // added to the settings' server metadata
};

class BootedServer {
 public:
  // Boots and connects; on any failure (or cancel) deletes what it created, then rethrows.
  BootedServer(const ServerSettings& settings, std::shared_ptr<KeystoneSession> session,
               const BootRequest& request, Context& ctx);
  ~BootedServer() = default;

  SshCommunicator& ssh();
  const std::string& id() const { return server_id_; }
  const std::string& address() const { return address_; }
  NovaClient& nova() { return nova_; }
  void close_ssh() { ssh_.reset(); }
  // Deletes the server and the key pair; throws BuildError when Nova refuses
  // (the ledger entries then stay open for the host's reaper).
  void tear_down(Context& ctx);
  // The same, never throwing (abort paths).
  void tear_down_quietly(Context& ctx) noexcept;

 private:
  void boot(const BootRequest& request, Context& ctx);
  void attach_floating_ip(Context& ctx);

  ServerSettings settings_;
  std::shared_ptr<KeystoneSession> session_;
  NovaClient nova_;
  std::string name_, server_id_, keypair_, address_;
  std::string floating_network_, floating_id_;
  std::optional<LedgerScope> server_entry_, keypair_entry_, floating_entry_;
  std::unique_ptr<SshCommunicator> ssh_;
};

// The address SSH should use: `mode` first | fixed | floating | <network name>.
// Throws BuildError listing the server's addresses when there is no match.
std::string pick_address(const nlohmann::json& server, const std::string& mode);

// Whether a ledger entry is one of BootedServer's (server, key pair, floating IP).
bool is_server_resource(const std::string& kind);
// Deletes a ledger entry of kind nova-server, nova-keypair or neutron-floatingip; throws
// AlreadyGone when there was nothing to delete (gc counts it "already gone").
void reap_server_resource(const LedgerEntry& entry, std::shared_ptr<KeystoneSession> session, Context& ctx);

// "lcake-<variant>-<layer>-<key prefix>-<random>": unique per run, readable in the cloud's list.
std::string run_unique_name(const LayerInfo& layer, const std::string& role);

}  // namespace lcake::openstack
