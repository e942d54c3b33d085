// Values that must never be printed. Process-wide: secrets found by any step are
// hidden from every line, event, manifest and error message.
#pragma once
#include <mutex>
#include <set>
#include <string>

namespace lcake::core {

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

}  // namespace lcake::core
