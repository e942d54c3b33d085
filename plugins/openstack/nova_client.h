// A client of the OpenStack Compute API (Nova v2.1) for what the Nova builder
// and verifier need: version discovery and microversion negotiation, flavors,
// key pairs, servers (create, show, stop, delete, createImage, console output)
// and cancellable waits. Every error answer becomes one line with Nova's own
// message ("Nova: POST /servers: 400 badRequest: Flavor 42 could not be found.").
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include <memory>

#include "lcake/context.hpp"
#include "service_client.h"

namespace lcake::openstack {

// An error answer of Nova: `status` 400/404/409..., `kind` badRequest/itemNotFound/...
struct NovaError : BuildError {
  NovaError(long status_, std::string kind_, std::string message_, const std::string& line)
      : BuildError(line), status(status_), kind(std::move(kind_)), message(std::move(message_)) {}
  long status;
  std::string kind, message;
};

struct BootVolume {
  int size_gb = 0;  // 0: the image's size
  bool delete_on_termination = true;
  std::string volume_type;
};

struct ServerSpec {
  std::string name, image_ref, flavor_ref, key_name;
  // "none" | "auto" | [{"uuid": ...} | {"port": ...} | {"fixed_ip": ...}]; null: omitted
  nlohmann::json networks;
  std::vector<std::string> security_groups;
  std::string availability_zone;
  std::string user_data;  // raw bytes; sent base64-encoded
  bool config_drive = false;
  std::map<std::string, std::string> metadata;
  std::optional<BootVolume> boot_volume;  // boot from a new volume made from image_ref
};

struct WaitOptions {
  std::chrono::seconds timeout{600};
  std::chrono::milliseconds poll{2000};
};

class NovaClient {
 public:
  // The compute endpoint of the session's catalog; cancellable=false for cleanup.
  NovaClient(std::shared_ptr<KeystoneSession> session, Context& ctx, bool cancellable = true);

  // GET the version document; settles on min(server's maximum, 2.67), at least 2.1.
  std::string negotiate();
  const std::string& microversion() const { return microversion_; }
  bool at_least(int minor) const;  // negotiated 2.<minor> or later

  // A flavor by id or by name (names first exact, then case-sensitive only).
  nlohmann::json flavor(const std::string& name_or_id);

  void create_keypair(const std::string& name, const std::string& public_key);
  bool delete_keypair(const std::string& name);  // false: it was already gone

  nlohmann::json create_server(const ServerSpec& spec);  // the "server" object (id, adminPass)
  std::optional<nlohmann::json> show_server(const std::string& id);  // nullopt: 404
  // Ids of servers whose name is exactly `name` (for reaping one not yet confirmed).
  std::vector<std::string> servers_named(const std::string& name);
  bool delete_server(const std::string& id);  // false: it was already gone
  void stop_server(const std::string& id);
  // The new image's id (from the body at >= 2.45, else the Location header).
  std::string create_image(const std::string& server_id, const std::string& name,
                           const std::map<std::string, std::string>& metadata);
  std::string console_output(const std::string& server_id, int lines);

  // Waits until the server reaches `status` (ACTIVE, SHUTOFF). A server in
  // ERROR throws BuildError with its fault; a vanished one throws too.
  nlohmann::json wait_for_status(const std::string& id, const std::string& status, const WaitOptions& w);
  void wait_deleted(const std::string& id, const WaitOptions& w);

  // The same client, deaf to cancellation (for cleanup after a cancel).
  NovaClient uncancellable() const;

 private:
  http::HttpResponse call(const std::string& method, const std::string& path,
                          const nlohmann::json* body = nullptr, bool retry = true);
  http::HttpResponse expect(const std::string& method, const std::string& path, std::initializer_list<long> ok,
                            const nlohmann::json* body = nullptr, bool retry = true);

  std::shared_ptr<KeystoneSession> session_;
  Context* ctx_;
  bool cancellable_;
  std::shared_ptr<ServiceClient> compute_;
  std::string microversion_ = "2.1";
};

}  // namespace lcake::openstack
