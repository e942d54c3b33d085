// AWS credentials found the way the AWS CLI finds them, in its order:
// environment, the profile (static keys, role_arn + source_profile,
// web_identity_token_file, credential_process), web identity from the
// environment, container credentials, then the EC2 instance profile (IMDSv2).
// Temporary credentials are refreshed 5 minutes before they expire; every
// secret is given to ctx.redact().
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "aws_config.h"
#include "lcake/context.hpp"
#include "sigv4.h"

namespace lcake::aws {

struct Credentials {
  SigningKeys keys;
  std::optional<std::chrono::system_clock::time_point> expiration;  // none: long-term
  std::string source;  // "environment", "profile dev (credentials file)", "assume role arn:... via profile x", ...
};

// One source of credentials. fetch() does the work and may be called again to refresh.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  virtual Credentials fetch() = 0;
  virtual std::string describe() const = 0;
};

// Caches a source's credentials, refreshing them shortly before expiry. Thread-safe.
class CredentialProvider {
 public:
  CredentialProvider(std::unique_ptr<CredentialSource> source, Context& ctx,
                     std::chrono::seconds refresh_before = std::chrono::minutes(5));
  Credentials get();
  std::string describe() const { return source_->describe(); }
  void invalidate();  // the next get() fetches again (e.g. after ExpiredToken)

 private:
  std::unique_ptr<CredentialSource> source_;
  Context& ctx_;
  std::chrono::seconds refresh_before_;
  std::mutex mu_;
  std::optional<Credentials> cached_;
};

// The chain as the CLI walks it. Throws InputError listing each source tried
// and what each lacked when none has credentials. IMDS is skipped when
// AWS_EC2_METADATA_DISABLED=true.
std::shared_ptr<CredentialProvider> default_credentials(const AwsConfig& config, Context& ctx);

// The individual sources (exposed for tests and for the verifier's own needs).
std::unique_ptr<CredentialSource> static_source(Credentials c);
// Static keys / role / web identity / process of one profile; nullptr if the profile has none.
std::unique_ptr<CredentialSource> profile_source(const AwsConfig& config, const std::string& profile,
                                                 Context& ctx);
std::unique_ptr<CredentialSource> assume_role_source(const AwsConfig& config,
                                                     std::shared_ptr<CredentialProvider> base,
                                                     const std::string& role_arn,
                                                     const std::string& session_name,
                                                     const std::string& external_id, Context& ctx);
std::unique_ptr<CredentialSource> web_identity_source(const AwsConfig& config,
                                                      const std::string& token_file,
                                                      const std::string& role_arn,
                                                      const std::string& session_name, Context& ctx);
std::unique_ptr<CredentialSource> process_source(const std::string& command, const std::string& profile,
                                                 Context& ctx);
// full_uri or relative_uri (relative to http://169.254.170.2); token or token_file may be empty.
std::unique_ptr<CredentialSource> container_source(const std::string& full_uri, const std::string& token,
                                                   const std::string& token_file, Context& ctx);
// endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254.
std::unique_ptr<CredentialSource> imds_source(const std::string& endpoint, Context& ctx);

// Parses the JSON of credential_process / container endpoints / IMDS
// (AccessKeyId, SecretAccessKey, Token or SessionToken, Expiration).
Credentials credentials_from_json(const std::string& text, const std::string& source);
// ISO 8601 "2026-12-01T19:00:00Z" (fractions and offsets accepted).
std::optional<std::chrono::system_clock::time_point> parse_iso8601(const std::string& s);

}  // namespace lcake::aws
