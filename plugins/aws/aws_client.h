// A signed AWS API call: SigV4 (sigv4.h) over lcake::http with its retries
// (throttling, 5xx, dropped connections: backoff with jitter), the clock-skew
// retry with the server's Date, and AWS's error shapes turned into one-line
// AwsError messages (service, action, code, message; never a secret).
#pragma once
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <string>

#include "aws_config.h"
#include "credentials.h"
#include "lcake/common/http_client.h"
#include "lcake/context.hpp"
#include "lcake/errors.hpp"

namespace lcake::aws {

// An error answer from AWS. what(): "aws ec2 RegisterImage: InvalidAMIName.Duplicate: ...", or with
// the resource the call was about: "aws ebs PutSnapshotBlock snap-0123 block 7: InternalServerException: ...".
struct AwsError : BuildError {
  AwsError(std::string service, std::string action, long status, std::string code, std::string message,
           std::string resource = "");
  std::string service, action, code, message, resource;
  long status;
};

struct AwsRequest {
  Service service = Service::ec2;
  std::string action;  // for errors and logs ("PutSnapshotBlock")
  // What the call is about, for errors ("snap-0123 block 7"); empty: taken from the path (EBS
  // snapshots, S3 objects) or, for query calls, from the parameters naming an ID.
  std::string resource;
  std::string method = "GET";
  std::string path = "/";  // %-encoded as sent
  Pairs query;             // decoded; encoded and sorted when sent
  Pairs headers;           // extra headers, e.g. {"content-type", "application/json"}
  std::string body;
  // Streamed body instead of `body` (S3 parts): payload_hash must be its hex SHA-256.
  std::function<std::size_t(char*, std::size_t)> body_reader;
  std::function<void()> rewind;
  std::uint64_t body_size = 0;
  std::string payload_hash;
  std::function<void(std::string_view)> on_body;  // stream a 2xx answer
  std::function<void(std::uint64_t, std::uint64_t)> on_upload_progress;
  bool unsigned_request = false;  // AssumeRoleWithWebIdentity
  bool cancellable = true;        // false for cleanup calls (reap after Ctrl-C)
  std::chrono::milliseconds timeout{120000};
};

struct ClientOptions {
  std::string region;  // empty: the config's region
  lcake::http::RetryPolicy retry;  // prepare/retry_on are set by the client
  // Per-try limit on any one request (and on a transfer that stalls): a server that does not
  // answer fails the try, which is retried as a dropped connection. Zero: the request's own.
  std::chrono::milliseconds request_timeout{0};
  std::string ca_file;
};

class AwsClient {
 public:
  // credentials may be null only for unsigned requests.
  AwsClient(AwsConfig config, std::shared_ptr<CredentialProvider> credentials, Context& ctx,
            ClientOptions options = {});

  // Sends; throws AwsError for any non-2xx answer, BuildError for transport failures.
  lcake::http::HttpResponse send(AwsRequest request) const;

  // EC2 query API (form POST, Version 2016-11-15): the response document.
  pugi::xml_document ec2(const std::string& action, const Pairs& params,
                         bool cancellable = true) const;
  // Any query-protocol service (STS, IAM): form POST Action/Version.
  pugi::xml_document query(Service service, const std::string& action, const std::string& version,
                           const Pairs& params, bool sign = true, bool cancellable = true) const;
  // REST-JSON (EBS direct): JSON body (null: none), JSON answer (empty object when empty).
  nlohmann::json rest_json(Service service, const std::string& action, const std::string& method,
                           const std::string& path, const nlohmann::json& body = nullptr,
                           const Pairs& headers = {}, bool cancellable = true) const;
  // JSON 1.1 RPC (SSM): X-Amz-Target "<target_prefix>.<action>".
  nlohmann::json json_rpc(Service service, const std::string& target_prefix, const std::string& action,
                          const nlohmann::json& body, bool cancellable = true) const;

  const std::string& region() const { return region_; }
  std::string endpoint(Service s) const { return config_.endpoint(s, region_); }
  const AwsConfig& config() const { return config_; }
  const std::shared_ptr<CredentialProvider>& credentials() const { return credentials_; }
  Context& context() const { return ctx_; }
  // The same client in another region (CopyImage targets).
  AwsClient in_region(const std::string& region) const;
  long clock_offset() const { return clock_offset_->load(); }

 private:
  AwsConfig config_;
  std::shared_ptr<CredentialProvider> credentials_;
  Context& ctx_;
  ClientOptions options_;
  std::string region_;
  std::shared_ptr<std::atomic<long>> clock_offset_;
};

// Error code and message from an AWS error body (EC2/S3/STS XML, JSON `__type`/
// `message`, or the x-amzn-ErrorType header); code "HTTP <status>" when neither.
std::pair<std::string, std::string> parse_aws_error(const lcake::http::HttpResponse& response);

// Whether an answer is worth another try: 429, 500, 502, 503, 504, and the throttling codes of
// every protocol (EC2 RequestLimitExceeded, S3 SlowDown, EBS RequestThrottledException, ...).
bool retryable_answer(const lcake::http::HttpResponse& response);

// EC2 helpers: text of the first matching descendant ("imageId"), and "Name.N" params.
std::string xml_text(const pugi::xml_node& node, const char* child);
void add_list(Pairs& params, const std::string& prefix, const std::vector<std::string>& values);
// "TagSpecification.N.ResourceType/Tag.M.Key/Value".
void add_tag_specification(Pairs& params, int n, const std::string& resource_type,
                           const std::vector<std::pair<std::string, std::string>>& tags);

}  // namespace lcake::aws
