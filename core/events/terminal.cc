#include "terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace lcake::core {

void FileTerminal::write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

int FileTerminal::width() const {
  winsize ws{};
  if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

bool is_smart_terminal(FILE* out) {
  if (!::isatty(::fileno(out))) return false;
  const char* term = std::getenv("TERM");
  if (!term || std::string(term).empty() || std::string(term) == "dumb") return false;
  const char* ci = std::getenv("CI");
  return !(ci && *ci);
}

}  // namespace lcake::core
