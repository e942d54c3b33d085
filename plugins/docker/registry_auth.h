// Registry credentials from the Docker client config ($DOCKER_CONFIG/config.json,
// else ~/.docker/config.json), as docker finds them: a credHelpers entry for the
// registry, else the credsStore helper, else the "auths" entry (base64 "user:pass"
// in "auth"). Helpers are run as `docker-credential-NAME get` (server URL on
// stdin, {"ServerURL","Username","Secret"} on stdout) through Context::run.
// Values returned here are secrets: they are registered with ctx.redact() and
// never logged.
#pragma once
#include <optional>
#include <string>

#include "lcake/context.hpp"

namespace lcake::docker {

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string identity_token;  // "identitytoken" (or a helper's "<token>" user), used instead of a password
  std::string source;          // for errors: "auths in /x/config.json", "credsStore helper docker-credential-y"
};

// The registry host of an image reference: "127.0.0.1:5000/lcake/stack:tag" →
// "127.0.0.1:5000"; "busybox" → "docker.io".
std::string registry_of(const std::string& reference);

// Looks up credentials for `registry` ("host[:port]"); matches "host", "https://host",
// "http://host/v2/"…, and Docker Hub's "https://index.docker.io/v1/" for docker.io.
// A helper that is not in PATH, or fails other than with "credentials not found",
// is an error naming the helper and config.json.
std::optional<RegistryCredentials> find_registry_credentials(const std::string& registry, lcake::Context& ctx);

// The X-Registry-Auth header value (base64url JSON) for the Engine API; "" without credentials.
std::string engine_registry_auth(const std::string& registry, const std::optional<RegistryCredentials>& creds);

}  // namespace lcake::docker
