// Runs a layer's provisioners and verify steps through any backend's
// Communicator, so every backend gets the same shell/file/env steps, retries
// and timeouts.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "lcake/communicator.hpp"
#include "lcake/context.hpp"

namespace lcake::core {

// Told each step as it starts ("provisioner 2/5: shell 'make'"), for the event stream.
using StepReport = std::function<void(const std::string& what)>;

// Throws lcake::BuildError naming the provisioner's JSON pointer on failure.
void run_provisioners(const std::vector<Provisioner>& steps, lcake::Communicator& comm,
                      lcake::Context& ctx, const StepReport& on_step);

// Throws lcake::BuildError naming the step (and, for compare, the differing rows).
void run_verify_steps(const std::vector<VerifyStep>& steps, lcake::Communicator& comm,
                      lcake::Context& ctx, const StepReport& on_step);

// Single-quotes a string for /bin/sh.
std::string shell_quote(const std::string& s);

}  // namespace lcake::core
