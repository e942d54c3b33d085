#include "redactor.h"

#include <cstdlib>

namespace lcake::core {

Redactor& Redactor::instance() {
  static Redactor r;
  return r;
}

void Redactor::add(const std::string& secret) {
  // Very short values would redact half of every line; they are not real secrets.
  if (secret.size() < 4) return;
  std::lock_guard lock(mu_);
  secrets_.insert(secret);
}

std::string Redactor::apply(std::string text) const {
  std::lock_guard lock(mu_);
  for (const auto& s : secrets_) {
    std::size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), "<redacted>");
      pos += 10;
    }
  }
  return text;
}

void Redactor::add_known_environment() {
  for (const char* name : {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OS_PASSWORD", "OS_TOKEN",
                           "OS_APPLICATION_CREDENTIAL_SECRET", "DOCKER_PASSWORD", "REGISTRY_PASSWORD",
                           "LCAKE_SECRET"}) {
    if (const char* v = std::getenv(name)) add(v);
  }
}

}  // namespace lcake::core
