// Where the text view writes: a terminal (or a fake one in tests).
#pragma once
#include <cstdio>
#include <string_view>

namespace lcake::core {

class Terminal {
 public:
  virtual ~Terminal() = default;
  virtual void write(std::string_view text) = 0;  // flushed at once
  virtual int width() const { return 80; }
};

class FileTerminal : public Terminal {
 public:
  explicit FileTerminal(FILE* out) : out_(out) {}
  void write(std::string_view text) override;
  int width() const override;  // columns of the tty, 80 when unknown

 private:
  FILE* out_;
};

// A live status block makes sense: a tty, TERM not "dumb", not in CI ($CI unset).
bool is_smart_terminal(FILE* out);

}  // namespace lcake::core
