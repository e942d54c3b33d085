#include "image_pull.h"

#include "docker_config.h"
#include "lcake/errors.hpp"
#include "registry_auth.h"

namespace lcake::docker {

EngineOptions engine_options(const nlohmann::json& settings, const lcake::CancelToken* cancel) {
  EngineOptions o;
  o.use(resolve_engine_endpoint(settings.value("docker_host", std::string()),
                                settings.value("docker_context", std::string())));
  o.api_timeout = std::chrono::seconds(settings.value("api_timeout", 60));
  o.transfer_timeout = std::chrono::seconds(settings.value("transfer_timeout", 3600));
  o.cancel = cancel;
  return o;
}

nlohmann::json ensure_image(EngineClient& engine, const std::string& ref, const std::string& policy,
                            const std::string& platform, lcake::Context& ctx) {
  if (policy != "always") {
    if (auto found = engine.inspect_image(ref)) return *found;
    if (policy == "never") {
      throw lcake::InputError("image " + ref + " is not in the Docker engine at " + engine.docker_host() +
                              " and the docker plugin's pull setting is \"never\": load it first or allow pulls");
    }
  }
  std::string registry = registry_of(ref);
  auto creds = find_registry_credentials(registry, ctx);
  std::string auth = engine_registry_auth(registry, creds);
  if (!auth.empty()) ctx.redact(auth);
  ctx.info("pulling " + ref + (creds ? " (with credentials for " + registry + ")" : ""));
  engine.pull_image(ref, platform, auth, [&](const std::string& status) { ctx.debug(status); });
  auto found = engine.inspect_image(ref);
  if (!found) {
    throw lcake::BuildError("pulled " + ref + " from " + registry + " but the Docker engine at " +
                            engine.docker_host() + " does not show it");
  }
  return *found;
}

}  // namespace lcake::docker
