#include "host_tools.h"

#include <unistd.h>

#include <deque>
#include <fstream>

#include "lcake/detail/posix_process.hpp"

namespace fs = std::filesystem;

namespace lcake::qemu {

fs::path find_program(const std::string& name, const std::string& setting) {
  auto found = lcake::detail::find_in_path(name);
  if (!found.empty() && ::access(found.c_str(), X_OK) == 0) return found;
  throw ValueError("settings", setting, "program '" + name + "' not found: install it or set the full path");
}

std::string stdout_of(Context& ctx, const std::vector<std::string>& argv) {
  std::string out, last_err;
  ProcessSpec spec;
  spec.argv = argv;
  spec.on_output = [&](std::string_view line, bool is_stderr) {
    if (is_stderr) {
      last_err = line;
      ctx.debug(std::string(argv[0]) + ": " + std::string(line));
    } else {
      out.append(line).push_back('\n');
    }
  };
  auto p = ctx.spawn(spec);
  int code = p->wait();
  if (code != 0) {
    std::string cmd;
    for (auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw BuildError(cmd + " failed (exit " + std::to_string(code) + ")" + (last_err.empty() ? "" : ": " + last_err));
  }
  return out;
}

static std::string printable(const std::string& line) {
  // Keep printable text; drop ANSI escape sequences (firmware clears the screen on reboot).
  std::string clean;
  for (size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c == 0x1b) {
      if (i + 1 < line.size() && line[i + 1] == '[') {
        for (i += 2; i < line.size() && !std::isalpha(static_cast<unsigned char>(line[i])); ++i) {}
      } else {
        ++i;
      }
    } else if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
      clean += static_cast<char>(c);
    }
  }
  // Valid UTF-8 only (the text ends up in JSON: events, the manifest): a console line may hold
  // a multi-byte character cut by a terminal escape or by the guest itself; such bytes become '?'.
  std::string out;
  for (size_t i = 0; i < clean.size();) {
    auto c = static_cast<unsigned char>(clean[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= clean.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(clean[i + k]) & 0xc0) == 0x80;
    if (ok) out.append(clean, i, n), i += n;
    else out += '?', ++i;
  }
  return out;
}

std::string file_tail(const fs::path& file, int lines) {
  std::ifstream in(file, std::ios::binary);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    auto clean = printable(line);
    if (clean.find_first_not_of(' ') == std::string::npos) continue;
    last.push_back(clean);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (auto& l : last) out += l + "\n";
  return out;
}

std::string last_line_with(const fs::path& file, const std::string& needle) {
  std::ifstream in(file, std::ios::binary);
  std::string found;
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) found = printable(line);
  return found;
}

}  // namespace lcake::qemu
