// The manifest of a run (<state>/runs/<run id>.json, and --manifest): built
// from the event stream, written once when the run ends.
#pragma once
#include <filesystem>
#include <mutex>
#include <optional>

#include "event.h"

namespace lcake::core {

class ManifestWriter : public EventSink {
 public:
  void emit(const Event& e) override;
  nlohmann::json manifest() const;
  // Writes the manifest (secrets redacted) to `path` and, when given, atomically to `copy`.
  void write(const std::filesystem::path& path, const std::optional<std::filesystem::path>& copy) const;

 private:
  nlohmann::json& layer(const Event& e);
  mutable std::mutex mu_;
  nlohmann::json m_ = {{"variants", nlohmann::json::object()}};
};

}  // namespace lcake::core
