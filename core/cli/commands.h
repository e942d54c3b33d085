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
  bool hidden = false;  // not listed by `lcake --help` (the completion scripts' helper)
};

const std::vector<Command>& commands();

// completion.cc
int cmd_completion(const std::vector<std::string>& args);
int cmd_complete(const std::vector<std::string>& args);

}  // namespace lcake::cli
