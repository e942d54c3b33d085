// Runs the real lcake binary for end-to-end tests.
#pragma once
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lcake::test {

struct ProcessResult {
  int exit_code = -1;
  std::string out, err;
};

struct RunSpec {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to the environment
  std::filesystem::path cwd;
  // Send `signal` once stderr contains `signal_when` (or after signal_after when it is empty).
  std::optional<int> signal;
  std::string signal_when;
  std::chrono::milliseconds signal_after{0};
  int signal_count = 1;
  std::chrono::seconds timeout{300};
};

ProcessResult run_process(const std::string& program, const RunSpec& spec);

std::filesystem::path lcake_binary();  // $LCAKE_BINARY_DIR/bin/lcake
std::filesystem::path source_dir();    // $LCAKE_SOURCE_DIR
std::filesystem::path make_temp_dir(const std::string& prefix);
void write_file(const std::filesystem::path& p, const std::string& text);
std::string read_file(const std::filesystem::path& p);
// How often `needle` occurs in `text` (e.g. "cached" lines in lcake's log).
int count(const std::string& text, const std::string& needle);
// Running qemu-system processes whose command line mentions `needle` (e.g. a state dir).
int qemu_processes_mentioning(const std::string& needle);

}  // namespace lcake::test
