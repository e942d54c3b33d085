#include "sim_services.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace lcake::aws::test {
namespace {

fs::path source_dir() {
  const char* s = std::getenv("LCAKE_SOURCE_DIR");
  return s ? fs::path(s) : fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command line; returns its exit status and stdout (stderr to `err_file`).
int run(const std::string& cmd, std::string& out) {
  out.clear();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string python() { return "env -u PYTHONPATH -u VIRTUAL_ENV /usr/bin/python3 "; }
fs::path launcher() { return source_dir() / "tests" / "services" / "aws" / "aws-services.py"; }

struct Owner {
  SimServices services;
  ~Owner() {
    if (services.dir.empty()) return;
    std::string out;
    run(python() + quote(launcher().string()) + " stop --dir " + quote(services.dir.string()) + " 2>&1", out);
    if (!std::getenv("LCAKE_KEEP_AWS_SIM")) {
      std::error_code ec;
      fs::remove_all(services.dir, ec);
    } else {
      std::cerr << "aws-sim state kept in " << services.dir << "\n";
    }
  }
};

}  // namespace

SimServices& SimServices::get() {
  static Owner owner = [] {
    Owner o;
    const char* bin = std::getenv("LCAKE_BINARY_DIR");
    fs::path base = bin ? fs::path(bin) / "tmp" : fs::temp_directory_path();
    fs::create_directories(base);
    std::string tmpl = (base / "aws-sim.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    o.services.dir = tmpl;
    std::string out;
    int rc = run(python() + quote(launcher().string()) + " start --dir " + quote(tmpl) + " 2>&1", out);
    if (rc == 77) {
      std::cout << "SKIPPED: " << out << std::flush;
      std::error_code ec;
      fs::remove_all(tmpl, ec);
      std::_Exit(77);
    }
    if (rc != 0) throw std::runtime_error("aws-services.py start failed (" + std::to_string(rc) + "): " + out);
    std::ifstream in(fs::path(tmpl) / "env.json");
    auto env = nlohmann::json::parse(in);
    for (auto& [k, v] : env.items()) {
      std::string value = v.is_string() ? v.get<std::string>() : v.dump();
      o.services.env[k] = value;
      ::setenv(k.c_str(), value.c_str(), 1);
    }
    std::ifstream admin(fs::path(tmpl) / "admin-credentials.json");
    auto keys = nlohmann::json::parse(admin);
    o.services.admin_key = keys["AccessKeyId"], o.services.admin_secret = keys["SecretAccessKey"];
    // Nothing of the machine's own AWS setup may leak into the tests.
    ::setenv("AWS_CONFIG_FILE", (fs::path(tmpl) / "no-config").c_str(), 1);
    ::setenv("AWS_SHARED_CREDENTIALS_FILE", (fs::path(tmpl) / "no-credentials").c_str(), 1);
    ::unsetenv("AWS_PROFILE");
    ::unsetenv("AWS_SESSION_TOKEN");
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return o;
  }();
  return owner.services;
}

int SimServices::aws_status(const std::vector<std::string>& args, std::string& out, const std::string& region) const {
  std::string cmd = "env -u PYTHONPATH -u VIRTUAL_ENV AWS_MAX_ATTEMPTS=1 AWS_ACCESS_KEY_ID=" + quote(admin_key) +
                    " AWS_SECRET_ACCESS_KEY=" + quote(admin_secret) +
                    " /usr/bin/aws --output json --endpoint-url " + quote(env.at("AWS_ENDPOINT_URL"));
  if (!region.empty()) cmd += " --region " + quote(region);
  for (const auto& a : args) cmd += " " + quote(a);
  return run(cmd + " 2>" + quote((dir / "awscli.err").string()), out);
}

std::string SimServices::aws(const std::vector<std::string>& args, const std::string& region) const {
  std::string out;
  int rc = aws_status(args, out, region);
  if (rc != 0) {
    std::ifstream err(dir / "awscli.err");
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    std::string line;
    for (const auto& a : args) line += a + " ";
    FAIL("aws " << line << "exited with " << rc << ": " << text);
  }
  return out;
}

}  // namespace lcake::aws::test
