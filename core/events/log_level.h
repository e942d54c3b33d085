// Log levels by name, and whole lines out of streamed output.
#pragma once
#include <string>
#include <string_view>

#include "lcake/context.hpp"

namespace lcake::core {

lcake::LogLevel parse_log_level(const std::string& name);  // throws InputError
const char* level_name(lcake::LogLevel level);

// Splits streamed chunks into whole lines for one scope and stream.
class LineSplitter {
 public:
  template <class Fn>
  void feed(std::string_view chunk, Fn&& emit) {
    buf_.append(chunk);
    std::size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      std::string line = buf_.substr(0, pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      emit(line);
      buf_.erase(0, pos + 1);
    }
  }
  template <class Fn>
  void flush(Fn&& emit) {
    if (!buf_.empty()) emit(buf_);
    buf_.clear();
  }

 private:
  std::string buf_;
};

}  // namespace lcake::core
