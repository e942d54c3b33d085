// Sensitive variables through the config and into layer keys.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <fstream>

#include "config/config.h"
#include "config/interpolate.h"
#include "events/redactor.h"
#include "lcake/errors.hpp"
#include "plan/layer_key.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace lcake::core;

namespace {

struct Box {
  lcake::test::TempDir tmp{"lcake-sensitive-test"};
  fs::path root = tmp.path;
  fs::path write(const std::string& relative, const std::string& text) const {
    fs::path file = root / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }
  LoadOptions options() const {
    LoadOptions o;
    o.target = (root / "target.json").string();
    o.pipeline = root / "pipeline.json";
    o.config_dirs = {root};
    o.system_overlay_dir = root / "etc";
    o.user_overlay_dir = root / "user";
    return o;
  }
  Box(const std::string& variables, const std::string& layers) {
    write("target.json", R"({"builder": {"plugin": "qemu", "settings": {"memory": 256}}})");
    write("pipeline.json", R"({"name": "p", "variables": )" + variables + R"(, "layers": )" + layers + "}");
  }
};

const std::string kLayers = R"({
  "base": { "provisioners": [
    { "type": "env", "vars": { "TOKEN": "${var.API_TOKEN}" } },
    { "type": "shell", "inline": ["echo using ${var.API_TOKEN} now", "curl -H @${var.KEY_FILE_VALUE}"] } ] },
  "app": { "from": "base", "provisioners": [ { "type": "shell", "inline": ["echo ${var.TAG}"] } ] }
})";

const std::string kVariables = R"({
  "API_TOKEN": { "env": "LCAKE_SENSITIVE_TEST_TOKEN", "sensitive": true },
  "KEY_FILE_VALUE": { "file": "secrets/key.txt" },
  "TAG": { "default": "w_2016_05" }
})";

std::vector<LayerKey> keys(const ResolvedConfig& config) {
  std::vector<LayerKey> out;
  const Variant& v = config.variants.at(0);
  std::string parent;
  for (const auto& layer : v.layers) {
    KeyInputs ki;
    ki.recipe = layer.recipe;
    ki.parent_key = parent;
    ki.source = v.source;
    ki.plugin_name = "qemu", ki.plugin_version = "1";
    ki.plugin_settings = config.target.builder.settings;
    ki.sensitive = v.sensitive;
    out.push_back(compute_layer_key(ki));
    parent = out.back().hex;
  }
  return out;
}

}  // namespace

TEST_CASE("sensitive: declared, from a file, redacted, and in the key only as used") {
  Box box(kVariables, kLayers);
  box.write("secrets/key.txt", "file-secret-one\n");
  setenv("LCAKE_SENSITIVE_TEST_TOKEN", "env-secret-one", 1);
  auto config = resolve_config(load_config(box.options()));
  const Variant& v = config.variants.at(0);
  REQUIRE(v.sensitive.size() == 2);
  CHECK(v.variables.at("KEY_FILE_VALUE") == "file-secret-one");  // trailing newline dropped
  CHECK(Redactor::instance().apply("a env-secret-one b file-secret-one") == "a <redacted> b <redacted>");
  auto first = keys(config);
  CHECK(first[0].sensitive_used == std::vector<std::string>{"API_TOKEN", "KEY_FILE_VALUE"});
  CHECK(first[1].sensitive_used.empty());

  // Rotating both values changes no key.
  box.write("secrets/key.txt", "file-secret-two");
  setenv("LCAKE_SENSITIVE_TEST_TOKEN", "env-secret-two", 1);
  auto rotated = keys(resolve_config(load_config(box.options())));
  unsetenv("LCAKE_SENSITIVE_TEST_TOKEN");
  CHECK(rotated[0].hex == first[0].hex);
  CHECK(rotated[1].hex == first[1].hex);
  CHECK(rotated[0].components == first[0].components);
  CHECK(first[0].components.dump().find("secret") == std::string::npos);
}

TEST_CASE("sensitive: \"key\": \"value-hash\" changes the key with the value") {
  Box box(R"({"API_TOKEN": {"default": "hashed-secret-1", "sensitive": true, "key": "value-hash"},
              "KEY_FILE_VALUE": {"default": "not-a-secret-x", "sensitive": false}, "TAG": {"default": "t"}})",
          kLayers);
  auto a = keys(resolve_config(load_config(box.options())));
  auto options = box.options();
  options.vars = {"API_TOKEN=hashed-secret-2"};
  auto b = keys(resolve_config(load_config(options)));
  CHECK(a[0].hex != b[0].hex);
  CHECK(a[0].sensitive_used == std::vector<std::string>{"API_TOKEN"});
  // sensitive: false: an ordinary variable, in the key by value.
  options.vars = {"KEY_FILE_VALUE=not-a-secret-y"};
  CHECK(keys(resolve_config(load_config(options)))[0].hex != a[0].hex);
}

TEST_CASE("sensitive by default: a well-known env variable or a file; \"sensitive\": false opts out") {
  CHECK(declared_sensitive(nlohmann::json{{"env", "OS_PASSWORD"}}));
  CHECK(declared_sensitive(nlohmann::json{{"file", "/run/secrets/x"}}));
  CHECK_FALSE(declared_sensitive(nlohmann::json{{"file", "/run/secrets/x"}, {"sensitive", false}}));
  CHECK_FALSE(declared_sensitive(nlohmann::json{{"env", "LCAKE_TAG"}}));
  CHECK_FALSE(declared_sensitive(nlohmann::json{{"default", "x"}}));
}

TEST_CASE("sensitive: a value under 6 characters is refused, naming the declaration") {
  Box box(R"({"API_TOKEN": {"default": "abc", "sensitive": true}, "KEY_FILE_VALUE": {"default": "x"}, "TAG": {"default": "t"}})",
          kLayers);
  try {
    resolve_config(load_config(box.options()));
    FAIL("no error");
  } catch (const lcake::InputError& e) {
    std::string m = e.what();
    CHECK(m.find("pipeline.json") != std::string::npos);
    CHECK(m.find("/pipeline/variables/API_TOKEN") != std::string::npos);
    CHECK(m.find("at least 6") != std::string::npos);
    CHECK(m.find("\"sensitive\": false") != std::string::npos);
  }
}

TEST_CASE("sensitive: an overlay can declare a sensitive variable; a file is relative to its declaring file") {
  Box box(R"({"KEY_FILE_VALUE": {"default": "plain-value"}, "TAG": {"default": "t"}})", kLayers);
  box.write("site/overlay.json", R"({"pipeline": {"variables": {"API_TOKEN": {"file": "token"}}}})");
  box.write("site/token", "overlay-file-secret");
  auto options = box.options();
  options.overlays = {box.root / "site/overlay.json"};
  auto config = resolve_config(load_config(options));
  REQUIRE(config.variants[0].sensitive.size() == 1);
  CHECK(config.variants[0].sensitive[0].value == "overlay-file-secret");
}

TEST_CASE("sensitive file provisioner: not a key input, bytes redacted, no other provisioner type") {
  Box box(R"({"TAG": {"default": "t"}})",
          R"({"base": {"provisioners": [{"type": "file", "source": "licence.key", "destination": "/etc/licence.key", "sensitive": true}]}})");
  box.write("licence.key", "licence-bytes-1\nsecond-line-xyz\n");
  auto config = resolve_config(load_config(box.options()));
  const Layer& layer = config.variants[0].layers[0];
  CHECK(layer.inputs.empty());
  CHECK(layer.provisioners[0].sensitive);
  CHECK(Redactor::instance().apply("second-line-xyz") == "<redacted>");
  auto k1 = keys(config);
  box.write("licence.key", "licence-bytes-2\n");
  CHECK(keys(resolve_config(load_config(box.options())))[0].hex == k1[0].hex);

  Box bad(R"({"TAG": {"default": "t"}})", R"({"base": {"provisioners": [{"type": "shell", "inline": ["x"], "sensitive": true}]}})");
  CHECK_THROWS_AS(resolve_config(load_config(bad.options())), lcake::InputError);
}

TEST_CASE("sensitive file provisioner: a file under 6 characters or a directory is refused") {
  Box box(R"({"TAG": {"default": "t"}})",
          R"({"base": {"provisioners": [{"type": "file", "source": "short.key", "destination": "/k", "sensitive": true}]}})");
  box.write("short.key", "abc\n");
  try {
    resolve_config(load_config(box.options()));
    FAIL("no error");
  } catch (const lcake::InputError& e) {
    std::string m = e.what();
    CHECK(m.find("/pipeline/layers/base/provisioners/0/source") != std::string::npos);
    CHECK(m.find("at least 6") != std::string::npos);
  }
  fs::remove(box.root / "short.key");
  fs::create_directories(box.root / "short.key");
  CHECK_THROWS_WITH_AS(resolve_config(load_config(box.options())), doctest::Contains("not a regular file"), lcake::InputError);
}
