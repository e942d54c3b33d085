#include "nova_client.h"

#include <algorithm>
#include <thread>

namespace lcake::openstack {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Microversions used: 2.37 (networks none/auto), 2.45 (createImage returns image_id),
// 2.67 (block_device_mapping_v2 volume_type). Nothing later changes what is used here.
constexpr int kWantedMinor = 67;

int minor_of(const std::string& v) {  // "2.67" -> 67; "" -> 1
  auto dot = v.find('.');
  if (dot == std::string::npos) return 1;
  try {
    return std::stoi(v.substr(dot + 1));
  } catch (...) {
    return 1;
  }
}

std::string one_line(std::string s, std::size_t max = 300) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

// The kind of a Nova error body ({"badRequest": {...}} -> "badRequest"), if any.
std::string error_kind(const http::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_object())
    for (auto& [k, v] : j.items())
      if (v.is_object() && v.contains("message")) return k;
  return "";
}

}  // namespace

NovaClient::NovaClient(std::shared_ptr<KeystoneSession> session, Context& ctx, bool cancellable)
    : session_(std::move(session)), ctx_(&ctx), cancellable_(cancellable),
      compute_(std::make_shared<ServiceClient>(session_, "compute", ctx, cancellable)) {}

NovaClient NovaClient::uncancellable() const {
  NovaClient c(session_, *ctx_, false);
  c.microversion_ = microversion_;
  return c;
}

bool NovaClient::at_least(int minor) const { return minor_of(microversion_) >= minor; }

http::HttpResponse NovaClient::call(const std::string& method, const std::string& path, const json* body,
                                    bool retry) {
  http::HttpRequest req;
  req.method = method;
  req.url = path.empty() ? compute_->base_url() : path;
  req.timeout = compute_->timeout;
  req.headers = {"Accept: application/json", "OpenStack-API-Version: compute " + microversion_,
                 "X-OpenStack-Nova-API-Version: " + microversion_};
  if (body) {
    req.body = body->dump();
    req.has_body = true;
    req.headers.push_back("Content-Type: application/json");
  }
  // Creations are not retried: one that timed out may have happened (the ledger finds it by name).
  http::RetryPolicy policy = compute_->retry_policy;
  if (!retry) policy.attempts = 1;
  return compute_->send(std::move(req), policy);
}

http::HttpResponse NovaClient::expect(const std::string& method, const std::string& path,
                                      std::initializer_list<long> ok, const json* body, bool retry) {
  auto r = call(method, path, body, retry);
  if (std::find(ok.begin(), ok.end(), r.status) != ok.end()) return r;
  auto kind = error_kind(r);
  auto msg = error_message(r);
  throw NovaError(r.status, kind, msg,
                  "Nova: " + method + " " + path + ": " + std::to_string(r.status) +
                      (kind.empty() ? "" : " " + kind) + ": " + msg);
}

std::string NovaClient::negotiate() {
  microversion_ = "2.1";
  const auto& base = compute_->base_url();
  auto r = call("GET", "");
  json v = json::parse(r.body, nullptr, false);
  json doc;
  if (r.status == 200 && v.is_object() && v.contains("version")) doc = v["version"];
  if (doc.is_null()) {
    // The catalog named a project-scoped URL (.../v2.1/<project>): ask the API root.
    auto at = base.find("/v2");
    auto root = at == std::string::npos ? base : base.substr(0, at);
    auto all = json::parse(call("GET", root + "/").body, nullptr, false);
    if (all.is_object() && all.contains("versions"))
      for (auto& x : all["versions"])
        if (x.value("id", "") == "v2.1") doc = x;
  }
  if (!doc.is_object())
    throw BuildError("Nova at " + base + " does not describe its API version (GET answered " +
                     std::to_string(r.status) + "): is the compute endpoint in the catalog right?");
  auto max = doc.value("version", std::string());
  auto min = doc.value("min_version", std::string());
  if (max.empty()) return microversion_;  // no microversions: plain 2.1
  int chosen = std::min(minor_of(max), kWantedMinor);
  chosen = std::max(chosen, min.empty() ? 1 : minor_of(min));
  microversion_ = "2." + std::to_string(chosen);
  ctx_->debug("Nova at " + base + " serves 2.1-" + max + "; using " + microversion_);
  return microversion_;
}

json NovaClient::flavor(const std::string& name_or_id) {
  auto r = call("GET", "/flavors/" + http::url_escape(name_or_id));
  if (r.status == 200) return json::parse(r.body).at("flavor");
  if (r.status != 404) expect("GET", "/flavors/" + http::url_escape(name_or_id), {200});
  auto list = json::parse(expect("GET", "/flavors/detail", {200}).body).at("flavors");
  std::vector<std::string> names;
  for (auto& f : list) {
    if (f.value("name", "") == name_or_id) return f;
    names.push_back(f.value("name", ""));
  }
  std::string have;
  for (auto& n : names) have += (have.empty() ? "" : ", ") + n;
  throw InputError("Nova has no flavor '" + name_or_id + "' (have: " + have + "): fix the flavor setting");
}

void NovaClient::create_keypair(const std::string& name, const std::string& public_key) {
  json body = {{"keypair", {{"name", name}, {"public_key", public_key}}}};
  if (at_least(2)) body["keypair"]["type"] = "ssh";
  expect("POST", "/os-keypairs", {200, 201}, &body, false);
}

bool NovaClient::delete_keypair(const std::string& name) {
  auto r = expect("DELETE", "/os-keypairs/" + http::url_escape(name), {202, 204, 404});
  return r.status != 404;
}

json NovaClient::create_server(const ServerSpec& s) {
  json server = {{"name", s.name}, {"flavorRef", s.flavor_ref}};
  if (s.boot_volume) {
    json bdm = {{"boot_index", 0}, {"uuid", s.image_ref}, {"source_type", "image"},
                {"destination_type", "volume"}, {"delete_on_termination", s.boot_volume->delete_on_termination}};
    if (s.boot_volume->size_gb > 0) bdm["volume_size"] = s.boot_volume->size_gb;
    if (!s.boot_volume->volume_type.empty()) bdm["volume_type"] = s.boot_volume->volume_type;
    server["block_device_mapping_v2"] = json::array({bdm});
    server["imageRef"] = "";
  } else {
    server["imageRef"] = s.image_ref;
  }
  if (!s.key_name.empty()) server["key_name"] = s.key_name;
  if (!s.networks.is_null()) {
    if (s.networks.is_string() && !at_least(37))
      throw InputError("networks \"" + s.networks.get<std::string>() + "\" needs compute microversion 2.37; this Nova "
                       "serves up to 2." + std::to_string(minor_of(microversion_)) + ": name networks by uuid");
    server["networks"] = s.networks;
  }
  if (!s.security_groups.empty()) {
    server["security_groups"] = json::array();
    for (auto& g : s.security_groups) server["security_groups"].push_back({{"name", g}});
  }
  if (!s.availability_zone.empty()) server["availability_zone"] = s.availability_zone;
  if (!s.user_data.empty()) server["user_data"] = http::base64_encode(s.user_data);
  if (s.config_drive) server["config_drive"] = true;
  if (!s.metadata.empty()) server["metadata"] = s.metadata;
  json body = {{"server", server}};
  // Not retried: a create that timed out may have made a server (the ledger finds it by name).
  return json::parse(expect("POST", "/servers", {202}, &body, false).body).at("server");
}

std::optional<json> NovaClient::show_server(const std::string& id) {
  auto r = expect("GET", "/servers/" + http::url_escape(id), {200, 404});
  if (r.status == 404) return std::nullopt;
  return json::parse(r.body).at("server");
}

std::vector<std::string> NovaClient::servers_named(const std::string& name) {
  // `name` is a regular expression to Nova: anchor and escape it.
  std::string rx = "^";
  for (char c : name) {
    if (std::string_view(".^$*+?()[]{}|\\").find(c) != std::string_view::npos) rx += '\\';
    rx += c;
  }
  rx += "$";
  auto list = json::parse(expect("GET", "/servers?name=" + http::url_escape(rx), {200}).body).at("servers");
  std::vector<std::string> ids;
  for (auto& s : list)
    if (s.value("name", "") == name) ids.push_back(s.at("id"));
  return ids;
}

bool NovaClient::delete_server(const std::string& id) {
  return expect("DELETE", "/servers/" + http::url_escape(id), {204, 404}).status != 404;
}

void NovaClient::stop_server(const std::string& id) {
  json body = {{"os-stop", nullptr}};
  expect("POST", "/servers/" + http::url_escape(id) + "/action", {202}, &body, false);
}

std::string NovaClient::create_image(const std::string& server_id, const std::string& name,
                                     const std::map<std::string, std::string>& metadata) {
  json action = {{"name", name}};
  if (!metadata.empty()) action["metadata"] = metadata;
  json body = {{"createImage", action}};
  auto r = expect("POST", "/servers/" + http::url_escape(server_id) + "/action", {202}, &body, false);
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("image_id")) return j["image_id"];
  auto location = r.header("location");  // before 2.45: .../images/<id>
  if (!location.empty()) return location.substr(location.rfind('/') + 1);
  throw BuildError("Nova: createImage on server " + server_id + " answered 202 without an image id");
}

std::string NovaClient::console_output(const std::string& server_id, int lines) {
  json body = {{"os-getConsoleOutput", {{"length", lines}}}};
  auto r = expect("POST", "/servers/" + http::url_escape(server_id) + "/action", {200}, &body);
  return json::parse(r.body).value("output", "");
}

namespace {

std::string fault_text(const json& server) {
  if (!server.contains("fault") || !server["fault"].is_object()) return "no fault recorded";
  auto& f = server["fault"];
  std::string out = f.value("message", std::string("unknown fault"));
  if (f.contains("code")) out += " (code " + std::to_string(f["code"].get<long>()) + ")";
  return one_line(out);
}

}  // namespace

json NovaClient::wait_for_status(const std::string& id, const std::string& status, const WaitOptions& w) {
  auto start = std::chrono::steady_clock::now();
  std::string what = "waiting for server " + id + " " + status;
  for (;;) {
    auto s = show_server(id);
    if (!s) throw BuildError("Nova: server " + id + " vanished while " + what.substr(8));
    auto now = s->value("status", "");
    if (now == status) return *s;
    if (now == "ERROR")
      throw BuildError("Nova: server " + id + " went to ERROR: " + fault_text(*s));
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed > w.timeout)
      throw BuildError("Nova: server " + id + " still " + now + " after " + std::to_string(w.timeout.count()) +
                       " s waiting for " + status + ": raise the timeout setting or check the cloud");
    std::string task = s->value("OS-EXT-STS:task_state", json()).is_string()
                           ? " (" + s->value("OS-EXT-STS:task_state", std::string()) + ")"
                           : "";
    ctx_->progress(std::chrono::duration<double>(elapsed) / w.timeout, what + ": " + now + task);
    if (cancellable_) {
      if (ctx_->cancel().wait_for(w.poll)) throw Cancelled();
    } else {
      std::this_thread::sleep_for(w.poll);
    }
  }
}

void NovaClient::wait_deleted(const std::string& id, const WaitOptions& w) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    auto s = show_server(id);
    if (!s || s->value("status", "") == "DELETED") return;
    if (std::chrono::steady_clock::now() - start > w.timeout)
      throw BuildError("Nova: server " + id + " still " + s->value("status", "") + " " +
                       std::to_string(w.timeout.count()) + " s after it was deleted");
    if (cancellable_) {
      if (ctx_->cancel().wait_for(w.poll)) throw Cancelled();
    } else {
      std::this_thread::sleep_for(w.poll);
    }
  }
}

}  // namespace lcake::openstack
