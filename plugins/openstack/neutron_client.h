// A client of the OpenStack Networking API (Neutron v2.0) for floating IPs, the
// one thing the Nova roles need from it: external networks by name or id, a
// server's ports, and floating IPs (create, associate with a port, list by
// description, delete). The endpoint is the catalog's `network` service.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service_client.h"

namespace lcake::openstack {

class NeutronClient {
 public:
  // cancellable=false for cleanup calls that must run after Ctrl-C.
  NeutronClient(std::shared_ptr<KeystoneSession> session, Context& ctx, bool cancellable = true);

  // The id of the external network (router:external) named or with id `name_or_id`;
  // throws InputError when there is none, or several of that name, or it is not external.
  std::string external_network(const std::string& name_or_id);
  // The ports attached to a server (device_id), as Neutron lists them.
  nlohmann::json server_ports(const std::string& server_id);

  // POST /v2.0/floatingips on the network, unassociated, with a description to find it by.
  nlohmann::json create_floating_ip(const std::string& network_id, const std::string& description);
  // PUT port_id (associates the floating IP with the port).
  nlohmann::json associate(const std::string& floating_ip_id, const std::string& port_id);
  bool delete_floating_ip(const std::string& id);  // false: it was already gone
  // Ids of the project's floating IPs with exactly this description (for reaping one never confirmed).
  std::vector<std::string> floating_ips_described(const std::string& description);

 private:
  nlohmann::json expect(const std::string& method, const std::string& path, std::initializer_list<long> ok,
                        const nlohmann::json* body = nullptr, bool retry = true, long* status = nullptr);
  std::string v2(const std::string& path) const;

  std::shared_ptr<ServiceClient> network_;
};

}  // namespace lcake::openstack
