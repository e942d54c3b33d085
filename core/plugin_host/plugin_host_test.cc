// Loads the real test plugins built from tests/plugins/broken/ (good.cc and one
// source per way a plugin can be wrong) and checks each failure is one clear line.
#include "plugin_host/plugin_host.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "lcake/sdk.hpp"
#include "lcake/testing.hpp"
#include "test_support.h"

namespace fs = std::filesystem;
using lcake::core::PluginHost;

namespace {

const fs::path kDir = LCAKE_TEST_PLUGIN_DIR;

fs::path plugin(const std::string& name) { return kDir / ("lcake-" + name + ".so"); }

const std::string api = std::to_string(LCAKE_API_VERSION);

struct TempDir : lcake::test::TempDir {
  TempDir() : lcake::test::TempDir("lcake-plugin-host") {
    // The host refuses plugin dirs others can write to.
    fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  }
  fs::path copy(const fs::path& from, const std::string& name = "") const {
    fs::path to = path / (name.empty() ? from.filename().string() : name);
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
    return to;
  }
};

// The InputError message `f` throws; fails the test on any other outcome.
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const lcake::InputError& e) {
    std::string m = e.what();
    CHECK_MESSAGE(m.find('\n') == std::string::npos, m);
    return m;
  } catch (const std::exception& e) {
    FAIL("expected lcake::InputError, got: " << e.what());
  }
  FAIL("expected lcake::InputError, nothing was thrown");
  return {};
}

std::string load_error(const fs::path& file) {
  PluginHost host({});
  std::string m = input_error([&] { host.load_file(file); });
  CHECK_MESSAGE(m.rfind(file.string() + ": ", 0) == 0, m);  // starts with the file
  return m;
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("a good plugin reports its name, version, roles and schemas, and makes its roles") {
  PluginHost host({kDir});
  const auto& p = host.load("good");
  CHECK(p.info().name == "good");
  CHECK(p.info().version == "1.2.3");
  CHECK(p.info().summary == "All three roles, doing nothing");
  CHECK(p.info().api_version == LCAKE_API_VERSION);
  CHECK(p.info().abi == LCAKE_ABI_TAG);
  CHECK(p.info().roles == std::vector<std::string>{"builder", "uploader", "verifier"});
  CHECK(p.info().role.at("builder").settings.at("properties").contains("greeting"));
  CHECK(p.info().role.at("uploader").settings == nlohmann::json::object());
  CHECK(fs::equivalent(p.info().file, plugin("good")));
  CHECK(p.has_role("verifier"));
  CHECK(&host.load("good") == &p);  // cached
  CHECK(&host.load_file(plugin("good")) == &p);

  TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path);
  auto builder = p.make_builder({{"greeting", "hello"}});
  lcake::BuildRequest req;
  req.layer.layer = "base";
  auto artifact = builder->start(req, ctx)->finish(ctx);
  CHECK(artifact.id == "hello:base");
  CHECK(artifact.metadata.at("greeting") == "hello");
  CHECK(builder->exists(artifact, ctx));
  // SDK exception types thrown inside the plugin are caught by type in the host.
  CHECK_THROWS_AS(builder->exists({"null", "throw", {}, ""}, ctx), lcake::BuildError);

  auto uploader = p.make_role("uploader", nlohmann::json::object());
  REQUIRE(uploader);
  CHECK(p.make_verifier(nullptr) != nullptr);
  CHECK(has(input_error([&] { p.make_role("frobnicator", {}); }), "unknown plugin role"));
}

TEST_CASE("a plugin missing from the search path names the file and the fix") {
  TempDir dir;
  PluginHost host({dir.path});
  std::string m = input_error([&] { host.load("nope"); });
  CHECK(has(m, "lcake-nope.so"));
  CHECK(has(m, dir.path.string()));
  CHECK(has(m, "--plugin-path"));
  CHECK(has(input_error([&] { host.load("../good"); }), "not a plugin name"));
}

TEST_CASE("a library without an entry point is not an lcake plugin") {
  std::string m = load_error(plugin("no-entry"));
  CHECK(has(m, "no lcake entry point (lcake_plugin_entry_v" + api + "): is it an lcake plugin? "
               "rebuild with LCAKE_PLUGIN(...)"));
}

TEST_CASE("a plugin for another API version is refused before it runs") {
  CHECK(has(load_error(plugin("wrong-version")),
            "built for lcake plugin API " + std::to_string(LCAKE_API_VERSION + 1) + ", this lcake has API " + api +
                " (versions must match exactly): "
            "rebuild it against this lcake's SDK"));
}

TEST_CASE("a descriptor whose version disagrees with its entry point is refused") {
  CHECK(has(load_error(plugin("lying-version")), "built for lcake plugin API 1, this lcake has API " + api));
  CHECK(has(load_error(plugin("null-descriptor")), "returned no descriptor"));
}

TEST_CASE("a plugin built with another C++ ABI is refused, naming both ABIs") {
  std::string m = load_error(plugin("wrong-abi"));
  CHECK(has(m, "built with C++ ABI 'gcc11/cxx11abi0/json3.9.1'"));
  CHECK(has(m, std::string("this lcake was built with '") + LCAKE_ABI_TAG + "'"));
}

TEST_CASE("a library with an undefined symbol fails at load (rtld_now), not at first call") {
  std::string m = load_error(plugin("unresolved"));
  CHECK(has(m, "cannot load it"));
  CHECK(has(m, "lcake_test_symbol_nobody_defines"));
}

TEST_CASE("a factory that throws becomes an InputError naming the plugin and file") {
  PluginHost host({kDir});
  const auto& p = host.load("throwing");
  std::string m = input_error([&] { p.make_builder({}); });
  CHECK(m == "plugin 'throwing' (" + p.info().file.string() +
                 ") failed to create its builder: cannot reach the build farm (second line)");

  const auto& hand = host.load("handmade");
  CHECK(has(input_error([&] { hand.make_uploader({}); }),
            "failed to create its uploader: hand-written plugins make nothing"));
  CHECK(input_error([&] { hand.make_builder({}); }) ==
        "plugin 'handmade' (" + hand.info().file.string() +
            ") has no builder: choose a plugin that provides one");
}

TEST_CASE("capabilities: known words are read, an unknown one refuses the plugin") {
  PluginHost host({kDir});
  const auto& capable = host.load("capable");
  CHECK(capable.info().role.at("uploader").capabilities == std::vector<std::string>{"publishes-to-cloud"});
  CHECK(capable.info().role.at("uploader").has_capability(lcake::core::kPublishesToCloud));
  CHECK(!host.load("handmade").info().role.at("uploader").has_capability(lcake::core::kPublishesToCloud));
  CHECK(has(load_error(plugin("unknown-capability")),
            "plugin 'unknown-capability' declares an unknown uploader capability 'quantum' (known: "
            "publishes-to-cloud): fix its RoleSpec (.capabilities)"));
}

TEST_CASE("capability words are per role: builds-on-upload is a builder's") {
  using lcake::core::known_capabilities;
  CHECK(known_capabilities("builder") == std::vector<std::string>{lcake::core::kBuildsOnUpload});
  CHECK(known_capabilities("uploader") == std::vector<std::string>{lcake::core::kPublishesToCloud});
  CHECK(known_capabilities("verifier").empty());
}

TEST_CASE("a file that is not ELF is not a shared library") {
  TempDir dir;
  fs::path junk = dir.path / "lcake-junk.so";
  std::ofstream(junk) << "#!/bin/sh\necho not a library\n";
  fs::permissions(junk, fs::perms::owner_read | fs::perms::owner_write);
  CHECK(has(load_error(junk), "not a shared library"));
  fs::path empty = dir.path / "lcake-empty.so";
  std::ofstream{empty};
  fs::permissions(empty, fs::perms::owner_read | fs::perms::owner_write);
  CHECK(has(load_error(empty), "not a shared library"));
  CHECK(has(load_error(dir.path / "lcake-absent.so"), "no such file"));
  fs::path truncated = dir.path / "lcake-truncated.so";
  std::string elf(4000, '\0');
  std::ifstream(plugin("good"), std::ios::binary).read(elf.data(), elf.size());
  std::ofstream(truncated, std::ios::binary) << elf;
  fs::permissions(truncated, fs::perms::owner_read | fs::perms::owner_write);
  CHECK(has(load_error(truncated), "not a shared library"));
  fs::create_directory(dir.path / "lcake-dir.so");
  CHECK(has(load_error(dir.path / "lcake-dir.so"), "not a regular file"));
}

TEST_CASE("a plugin anyone else can replace is refused") {
  TempDir dir;
  fs::path file = dir.copy(plugin("good"));
  fs::permissions(file, fs::perms::others_write, fs::perm_options::add);
  CHECK(has(load_error(file),
            file.string() + " is writable by others; fix with chmod go-w " + file.string()));

  fs::permissions(file, fs::perms::others_write, fs::perm_options::remove);
  fs::permissions(dir.path, fs::perms::group_write, fs::perm_options::add);
  CHECK(has(load_error(file), dir.path.string() + " is writable by others; fix with chmod go-w " +
                                  dir.path.string()));
}

TEST_CASE("the name inside must match the file name") {
  CHECK(has(load_error(plugin("misnamed")),
            "the plugin calls itself 'something-else' but the file is named for 'misnamed': "
            "rename it to lcake-something-else.so"));
  TempDir dir;
  CHECK(has(load_error(dir.copy(plugin("good"), "good.so")), "must be named lcake-NAME.so: rename it to lcake-good.so"));
}

TEST_CASE("a settings schema that is not JSON names the plugin and role") {
  std::string m = load_error(plugin("bad-schema"));
  CHECK(has(m, "plugin 'bad-schema' has a bad uploader settings schema"));
  CHECK(has(m, "parse error"));
}

TEST_CASE("discover lists good plugins and one error per broken file") {
  PluginHost host({kDir});
  auto found = host.discover();
  std::vector<std::string> names;
  for (const auto& info : found.plugins) names.push_back(info.name);
  CHECK(names == std::vector<std::string>{"capable", "good", "handmade", "leaf", "throwing"});
  std::vector<std::string> bad;
  for (const auto& [file, error] : found.errors) {
    bad.push_back(file.filename().string());
    CHECK_MESSAGE(error.rfind(file.string(), 0) == 0, error);
    CHECK(error.find('\n') == std::string::npos);
  }
  CHECK(bad == std::vector<std::string>{"lcake-bad-schema.so", "lcake-lying-version.so",
                                        "lcake-misnamed.so", "lcake-no-entry.so",
                                        "lcake-null-descriptor.so", "lcake-unknown-capability.so",
                                        "lcake-unresolved.so",
                                        "lcake-wrong-abi.so", "lcake-wrong-version.so"});
}

TEST_CASE("the same plugin name in two dirs: the first is used, the later is an error") {
  TempDir a, b;
  fs::path first = a.copy(plugin("good"));
  fs::path later = b.copy(plugin("good"));
  PluginHost host({a.path, b.path, a.path});
  CHECK(host.search_path().size() == 2);
  auto found = host.discover();
  REQUIRE(found.plugins.size() == 1);
  CHECK(found.plugins[0].file == first);
  REQUIRE(found.errors.size() == 1);
  CHECK(found.errors[0].first == later);
  CHECK(found.errors[0].second == later.string() + ": plugin 'good' is also in " + first.string() +
                                      ", which comes first in the plugin path and is used; "
                                      "remove one of them");
  CHECK(host.load("good").info().file == first);
}

TEST_CASE("default search path: flags, then $LCAKE_PLUGIN_PATH, then the installed dir") {
  setenv("LCAKE_PLUGIN_PATH", "/env/a::/env/b", 1);
  auto path = PluginHost::default_search_path({"/cli"});
  unsetenv("LCAKE_PLUGIN_PATH");
  REQUIRE(path.size() == 4);
  CHECK(path[0] == "/cli");
  CHECK(path[1] == "/env/a");
  CHECK(path[2] == "/env/b");
  // This test binary sits in <build>/tests, like lcake in <build>/bin.
  const char* build = std::getenv("LCAKE_BINARY_DIR");
  REQUIRE(build);
  CHECK(fs::weakly_canonical(path[3]) ==
        fs::weakly_canonical(fs::path(build) / "lib/lcake/plugins"));
}
