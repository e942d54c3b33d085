// All terminal output of a run goes through one EventLog: whole lines, never
// interleaved, prefixed per build ("==> centos-7/stack: "), secrets redacted;
// or, with --json, one JSON event per line.
#pragma once
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "lcake/context.hpp"

namespace lcake::core {

// Values that must never be printed. Process-wide: secrets found by any step are
// hidden from every line.
class Redactor {
 public:
  static Redactor& instance();
  void add(const std::string& secret);
  std::string apply(std::string text) const;
  // Adds the values of well-known secret environment variables
  // (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, OS_PASSWORD, OS_TOKEN, ...).
  void add_known_environment();

 private:
  mutable std::mutex mu_;
  std::set<std::string> secrets_;
};

class EventLog {
 public:
  EventLog(FILE* out, bool json, lcake::LogLevel min_level);
  void log(lcake::LogLevel level, std::string_view scope, std::string_view message);
  // A structured event: in JSON mode printed as is (plus time); in text mode
  // `text` is printed as a log line when non-empty.
  void event(const std::string& name, nlohmann::json fields, std::string_view scope,
             std::string_view text);
  bool json() const { return json_; }
  lcake::LogLevel min_level() const { return min_level_; }

 private:
  void write_line(const std::string& line);
  FILE* out_;
  bool json_;
  lcake::LogLevel min_level_;
  std::mutex mu_;
};

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

lcake::LogLevel parse_log_level(const std::string& name);  // throws InputError
const char* level_name(lcake::LogLevel level);

}  // namespace lcake::core
