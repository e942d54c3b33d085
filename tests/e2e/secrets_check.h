// The sensitive-variables end-to-end check (issue 12), shared by the qemu and docker
// e2e tests: a pipeline with a secret from the environment and a multi-line one from a
// file, used in env, shell and sensitive file provisioners; helpers that look for every
// form of either value in what lcake wrote.
#pragma once
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lcake_process.h"

namespace lcake::test::secrets {

struct Values {
  std::string token;     // $MY_API_TOKEN
  std::string password;  // the file secrets/repo-password (two lines)
};
inline Values first() { return {"tok3n/with+special=chars-XYZ123", "repo-pass-line-ONE-4242\nrepo-pass-line-TWO-4242\n"}; }
inline Values rotated() { return {"tok3n/with+special=chars-ROT456", "repo-pass-line-ONE-9999\nrepo-pass-line-TWO-9999\n"}; }

// Written into the image next to the secrets: found when the image is read, so a
// search that finds no secret is known to have read the files.
inline const char* kMarker = "lcake-marker-5e3c1d";

inline std::string pipeline(const std::string& guest_dir) {
  return R"({
  "name": "secrets",
  "variables": {
    "GUEST_DIR": { "default": ")" + guest_dir + R"(" },
    "API_TOKEN": { "env": "MY_API_TOKEN", "sensitive": true },
    "REPO_PASSWORD": { "file": "secrets/repo-password" }
  },
  "variants": {
    "tiny-dropbear": { "sources": {
      "qemu": { "disk": "${var.GUEST_DIR}/dropbear/base.qcow2", "checksum": "file:${var.GUEST_DIR}/dropbear/base.qcow2.sha256",
                "format": "qcow2", "host_key": "${var.GUEST_DIR}/dropbear/host_key.pub", "cloud_init": true },
      "docker": { "image": "localhost/lcake-busybox:tiny-dropbear" } } }
  },
  "layers": {
    "base": { "provisioners": [
      { "type": "env", "vars": { "API_TOKEN": "${var.API_TOKEN}", "REPO_PASSWORD": "${var.REPO_PASSWORD}" } },
      { "type": "shell", "inline": [
        "echo using ${var.API_TOKEN} now",
        "echo \"env: $API_TOKEN\"",
        "printf '%s\\n' \"$REPO_PASSWORD\"",
        "printf %s \"$API_TOKEN\" | base64",
        "printf %s \"$API_TOKEN\" | sed -e 's|/|%2F|g' -e 's|+|%2B|g' -e 's|=|%3D|g'",
        "echo 'https://ci:${var.API_TOKEN}@repo.invalid/simple'",
        "echo )" + std::string(kMarker) + R"( > /etc/lcake-secrets-marker"
      ] },
      { "type": "file", "source": "secrets/repo-password", "destination": "/root/.repo-password", "sensitive": true },
      { "type": "shell", "inline": [
        "cat /root/.repo-password",
        "test \"$(cat /root/.repo-password)\" = \"$REPO_PASSWORD\" && echo secret file matches the variable"
      ] }
    ] },
    "app": { "from": "base", "provisioners": [
      { "type": "env", "vars": { "API_TOKEN": "${var.API_TOKEN}", "REPO_PASSWORD": "${var.REPO_PASSWORD}" } },
      { "type": "shell", "inline": [
        "test ! -e /root/.repo-password && echo secret file gone",
        "cat /etc/lcake-secrets-marker",
        "echo \"app sees $API_TOKEN\"",
        "printf '%s\\n' \"$REPO_PASSWORD\" | base64"
      ] }
    ] }
  }
})";
}

inline std::string base64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += i + 1 < in.size() ? a[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? a[v & 63] : '=';
  }
  return out;
}

inline std::string url_encoded(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (c == '/') out += "%2F";
    else if (c == '+') out += "%2B";
    else if (c == '=') out += "%3D";
    else out += c;
  }
  return out;
}

// Every form of the values that must not show: each value, each line of the
// password, the token base64- and URL-encoded (as the guest prints them).
inline std::vector<std::string> forms(const Values& v) {
  std::vector<std::string> out = {v.token, base64(v.token).substr(0, 40), url_encoded(v.token)};
  std::string pw = v.password;
  while (!pw.empty() && pw.back() == '\n') pw.pop_back();
  out.push_back(pw);
  for (std::size_t start = 0, end; start < pw.size(); start = end + 1) {
    end = pw.find('\n', start);
    if (end == std::string::npos) end = pw.size();
    out.push_back(pw.substr(start, end - start));
  }
  return out;
}

// CHECKs that `text` (what `what` names) holds no form of any of the values.
inline void no_trace(const std::string& what, const std::string& text, const std::vector<Values>& values) {
  for (const auto& v : values)
    for (const auto& f : forms(v)) CHECK_MESSAGE(text.find(f) == std::string::npos, what << " holds " << f);
}

// The bytes of every file under dir (state db and WAL, manifests, stored disks).
inline void no_trace_in_dir(const std::filesystem::path& dir, const std::vector<Values>& values) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) no_trace(e.path().string(), read_file(e.path()), values);
}

inline void write_password(const std::filesystem::path& project, const Values& v) {
  write_file(project / "secrets/repo-password", v.password);
}

using Lcake = std::function<ProcessResult(std::vector<std::string> args, RunSpec spec)>;

// The whole check on one target. `lcake` runs the binary for the project in
// `project` (its state dir is `state`); `image` returns the bytes of the
// app layer's built image, given its `lcake artifacts --json` record.
inline void check_target(const std::filesystem::path& project, const std::filesystem::path& state,
                         const std::string& guest_dir, const Lcake& lcake,
                         const std::function<std::string(const nlohmann::json& record)>& image) {
  const std::string file = (project / "secrets-pipeline.json").string();
  write_file(file, pipeline(guest_dir));
  const std::vector<Values> both = {first(), rotated()};
  auto with = [&](const Values& v) {
    RunSpec spec;
    spec.env["MY_API_TOKEN"] = v.token;
    return spec;
  };
  auto run = [&](std::vector<std::string> args, const Values& v) {
    args.insert(args.begin() + 1, {"--pipeline", file});
    auto r = lcake(args, with(v));
    no_trace("stdout of lcake " + args[0], r.out, both);
    no_trace("stderr of lcake " + args[0], r.err, both);
    return r;
  };
  write_password(project, first());

  // base in the text view (debug: the communicators' own lines too), then app under --json.
  auto base = run({"build", "--only", "*/base", "--log-level", "debug"}, first());
  REQUIRE(base.exit_code == 0);
  CHECK(base.err.find("secret file matches the variable") != std::string::npos);  // the values reached the guest
  CHECK(base.err.find("using <redacted> now") != std::string::npos);
  CHECK(base.err.find("shell: echo using <redacted> now") != std::string::npos);  // the command echo
  CHECK(base.err.find("deleting sensitive file /root/.repo-password") != std::string::npos);
  auto app = run({"build", "--json"}, first());
  REQUIRE(app.exit_code == 0);
  CHECK(app.err.find("secret file gone") != std::string::npos);
  CHECK(app.err.find("app sees <redacted>") != std::string::npos);
  CHECK(app.err.find("\"event\":\"layer_planned\"") != std::string::npos);

  // plan names the sensitive variables each layer uses.
  auto plan = run({"plan"}, first());
  CHECK(plan.exit_code == 0);
  CHECK(count(plan.out, "uses sensitive API_TOKEN, REPO_PASSWORD") == 2);
  auto plan_json = run({"plan", "--json"}, first());
  for (auto& l : nlohmann::json::parse(plan_json.out)) CHECK(l["sensitive"] == nlohmann::json{"API_TOKEN", "REPO_PASSWORD"});

  // config show: a value given with --var is <sensitive>, its origin still named.
  auto show = run({"config", "show", "--origin", "--var", "API_TOKEN=" + first().token}, first());
  CHECK(show.exit_code == 0);
  CHECK(show.out.find("/vars/API_TOKEN = \"<sensitive>\"    # --var API_TOKEN=") != std::string::npos);
  CHECK(run({"config", "show", "--var", "API_TOKEN=" + first().token}, first()).out.find("<sensitive>") != std::string::npos);

  // The built image, read offline: the marker written next to the secrets is there, they are not.
  nlohmann::json record;
  auto artifacts = nlohmann::json::parse(lcake({"artifacts", "--json"}, {}).out);
  for (auto& a : artifacts)
    if (a["layer"] == "app" && a["stage"] == "build") record = a;
  REQUIRE(record.is_object());
  std::string bytes = image(record);
  CHECK(bytes.find(kMarker) != std::string::npos);
  no_trace("the app image", bytes, both);

  // Rotating both values: every layer cached, nothing rebuilt.
  write_password(project, rotated());
  auto rplan = run({"plan", "--json"}, rotated());
  for (auto& l : nlohmann::json::parse(rplan.out)) CHECK(l["cached"] == true);
  auto again = run({"build"}, rotated());
  CHECK(again.exit_code == 0);
  CHECK(again.err.find("building") == std::string::npos);
  CHECK(count(again.err, ": cached") >= 2);

  // The state database, dumped, and every file in the state dir (manifests, stored disks).
  RunSpec dump;
  dump.args = {(state / "state.db").string(), ".dump"};
  auto sql = run_process("/usr/bin/sqlite3", dump);
  REQUIRE(sql.exit_code == 0);
  CHECK(sql.out.find("CREATE TABLE") != std::string::npos);
  no_trace("sqlite3 .dump of the state db", sql.out, both);
  no_trace_in_dir(state, both);

  // A value under 6 characters is refused before anything runs.
  auto short_value = run({"build"}, Values{"abc12", rotated().password});
  CHECK(short_value.exit_code == 2);
  CHECK(short_value.err.find("at least 6 characters") != std::string::npos);
  CHECK(count(short_value.err, "\n") == 1);
}

}  // namespace lcake::test::secrets
