#include "sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <stdexcept>

#include "lcake/common/http_client.h"

namespace lcake::aws {
namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Trim and collapse runs of whitespace (including folded lines) to one space.
std::string canonical_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' '), space = false;
    out.push_back(c);
  }
  return out;
}

// RFC 3986 dot-segment removal as botocore does it (empty segments dropped too).
std::string normalize_path(const std::string& path) {
  if (path.empty()) return "/";
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string seg = path.substr(start, end - start);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    start = end + 1;
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (std::size_t i = 0; i < out.size(); ++i) result += (i ? "/" : "") + out[i];
  if (path.back() == '/' && !out.empty()) result += "/";
  return result;
}

std::map<std::string, std::vector<std::string>> header_map(const Pairs& headers) {
  std::map<std::string, std::vector<std::string>> m;
  for (const auto& [k, v] : headers) m[lower(k)].push_back(canonical_value(v));
  return m;
}

}  // namespace

bool service_uses_raw_path(std::string_view service) { return service == "s3"; }

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

std::string uri_decode(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && val(s[i + 1]) >= 0 &&
        val(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(val(s[i + 1]) * 16 + val(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string canonical_query(const Pairs& decoded) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(decoded.size());
  for (const auto& [k, v] : decoded) enc.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

std::string canonical_query_string(std::string_view raw) {
  Pairs decoded;
  std::size_t start = 0;
  while (start < raw.size()) {
    std::size_t end = raw.find('&', start);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view part = raw.substr(start, end - start);
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      if (eq == std::string_view::npos)
        decoded.emplace_back(uri_decode(part), "");
      else
        decoded.emplace_back(uri_decode(part.substr(0, eq)), uri_decode(part.substr(eq + 1)));
    }
    start = end + 1;
  }
  return canonical_query(decoded);
}

std::string signed_header_names(const Pairs& headers) {
  std::string out;
  for (const auto& [name, values] : header_map(headers)) out += (out.empty() ? "" : ";") + name;
  return out;
}

std::string canonical_request(const SignInput& in) {
  std::string uri = service_uses_raw_path(in.service) ? (in.path.empty() ? "/" : in.path)
                                                      : uri_encode(normalize_path(in.path), true);
  std::string out = in.method + "\n" + uri + "\n" + canonical_query_string(in.query) + "\n";
  for (const auto& [name, values] : header_map(in.headers)) {
    out += name + ":";
    for (std::size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + values[i];
    out += "\n";
  }
  out += "\n" + signed_header_names(in.headers) + "\n" + in.payload_hash;
  return out;
}

std::string credential_scope(const SignInput& in) {
  return in.amz_date.substr(0, 8) + "/" + in.region + "/" + in.service + "/aws4_request";
}

std::string string_to_sign(const SignInput& in) {
  return "AWS4-HMAC-SHA256\n" + in.amz_date + "\n" + credential_scope(in) + "\n" +
         sha256_hex(canonical_request(in));
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  std::string k = hmac_sha256("AWS4" + std::string(secret), date);
  k = hmac_sha256(k, region);
  k = hmac_sha256(k, service);
  return hmac_sha256(k, "aws4_request");
}

std::string signature(const SignInput& in, const SigningKeys& keys) {
  std::string key = signing_key(keys.secret_access_key, in.amz_date.substr(0, 8), in.region, in.service);
  return hex(hmac_sha256(key, string_to_sign(in)));
}

std::string authorization_header(const SignInput& in, const SigningKeys& keys) {
  return "AWS4-HMAC-SHA256 Credential=" + keys.access_key_id + "/" + credential_scope(in) +
         ", SignedHeaders=" + signed_header_names(in.headers) + ", Signature=" + signature(in, keys);
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out.push_back(digits[c >> 4]), out.push_back(digits[c & 15]);
  return out;
}

std::string sha256_bytes(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL SHA-256 failed");
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string sha256_hex(std::string_view bytes) { return hex(sha256_bytes(bytes)); }
std::string sha256_base64(std::string_view bytes) { return lcake::http::base64_encode(sha256_bytes(bytes)); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string amz_date_now(long offset_seconds) {
  std::time_t t = std::time(nullptr) + offset_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

long clock_offset_from_http_date(std::string_view date) {
  std::tm tm{};
  std::string s(date);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return 0;
  return static_cast<long>(timegm(&tm) - std::time(nullptr));
}

}  // namespace lcake::aws
