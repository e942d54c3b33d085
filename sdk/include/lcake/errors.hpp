#pragma once
#include <stdexcept>
#include <string>

namespace lcake {

// Something the user can fix in a config, flag or file: exit code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A bad value in one of the role's own inputs, named relative to that input:
// part "settings" | "source" | "options" | "publish", pointer "/disk/format"
// (a JSON pointer inside it, "" for the whole value). The host turns it into
// the full pointer and the file:line (or flag) that set the value.
struct ValueError : InputError {
  ValueError(std::string part_, std::string pointer_, const std::string& message)
      : InputError(message), part(std::move(part_)), pointer(std::move(pointer_)) {}
  std::string part;
  std::string pointer;
};

// A build, upload or verify step failed: exit code 1.
struct BuildError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by Role::reap() when the resource was not there any more, so nothing
// was deleted. Not a failure: the host releases the ledger entry and reports the
// resource as already gone rather than deleted.
struct AlreadyGone : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown from wait loops and transfers once the run's cancel token fired.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
  using std::runtime_error::runtime_error;
};

}  // namespace lcake
