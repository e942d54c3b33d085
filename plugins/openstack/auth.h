// Keystone v3 authentication: one session per cloud, shared by every call a role
// makes. It holds the token and the service catalog, renews the token before it
// expires (and once when a service answers 401), and hands every token it gets
// to ctx.redact(): tokens never reach a log line or an error.
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "clouds_config.h"
#include "lcake/common/http_client.h"
#include "lcake/context.hpp"

namespace lcake::openstack {

// The role settings every openstack role takes (merged into its schema by
// auth_schema_properties()): "cloud", "region", "interface".
struct AuthSettings {
  std::string cloud, region, interface;
  static AuthSettings from_json(const nlohmann::json& settings);
};
// JSON Schema `properties` entries for AuthSettings, to merge into a role's schema.
nlohmann::json auth_schema_properties();

class KeystoneSession {
 public:
  // Resolves the config (see resolve_cloud) and marks its secrets for redaction.
  // Does not contact Keystone yet.
  KeystoneSession(const AuthSettings& settings, Context& ctx, const ConfigSources& sources = {});
  explicit KeystoneSession(CloudConfig config, Context& ctx);

  // A valid token, authenticating when there is none or it expires within the
  // margin (5 min, or half its lifetime for short-lived tokens). Cancellable
  // through ctx.cancel(); throws InputError when Keystone refuses the
  // credentials (401), BuildError when it cannot be reached.
  std::string token(Context& ctx);
  // Drops the token `stale` (a service answered 401 to it): the next token() re-authenticates.
  void invalidate(const std::string& stale);

  // The endpoint URL (no trailing '/') of a service type ("image", "compute")
  // for the configured region and interface, from the catalog (or the cloud's
  // <type>_endpoint_override). Throws
  // BuildError listing what the catalog offers when there is none.
  std::string endpoint(const std::string& service_type, Context& ctx);

  std::string project_id(Context& ctx);  // of the token's scope
  std::string user_id(Context& ctx);
  const CloudConfig& config() const { return config_; }
  // TLS and timeout fields of `request` set from the config.
  void apply_tls(http::HttpRequest& request) const;

 private:
  void authenticate(Context& ctx);  // with mu_ held
  void ensure(Context& ctx);        // with mu_ held
  CloudConfig config_;
  std::mutex mu_;
  std::string token_;
  nlohmann::json token_body_;  // the "token" object: catalog, project, user, expires_at
  std::chrono::system_clock::time_point expires_{}, issued_{};
  const Context* redacted_for_ = nullptr;
};

// The Keystone request body for a config (exposed for unit tests).
nlohmann::json auth_request_body(const CloudConfig& config);
// "2026-12-01T20:10:00.000000Z" → time point; throws BuildError when malformed.
std::chrono::system_clock::time_point parse_iso8601(const std::string& text);

}  // namespace lcake::openstack
