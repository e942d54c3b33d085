#include "nova_server.h"

#include <random>

#include "neutron_client.h"

namespace lcake::openstack {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string random_suffix() {
  static const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::random_device rd;
  std::string s;
  for (int i = 0; i < 6; ++i) s += digits[rd() % 36];
  return s;
}

// cloud-config that authorizes the key, for clouds without key pairs. The
// guest reads it from the config drive (or the metadata service).
std::string key_user_data(const std::string& public_key) {
  return "#cloud-config\ndisable_root: false\nssh_authorized_keys:\n  - " + public_key + "\n";
}

std::string list_addresses(const json& server) {
  std::string out;
  const json addresses = server.value("addresses", json::object());
  for (auto& [net, addrs] : addresses.items())
    for (auto& a : addrs)
      out += (out.empty() ? "" : ", ") + net + " " + a.value("OS-EXT-IPS:type", std::string("?")) + " " +
             a.value("addr", std::string());
  return out.empty() ? "none" : out;
}

}  // namespace

std::string run_unique_name(const LayerInfo& layer, const std::string& role) {
  return "lcake-" + role + "-" + layer.variant + "-" + layer.layer + "-" + layer.key.substr(0, 8) + "-" +
         random_suffix();
}

std::string pick_address(const json& server, const std::string& mode) {
  std::string fixed, floating, named;
  const json addresses = server.value("addresses", json::object());  // items() must not outlive it
  for (auto& [net, addrs] : addresses.items()) {
    for (auto& a : addrs) {
      if (a.value("version", 4) != 4) continue;
      auto addr = a.value("addr", std::string());
      auto type = a.value("OS-EXT-IPS:type", std::string("fixed"));
      if (type == "floating" && floating.empty()) floating = addr;
      if (type == "fixed" && fixed.empty()) fixed = addr;
      if (net == mode && named.empty()) named = addr;
    }
  }
  std::string chosen;
  if (mode == "first") chosen = !floating.empty() ? floating : !fixed.empty() ? fixed : server.value("accessIPv4", "");
  else if (mode == "fixed") chosen = fixed;
  else if (mode == "floating") chosen = floating;
  else chosen = named;
  if (chosen.empty())
    throw BuildError("Nova server " + server.value("id", std::string()) + " has no " +
                     (mode == "first" ? std::string("IPv4") : "'" + mode + "'") +
                     " address to SSH to (it has: " + list_addresses(server) +
                     "): check settings.address and settings.networks");
  return chosen;
}

BootedServer::BootedServer(const ServerSettings& settings, std::shared_ptr<KeystoneSession> session,
                           const BootRequest& request, Context& ctx)
    : settings_(settings), session_(std::move(session)), nova_(session_, ctx) {
  try {
    boot(request, ctx);
  } catch (...) {
    tear_down_quietly(ctx);
    throw;
  }
}

void BootedServer::boot(const BootRequest& request, Context& ctx) {
  name_ = request.name;
  nova_.negotiate();
  auto flavor = nova_.flavor(settings_.flavor);
  // The external network is looked up before anything is made: a wrong name fails at once.
  if (!settings_.floating_ip_network.empty())
    floating_network_ = NeutronClient(session_, ctx).external_network(settings_.floating_ip_network);
  auto key_dir = ctx.work_dir() / ("ssh-" + request.name);
  auto public_key = ctx.generate_ssh_key(key_dir);

  ServerSpec spec;
  spec.name = request.name;
  spec.image_ref = request.image_id;
  spec.flavor_ref = flavor.at("id");
  spec.networks = settings_.networks;
  spec.security_groups = settings_.security_groups;
  spec.availability_zone = settings_.availability_zone;
  spec.config_drive = settings_.config_drive;
  spec.boot_volume = settings_.boot_volume;
  spec.metadata = settings_.metadata;
  for (auto& [k, v] : request.metadata) spec.metadata[k] = v;
  if (settings_.keypair) {
    keypair_entry_.emplace(ctx.ledger(), kKeypairKind, request.name, json{{"name", request.name}});
    nova_.create_keypair(request.name, public_key);
    keypair_entry_->confirmed(request.name);
    keypair_ = request.name;
    spec.key_name = keypair_;
  } else {
    spec.user_data = key_user_data(public_key);
  }

  server_entry_.emplace(ctx.ledger(), kServerKind, request.name, json{{"name", request.name}});
  ctx.info("booting Nova server " + request.name + " from image " + request.image_id + " (flavor " +
           flavor.value("name", settings_.flavor) + ")");
  auto created = nova_.create_server(spec);
  server_id_ = created.at("id");
  server_entry_->confirmed(server_id_, {{"name", request.name}, {"id", server_id_}});

  auto server = nova_.wait_for_status(server_id_, "ACTIVE", {settings_.boot_timeout, settings_.poll});
  if (floating_network_.empty()) address_ = pick_address(server, settings_.address);
  else attach_floating_ip(ctx);
  ctx.info("server " + server_id_ + " is ACTIVE at " + address_ + "; connecting over SSH");

  SshOptions ssh;
  ssh.host = address_;
  ssh.port = settings_.ssh_port;
  ssh.user = request.ssh_user;
  ssh.private_key = key_dir / "id_ed25519";
  ssh.connect_timeout = settings_.ssh_timeout;
  auto quiet = nova_.uncancellable();
  auto id = server_id_;
  ssh.diagnostics = [quiet, id]() mutable -> std::string {
    try {
      auto text = quiet.console_output(id, 15);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      auto nl = text.rfind('\n');
      return "last console line: " + (nl == std::string::npos ? text : text.substr(nl + 1));
    } catch (const std::exception& e) {
      return std::string("no console output (") + e.what() + ")";
    }
  };
  auto last_check = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  NovaClient* nova = &nova_;
  ssh.still_alive = [nova, id, last_check] {
    if (std::chrono::steady_clock::now() - *last_check < 10s) return;
    *last_check = std::chrono::steady_clock::now();
    auto s = nova->show_server(id);
    if (!s) throw BuildError("Nova server " + id + " vanished while waiting for SSH");
    if (s->value("status", "") != "ACTIVE")
      throw BuildError("Nova server " + id + " went " + s->value("status", "") + " while waiting for SSH");
  };
  ssh_ = ctx.connect_ssh(ssh);
}

// Allocates a floating IP on the external network (in the ledger first, found again by its
// description = the server's unique name), associates it with the server's port, and makes
// it the SSH address.
void BootedServer::attach_floating_ip(Context& ctx) {
  NeutronClient neutron(session_, ctx);
  nlohmann::json ports = json::array();
  // The port may show up in Neutron a moment after Nova reports ACTIVE.
  auto deadline = std::chrono::steady_clock::now() + settings_.boot_timeout;
  while ((ports = neutron.server_ports(server_id_)).empty()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw BuildError("Nova server " + server_id_ + " has no Neutron port to associate a floating IP with");
    if (ctx.cancel().wait_for(settings_.poll)) throw Cancelled();
  }
  auto port = ports[0].at("id").get<std::string>();
  floating_entry_.emplace(ctx.ledger(), kFloatingIpKind, name_, json{{"description", name_}});
  auto fip = neutron.create_floating_ip(floating_network_, name_);
  floating_id_ = fip.at("id");
  address_ = fip.value("floating_ip_address", "");
  floating_entry_->confirmed(floating_id_, {{"description", name_}, {"id", floating_id_}, {"address", address_}});
  neutron.associate(floating_id_, port);
  ctx.info("floating IP " + address_ + " (" + floating_id_ + ") from network " + settings_.floating_ip_network +
           " associated with server " + server_id_);
}

SshCommunicator& BootedServer::ssh() {
  if (!ssh_) throw BuildError("the Nova server session is finished");
  return *ssh_;
}

void BootedServer::tear_down(Context& ctx) {
  ssh_.reset();
  auto nova = nova_.uncancellable();  // cleanup runs after a cancel too
  if (floating_entry_ && floating_entry_->open()) {
    NeutronClient neutron(session_, ctx, false);
    // No id: the create call failed or was interrupted; one may still have been made.
    auto ids = floating_id_.empty() ? neutron.floating_ips_described(name_) : std::vector<std::string>{floating_id_};
    for (auto& id : ids) {
      neutron.delete_floating_ip(id);
      ctx.debug("released floating IP " + id);
    }
    floating_entry_->deleted();
  }
  if (server_entry_ && server_entry_->open()) {
    // No id: the create call failed or was interrupted; one may still have been made.
    auto ids = server_id_.empty() ? nova.servers_named(name_) : std::vector<std::string>{server_id_};
    for (auto& id : ids) {
      nova.delete_server(id);
      nova.wait_deleted(id, {settings_.stop_timeout, settings_.poll});
      ctx.debug("deleted Nova server " + id);
    }
    server_entry_->deleted();
  }
  if (keypair_entry_ && keypair_entry_->open()) {
    nova.delete_keypair(keypair_);
    keypair_entry_->deleted();
  }
}

void BootedServer::tear_down_quietly(Context& ctx) noexcept {
  try {
    tear_down(ctx);
  } catch (const std::exception& e) {
    try {
      ctx.warn(std::string("could not delete the Nova server, key pair or floating IP (left for lcake gc): ") +
               e.what());
    } catch (...) {
    }
  } catch (...) {
  }
}

bool is_server_resource(const std::string& kind) {
  return kind == kServerKind || kind == kKeypairKind || kind == kFloatingIpKind;
}

void reap_server_resource(const LedgerEntry& entry, std::shared_ptr<KeystoneSession> session, Context& ctx) {
  if (entry.kind == kFloatingIpKind) {
    NeutronClient neutron(std::move(session), ctx, false);
    auto description = entry.how.value("description", entry.resource_id);
    std::vector<std::string> ids;
    if (entry.how.contains("id")) ids.push_back(entry.how["id"]);
    else ids = neutron.floating_ips_described(description);  // intended but never confirmed
    bool deleted = false;
    for (auto& id : ids)
      if (neutron.delete_floating_ip(id)) {
        deleted = true;
        ctx.info("released leftover floating IP " + entry.how.value("address", id) + " (" + description + ")");
      }
    if (!deleted) throw AlreadyGone("floating IP of " + description + " is already gone (or was never made)");
    return;
  }
  NovaClient nova(std::move(session), ctx, false);
  auto name = entry.how.value("name", entry.resource_id);
  if (entry.kind == kKeypairKind) {
    if (!nova.delete_keypair(name)) throw AlreadyGone("Nova key pair " + name + " is already gone");
    ctx.info("deleted leftover Nova key pair " + name);
    return;
  }
  nova.negotiate();
  std::vector<std::string> ids;
  if (entry.how.contains("id")) ids.push_back(entry.how["id"]);
  else ids = nova.servers_named(name);  // intended but never confirmed: find it by name
  bool deleted = false;
  for (auto& id : ids) {
    if (nova.delete_server(id)) {
      deleted = true;
      ctx.info("deleted leftover Nova server " + id + " (" + name + ")");
    }
    nova.wait_deleted(id, {std::chrono::seconds(300), std::chrono::milliseconds(2000)});
  }
  if (!deleted) throw AlreadyGone("Nova server " + name + " is already gone (or was never made)");
}

}  // namespace lcake::openstack
