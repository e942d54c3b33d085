// The Redactor: every form a secret takes in lcake's output is hidden.
#include <doctest/doctest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "redactor.h"

using namespace lcake::core;

namespace {

// An encoder independent of the Redactor's: RFC 4648, with padding.
std::string base64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += a[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += a[(v >> 18) & 63], out += a[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += a[(v >> 18) & 63], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += '=';
  }
  return out;
}

}  // namespace

TEST_CASE("redactor: the value itself, wherever it is in a line") {
  Redactor::instance().add("plain-token-1234");
  CHECK(Redactor::instance().apply("a plain-token-1234 b plain-token-1234") == "a <redacted> b <redacted>");
}

TEST_CASE("redactor: values under 6 characters are not redacted") {
  Redactor::instance().add("abcde");
  CHECK(Redactor::instance().apply("abcde a b c") == "abcde a b c");
  CHECK(Redactor::forms("abcde").empty());
  CHECK(!Redactor::forms("abcdef").empty());
}

TEST_CASE("redactor: each line of a multi-line secret, and its JSON-escaped form") {
  std::string secret = "-----BEGIN KEY-----\nline-one-AAAA\r\nline-two-BBBB\n-----END KEY-----";
  Redactor::instance().add(secret);
  auto& r = Redactor::instance();
  CHECK(r.apply("got line-one-AAAA") == "got <redacted>");
  CHECK(r.apply("line-two-BBBB!") == "<redacted>!");
  std::string json = nlohmann::json({{"m", "x " + secret}}).dump();
  CHECK(json.find("line-one") != std::string::npos);  // escaped newlines: one JSON string
  std::string out = r.apply(json);
  CHECK(out.find("line-one") == std::string::npos);
  CHECK(out.find("line-two") == std::string::npos);
  CHECK(nlohmann::json::parse(out)["m"] == "x <redacted>");
}

TEST_CASE("redactor: URL-encoded forms (%XX either case, + for space)") {
  std::string secret = "p@ss w/rd:x+y";
  Redactor::instance().add(secret);
  auto& r = Redactor::instance();
  CHECK(r.apply("https://u:p%40ss%20w%2Frd%3Ax%2By@host/") == "https://u:<redacted>@host/");
  CHECK(r.apply("q=p%40ss+w%2frd%3ax%2by&z=1") == "q=<redacted>&z=1");
}

TEST_CASE("redactor: base64 forms at any offset inside a longer encoding") {
  std::string secret = "b64-secret-value-42";
  Redactor::instance().add(secret);
  auto& r = Redactor::instance();
  for (std::string prefix : {"", "x", "xy", "user:", "Authorization-ish "}) {
    std::string encoded = base64(prefix + secret + "!tail");
    std::string out = r.apply("Basic " + encoded);
    CAPTURE(prefix);
    CAPTURE(encoded);
    std::size_t at = out.find("<redacted>");
    REQUIRE(at != std::string::npos);
    // What is left carries none of the secret's bits: on the left only characters encoding the
    // prefix alone, on the right only characters encoding the tail alone (and padding).
    std::size_t p = prefix.size(), n = p + secret.size() + 5;
    std::size_t data_chars = (n * 8 + 5) / 6, padding = encoded.size() - data_chars;
    std::size_t left_max = p * 8 / 6, right_max = data_chars - ((p + secret.size()) * 8 + 5) / 6 + padding;
    CHECK(at - 6 <= left_max);
    CHECK(out.size() - (at + 10) <= right_max);
    CHECK(out.substr(0, at) == "Basic " + encoded.substr(0, at - 6));
  }
  // URL-safe alphabet too.
  std::string std_form = base64(secret + "?\?>");
  std::string url_form = std_form;
  for (auto& c : url_form) c = c == '+' ? '-' : c == '/' ? '_' : c;
  CHECK(r.apply(url_form).find("<redacted>") != std::string::npos);
}

TEST_CASE("redactor: hex forms, either case") {
  std::string secret = "hex-secret-9";
  Redactor::instance().add(secret);
  std::string lower, upper;
  for (unsigned char c : secret) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", c), lower += b;
    std::snprintf(b, sizeof b, "%02X", c), upper += b;
  }
  CHECK(Redactor::instance().apply("dump: 00" + lower + "ff") == "dump: 00<redacted>ff");
  CHECK(Redactor::instance().apply(upper) == "<redacted>");
}

TEST_CASE("redactor: the well-known list") {
  CHECK(Redactor::is_known_secret_variable("OS_PASSWORD"));
  CHECK(Redactor::is_known_secret_variable("AWS_SECRET_ACCESS_KEY"));
  CHECK_FALSE(Redactor::is_known_secret_variable("HOME"));
}
