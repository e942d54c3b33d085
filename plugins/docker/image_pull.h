// Getting an image into the engine according to a pull policy, with registry
// credentials from the Docker client config (never logged).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "engine_client.h"
#include "lcake/context.hpp"

namespace lcake::docker {

// Engine settings shared by the three roles: docker_host, api_timeout, transfer_timeout.
EngineOptions engine_options(const nlohmann::json& settings, const lcake::CancelToken* cancel);

// policy: "missing" (pull when absent), "always", "never". Returns the image's inspect JSON.
// Throws InputError when policy is "never" and the image is absent.
nlohmann::json ensure_image(EngineClient& engine, const std::string& ref, const std::string& policy,
                            const std::string& platform, lcake::Context& ctx);

}  // namespace lcake::docker
