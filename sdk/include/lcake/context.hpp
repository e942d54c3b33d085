#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "lcake/communicator.hpp"
#include "lcake/errors.hpp"

namespace lcake {

enum class LogLevel { trace, debug, info, warn, error };

// One token per run; every wait loop and long transfer checks it.
class CancelToken {
 public:
  virtual ~CancelToken() = default;
  virtual bool cancelled() const = 0;
  // Sleeps up to `d`; returns true (early) if the run was cancelled meanwhile.
  virtual bool wait_for(std::chrono::milliseconds d) const = 0;
  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled();
  }
};

// An external resource a plugin created or is about to create.
struct LedgerEntry {
  std::int64_t id = 0;
  std::string plugin;  // owning plugin, filled in by the host
  std::string role;    // "builder" | "uploader" | "verifier"
  std::string kind;    // plugin-defined, e.g. "container", "ebs-snapshot"
  std::string resource_id;
  nlohmann::json how = nlohmann::json::object();  // whatever is needed to delete it
};

// Record every external resource *before* creating it, confirm it once it
// exists, release it when deleted or promoted to an artifact. Entries left
// unreleased are deleted by the host on error, Ctrl-C, or `lcake gc`.
//
// Two kinds are handled by the host itself, for any plugin:
//   "process": how = {"pid": N, "start_time": T}  (T from /proc/PID/stat field 22)
//   "path":    how = {"path": "/abs/path"}         (file or directory, removed recursively)
// Every other kind is passed to the owning role's reap().
class CleanupLedger {
 public:
  virtual ~CleanupLedger() = default;
  virtual std::int64_t intend(const std::string& kind, const std::string& resource_id,
                              const nlohmann::json& how) = 0;
  virtual void confirm(std::int64_t entry, const std::string& resource_id,
                       const nlohmann::json& how) = 0;
  virtual void release(std::int64_t entry) = 0;
};

struct SshOptions {
  std::string host = "127.0.0.1";
  int port = 22;
  std::string user = "root";
  std::filesystem::path private_key;  // OpenSSH private key file
  // Expected host key ("ssh-ed25519 AAAA..."). Empty: accept the first key seen
  // (read it back with host_key()) and enforce it on every later reconnect.
  std::string expected_host_key;
  // Keep retrying the connection until this deadline (the guest may be booting).
  std::chrono::seconds connect_timeout{300};
  // Called when connecting finally fails; its text is appended to the error
  // (e.g. the tail of a serial console).
  std::function<std::string()> diagnostics;
  // Called between connection attempts; throwing aborts the wait (e.g. the VM exited).
  std::function<void()> still_alive;
};

class SshCommunicator : public Communicator {
 public:
  virtual std::string host_key() const = 0;  // "ssh-ed25519 AAAA..."
};

// Everything the host offers a plugin while one of its roles runs.
class Context {
 public:
  virtual ~Context() = default;

  virtual void log(LogLevel level, std::string_view message) = 0;
  void debug(std::string_view m) { log(LogLevel::debug, m); }
  void info(std::string_view m) { log(LogLevel::info, m); }
  void warn(std::string_view m) { log(LogLevel::warn, m); }

  // fraction in [0,1], or negative when unknown.
  virtual void progress(double fraction, std::string_view what) = 0;
  virtual const CancelToken& cancel() const = 0;
  virtual CleanupLedger& ledger() = 0;

  // Scratch directory for this step; removed by the host afterwards.
  virtual const std::filesystem::path& work_dir() const = 0;
  // Persistent directory owned by this (target, variant, layer, key); a place
  // for local artifacts such as disk images.
  virtual const std::filesystem::path& store_dir() const = 0;

  // A secret from the environment (or the host's secret sources). Its value is
  // redacted from every log line, event, manifest and error message.
  virtual std::optional<std::string> secret(const std::string& name) = 0;
  // Marks a value (e.g. a token obtained at run time) for redaction.
  virtual void redact(const std::string& value) = 0;

  // Writes a fresh ed25519 key pair to dir/id_ed25519{,.pub}; returns the public key line.
  virtual std::string generate_ssh_key(const std::filesystem::path& dir) = 0;
  virtual std::unique_ptr<SshCommunicator> connect_ssh(const SshOptions& options) = 0;
};

}  // namespace lcake
