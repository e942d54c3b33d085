// AWS Signature Version 4 over OpenSSL EVP: canonical request, string to sign,
// signing key and the Authorization header, for every service lcake talks to
// (EC2/STS query, EBS direct REST-JSON with binary bodies, S3 REST-XML, SSM
// JSON 1.1). The payload hash is always the real SHA-256 of the body.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lcake::aws {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct SigningKeys {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: long-term keys
};

// What the signature covers. `path` is the path as sent on the wire (already
// %-encoded); `query` the raw query string after '?' (may be empty); `headers`
// every header to sign (names in any case; repeated names allowed).
struct SignInput {
  std::string method;
  std::string path = "/";
  std::string query;
  Pairs headers;
  std::string payload_hash;  // hex SHA-256 of the body
  std::string region;
  std::string service;
  std::string amz_date;  // "20150830T123600Z"
};

// S3 signs the path as sent; every other service normalizes it (dot segments,
// double slashes) and encodes it once more.
bool service_uses_raw_path(std::string_view service);

// %-encodes per SigV4: A-Z a-z 0-9 - _ . ~ stay; '/' stays when keep_slash.
std::string uri_encode(std::string_view s, bool keep_slash);
std::string uri_decode(std::string_view s);
// "a=1&b=2" from decoded pairs, encoded and sorted as SigV4 wants (usable as a query or form body).
std::string canonical_query(const Pairs& decoded);
// Re-encodes and sorts a raw query string.
std::string canonical_query_string(std::string_view raw_query);

std::string canonical_request(const SignInput& in);
std::string signed_header_names(const Pairs& headers);  // "host;x-amz-date"
std::string credential_scope(const SignInput& in);      // "20150830/us-east-1/service/aws4_request"
std::string string_to_sign(const SignInput& in);
// The derived key: HMAC chain over date, region, service, "aws4_request" (raw bytes).
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);
std::string signature(const SignInput& in, const SigningKeys& keys);  // hex
std::string authorization_header(const SignInput& in, const SigningKeys& keys);  // the value

std::string sha256_hex(std::string_view bytes);
std::string sha256_bytes(std::string_view bytes);  // raw 32 bytes
std::string sha256_base64(std::string_view bytes);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw bytes
std::string hex(std::string_view bytes);

// "20150830T123600Z" for now + offset_seconds (the server's clock skew).
std::string amz_date_now(long offset_seconds = 0);
// Seconds to add to our clock to match an HTTP Date header ("Sun, 30 Aug 2015 12:36:00 GMT"); 0 if unparsable.
long clock_offset_from_http_date(std::string_view date);

}  // namespace lcake::aws
