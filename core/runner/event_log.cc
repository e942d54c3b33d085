#include "event_log.h"

#include <chrono>
#include <cstdlib>
#include <ctime>

#include "lcake/errors.hpp"

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

EventLog::EventLog(FILE* out, bool json, lcake::LogLevel min_level)
    : out_(out), json_(json), min_level_(min_level) {}

static std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char buf[40];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

const char* level_name(lcake::LogLevel level) {
  switch (level) {
    case lcake::LogLevel::trace: return "trace";
    case lcake::LogLevel::debug: return "debug";
    case lcake::LogLevel::info: return "info";
    case lcake::LogLevel::warn: return "warn";
    case lcake::LogLevel::error: return "error";
  }
  return "info";
}

lcake::LogLevel parse_log_level(const std::string& name) {
  for (auto l : {lcake::LogLevel::trace, lcake::LogLevel::debug, lcake::LogLevel::info,
                 lcake::LogLevel::warn, lcake::LogLevel::error})
    if (name == level_name(l)) return l;
  throw lcake::InputError("--log-level: unknown level '" + name +
                          "': use trace, debug, info, warn or error");
}

void EventLog::write_line(const std::string& line) {
  std::string clean = Redactor::instance().apply(line);
  std::lock_guard lock(mu_);
  std::fwrite(clean.data(), 1, clean.size(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void EventLog::log(lcake::LogLevel level, std::string_view scope, std::string_view message) {
  if (level < min_level_) return;
  if (json_) {
    nlohmann::json j = {{"time", now_iso()}, {"event", "log"}, {"level", level_name(level)},
                        {"scope", scope}, {"message", message}};
    write_line(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  std::string line;
  if (!scope.empty()) line = "==> " + std::string(scope) + ": ";
  if (level >= lcake::LogLevel::warn) line += level == lcake::LogLevel::warn ? "warning: " : "error: ";
  line += message;
  write_line(line);
}

void EventLog::event(const std::string& name, nlohmann::json fields, std::string_view scope,
                     std::string_view text) {
  if (json_) {
    fields["time"] = now_iso();
    fields["event"] = name;
    if (!scope.empty()) fields["scope"] = scope;
    write_line(fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (!text.empty()) {
    log(lcake::LogLevel::info, scope, text);
  }
}

}  // namespace lcake::core
