#include "plan/layer_key.h"

#include <doctest/doctest.h>

#include "test_support.h"
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "lcake/errors.hpp"

namespace fs = std::filesystem;
using lcake::core::compute_layer_key;
using lcake::core::explain_key_change;
using lcake::core::KeyInputs;
using nlohmann::json;

namespace {

struct TempDir : lcake::test::TempDir {
  TempDir() : lcake::test::TempDir("layer-key-test") {}
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A newinstall-like layer: recipe, one input script, parent, plugin.
struct Fixture {
  TempDir tmp;
  fs::path script = tmp.path / "newinstall.sh";
  KeyInputs in;
  Fixture() {
    write_file(script, "#!/bin/sh\necho bootstrap\n");
    in.recipe = json::parse(R"({"from": "base", "inputs": ["files/newinstall.sh"],
        "provisioners": [{"type": "shell", "script": "files/newinstall.sh"}],
        "variables": {"TAG": "w_2016_05", "PRODUCTS": "lsst_distrib"}})");
    in.parent_key = std::string(64, 'a');
    in.source = nullptr;
    in.inputs = {{"files/newinstall.sh", script}};
    in.plugin_name = "qemu";
    in.plugin_version = "1.0.0";
    in.plugin_settings = {{"memory", 2048}, {"accelerator", "kvm"}};
  }
  std::string key() const { return compute_layer_key(in).hex; }
  std::vector<std::string> why(const KeyInputs& before) const {
    return explain_key_change(compute_layer_key(before).components, compute_layer_key(in).components);
  }
};

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("sha256 of known vectors") {
  using lcake::core::sha256_hex;
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("sha256_file streams large files and names a missing one") {
  TempDir tmp;
  // One million 'a': a standard vector, and several read buffers long.
  write_file(tmp.path / "million", std::string(1000000, 'a'));
  CHECK(lcake::core::sha256_file(tmp.path / "million") ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  write_file(tmp.path / "abc", "abc");
  CHECK(lcake::core::sha256_file(tmp.path / "abc") == lcake::core::sha256_hex("abc"));

  std::string msg;
  try {
    lcake::core::sha256_file(tmp.path / "missing.sh");
  } catch (const lcake::InputError& e) {
    msg = e.what();
  }
  CHECK(msg.find("missing.sh") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);

  fs::create_directory(tmp.path / "files");
  CHECK_THROWS_AS(lcake::core::sha256_file(tmp.path / "files"), lcake::InputError);
}

TEST_CASE("key is stable: same inputs, any object key order") {
  Fixture f;
  auto key = f.key();
  CHECK(key.size() == 64);
  CHECK(f.key() == key);

  // The same recipe and settings built with keys inserted in another order.
  json recipe = json::object();
  recipe["variables"]["PRODUCTS"] = "lsst_distrib";
  recipe["variables"]["TAG"] = "w_2016_05";
  recipe["provisioners"] = json::array({{{"script", "files/newinstall.sh"}, {"type", "shell"}}});
  recipe["inputs"] = json::array({"files/newinstall.sh"});
  recipe["from"] = "base";
  json settings = json::object();
  settings["accelerator"] = "kvm";
  settings["memory"] = 2048;
  KeyInputs reordered = f.in;
  reordered.recipe = recipe;
  reordered.plugin_settings = settings;
  CHECK(compute_layer_key(reordered).hex == key);
  CHECK(compute_layer_key(reordered).components == compute_layer_key(f.in).components);
  CHECK(explain_key_change(compute_layer_key(f.in).components, compute_layer_key(reordered).components).empty());
}

TEST_CASE("components record each part") {
  Fixture f;
  auto c = compute_layer_key(f.in).components;
  CHECK(c["parent"] == f.in.parent_key);
  CHECK(c["inputs"]["files/newinstall.sh"] == lcake::core::sha256_file(f.script));
  CHECK(c["recipe"].contains("provisioners"));
  CHECK(c["recipe"]["from"] == lcake::core::sha256_hex("\"base\""));
  CHECK(c["plugin"]["name"] == "qemu");
  CHECK(c["plugin"]["version"] == "1.0.0");
  CHECK(c["plugin"]["settings"].get<std::string>().size() == 64);
  CHECK(c["source"].is_object());
}

TEST_CASE("an input's mtime alone does not change the key; its bytes do") {
  Fixture f;
  auto key = f.key();
  fs::last_write_time(f.script, fs::last_write_time(f.script) - std::chrono::hours(48));
  CHECK(f.key() == key);

  KeyInputs before = f.in;
  auto before_components = compute_layer_key(before).components;
  write_file(f.script, "#!/bin/sh\necho bootstrap v2\n");
  CHECK(f.key() != key);
  auto why = explain_key_change(before_components, compute_layer_key(f.in).components);
  CHECK(why == std::vector<std::string>{"input files/newinstall.sh changed"});
}

TEST_CASE("each part changes the key, and the explanation names it") {
  Fixture f;
  const KeyInputs base = f.in;
  const auto key = f.key();

  SUBCASE("recipe field changed") {
    f.in.recipe["variables"]["TAG"] = "w_2016_06";
    CHECK(f.key() != key);
    CHECK(f.why(base) == std::vector<std::string>{"recipe field 'variables' changed"});
  }
  SUBCASE("recipe field added and removed") {
    f.in.recipe["timeout"] = "30m";
    f.in.recipe.erase("variables");
    CHECK(f.key() != key);
    auto why = f.why(base);
    CHECK(why.size() == 2);
    CHECK(has(why, "recipe field 'timeout' added"));
    CHECK(has(why, "recipe field 'variables' removed"));
  }
  SUBCASE("input added and removed") {
    write_file(f.tmp.path / "extra.conf", "x=1\n");
    f.in.inputs.push_back({"files/extra.conf", f.tmp.path / "extra.conf"});
    CHECK(f.key() != key);
    CHECK(f.why(base) == std::vector<std::string>{"input files/extra.conf added"});
    KeyInputs with_extra = f.in;
    f.in.inputs = {};
    CHECK(f.why(with_extra) ==
          std::vector<std::string>{"input files/extra.conf removed", "input files/newinstall.sh removed"});
  }
  SUBCASE("parent changed") {
    f.in.parent_key = std::string(64, 'b');
    CHECK(f.key() != key);
    CHECK(f.why(base) == std::vector<std::string>{"parent layer changed"});
  }
  SUBCASE("source changed") {
    f.in.parent_key = "";
    f.in.source = {{"image", "debian-12-genericcloud-amd64.qcow2"}};
    KeyInputs first = f.in;
    auto first_key = f.key();
    f.in.source = {{"image", "debian-12-genericcloud-amd64-20240201.qcow2"}};
    CHECK(f.key() != first_key);
    CHECK(f.why(first) == std::vector<std::string>{"source field 'image' changed"});
  }
  SUBCASE("a boot setting of the source changed: the plan names it") {
    f.in.parent_key = "";
    f.in.source = {{"disk", "base.qcow2"}, {"kernel", "vmlinuz"}, {"append", "quiet"}};
    KeyInputs first = f.in;
    auto first_key = f.key();
    f.in.source["append"] = "quiet panic=1";
    f.in.source["initrd"] = "initrd.img";
    CHECK(f.key() != first_key);
    CHECK(f.why(first) == std::vector<std::string>{"source field 'append' changed", "source field 'initrd' added"});
  }
  SUBCASE("plugin version changed") {
    f.in.plugin_version = "1.1.0";
    CHECK(f.key() != key);
    CHECK(f.why(base) == std::vector<std::string>{"builder plugin qemu 1.0.0 -> 1.1.0"});
  }
  SUBCASE("plugin replaced") {
    f.in.plugin_name = "docker";
    f.in.plugin_version = "0.3.0";
    CHECK(f.key() != key);
    CHECK(f.why(base) == std::vector<std::string>{"builder plugin qemu 1.0.0 -> docker 0.3.0"});
  }
  SUBCASE("plugin settings changed") {
    f.in.plugin_settings["memory"] = 4096;
    CHECK(f.key() != key);
    CHECK(f.why(base) == std::vector<std::string>{"builder settings changed"});
  }
  SUBCASE("an input renamed but same bytes still changes the key") {
    f.in.inputs = {{"files/bootstrap.sh", f.script}};
    CHECK(f.key() != key);
    auto why = f.why(base);
    CHECK(has(why, "input files/bootstrap.sh added"));
    CHECK(has(why, "input files/newinstall.sh removed"));
  }
}

TEST_CASE("explain_key_change without an earlier record") {
  Fixture f;
  auto why = explain_key_change(nullptr, compute_layer_key(f.in).components);
  CHECK(why == std::vector<std::string>{"no earlier key recorded for this layer"});
}
