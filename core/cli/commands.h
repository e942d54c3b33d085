#pragma once
#include <string>
#include <vector>

namespace lcake::cli {

// One subcommand: its name, a line of help, and its entry taking the
// arguments after the subcommand's name.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const std::vector<Command>& commands();

}  // namespace lcake::cli
