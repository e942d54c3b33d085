#include "json_view.h"

#include <chrono>
#include <ctime>

#include "log_level.h"
#include "redactor.h"

namespace lcake::core {

const char* event_name(EventType type) {
  switch (type) {
    case EventType::log: return "log";
    case EventType::run_started: return "run_started";
    case EventType::run_finished: return "run_finished";
    case EventType::layer_planned: return "layer_planned";
    case EventType::layer_cached: return "layer_cached";
    case EventType::layer_started: return "layer_started";
    case EventType::layer_finished: return "layer_finished";
    case EventType::step: return "step";
    case EventType::transfer: return "transfer";
    case EventType::wait: return "wait";
    case EventType::verified: return "verified";
    case EventType::published: return "published";
    case EventType::cleanup: return "cleanup";
    case EventType::manifest: return "manifest";
    case EventType::hook: return "hook";
  }
  return "log";
}

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char buf[40];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

nlohmann::json event_to_json(const Event& e) {
  nlohmann::json j = {{"v", kEventSchemaVersion}, {"event", event_name(e.type)}};
  auto put = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  put("scope", e.scope);
  put("variant", e.variant);
  put("layer", e.layer);
  put("stage", e.stage);
  put("key", e.key);
  put("status", e.status);
  switch (e.type) {
    case EventType::log: j["level"] = level_name(e.level); j["message"] = e.message; break;
    case EventType::transfer:
      j["done_bytes"] = e.done_bytes, j["total_bytes"] = e.total_bytes;
      [[fallthrough]];
    case EventType::wait:
      if (e.fraction >= 0) j["fraction"] = e.fraction;
      j["what"] = e.message;
      break;
    case EventType::published: j["verified"] = e.verified; break;
    default: put("message", e.message);
  }
  if (e.artifact) j["artifact"] = *e.artifact;
  if (e.type == EventType::layer_finished || e.type == EventType::verified ||
      e.type == EventType::run_finished || (e.type == EventType::hook && e.status != "started" && e.status != "skipped"))
    j["seconds"] = e.seconds;
  for (auto it = e.data.begin(); it != e.data.end(); ++it) j[it.key()] = it.value();
  return j;
}

void JsonView::emit(const Event& e) {
  if (e.type == EventType::log && e.level < min_level_) return;
  nlohmann::json j = event_to_json(e);
  j["time"] = now_iso();
  std::string line =
      Redactor::instance().apply(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace lcake::core
