// Values that must never be printed. Process-wide: secrets found by any step are
// hidden from every line, event, manifest, error message and state record.
#pragma once
#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace lcake::core {

class Redactor {
 public:
  // A value shorter than this is not redacted (it would hide every "a" in the
  // log); the config refuses to mark one sensitive (docs/configuration.md).
  static constexpr std::size_t kMinLength = 6;

  static Redactor& instance();
  // Registers a secret and the forms it takes in lcake's output: the value, each
  // line of a multi-line value, its JSON-escaped, URL-encoded, hex (either case) and base64
  // forms (standard and URL-safe alphabets, at any offset inside a longer encoding; the
  // characters at either edge of a base64 form, which mix the secret's bits with its
  // neighbours', are hidden with it).
  // Values shorter than kMinLength are ignored.
  void add(const std::string& secret);
  std::string apply(std::string text) const;
  // Adds the values of well-known secret environment variables
  // (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, OS_PASSWORD, OS_TOKEN, ...).
  void add_known_environment();
  // Is NAME on that list? (A pipeline variable read from it is sensitive by default.)
  static bool is_known_secret_variable(const std::string& name);
  static const std::vector<std::string>& known_secret_variables();

  // The forms add() registers for one value (exposed for tests).
  static std::vector<std::string> forms(const std::string& secret);

 private:
  // The same, also collecting the base64 forms among them.
  static std::vector<std::string> forms(const std::string& secret, std::set<std::string>* base64_forms);
  struct LongestFirst {
    bool operator()(const std::string& a, const std::string& b) const {
      return a.size() != b.size() ? a.size() > b.size() : a < b;
    }
  };
  mutable std::mutex mu_;
  std::set<std::string, LongestFirst> secrets_;
  std::set<std::string> base64_;  // the base64 forms among secrets_ (their edges go too)
};

}  // namespace lcake::core
