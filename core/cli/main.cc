// lcake: build, verify and publish layered machine images.
#include <boost/program_options/errors.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "lcake/errors.hpp"
#include "events/redactor.h"

namespace {

void usage() {
  std::printf("usage: lcake [COMMAND] [OPTIONS]\n\n"
              "Builds layered machine images from a pipeline, verifies them, publishes what verified.\n"
              "`lcake --target T` is `lcake build --target T`.\n\nCommands:\n");
  for (const auto& c : lcake::cli::commands())
    if (!c.hidden) std::printf("  %-10s %s\n", c.name, c.summary);
  std::printf("\n`lcake COMMAND --help` for a command's options.\n"
              "Exit codes: 0 ok, 1 a build or verify failed, 2 bad input (config, flags, plugin), 130 cancelled.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string name = "build";
  if (!args.empty() && args[0].rfind("-", 0) != 0) {
    name = args[0];
    args.erase(args.begin());
  } else if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    usage();
    return 0;
  } else if (!args.empty() && args[0] == "--version") {
    name = "version";
  }
  const lcake::cli::Command* command = nullptr;
  for (const auto& c : lcake::cli::commands())
    if (name == c.name) command = &c;
  if (!command) {
    std::fprintf(stderr, "lcake: unknown command '%s'; run `lcake --help` for the list\n", name.c_str());
    return 2;
  }
  try {
    return command->run(args);
  } catch (const boost::program_options::error& e) {
    std::fprintf(stderr, "lcake %s: %s; see `lcake %s --help`\n", name.c_str(), e.what(), name.c_str());
    return 2;
  } catch (const lcake::InputError& e) {
    std::string msg = lcake::core::Redactor::instance().apply(e.what());
    std::fprintf(stderr, "lcake: error: %s\n", msg.c_str());
    return 2;
  } catch (const lcake::Cancelled&) {
    std::fprintf(stderr, "lcake: cancelled\n");
    return 130;
  } catch (const std::exception& e) {
    std::string msg = lcake::core::Redactor::instance().apply(e.what());
    std::fprintf(stderr, "lcake: error: %s\n", msg.c_str());
    return 1;
  }
}
