// What the qemu plugin needs around the local tools it runs through Context::spawn/run
// (qemu-system, qemu-img, mkfs.vfat, mcopy): finding a program a setting names, and reading
// the tail of a console or log file for error messages.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "lcake/context.hpp"

namespace lcake::qemu {

// Looks `name` up in PATH (or takes it as is when it contains a '/'). Throws a ValueError on
// `setting` (a pointer into the settings, "/qemu_binary") when it is not found.
std::filesystem::path find_program(const std::string& name, const std::string& setting);

// Runs argv to completion through ctx.run and returns its standard output only (stderr goes to
// the step's log); a non-zero exit is a BuildError naming the command and its last line.
std::string stdout_of(Context& ctx, const std::vector<std::string>& argv);

// The last `lines` non-blank lines of a text file, control characters removed.
std::string file_tail(const std::filesystem::path& file, int lines);
// The last line of a text file containing `needle` ("" when none), cleaned like file_tail.
std::string last_line_with(const std::filesystem::path& file, const std::string& needle);

}  // namespace lcake::qemu
