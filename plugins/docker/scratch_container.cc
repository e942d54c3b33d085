#include "scratch_container.h"

#include <random>

#include "lcake/errors.hpp"

namespace lcake::docker {

nlohmann::json container_ledger_how(const std::string& docker_host, const std::string& name, const std::string& id) {
  nlohmann::json how = {{"docker_host", docker_host}, {"name", name}};
  if (!id.empty()) how["id"] = id;
  return how;
}

void reap_container(const lcake::LedgerEntry& entry, lcake::Context& ctx, const EngineOptions& current) {
  if (entry.kind != "container") {
    throw lcake::BuildError("the docker plugin does not know how to delete a '" + entry.kind + "' resource");
  }
  // The recorded engine; its TLS files are today's when it is the engine the
  // settings and environment name now (the ledger keeps no key material).
  EngineOptions options;
  std::string recorded = entry.how.value("docker_host", std::string());
  if (recorded.empty() || recorded == current.docker_host) options = current;
  else options.docker_host = recorded;
  options.api_timeout = current.api_timeout;
  options.cancel = nullptr;
  EngineClient engine(options);
  engine.negotiate();
  // The ID is known only once creation succeeded; the name always is.
  std::string target = entry.how.value("id", std::string());
  if (target.empty()) target = entry.how.value("name", entry.resource_id);
  if (target.empty() || !engine.remove_container(target, true)) {
    throw lcake::AlreadyGone("container " + entry.how.value("name", target) + " is already gone");
  }
  ctx.debug("removed container " + target.substr(0, 64));
}

std::string container_name(const std::string& role, const std::string& variant, const std::string& layer,
                           const std::string& key) {
  std::string name = "lcake-" + role + "-" + variant + "-" + layer + "-" + key.substr(0, std::min<size_t>(12, key.size()));
  for (auto& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
  }
  // Two runs of the same layer at once must not collide.
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "-%08x", static_cast<unsigned>(rd()));
  return name + suffix;
}

ScratchContainer::ScratchContainer(EngineClient& engine, const ContainerSpec& spec, lcake::Context& ctx)
    : engine_(engine.uncancellable()), name_(spec.name) {
  // Entrypoint and Cmd both replaced: the image's own would run instead of the keep-alive.
  std::vector<std::string> entrypoint = {spec.keep_alive.front()};
  std::vector<std::string> cmd(spec.keep_alive.begin() + 1, spec.keep_alive.end());
  nlohmann::json config = {
      {"Image", spec.image},
      {"Entrypoint", entrypoint},
      {"Cmd", cmd},
      {"AttachStdin", false},
      {"AttachStdout", false},
      {"AttachStderr", false},
      {"Tty", false},
      {"HostConfig", {{"NetworkMode", spec.network}, {"AutoRemove", false}}},
  };
  ledger_entry_ = ctx.ledger().intend("container", name_, container_ledger_how(engine.docker_host(), name_, ""));
  try {
    id_ = engine.create_container(name_, config, spec.platform);
    ctx.ledger().confirm(ledger_entry_, id_, container_ledger_how(engine.docker_host(), name_, id_));
    engine.start_container(id_);
    // A keep-alive command that exits at once may still show as running right after start.
    std::optional<nlohmann::json> info;
    bool running = false;
    for (int i = 0; i < 3; ++i) {
      if (i) ctx.cancel().wait_for(std::chrono::milliseconds(100));
      info = engine.inspect_container(id_);
      running = info && (*info)["State"].value("Running", false);
      if (!running) break;
    }
    if (!running) {
      std::string state = info ? (*info)["State"].dump() : "gone";
      std::string keep;
      for (const auto& a : spec.keep_alive) keep += (keep.empty() ? "" : " ") + a;
      throw lcake::BuildError("container " + name_ + " from " + spec.image + " stopped at once (state " + state +
                              "): the keep-alive command '" + keep +
                              "' must run forever in that image; set keep_alive_command");
    }
  } catch (...) {
    remove(ctx);
    throw;
  }
}

ScratchContainer::~ScratchContainer() = default;

void ScratchContainer::remove(lcake::Context& ctx) noexcept {
  if (removed_) return;
  try {
    // Force removal kills the keep-alive (sleep ignores SIGTERM as PID 1).
    engine_.remove_container(id_.empty() ? name_ : id_, true);
    removed_ = true;
    ctx.ledger().release(ledger_entry_);
  } catch (const std::exception& e) {
    try {
      ctx.warn("could not remove container " + name_ + " (left in the cleanup ledger for `lcake gc`): " + e.what());
    } catch (...) {
    }
  }
}

}  // namespace lcake::docker
