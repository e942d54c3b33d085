// The one stream of what a run does. Producers (runner, step contexts, reaper)
// emit typed events into an EventSink; consumers (the text view, --json, the
// manifest writer) each turn them into their own output. Schema: docs/events.md.
#pragma once
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lcake/artifact.hpp"
#include "lcake/context.hpp"

namespace lcake::core {

constexpr int kEventSchemaVersion = 1;

enum class EventType {
  log,             // level, message
  run_started,     // data: run_id, command, target, pipeline, pipeline_file, lcake_version
  run_finished,    // status, seconds, data.variants: {name: status}
  layer_planned,   // key, data: cached, upload, verify, reasons
  layer_cached,    // stage (build|upload), key, artifact, data.found ("state"|"backend")
  layer_started,   // stage (build|upload|verify|publish), key, message (why it builds)
  layer_finished,  // stage, status (ok|failed|cancelled), seconds, artifact, message (error)
  step,            // stage, message ("provisioner 2/5: shell", "verify step 'demo'")
  transfer,        // message, done_bytes, total_bytes, fraction
  wait,            // message, fraction (negative: unknown)
  verified,        // seconds, data.again (false: verified earlier, not re-run)
  published,       // artifact, verified (false: published under --no-verify)
  cleanup,         // status (ok|failed), message (what), data: entry, kind, resource, plugin
  manifest,        // message (path)
  hook,            // after_publish: status (started|ok|failed|skipped), message (the command), seconds,
                   // data: index (1-based), count, on, exit_code (when it ran), reason (skipped)
};

const char* event_name(EventType type);

struct Event {
  EventType type = EventType::log;
  std::string scope;  // "variant/layer", "variant", "cleanup", or "" for the run
  std::string variant, layer, stage, key;
  lcake::LogLevel level = lcake::LogLevel::info;
  std::string message, status;
  std::optional<lcake::Artifact> artifact;
  double seconds = 0;
  double fraction = -1;
  std::uint64_t done_bytes = 0, total_bytes = 0;
  bool verified = true;
  nlohmann::json data = nlohmann::json::object();
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void emit(const Event& e) = 0;
  void log(lcake::LogLevel level, std::string_view scope, std::string_view message) {
    Event e;
    e.level = level, e.scope = scope, e.message = message;
    emit(e);
  }
};

// Sends every event to several sinks, one event at a time.
class EventTee : public EventSink {
 public:
  explicit EventTee(std::vector<EventSink*> sinks) : sinks_(std::move(sinks)) {}
  void emit(const Event& e) override {
    std::lock_guard lock(mu_);
    for (auto* s : sinks_) s->emit(e);
  }

 private:
  std::vector<EventSink*> sinks_;
  std::mutex mu_;
};

// Keeps every event (tests).
class EventRecorder : public EventSink {
 public:
  void emit(const Event& e) override {
    std::lock_guard lock(mu_);
    events.push_back(e);
  }
  std::vector<Event> of(EventType type) const {
    std::lock_guard lock(mu_);
    std::vector<Event> out;
    for (const auto& e : events)
      if (e.type == type) out.push_back(e);
    return out;
  }
  std::vector<Event> events;

 private:
  mutable std::mutex mu_;
};

}  // namespace lcake::core
