#include "redactor.h"

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace lcake::core {
namespace {

constexpr const char* kRedacted = "<redacted>";

std::string url_encode(const std::string& s, bool upper, bool plus_for_space) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ' && plus_for_space) {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

// The base64 characters of `secret` encoded after `offset` other bytes that
// depend on the secret's bytes alone: what shows up whatever surrounds it.
std::string base64_core(const std::string& secret, std::size_t offset, bool url_safe) {
  const char* alphabet = url_safe ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                  : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(offset, '\0');
  bytes += secret;
  std::string out;
  std::size_t nbits = bytes.size() * 8;
  for (std::size_t bit = 0; bit < nbits; bit += 6) {
    std::size_t first = bit / 8, last = (bit + 5) / 8;
    if (first < offset || last >= bytes.size()) continue;  // depends on bytes around the secret
    unsigned v = 0;
    for (std::size_t b = bit; b < bit + 6; ++b)
      v = (v << 1) | ((static_cast<unsigned char>(bytes[b / 8]) >> (7 - b % 8)) & 1u);
    out += alphabet[v];
  }
  return out;
}

std::string hex_encode(const std::string& s, bool upper) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += hex[c >> 4], out += hex[c & 0xf];
  return out;
}

bool is_base64_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '-' || c == '_';
}

}  // namespace

Redactor& Redactor::instance() {
  static Redactor r;
  return r;
}

std::vector<std::string> Redactor::forms(const std::string& secret) { return forms(secret, nullptr); }

std::vector<std::string> Redactor::forms(const std::string& secret, std::set<std::string>* base64_forms) {
  std::vector<std::string> out;
  if (secret.size() < kMinLength) return out;
  auto put = [&](const std::string& f, bool b64 = false) {
    if (f.size() < kMinLength) return;
    out.push_back(f);
    if (b64 && base64_forms) base64_forms->insert(f);
  };
  auto encodings = [&](const std::string& v) {
    put(v);
    std::string json = nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    put(json.substr(1, json.size() - 2));
    for (bool upper : {true, false})
      for (bool plus : {false, true}) put(url_encode(v, upper, plus));
    for (bool upper : {false, true}) put(hex_encode(v, upper));
    for (std::size_t offset = 0; offset < 3; ++offset)
      for (bool url_safe : {false, true}) put(base64_core(v, offset, url_safe), true);
  };
  encodings(secret);
  // Output is logged line by line: each line of a multi-line secret on its own.
  if (secret.find('\n') != std::string::npos) {
    std::size_t start = 0;
    while (start <= secret.size()) {
      std::size_t end = secret.find('\n', start);
      if (end == std::string::npos) end = secret.size();
      std::string line = secret.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() >= kMinLength) encodings(line);
      start = end + 1;
    }
  }
  return out;
}

void Redactor::add(const std::string& secret) {
  std::set<std::string> b64;
  auto all = forms(secret, &b64);
  std::lock_guard lock(mu_);
  secrets_.insert(all.begin(), all.end());
  base64_.insert(b64.begin(), b64.end());
}

std::string Redactor::apply(std::string text) const {
  std::lock_guard lock(mu_);
  for (const auto& s : secrets_) {  // longest first: a value's encoded form before its lines
    std::size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      std::size_t begin = pos, end = pos + s.size();
      // A base64 form's neighbouring characters each carry a few of the secret's bits (the
      // sextets shared with the bytes around it): they go too, with the padding.
      if (base64_.count(s)) {
        if (begin > 0 && is_base64_char(text[begin - 1])) --begin;
        if (end < text.size() && is_base64_char(text[end])) ++end;
        while (end < text.size() && text[end] == '=') ++end;
      }
      text.replace(begin, end - begin, kRedacted);
      pos = begin + std::char_traits<char>::length(kRedacted);
    }
  }
  return text;
}

const std::vector<std::string>& Redactor::known_secret_variables() {
  static const std::vector<std::string> names = {
      "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OS_PASSWORD", "OS_TOKEN",
      "OS_APPLICATION_CREDENTIAL_SECRET", "DOCKER_PASSWORD", "REGISTRY_PASSWORD", "LCAKE_SECRET"};
  return names;
}

bool Redactor::is_known_secret_variable(const std::string& name) {
  for (const auto& n : known_secret_variables())
    if (n == name) return true;
  return false;
}

void Redactor::add_known_environment() {
  for (const auto& name : known_secret_variables()) {
    if (const char* v = std::getenv(name.c_str())) add(v);
  }
}

}  // namespace lcake::core
