#include "aws_services.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;

namespace aws_test {
namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

fs::path source_dir() {
  const char* d = std::getenv("LCAKE_SOURCE_DIR");
  return d ? fs::path(d) : fs::path(AWS_SOURCE_DIR);
}

std::string launcher() {
  return "env -u PYTHONPATH -u VIRTUAL_ENV /usr/bin/python3 " +
         quote((source_dir() / "tests/services/aws/aws-services.py").string());
}

Services* started = nullptr;
pid_t owner_pid = 0;  // a forked child must not stop its parent's services

void stop_services() {
  if (!started || ::getpid() != owner_pid) return;
  shell(launcher() + " stop --dir " + quote(started->dir.string()) + " >/dev/null 2>&1");
  if (std::getenv("LCAKE_KEEP_AWS_SIM")) {
    std::cerr << "aws test services' state kept in " << started->dir << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(started->dir, ec);
}

}  // namespace

int shell(const std::string& command, std::string* out) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
  int rc = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

const Services& services() {
  if (started) return *started;
  auto* s = new Services;
  const char* bin = std::getenv("LCAKE_BINARY_DIR");
  fs::path base = bin ? fs::path(bin) / "tmp" : fs::temp_directory_path();
  fs::create_directories(base);
  std::string tmpl = (base / "aws-sim.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl + " failed");
  s->dir = tmpl;
  std::string out;
  int rc = shell(launcher() + " start --dir " + quote(tmpl) + " 2>&1", &out);
  if (rc == 77) {
    std::cout << "SKIPPED: " << out << std::flush;
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    std::_Exit(77);
  }
  if (rc != 0) {
    std::cerr << "aws-services.py start failed (" << rc << "):\n" << out << std::endl;
    std::_Exit(1);
  }
  std::ifstream in(s->dir / "env.json");
  s->env = nlohmann::json::parse(in);
  for (const auto& [k, v] : s->env.items()) {
    std::string value = v.is_string() ? v.get<std::string>() : v.dump();
    ::setenv(k.c_str(), value.c_str(), 1);
  }
  std::ifstream admin(s->dir / "admin-credentials.json");
  auto keys = nlohmann::json::parse(admin);
  s->admin_key = keys.at("AccessKeyId");
  s->admin_secret = keys.at("SecretAccessKey");
  // Nothing else may be consulted: no files of the machine's user, no IMDS.
  ::setenv("AWS_CONFIG_FILE", (s->dir / "no-config").c_str(), 1);
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", (s->dir / "no-credentials").c_str(), 1);
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  ::unsetenv("AWS_PROFILE");
  ::unsetenv("AWS_SESSION_TOKEN");
  started = s;
  owner_pid = ::getpid();
  std::atexit(stop_services);
  return *s;
}

nlohmann::json awscli(const std::vector<std::string>& args) {
  const Services& s = services();
  std::string cmd = "env -u PYTHONPATH -u VIRTUAL_ENV /usr/bin/aws --endpoint-url " + quote(s.get("AWS_ENDPOINT_URL"));
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " --output json 2>&1";
  std::string out;
  int rc = shell(cmd, &out);
  if (rc != 0) throw std::runtime_error("aws " + (args.empty() ? "" : args[0]) + " failed: " + out);
  if (out.find_first_not_of(" \n") == std::string::npos) return nlohmann::json::object();
  return nlohmann::json::parse(out);
}

int admin_aws_status(const std::vector<std::string>& args, std::string& out, const std::string& region) {
  const Services& s = services();
  std::string cmd = "env -u PYTHONPATH -u VIRTUAL_ENV AWS_MAX_ATTEMPTS=1 AWS_ACCESS_KEY_ID=" + quote(s.admin_key) +
                    " AWS_SECRET_ACCESS_KEY=" + quote(s.admin_secret) +
                    " /usr/bin/aws --output json --endpoint-url " + quote(s.get("AWS_ENDPOINT_URL"));
  if (!region.empty()) cmd += " --region " + quote(region);
  for (const auto& a : args) cmd += " " + quote(a);
  return shell(cmd + " 2>" + quote((s.dir / "awscli.err").string()), &out);
}

std::string admin_aws(const std::vector<std::string>& args, const std::string& region) {
  std::string out;
  int rc = admin_aws_status(args, out, region);
  if (rc != 0) {
    std::ifstream err(services().dir / "awscli.err");
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    std::string line;
    for (const auto& a : args) line += a + " ";
    throw std::runtime_error("aws " + line + "exited with " + std::to_string(rc) + ": " + text);
  }
  return out;
}

nlohmann::json admin_awscli(const std::vector<std::string>& args, const std::string& region) {
  std::string out = admin_aws(args, region);
  if (out.find_first_not_of(" \n") == std::string::npos) return nlohmann::json::object();
  return nlohmann::json::parse(out);
}

namespace {
nlohmann::json fault_admin(const std::string& method, const std::string& body = "") {
  std::string cmd = "curl -sS --fail-with-body -X " + method + " " +
                    quote(services().get("AWS_ENDPOINT_URL") + "/_aws-sim/faults");
  if (!body.empty()) cmd += " --data-binary " + quote(body);
  std::string out;
  int rc = shell(cmd + " 2>&1", &out);
  if (rc != 0) throw std::runtime_error("aws-sim faults " + method + " failed: " + out);
  return nlohmann::json::parse(out);
}
}  // namespace

void add_fault(const nlohmann::json& rule) { fault_admin("POST", rule.dump()); }
nlohmann::json faults() { return fault_admin("GET")["Faults"]; }
void clear_faults() { fault_admin("DELETE"); }

std::vector<nlohmann::json> sim_events(const std::string& event) {
  std::vector<nlohmann::json> out;
  std::ifstream in(services().get("AWS_SIM_LOG"));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == event) out.push_back(j);
  }
  return out;
}

}  // namespace aws_test
