#include "hook_checks.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "config/schema_check.h"
#include "lcake/errors.hpp"
#include "lcake_process.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lcake::test {

std::string recording_hook(const fs::path& dir, const std::string& label) {
  std::string d = dir.string();
  return "mkdir -p '" + d + "' && n=$(ls '" + d + "' | wc -l) && d='" + d + "'/$(printf %03d $n) && mkdir \"$d\" && "
         "cp \"$LCAKE_OUTPUTS\" \"$d/outputs.json\" && cp \"$LCAKE_MANIFEST\" \"$d/manifest.json\" && "
         "env | grep '^LCAKE_' | sort > \"$d/env\" && echo \"hook " + label + " saw run $LCAKE_RUN_ID\"";
}

std::vector<json> hook_calls(const fs::path& dir) {
  std::vector<fs::path> calls;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir)) calls.push_back(e.path());
  std::sort(calls.begin(), calls.end());
  std::vector<json> out;
  for (const auto& c : calls) {
    json call = {{"outputs", json::parse(read_file(c / "outputs.json"))},
                 {"manifest", json::parse(read_file(c / "manifest.json"))},
                 {"env", json::object()}};
    std::istringstream env(read_file(c / "env"));
    for (std::string line; std::getline(env, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) call["env"][line.substr(0, eq)] = line.substr(eq + 1);
    }
    out.push_back(call);
  }
  return out;
}

std::vector<std::string> outputs_vs_manifest(const json& outputs, const json& manifest) {
  std::vector<std::string> bad = outputs_schema_errors(outputs);
  std::vector<std::string> published;
  for (const auto& [variant, v] : manifest.at("variants").items()) {
    const json layers = v.value("layers", json::object());
    for (const auto& [layer, l] : layers.items()) {
      if (!l.value("published", false)) continue;
      std::string name = variant + "/" + layer;
      published.push_back(name);
      const json& art = l.at("publish").at("artifact");
      if (!outputs.at("outputs").contains(name)) {
        bad.push_back(name + " published but not in outputs");
        continue;
      }
      const json& e = outputs["outputs"][name];
      if (e["id"] != art["id"]) bad.push_back(name + ": id " + e["id"].dump() + " vs manifest " + art["id"].dump());
      if (e["type"] != art["type"]) bad.push_back(name + ": type " + e["type"].dump() + " vs " + art["type"].dump());
      json names = art["metadata"].value("moving_names", json::array());
      if (e["moving_names"] != names) bad.push_back(name + ": moving_names " + e["moving_names"].dump() + " vs " + names.dump());
      if (e["variant"] != variant || e["layer"] != layer) bad.push_back(name + ": variant/layer fields");
    }
  }
  std::sort(published.begin(), published.end());
  json listed = outputs.value("published", json::array());
  if (listed != json(published)) bad.push_back("published lists " + listed.dump() + ", manifest " + json(published).dump());
  return bad;
}

std::vector<std::string> outputs_schema_errors(const json& outputs) {
  static const json schema = json::parse(read_file(source_dir() / "docs/schemas/lcake-outputs-1.schema.json"));
  try {
    lcake::core::check_against_schema(lcake::core::Provenance{}, "", outputs, schema, "lcake-outputs/1");
  } catch (const lcake::InputError& e) {
    return {e.what()};
  }
  return {};
}

std::vector<std::string> formats_vs_json(const json& doc, const std::string& shell, const json& tfvars) {
  std::vector<std::string> bad;
  std::map<std::string, std::string> vars;
  std::istringstream lines(shell);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos || line.size() < eq + 3 || line[eq + 1] != '\'' || line.back() != '\'') {
      bad.push_back("shell line not KEY='value': " + line);
      continue;
    }
    vars[line.substr(0, eq)] = line.substr(eq + 2, line.size() - eq - 3);
  }
  auto upper = [](std::string s) {
    for (auto& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
    return s;
  };
  for (const auto& [name, e] : doc.at("outputs").items()) {
    std::string prefix = "LCAKE_" + upper(e["variant"].get<std::string>()) + "_" + upper(e["layer"].get<std::string>()) + "_";
    if (vars[prefix + "ID"] != e["id"].get<std::string>()) bad.push_back("shell " + prefix + "ID=" + vars[prefix + "ID"]);
    if (vars[prefix + "TYPE"] != e["type"].get<std::string>()) bad.push_back("shell " + prefix + "TYPE");
    std::string names;
    for (const auto& n : e["moving_names"]) names += (names.empty() ? "" : " ") + n.get<std::string>();
    if (vars[prefix + "MOVING_NAMES"] != names) bad.push_back("shell " + prefix + "MOVING_NAMES=" + vars[prefix + "MOVING_NAMES"]);
    const json& t = tfvars.at("lcake_outputs").value(name, json());
    if (t.is_null()) {
      bad.push_back("tfvars has no " + name);
      continue;
    }
    for (const char* k : {"id", "type", "region", "registry", "ids_by_region", "moving_names"})
      if (t[k] != e[k]) bad.push_back("tfvars " + name + "." + k + ": " + t[k].dump() + " vs " + e[k].dump());
  }
  if (vars.size() != doc["outputs"].size() * 5) bad.push_back("shell has " + std::to_string(vars.size()) + " lines");
  if (tfvars["lcake_outputs"].size() != doc["outputs"].size()) bad.push_back("tfvars has another number of entries");
  return bad;
}

WebhookServer::WebhookServer() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0)
    throw std::runtime_error("webhook server: cannot listen on 127.0.0.1");
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      std::size_t want = std::string::npos;
      for (;;) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 5000) <= 0) break;
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
        auto end = req.find("\r\n\r\n");
        if (end != std::string::npos && want == std::string::npos) {
          std::string head = req.substr(0, end);
          for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          auto cl = head.find("content-length:");
          want = end + 4 + (cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15)));
        }
        if (want != std::string::npos && req.size() >= want) break;
      }
      auto end = req.find("\r\n\r\n");
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(end == std::string::npos ? std::string() : req.substr(end + 4));
      }
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  });
}

WebhookServer::~WebhookServer() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
}

std::vector<std::string> WebhookServer::bodies() const {
  std::lock_guard lock(mu_);
  return bodies_;
}

}  // namespace lcake::test
