// Helpers for the after_publish / `lcake outputs` end-to-end tests (qemu, docker, localdir).
#pragma once
#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace lcake::test {

// A hook command (for after_publish "run") that saves what it was given into
// dir/<n>/: outputs.json ($LCAKE_OUTPUTS), manifest.json ($LCAKE_MANIFEST), env
// (the LCAKE_* variables), and prints "hook <label> saw run <id>".
std::string recording_hook(const std::filesystem::path& dir, const std::string& label);
// What the recording hook saved, one object per call, oldest first:
// {"outputs": …, "manifest": …, "env": {"LCAKE_TARGET": …, …}}.
std::vector<nlohmann::json> hook_calls(const std::filesystem::path& dir);

// Where an outputs document disagrees with a run's manifest: every layer the
// manifest says was published must be in outputs with the same id, type and
// moving names, and `published` must list exactly those. Empty: they agree.
std::vector<std::string> outputs_vs_manifest(const nlohmann::json& outputs, const nlohmann::json& manifest);
// Where an outputs document breaks docs/schemas/lcake-outputs-1.schema.json (checked with the
// core's own schema checker). Empty: it conforms.
std::vector<std::string> outputs_schema_errors(const nlohmann::json& outputs);
// Where `lcake outputs --format shell` and `--format tfvars` disagree with the JSON form.
std::vector<std::string> formats_vs_json(const nlohmann::json& outputs, const std::string& shell,
                                         const nlohmann::json& tfvars);

// A small HTTP server on 127.0.0.1 that answers every POST with 200 and keeps the bodies.
class WebhookServer {
 public:
  WebhookServer();
  ~WebhookServer();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/announce"; }
  std::vector<std::string> bodies() const;

 private:
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

}  // namespace lcake::test
