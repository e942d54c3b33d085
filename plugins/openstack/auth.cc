#include "auth.h"

#include <ctime>
#include <set>

#include "lcake/errors.hpp"
#include "service_client.h"

namespace lcake::openstack {

AuthSettings AuthSettings::from_json(const nlohmann::json& s) {
  AuthSettings a;
  a.cloud = s.value("cloud", "");
  a.region = s.value("region", "");
  a.interface = s.value("interface", "");
  return a;
}

nlohmann::json auth_schema_properties() {
  return {
      {"cloud", {{"type", "string"}, {"description", "cloud name in clouds.yaml (default: $OS_CLOUD, else the OS_* variables)"}}},
      {"region", {{"type", "string"}, {"description", "region of the catalog endpoints (default: the cloud's region_name)"}}},
      {"interface", {{"enum", {"public", "internal", "admin"}}, {"description", "endpoint interface (default: the cloud's, else public)"}}},
  };
}

std::chrono::system_clock::time_point parse_iso8601(const std::string& text) {
  std::tm tm{};
  int y, mo, d, h, mi, sec;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6)
    throw BuildError("Keystone sent an unreadable expires_at: " + text);
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

namespace {

nlohmann::json named(const std::string& id, const std::string& name, const nlohmann::json& domain) {
  if (!id.empty()) return {{"id", id}};
  nlohmann::json out = {{"name", name}};
  if (!domain.is_null()) out["domain"] = domain;
  return out;
}

nlohmann::json domain_ref(const std::string& id, const std::string& name, const CloudConfig& c) {
  if (!id.empty()) return {{"id", id}};
  if (!name.empty()) return {{"name", name}};
  if (!c.domain_id.empty()) return {{"id", c.domain_id}};
  if (!c.domain_name.empty()) return {{"name", c.domain_name}};
  return nullptr;
}

nlohmann::json user_ref(const CloudConfig& c) {
  return named(c.user_id, c.username, domain_ref(c.user_domain_id, c.user_domain_name, c));
}

nlohmann::json scope_of(const CloudConfig& c) {
  if (!c.project_id.empty() || !c.project_name.empty())
    return {{"project", named(c.project_id, c.project_name, domain_ref(c.project_domain_id, c.project_domain_name, c))}};
  if (!c.domain_id.empty()) return {{"domain", {{"id", c.domain_id}}}};
  if (!c.domain_name.empty()) return {{"domain", {{"name", c.domain_name}}}};
  return nullptr;
}

std::string tokens_url(const std::string& auth_url) {
  std::string u = auth_url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.size() < 3 || u.compare(u.size() - 3, 3, "/v3") != 0) u += "/v3";
  return u + "/auth/tokens";
}

}  // namespace

nlohmann::json auth_request_body(const CloudConfig& c) {
  nlohmann::json identity;
  if (c.auth_type == "v3applicationcredential") {
    nlohmann::json ac = {{"secret", c.application_credential_secret}};
    if (!c.application_credential_id.empty()) ac["id"] = c.application_credential_id;
    else ac["name"] = c.application_credential_name, ac["user"] = user_ref(c);
    identity = {{"methods", {"application_credential"}}, {"application_credential", ac}};
    return {{"auth", {{"identity", identity}}}};  // the credential fixes the scope
  }
  if (c.auth_type == "v3token") {
    identity = {{"methods", {"token"}}, {"token", {{"id", c.token}}}};
  } else {
    nlohmann::json user = user_ref(c);
    user["password"] = c.password;
    identity = {{"methods", {"password"}}, {"password", {{"user", user}}}};
  }
  nlohmann::json body = {{"auth", {{"identity", identity}}}};
  if (auto scope = scope_of(c); !scope.is_null()) body["auth"]["scope"] = scope;
  return body;
}

KeystoneSession::KeystoneSession(const AuthSettings& s, Context& ctx, const ConfigSources& sources)
    : KeystoneSession(resolve_cloud(s.cloud, s.region, s.interface, sources), ctx) {}

KeystoneSession::KeystoneSession(CloudConfig config, Context& ctx) : config_(std::move(config)) {
  for (const auto& secret : config_.secrets()) ctx.redact(secret);
}

void KeystoneSession::apply_tls(http::HttpRequest& r) const {
  r.tls_verify = config_.verify;
  r.ca_file = config_.cacert;
  r.client_cert = config_.cert;
  r.client_key = config_.key;
}

void KeystoneSession::authenticate(Context& ctx) {
  http::HttpRequest r;
  r.method = "POST";
  r.url = tokens_url(config_.auth_url);
  r.headers = {"Content-Type: application/json", "Accept: application/json"};
  r.body = auth_request_body(config_).dump();
  r.has_body = true;
  r.timeout = std::chrono::seconds(60);
  r.cancel = &ctx.cancel();
  apply_tls(r);
  http::RetryPolicy retry;
  retry.attempts = 3;
  retry.on_retry = [&](int, const std::string& why, std::chrono::milliseconds delay) {
    ctx.warn("Keystone: " + why + "; retrying in " + std::to_string(delay.count()) + " ms");
  };
  http::HttpResponse resp;
  try {
    resp = http::http_perform_retrying(r, retry);
  } catch (const http::HttpFailure& e) {
    throw BuildError("cannot reach Keystone at " + r.url + " (" + config_.source + "): " + e.what());
  }
  if (resp.status == 401)
    throw InputError("Keystone at " + config_.auth_url + " refused the credentials of " + config_.source + " (" +
                     config_.auth_type + "): " + error_message(resp));
  if (resp.status == 404 && config_.auth_type == "v3applicationcredential")
    throw InputError("Keystone at " + config_.auth_url + " does not know the application credential of " +
                     config_.source + ": " + error_message(resp));
  if (resp.status != 201 && resp.status != 200)
    throw BuildError("Keystone at " + config_.auth_url + " answered " + std::to_string(resp.status) +
                     " to the authentication of " + config_.source + ": " + error_message(resp));
  std::string token = resp.header("x-subject-token");
  if (token.empty()) throw BuildError("Keystone at " + config_.auth_url + " answered without X-Subject-Token");
  ctx.redact(token);
  redacted_for_ = &ctx;
  nlohmann::json body = nlohmann::json::parse(resp.body, nullptr, false);
  if (!body.is_object() || !body.contains("token"))
    throw BuildError("Keystone at " + config_.auth_url + " answered an unreadable token body");
  token_ = token;
  token_body_ = body["token"];
  expires_ = parse_iso8601(token_body_.value("expires_at", ""));
  issued_ = token_body_.contains("issued_at") ? parse_iso8601(token_body_["issued_at"].get<std::string>())
                                               : std::chrono::system_clock::now();
  ctx.debug("Keystone: authenticated (" + config_.auth_type + ", " + config_.source + "), token expires " +
            token_body_.value("expires_at", "?"));
}

void KeystoneSession::ensure(Context& ctx) {
  using namespace std::chrono;
  if (!token_.empty()) {
    auto lifetime = expires_ - issued_;
    auto margin = std::min<system_clock::duration>(minutes(5), lifetime / 2);
    if (system_clock::now() + margin < expires_) {
      if (redacted_for_ != &ctx) ctx.redact(token_), redacted_for_ = &ctx;
      return;
    }
    ctx.debug("Keystone: token expires soon; re-authenticating");
  }
  authenticate(ctx);
}

std::string KeystoneSession::token(Context& ctx) {
  std::lock_guard lock(mu_);
  ensure(ctx);
  return token_;
}

void KeystoneSession::invalidate(const std::string& stale) {
  std::lock_guard lock(mu_);
  if (token_ == stale) token_.clear();
}

std::string KeystoneSession::endpoint(const std::string& type, Context& ctx) {
  if (auto it = config_.endpoint_overrides.find(type); it != config_.endpoint_overrides.end()) {
    std::string url = it->second;
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
  }
  std::lock_guard lock(mu_);
  ensure(ctx);
  const std::string& region = config_.region_name;
  std::set<std::string> offered;
  for (const auto& svc : token_body_.value("catalog", nlohmann::json::array())) {
    if (svc.value("type", "") != type) continue;
    for (const auto& ep : svc.value("endpoints", nlohmann::json::array())) {
      std::string r = ep.value("region_id", ep.value("region", ""));
      offered.insert(ep.value("interface", "?") + "@" + (r.empty() ? "any region" : r));
      if (ep.value("interface", "") != config_.interface) continue;
      if (!region.empty() && r != region && ep.value("region", "") != region) continue;
      std::string url = ep.value("url", "");
      while (!url.empty() && url.back() == '/') url.pop_back();
      return url;
    }
  }
  std::string have;
  for (const auto& o : offered) have += (have.empty() ? "" : ", ") + o;
  throw BuildError("the service catalog of " + config_.source + " has no " + type + " endpoint for interface " +
                   config_.interface + (region.empty() ? "" : " in region " + region) +
                   (have.empty() ? " (no " + type + " service at all)" : " (it has: " + have + ")") +
                   ": set the target's region/interface settings or region_name/interface in clouds.yaml");
}

std::string KeystoneSession::project_id(Context& ctx) {
  std::lock_guard lock(mu_);
  ensure(ctx);
  if (token_body_.contains("project")) return token_body_["project"].value("id", "");
  return "";
}

std::string KeystoneSession::user_id(Context& ctx) {
  std::lock_guard lock(mu_);
  ensure(ctx);
  return token_body_.contains("user") ? token_body_["user"].value("id", "") : "";
}

}  // namespace lcake::openstack
