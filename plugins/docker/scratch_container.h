// A short-lived container kept alive by a do-nothing command, so that provisioners
// or verify steps can exec into it: recorded in the cleanup ledger before it is
// created, confirmed with its ID, released once removed.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine_client.h"
#include "lcake/context.hpp"

namespace lcake::docker {

struct ContainerSpec {
  std::string image;  // image ID or reference, present in the engine
  std::string name;   // chosen before creation so the ledger can find it
  std::string network = "none";
  std::string platform;
  std::vector<std::string> keep_alive = {"sleep", "infinity"};
};

// lcake's own containers are the ones named lcake-build-… and lcake-verify-…
// (a name, unlike a label, is never committed into an image). The Engine API's
// `name` filter for them; Docker matches names with or without their leading '/'.
inline constexpr const char* kContainerNameFilter = "^/?lcake-(build|verify)-";

// The ledger's "how" for a container: enough for reap() in a later process.
nlohmann::json container_ledger_how(const std::string& docker_host, const std::string& name, const std::string& id);

// Removes the container named in a ledger entry; throws lcake::AlreadyGone when
// there was none (the host counts it as already gone, not deleted).
void reap_container(const lcake::LedgerEntry& entry, lcake::Context& ctx, const EngineOptions& current);

// "lcake-build-centos-7-stack-1a2b3c4d5e6f-9f8e7d6c": a valid, unique container name.
std::string container_name(const std::string& role, const std::string& variant, const std::string& layer,
                           const std::string& key);

class ScratchContainer {
 public:
  // Records, creates and starts the container; throws BuildError (after removing
  // what it made) when it does not keep running.
  ScratchContainer(EngineClient& engine, const ContainerSpec& spec, lcake::Context& ctx);
  ~ScratchContainer();
  ScratchContainer(const ScratchContainer&) = delete;
  ScratchContainer& operator=(const ScratchContainer&) = delete;

  const std::string& id() const { return id_; }
  const std::string& name() const { return name_; }
  // Stops and removes the container, then releases the ledger entry. Never throws;
  // on failure the entry stays for `lcake gc` and a warning is logged.
  void remove(lcake::Context& ctx) noexcept;

 private:
  EngineClient engine_;  // uncancellable: removal must work after a cancel
  std::string name_;
  std::string id_;
  std::int64_t ledger_entry_ = 0;
  bool removed_ = false;
};

}  // namespace lcake::docker
