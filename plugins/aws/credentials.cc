#include "credentials.h"

#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "aws_client.h"
#include "lcake/common/http_client.h"

namespace lcake::aws {
namespace {

using Clock = std::chrono::system_clock;

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw InputError(what + ": cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class StaticSource : public CredentialSource {
 public:
  explicit StaticSource(Credentials c) : c_(std::move(c)) {}
  Credentials fetch() override { return c_; }
  std::string describe() const override { return c_.source; }

 private:
  Credentials c_;
};

Credentials from_sts_xml(const pugi::xml_document& doc, const std::string& source) {
  auto creds = doc.select_node("//*[local-name()='Credentials']").node();
  Credentials c;
  c.keys.access_key_id = xml_text(creds, "AccessKeyId");
  c.keys.secret_access_key = xml_text(creds, "SecretAccessKey");
  c.keys.session_token = xml_text(creds, "SessionToken");
  c.expiration = parse_iso8601(xml_text(creds, "Expiration"));
  c.source = source;
  if (c.keys.access_key_id.empty() || c.keys.secret_access_key.empty())
    throw BuildError(source + ": the STS answer has no Credentials");
  return c;
}

// STS in the configured region (regional endpoints), us-east-1 when none is set.
AwsClient sts_client(const AwsConfig& config, std::shared_ptr<CredentialProvider> base, Context& ctx) {
  ClientOptions o;
  o.region = config.region.empty() ? "us-east-1" : config.region;
  o.retry.attempts = 3;
  return AwsClient(config, std::move(base), ctx, o);
}

class AssumeRoleSource : public CredentialSource {
 public:
  AssumeRoleSource(const AwsConfig& config, std::shared_ptr<CredentialProvider> base, std::string role_arn,
                   std::string session, std::string external_id, Context& ctx)
      : config_(config), base_(std::move(base)), role_(std::move(role_arn)), session_(std::move(session)),
        external_id_(std::move(external_id)), ctx_(ctx) {}
  Credentials fetch() override {
    Pairs p = {{"RoleArn", role_}, {"RoleSessionName", session_}};
    if (!external_id_.empty()) p.emplace_back("ExternalId", external_id_);
    auto doc = sts_client(config_, base_, ctx_).query(Service::sts, "AssumeRole", "2011-06-15", p, true, false);
    return from_sts_xml(doc, describe());
  }
  std::string describe() const override { return "assume role " + role_ + " with " + base_->describe(); }

 private:
  AwsConfig config_;
  std::shared_ptr<CredentialProvider> base_;
  std::string role_, session_, external_id_;
  Context& ctx_;
};

class WebIdentitySource : public CredentialSource {
 public:
  WebIdentitySource(const AwsConfig& config, std::string token_file, std::string role_arn, std::string session,
                    Context& ctx)
      : config_(config), token_file_(std::move(token_file)), role_(std::move(role_arn)),
        session_(std::move(session)), ctx_(ctx) {}
  Credentials fetch() override {
    // Read on every refresh: CI systems and Kubernetes rotate the token file.
    std::string token = read_file(token_file_, describe());
    ctx_.redact(token);
    Pairs p = {{"RoleArn", role_}, {"RoleSessionName", session_}, {"WebIdentityToken", token}};
    auto doc = sts_client(config_, nullptr, ctx_)
                   .query(Service::sts, "AssumeRoleWithWebIdentity", "2011-06-15", p, false, false);
    return from_sts_xml(doc, describe());
  }
  std::string describe() const override {
    return "web identity token " + token_file_ + " for role " + role_;
  }

 private:
  AwsConfig config_;
  std::string token_file_, role_, session_;
  Context& ctx_;
};

class ProcessSource : public CredentialSource {
 public:
  ProcessSource(std::string command, std::string profile, Context& ctx)
      : command_(std::move(command)), profile_(std::move(profile)), ctx_(ctx) {}
  Credentials fetch() override {
    std::string out, err;
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", command_};
    spec.timeout = std::chrono::seconds(60);
    // Only stdout is the JSON; neither stream goes to the log (it holds secrets).
    spec.on_output = [&](std::string_view line, bool is_stderr) {
      (is_stderr ? err : out).append(line).push_back('\n');
    };
    auto p = ctx_.spawn(spec);
    int code = p->wait();
    if (code != 0) {
      while (!err.empty() && err.back() == '\n') err.pop_back();
      throw BuildError(describe() + " exited with " + std::to_string(code) +
                       (err.empty() ? "" : ": " + err.substr(err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n') + 1)));
    }
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_object() || j.value("Version", 0) != 1)
      throw BuildError(describe() + ": its output is not a JSON object with \"Version\": 1");
    return credentials_from_json(out, describe());
  }
  std::string describe() const override { return "credential_process of profile " + profile_; }

 private:
  std::string command_, profile_;
  Context& ctx_;
};

lcake::http::HttpResponse metadata_call(lcake::http::HttpRequest r, int attempts) {
  r.connect_timeout = std::chrono::milliseconds(1000);
  r.timeout = std::chrono::milliseconds(3000);
  lcake::http::RetryPolicy policy;
  policy.attempts = attempts;
  policy.initial_delay = std::chrono::milliseconds(100);
  return lcake::http::http_perform_retrying(r, policy);
}

class ContainerSource : public CredentialSource {
 public:
  ContainerSource(std::string uri, std::string token, std::string token_file, Context& ctx)
      : uri_(std::move(uri)), token_(std::move(token)), token_file_(std::move(token_file)), ctx_(ctx) {}
  Credentials fetch() override {
    lcake::http::HttpRequest r;
    r.url = uri_;
    std::string token = token_file_.empty() ? token_ : read_file(token_file_, describe());
    if (!token.empty()) {
      ctx_.redact(token);
      r.headers.push_back("Authorization: " + token);
    }
    r.headers.push_back("Accept: application/json");
    lcake::http::HttpResponse resp;
    try {
      resp = metadata_call(r, 3);
    } catch (const lcake::http::HttpFailure& e) {
      throw BuildError(describe() + ": " + e.what());
    }
    if (resp.status != 200)
      throw BuildError(describe() + " answered HTTP " + std::to_string(resp.status));
    return credentials_from_json(resp.body, describe());
  }
  std::string describe() const override { return "container credentials endpoint " + uri_; }

 private:
  std::string uri_, token_, token_file_;
  Context& ctx_;
};

class ImdsSource : public CredentialSource {
 public:
  ImdsSource(std::string endpoint, Context& ctx) : endpoint_(std::move(endpoint)), ctx_(ctx) {
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  }
  Credentials fetch() override {
    try {
      lcake::http::HttpRequest put;
      put.method = "PUT";
      put.url = endpoint_ + "/latest/api/token";
      put.has_body = true;
      put.headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
      auto t = metadata_call(put, 1);
      if (t.status != 200)
        throw BuildError(describe() + ": the IMDSv2 token request answered HTTP " + std::to_string(t.status));
      std::string token = t.body;
      ctx_.redact(token);
      lcake::http::HttpRequest get;
      get.url = endpoint_ + "/latest/meta-data/iam/security-credentials/";
      get.headers = {"X-aws-ec2-metadata-token: " + token};
      auto roles = metadata_call(get, 2);
      std::string role = roles.body.substr(0, roles.body.find('\n'));
      if (roles.status != 200 || role.empty())
        throw BuildError(describe() + ": the instance has no IAM role (instance profile)");
      get.url += role;
      auto c = metadata_call(get, 2);
      if (c.status != 200)
        throw BuildError(describe() + ": role " + role + " answered HTTP " + std::to_string(c.status));
      auto j = nlohmann::json::parse(c.body, nullptr, false);
      if (j.is_object() && j.value("Code", "Success") != "Success")
        throw BuildError(describe() + ": role " + role + ": " + j.value("Code", "") + " " + j.value("Message", ""));
      return credentials_from_json(c.body, describe() + " (role " + role + ")");
    } catch (const lcake::http::HttpFailure& e) {
      throw BuildError(describe() + ": " + e.what());
    }
  }
  std::string describe() const override { return "EC2 instance metadata (IMDSv2) at " + endpoint_; }

 private:
  std::string endpoint_;
  Context& ctx_;
};

bool loopback_or_container_host(const std::string& uri) {
  std::size_t s = uri.find("://");
  std::string host = uri.substr(s + 3);
  host = host.substr(0, host.find('/'));
  if (!host.empty() && host[0] == '[') host = host.substr(1, host.find(']') - 1);
  else host = host.substr(0, host.find(':'));
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "169.254.170.2" ||
         host == "169.254.170.23" || host == "fd00:ec2::23";
}

std::string session_name() { return "lcake-" + std::to_string(std::time(nullptr)); }

}  // namespace

std::optional<Clock::time_point> parse_iso8601(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  std::time_t t = timegm(&tm);
  if (*rest == '.')
    while (*++rest >= '0' && *rest <= '9') {}
  if ((*rest == '+' || *rest == '-') && std::strlen(rest) >= 6) {
    int h = std::atoi(std::string(rest + 1, 2).c_str()), m = std::atoi(std::string(rest + 4, 2).c_str());
    t -= (*rest == '+' ? 1 : -1) * (h * 3600 + m * 60);
  }
  return Clock::from_time_t(t);
}

Credentials credentials_from_json(const std::string& text, const std::string& source) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) throw BuildError(source + ": the answer is not a JSON object");
  Credentials c;
  c.source = source;
  c.keys.access_key_id = j.value("AccessKeyId", "");
  c.keys.secret_access_key = j.value("SecretAccessKey", "");
  c.keys.session_token = j.value("SessionToken", j.value("Token", ""));
  c.expiration = parse_iso8601(j.value("Expiration", ""));
  if (c.keys.access_key_id.empty() || c.keys.secret_access_key.empty())
    throw BuildError(source + ": the answer lacks AccessKeyId or SecretAccessKey");
  return c;
}

CredentialProvider::CredentialProvider(std::unique_ptr<CredentialSource> source, Context& ctx,
                                       std::chrono::seconds refresh_before)
    : source_(std::move(source)), ctx_(ctx), refresh_before_(refresh_before) {}

Credentials CredentialProvider::get() {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  if (cached_ && (!cached_->expiration || now < *cached_->expiration - refresh_before_)) return *cached_;
  try {
    Credentials c = source_->fetch();
    ctx_.redact(c.keys.secret_access_key);
    if (!c.keys.session_token.empty()) ctx_.redact(c.keys.session_token);
    if (cached_) ctx_.debug("aws: refreshed credentials from " + c.source);
    cached_ = c;
  } catch (const std::exception& e) {
    // Still valid: keep using them and try again on the next call.
    if (cached_ && cached_->expiration && now < *cached_->expiration) {
      ctx_.warn(std::string("aws: refreshing credentials failed, using the current ones: ") + e.what());
      return *cached_;
    }
    throw;
  }
  return *cached_;
}

void CredentialProvider::invalidate() {
  std::lock_guard lock(mu_);
  cached_.reset();
}

std::unique_ptr<CredentialSource> static_source(Credentials c) { return std::make_unique<StaticSource>(std::move(c)); }

std::unique_ptr<CredentialSource> assume_role_source(const AwsConfig& config, std::shared_ptr<CredentialProvider> base,
                                                     const std::string& role_arn, const std::string& session,
                                                     const std::string& external_id, Context& ctx) {
  return std::make_unique<AssumeRoleSource>(config, std::move(base), role_arn, session, external_id, ctx);
}

std::unique_ptr<CredentialSource> web_identity_source(const AwsConfig& config, const std::string& token_file,
                                                      const std::string& role_arn, const std::string& session,
                                                      Context& ctx) {
  return std::make_unique<WebIdentitySource>(config, token_file, role_arn, session, ctx);
}

std::unique_ptr<CredentialSource> process_source(const std::string& command, const std::string& profile,
                                                 Context& ctx) {
  return std::make_unique<ProcessSource>(command, profile, ctx);
}

std::unique_ptr<CredentialSource> container_source(const std::string& uri, const std::string& token,
                                                   const std::string& token_file, Context& ctx) {
  return std::make_unique<ContainerSource>(uri, token, token_file, ctx);
}

std::unique_ptr<CredentialSource> imds_source(const std::string& endpoint, Context& ctx) {
  return std::make_unique<ImdsSource>(endpoint, ctx);
}

namespace {

std::unique_ptr<CredentialSource> profile_source_chain(const AwsConfig& config, const std::string& profile,
                                                       Context& ctx, std::set<std::string>& seen);

std::shared_ptr<CredentialProvider> role_base(const AwsConfig& config, const std::string& profile,
                                              const std::map<std::string, std::string>& v, Context& ctx,
                                              std::set<std::string>& seen) {
  auto get = [&](const char* k) { auto it = v.find(k); return it == v.end() ? std::string() : it->second; };
  std::string src = get("source_profile"), credsrc = get("credential_source");
  std::unique_ptr<CredentialSource> base;
  if (!src.empty()) {
    if (!config.has_profile(src))
      throw InputError("AWS profile " + profile + ": source_profile '" + src + "' is in neither " +
                       config.config_file.string() + " nor " + config.credentials_file.string());
    if (src == profile) {
      auto sv = config.profile_values(src);
      if (!sv.count("aws_access_key_id") || !sv.count("aws_secret_access_key"))
        throw InputError("AWS profile " + profile + " is its own source_profile but has no aws_access_key_id/aws_secret_access_key");
      base = static_source({{sv["aws_access_key_id"], sv["aws_secret_access_key"], sv.count("aws_session_token") ? sv["aws_session_token"] : ""},
                            std::nullopt, "profile " + src});
    } else {
      base = profile_source_chain(config, src, ctx, seen);
      if (!base) throw InputError("AWS profile " + profile + ": its source_profile " + src + " has no credentials");
    }
  } else if (credsrc == "Environment") {
    auto id = config.env("AWS_ACCESS_KEY_ID"), secret = config.env("AWS_SECRET_ACCESS_KEY");
    if (!id || !secret)
      throw InputError("AWS profile " + profile + ": credential_source Environment but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set");
    base = static_source({{*id, *secret, config.env("AWS_SESSION_TOKEN").value_or("")}, std::nullopt, "environment"});
  } else if (credsrc == "Ec2InstanceMetadata") {
    base = imds_source(config.env("AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254"), ctx);
  } else if (credsrc == "EcsContainer") {
    auto full = config.env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    auto rel = config.env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if (!full && !rel)
      throw InputError("AWS profile " + profile + ": credential_source EcsContainer but no AWS_CONTAINER_CREDENTIALS_* variable is set");
    base = container_source(full ? *full : "http://169.254.170.2" + *rel,
                            config.env("AWS_CONTAINER_AUTHORIZATION_TOKEN").value_or(""),
                            config.env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").value_or(""), ctx);
  } else {
    throw InputError("AWS profile " + profile + " has role_arn but neither source_profile nor credential_source");
  }
  return std::make_shared<CredentialProvider>(std::move(base), ctx);
}

std::unique_ptr<CredentialSource> profile_source_chain(const AwsConfig& config, const std::string& profile,
                                                       Context& ctx, std::set<std::string>& seen) {
  if (!seen.insert(profile).second)
    throw InputError("AWS profile " + profile + ": source_profile chain loops back to it");
  auto v = config.profile_values(profile);
  auto get = [&](const char* k) { auto it = v.find(k); return it == v.end() ? std::string() : it->second; };
  std::string session = get("role_session_name").empty() ? session_name() : get("role_session_name");
  if (!get("role_arn").empty() && !get("web_identity_token_file").empty())
    return web_identity_source(config, get("web_identity_token_file"), get("role_arn"), session, ctx);
  if (!get("role_arn").empty())
    return assume_role_source(config, role_base(config, profile, v, ctx, seen), get("role_arn"), session,
                              get("external_id"), ctx);
  bool has_id = !get("aws_access_key_id").empty(), has_secret = !get("aws_secret_access_key").empty();
  if (has_id != has_secret)
    throw InputError("AWS profile " + profile + " has " + (has_id ? "aws_access_key_id but no aws_secret_access_key"
                                                                  : "aws_secret_access_key but no aws_access_key_id"));
  if (has_id) {
    bool in_credentials = config.credentials.section(profile) &&
                          config.credentials.section(profile)->count("aws_access_key_id");
    return static_source({{get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token")},
                          std::nullopt,
                          "profile " + profile + " in " +
                              (in_credentials ? config.credentials_file : config.config_file).string()});
  }
  if (!get("credential_process").empty()) return process_source(get("credential_process"), profile, ctx);
  return nullptr;
}

}  // namespace

std::unique_ptr<CredentialSource> profile_source(const AwsConfig& config, const std::string& profile, Context& ctx) {
  std::set<std::string> seen;
  return profile_source_chain(config, profile, ctx, seen);
}

std::shared_ptr<CredentialProvider> default_credentials(const AwsConfig& config, Context& ctx) {
  std::vector<std::string> tried;
  auto make = [&](std::unique_ptr<CredentialSource> s) {
    auto p = std::make_shared<CredentialProvider>(std::move(s), ctx);
    p->get();  // fail now, naming the source, rather than at the first call
    return p;
  };
  const auto& env = config.env;
  // 1. The environment (skipped when the target names a profile, as --profile does).
  auto id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && !id->empty() && secret && !secret->empty()) {
    return make(static_source({{*id, *secret, env("AWS_SESSION_TOKEN").value_or("")}, std::nullopt,
                               "environment (AWS_ACCESS_KEY_ID)"}));
  }
  if ((id && !id->empty()) != (secret && !secret->empty()))
    throw InputError(std::string("AWS credentials from the environment: ") +
                     (id && !id->empty() ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                                         : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"));
  tried.push_back("environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)");
  // 2. The profile: role, web identity, static keys, credential_process.
  if (config.has_profile(config.profile)) {
    if (auto s = profile_source(config, config.profile, ctx)) return make(std::move(s));
    tried.push_back("profile " + config.profile + " (no keys, role_arn or credential_process)");
  } else {
    tried.push_back("profile " + config.profile + " (not in " + config.config_file.string() + " or " +
                    config.credentials_file.string() + ")");
  }
  // 3. Web identity from the environment (CI OIDC tokens, Kubernetes service accounts).
  auto wif = env("AWS_WEB_IDENTITY_TOKEN_FILE"), role = env("AWS_ROLE_ARN");
  if (wif && !wif->empty() && role && !role->empty())
    return make(web_identity_source(config, *wif, *role, env("AWS_ROLE_SESSION_NAME").value_or(session_name()), ctx));
  if ((wif && !wif->empty()) != (role && !role->empty()))
    throw InputError(std::string("AWS web identity: ") +
                     (wif && !wif->empty() ? "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"
                                           : "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not"));
  tried.push_back("web identity (AWS_WEB_IDENTITY_TOKEN_FILE not set)");
  // 4. Container credentials (ECS, EKS pod identity).
  auto full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI"), rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if ((rel && !rel->empty()) || (full && !full->empty())) {
    std::string uri = rel && !rel->empty() ? "http://169.254.170.2" + *rel : *full;
    if (uri.rfind("https://", 0) != 0 && !loopback_or_container_host(uri))
      throw InputError("AWS_CONTAINER_CREDENTIALS_FULL_URI " + uri +
                       ": plain http is allowed only to a loopback or the container credentials address");
    return make(container_source(uri, env("AWS_CONTAINER_AUTHORIZATION_TOKEN").value_or(""),
                                 env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").value_or(""), ctx));
  }
  tried.push_back("container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI not set)");
  // 5. The instance profile through IMDSv2.
  std::string disabled = env("AWS_EC2_METADATA_DISABLED").value_or("");
  if (disabled == "true" || disabled == "TRUE" || disabled == "True") {
    tried.push_back("EC2 instance metadata (AWS_EC2_METADATA_DISABLED=true)");
  } else {
    std::string ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254");
    try {
      return make(imds_source(ep, ctx));
    } catch (const BuildError& e) {
      tried.push_back(e.what());
    }
  }
  std::string msg = "no AWS credentials found; tried: ";
  for (std::size_t i = 0; i < tried.size(); ++i) msg += (i ? "; " : "") + tried[i];
  throw InputError(msg + ". Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the target's `profile`");
}

}  // namespace lcake::aws
