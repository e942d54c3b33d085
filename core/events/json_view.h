// --json: one JSON object per event per line (schema in docs/events.md).
#pragma once
#include <cstdio>
#include <mutex>

#include "event.h"

namespace lcake::core {

nlohmann::json event_to_json(const Event& e);  // without "time"

class JsonView : public EventSink {
 public:
  JsonView(FILE* out, lcake::LogLevel min_level) : out_(out), min_level_(min_level) {}
  void emit(const Event& e) override;

 private:
  FILE* out_;
  lcake::LogLevel min_level_;
  std::mutex mu_;
};

std::string now_iso();  // "2026-12-01T19:09:15.123Z"

}  // namespace lcake::core
