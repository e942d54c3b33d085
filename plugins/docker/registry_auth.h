// Registry credentials from the Docker client config: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json, "auths" entries with a base64 "user:pass" in "auth".
// Credential helpers (credsStore/credHelpers) are not consulted.
// Values returned here are secrets: callers redact them and never log them.
#pragma once
#include <optional>
#include <string>

namespace lcake::docker {

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string identity_token;  // "identitytoken", used instead of a password when set
};

// The registry host of an image reference: "127.0.0.1:5000/lcake/stack:tag" →
// "127.0.0.1:5000"; "busybox" → "docker.io".
std::string registry_of(const std::string& reference);

// Looks up credentials for `registry` ("host[:port]"); matches "host", "https://host",
// "http://host/v2/"…, and Docker Hub's "https://index.docker.io/v1/" for docker.io.
std::optional<RegistryCredentials> find_registry_credentials(const std::string& registry);

// The X-Registry-Auth header value (base64url JSON) for the Engine API; "" without credentials.
std::string engine_registry_auth(const std::string& registry, const std::optional<RegistryCredentials>& creds);

}  // namespace lcake::docker
