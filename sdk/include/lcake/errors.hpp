#pragma once
#include <stdexcept>
#include <string>

namespace lcake {

// Something the user can fix in a config, flag or file: exit code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A build, upload or verify step failed: exit code 1.
struct BuildError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown from wait loops and transfers once the run's cancel token fired.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
  using std::runtime_error::runtime_error;
};

}  // namespace lcake
