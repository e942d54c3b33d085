#include "neutron_client.h"

#include <algorithm>

namespace lcake::openstack {

using nlohmann::json;

NeutronClient::NeutronClient(std::shared_ptr<KeystoneSession> session, Context& ctx, bool cancellable)
    : network_(std::make_shared<ServiceClient>(std::move(session), "network", ctx, cancellable)) {}

// Catalogs list Neutron with or without its version ("http://host:9696" or ".../v2.0").
std::string NeutronClient::v2(const std::string& path) const {
  const auto& base = network_->base_url();
  return (base.ends_with("/v2.0") ? base : base + "/v2.0") + path;
}

json NeutronClient::expect(const std::string& method, const std::string& path, std::initializer_list<long> ok,
                           const json* body, bool retry, long* status) {
  http::HttpRequest req;
  req.method = method;
  req.url = v2(path);
  req.timeout = network_->timeout;
  req.headers = {"Accept: application/json"};
  if (body) {
    req.body = body->dump();
    req.has_body = true;
    req.headers.push_back("Content-Type: application/json");
  }
  // A create is not retried: one that timed out may have happened (the ledger finds it by description).
  http::RetryPolicy policy = network_->retry_policy;
  if (!retry) policy.attempts = 1;
  auto r = network_->send(std::move(req), policy);
  if (status) *status = r.status;
  if (std::find(ok.begin(), ok.end(), r.status) == ok.end()) fail(r, "Neutron", method + " " + path);
  if (r.body.empty()) return json();
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) throw BuildError("Neutron: " + method + " " + path + ": the answer is not JSON");
  return j;
}

std::string NeutronClient::external_network(const std::string& name_or_id) {
  auto nets = expect("GET", "/networks?name=" + http::url_escape(name_or_id), {200}).value("networks", json::array());
  if (nets.empty()) {
    long status = 0;
    auto one = expect("GET", "/networks/" + http::url_escape(name_or_id), {200, 404}, nullptr, true, &status);
    if (status == 200) nets.push_back(one.at("network"));
  }
  if (nets.empty())
    throw InputError("settings.floating_ip_network: Neutron has no network named or with id '" + name_or_id +
                     "': name the external network floating IPs come from (openstack network list --external)");
  if (nets.size() > 1)
    throw InputError("settings.floating_ip_network: " + std::to_string(nets.size()) + " networks are named '" +
                     name_or_id + "': give the id of the external one");
  if (!nets[0].value("router:external", false))
    throw InputError("settings.floating_ip_network: network '" + name_or_id +
                     "' is not external (router:external), so it has no floating IPs: name an external network");
  return nets[0].at("id");
}

json NeutronClient::server_ports(const std::string& server_id) {
  return expect("GET", "/ports?device_id=" + http::url_escape(server_id), {200}).value("ports", json::array());
}

json NeutronClient::create_floating_ip(const std::string& network_id, const std::string& description) {
  json body = {{"floatingip", {{"floating_network_id", network_id}, {"description", description}}}};
  return expect("POST", "/floatingips", {201}, &body, false).at("floatingip");
}

json NeutronClient::associate(const std::string& floating_ip_id, const std::string& port_id) {
  json body = {{"floatingip", {{"port_id", port_id}}}};
  return expect("PUT", "/floatingips/" + http::url_escape(floating_ip_id), {200}, &body).at("floatingip");
}

bool NeutronClient::delete_floating_ip(const std::string& id) {
  long status = 0;
  expect("DELETE", "/floatingips/" + http::url_escape(id), {204, 404}, nullptr, true, &status);
  return status != 404;
}

std::vector<std::string> NeutronClient::floating_ips_described(const std::string& description) {
  auto list = expect("GET", "/floatingips?description=" + http::url_escape(description), {200})
                  .value("floatingips", json::array());
  std::vector<std::string> ids;
  for (auto& f : list)
    if (f.value("description", "") == description) ids.push_back(f.at("id"));
  return ids;
}

}  // namespace lcake::openstack
