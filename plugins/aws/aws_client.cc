#include "aws_client.h"

#include <algorithm>

namespace lcake::aws {
namespace {

struct Endpoint {
  std::string base;  // scheme://host[:port]
  std::string host;  // host[:port], the Host header
  std::string path;  // base path without trailing '/'
};

Endpoint split_endpoint(const std::string& url) {
  std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) throw InputError("AWS endpoint '" + url + "' is not a URL (want https://host)");
  std::size_t slash = url.find('/', scheme + 3);
  Endpoint e;
  e.base = url.substr(0, slash);
  e.host = url.substr(scheme + 3, slash == std::string::npos ? std::string::npos : slash - scheme - 3);
  if (slash != std::string::npos) e.path = url.substr(slash);
  while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
  // Host omits the scheme's default port, as botocore and curl send it.
  if (url.rfind("https://", 0) == 0 && e.host.size() > 4 && e.host.ends_with(":443")) e.host.resize(e.host.size() - 4);
  if (url.rfind("http://", 0) == 0 && e.host.size() > 3 && e.host.ends_with(":80")) e.host.resize(e.host.size() - 3);
  return e;
}

bool contains(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

// The resource a request is about, from its path: EBS snapshots and blocks, S3 objects.
std::string resource_of_path(Service service, const std::string& path) {
  if (service == Service::ebs) {
    static const std::string prefix = "/snapshots/";
    if (path.rfind(prefix, 0) != 0) return "";
    std::string rest = path.substr(prefix.size());
    if (rest.rfind("completion/", 0) == 0) return rest.substr(11);
    std::size_t slash = rest.find('/');
    std::string snap = rest.substr(0, slash);
    static const std::string blocks = "/blocks/";
    if (slash != std::string::npos && rest.compare(slash, blocks.size(), blocks) == 0)
      return snap + " block " + rest.substr(slash + blocks.size());
    return snap;
  }
  if (service == Service::s3 && path.size() > 1) return "s3:/" + path;
  return "";
}

// The ID a query call names, for its errors.
std::string resource_of_params(const Pairs& params) {
  static const char* keys[] = {"ImageId", "ImageId.1", "SourceImageId", "SnapshotId", "SnapshotId.1",
                               "InstanceId", "InstanceId.1", "GroupId", "GroupId.1", "KeyName", "KeyName.1",
                               "ImportTaskId", "ImportTaskId.1", "ResourceId.1"};
  for (const char* k : keys)
    for (const auto& [name, value] : params)
      if (name == k) return value;
  return "";
}

}  // namespace

bool retryable_answer(const lcake::http::HttpResponse& r) {
  if (r.status == 429 || r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504) return true;
  if (r.status == 400 || r.status == 403) {
    auto [code, msg] = parse_aws_error(r);
    return code == "Throttling" || code == "ThrottlingException" || code == "RequestLimitExceeded" ||
           code == "SlowDown" || code == "RequestThrottled" || code == "RequestThrottledException" ||
           code == "ThrottledException" || code == "EC2ThrottledException" ||
           code == "TooManyRequestsException" || code == "BandwidthLimitExceeded" ||
           code == "PriorRequestNotComplete";
  }
  return false;
}

namespace {

bool clock_skewed(const std::string& code, const std::string& message) {
  return code == "RequestTimeTooSkewed" || code == "RequestExpired" || code == "RequestInTheFuture" ||
         ((code == "SignatureDoesNotMatch" || code == "InvalidSignatureException") &&
          (contains(message, "expired") || contains(message, "Signature not yet current") ||
           contains(message, "skew")));
}

}  // namespace

AwsError::AwsError(std::string service_, std::string action_, long status_, std::string code_,
                   std::string message_, std::string resource_)
    : BuildError("aws " + service_ + " " + action_ + (resource_.empty() ? "" : " " + resource_) + ": " + code_ +
                 (message_.empty() ? "" : ": " + message_) + " (HTTP " + std::to_string(status_) + ")"),
      service(std::move(service_)), action(std::move(action_)), code(std::move(code_)),
      message(std::move(message_)), resource(std::move(resource_)), status(status_) {}

std::pair<std::string, std::string> parse_aws_error(const lcake::http::HttpResponse& r) {
  std::string code, message;
  std::string body = r.body;
  std::size_t start = body.find_first_not_of(" \t\r\n");
  if (start != std::string::npos && body[start] == '<') {
    pugi::xml_document doc;
    if (doc.load_buffer(body.data(), body.size())) {
      if (auto n = doc.select_node("//*[local-name()='Code']")) code = n.node().text().get();
      if (auto n = doc.select_node("//*[local-name()='Message']")) message = n.node().text().get();
    }
  } else if (start != std::string::npos && body[start] == '{') {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object()) {
      for (const char* k : {"__type", "code", "Code"})
        if (j.contains(k) && j[k].is_string()) {
          code = j[k].get<std::string>();
          break;
        }
      for (const char* k : {"message", "Message"})
        if (j.contains(k) && j[k].is_string()) {
          message = j[k].get<std::string>();
          break;
        }
    }
  }
  if (code.empty()) code = r.header("x-amzn-errortype");
  if (auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
  if (auto colon = code.find(':'); colon != std::string::npos) code = code.substr(0, colon);
  if (code.empty()) code = "HTTP " + std::to_string(r.status);
  std::replace(message.begin(), message.end(), '\n', ' ');
  return {code, message};
}

AwsClient::AwsClient(AwsConfig config, std::shared_ptr<CredentialProvider> credentials, Context& ctx,
                     ClientOptions options)
    : config_(std::move(config)), credentials_(std::move(credentials)), ctx_(ctx),
      options_(std::move(options)), clock_offset_(std::make_shared<std::atomic<long>>(0)) {
  region_ = options_.region.empty() ? config_.require_region() : options_.region;
}

AwsClient AwsClient::in_region(const std::string& region) const {
  AwsClient c = *this;
  c.region_ = region;
  c.options_.region = region;
  return c;
}

lcake::http::HttpResponse AwsClient::send(AwsRequest req) const {
  const std::string svc = signing_name(req.service);
  const Endpoint ep = split_endpoint(endpoint(req.service));
  const std::string path = ep.path + (req.path.empty() ? "/" : req.path);
  const std::string query = canonical_query(req.query);
  const bool streamed = static_cast<bool>(req.body_reader);
  const std::string payload_hash = streamed ? req.payload_hash
                                   : !req.payload_hash.empty() ? req.payload_hash
                                                               : sha256_hex(req.body);
  if (!req.unsigned_request && !credentials_)
    throw std::logic_error("AwsClient: a signed request without credentials");

  lcake::http::HttpRequest http;
  http.method = req.method;
  http.url = ep.base + path + (query.empty() ? "" : "?" + query);
  http.body = req.body;
  http.has_body = !req.body.empty() || req.method == "POST" || req.method == "PUT";
  if (streamed) {
    http.body_reader = req.body_reader;
    http.rewind = req.rewind;
    http.body_size = req.body_size;
  }
  http.on_body = req.on_body;
  http.on_upload_progress = req.on_upload_progress;
  http.timeout = req.timeout;
  http.stall_timeout = std::chrono::seconds(60);
  if (options_.request_timeout.count() > 0) {
    // A request without an overall limit (a large S3 part) keeps none; the stall limit still holds.
    if (http.timeout > options_.request_timeout) http.timeout = options_.request_timeout;
    auto stall = std::chrono::duration_cast<std::chrono::seconds>(options_.request_timeout);
    if (stall < http.stall_timeout) http.stall_timeout = std::max(stall, std::chrono::seconds(1));
  }
  if (req.resource.empty()) req.resource = resource_of_path(req.service, req.path);
  const std::string what = svc + " " + req.action + (req.resource.empty() ? "" : " " + req.resource);
  http.cancel = req.cancellable ? &ctx_.cancel() : nullptr;
  http.ca_file = options_.ca_file;

  lcake::http::RetryPolicy policy = options_.retry;
  policy.retry_on = retryable_answer;
  policy.on_retry = [&](int attempt, const std::string& why, std::chrono::milliseconds delay) {
    ctx_.info("aws " + what + ": " + why + "; retry " + std::to_string(attempt) +
              " in " + std::to_string(delay.count()) + " ms");
  };
  int tries = 0;
  policy.prepare = [&](lcake::http::HttpRequest& h) {
    ++tries;
    SignInput in;
    in.method = req.method;
    in.path = path;
    in.query = query;
    in.payload_hash = payload_hash;
    in.region = region_;
    in.service = svc;
    in.amz_date = amz_date_now(clock_offset_->load());
    in.headers = {{"host", ep.host}, {"x-amz-date", in.amz_date}, {"x-amz-content-sha256", payload_hash}};
    for (const auto& kv : req.headers) in.headers.push_back(kv);
    h.headers.clear();
    if (!req.unsigned_request) {
      Credentials c = credentials_->get();
      if (!c.keys.session_token.empty()) in.headers.emplace_back("x-amz-security-token", c.keys.session_token);
      h.headers.push_back("Authorization: " + authorization_header(in, c.keys));
    }
    for (const auto& [k, v] : in.headers)
      if (k != "host") h.headers.push_back(k + ": " + v);
    h.headers.push_back("Host: " + ep.host);
    h.headers.push_back("Expect:");  // no 100-continue round trip
  };

  bool skew_retried = false, token_retried = false;
  for (;;) {
    lcake::http::HttpResponse r;
    try {
      r = lcake::http::http_perform_retrying(http, policy);
    } catch (const lcake::http::HttpFailure& e) {
      throw BuildError("aws " + what + ": cannot reach " + ep.base + ": " + e.what() + " (" +
                       std::to_string(tries) + (tries == 1 ? " try)" : " tries)"));
    }
    if (r.status >= 200 && r.status < 300) return r;
    auto [code, message] = parse_aws_error(r);
    if (!skew_retried && clock_skewed(code, message) && !r.header("date").empty()) {
      long offset = clock_offset_from_http_date(r.header("date"));
      if (offset != 0) {
        skew_retried = true;
        clock_offset_->store(offset);
        ctx_.warn("aws " + what + ": the server's clock differs from ours by " +
                  std::to_string(offset) + " s; signing with the server's time");
        if (http.rewind) http.rewind();
        continue;
      }
    }
    if (!token_retried && credentials_ && (code == "ExpiredToken" || code == "ExpiredTokenException")) {
      token_retried = true;
      credentials_->invalidate();
      if (http.rewind) http.rewind();
      continue;
    }
    throw AwsError(svc, req.action, r.status, code, message, req.resource);
  }
}

pugi::xml_document AwsClient::query(Service service, const std::string& action, const std::string& version,
                                    const Pairs& params, bool sign, bool cancellable) const {
  Pairs all = {{"Action", action}, {"Version", version}};
  all.insert(all.end(), params.begin(), params.end());
  AwsRequest req;
  req.service = service;
  req.action = action;
  req.method = "POST";
  req.body = canonical_query(all);
  req.headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.unsigned_request = !sign;
  req.cancellable = cancellable;
  req.resource = resource_of_params(params);
  auto r = send(std::move(req));
  pugi::xml_document doc;
  if (!doc.load_buffer(r.body.data(), r.body.size()))
    throw BuildError("aws " + std::string(signing_name(service)) + " " + action +
                     ": the answer is not XML (HTTP " + std::to_string(r.status) + ")");
  return doc;
}

pugi::xml_document AwsClient::ec2(const std::string& action, const Pairs& params, bool cancellable) const {
  return query(Service::ec2, action, "2016-11-15", params, true, cancellable);
}

nlohmann::json AwsClient::rest_json(Service service, const std::string& action, const std::string& method,
                                    const std::string& path, const nlohmann::json& body,
                                    const Pairs& headers, bool cancellable) const {
  AwsRequest req;
  req.service = service;
  req.action = action;
  req.method = method;
  req.path = path;
  req.headers = headers;
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.emplace_back("content-type", "application/json");
  }
  req.cancellable = cancellable;
  auto r = send(std::move(req));
  if (r.body.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded())
    throw BuildError("aws " + std::string(signing_name(service)) + " " + action + ": the answer is not JSON");
  return j;
}

nlohmann::json AwsClient::json_rpc(Service service, const std::string& target_prefix, const std::string& action,
                                   const nlohmann::json& body, bool cancellable) const {
  AwsRequest req;
  req.service = service;
  req.action = action;
  req.method = "POST";
  req.body = body.dump();
  req.headers = {{"content-type", "application/x-amz-json-1.1"}, {"x-amz-target", target_prefix + "." + action}};
  req.cancellable = cancellable;
  if (body.is_object() && body.contains("Name") && body["Name"].is_string()) req.resource = body["Name"];
  auto r = send(std::move(req));
  if (r.body.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded())
    throw BuildError("aws " + std::string(signing_name(service)) + " " + action + ": the answer is not JSON");
  return j;
}

std::string xml_text(const pugi::xml_node& node, const char* child) {
  auto found = node.select_node((std::string(".//*[local-name()='") + child + "']").c_str());
  return found ? found.node().text().get() : "";
}

void add_list(Pairs& params, const std::string& prefix, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) params.emplace_back(prefix + "." + std::to_string(i + 1), values[i]);
}

void add_tag_specification(Pairs& params, int n, const std::string& resource_type,
                           const std::vector<std::pair<std::string, std::string>>& tags) {
  std::string p = "TagSpecification." + std::to_string(n) + ".";
  params.emplace_back(p + "ResourceType", resource_type);
  for (std::size_t i = 0; i < tags.size(); ++i) {
    std::string t = p + "Tag." + std::to_string(i + 1) + ".";
    params.emplace_back(t + "Key", tags[i].first);
    params.emplace_back(t + "Value", tags[i].second);
  }
}

}  // namespace lcake::aws
