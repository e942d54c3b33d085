#include "aws_services.h"

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

Services* started = nullptr;

void stop_services() {
  if (!started) return;
  std::string cmd = "env -u PYTHONPATH -u VIRTUAL_ENV /usr/bin/python3 " +
                    quote((source_dir() / "tests/services/aws/aws-services.py").string()) + " stop --dir " +
                    quote(started->dir.string()) + " >/dev/null 2>&1";
  shell(cmd);
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
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

const Services& services() {
  if (started) return *started;
  auto* s = new Services;
  char tmpl[] = "/tmp/lcake-aws-test-XXXXXX";
  s->dir = ::mkdtemp(tmpl);
  std::string out;
  int rc = shell("env -u PYTHONPATH -u VIRTUAL_ENV /usr/bin/python3 " +
                     quote((source_dir() / "tests/services/aws/aws-services.py").string()) + " start --dir " +
                     quote(s->dir.string()) + " 2>&1",
                 &out);
  if (rc == 77) {
    std::cout << "SKIPPED: " << out << std::flush;
    std::_Exit(77);
  }
  if (rc != 0) {
    std::cerr << "aws-services.py start failed (" << rc << "):\n" << out << std::endl;
    std::_Exit(1);
  }
  std::ifstream in(s->dir / "env.json");
  s->env = nlohmann::json::parse(in);
  for (const auto& [k, v] : s->env.items())
    if (v.is_string()) ::setenv(k.c_str(), v.get<std::string>().c_str(), 1);
  // Nothing else may be consulted: no files of the machine's user, no IMDS.
  ::setenv("AWS_CONFIG_FILE", (s->dir / "no-config").c_str(), 1);
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", (s->dir / "no-credentials").c_str(), 1);
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  ::unsetenv("AWS_PROFILE");
  started = s;
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
