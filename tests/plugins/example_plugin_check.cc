// example_plugin_check PLUGIN_FILE WORK_DIR: loads the out-of-tree publish-dir
// plugin through the real PluginHost and exercises its uploader on real files.
// Leaves WORK_DIR/out (the published files and SHA256SUMS) for the calling
// script to check with sha256sum. Exit code 0 when every check passed.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "lcake/sdk.hpp"
#include "lcake/testing.hpp"
#include "plugin_host/plugin_host.h"

namespace fs = std::filesystem;

namespace {

int failures = 0;
#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::cerr << __FILE__ << ":" << __LINE__ << ": failed: " #cond "\n"; \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

// Every ledger entry the plugin made is a "path" it released by the end of the step.
bool ledger_clean(const lcake::testing::FakeContext& ctx) {
  for (const auto& e : ctx.memory_ledger.all_entries())
    if (e.kind != "path" || !e.how.contains("path")) return false;
  return ctx.memory_ledger.open_entries().empty();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

lcake::UploadRequest request(const std::string& layer, lcake::Artifact built) {
  lcake::UploadRequest r;
  r.layer = {"example", "debian-12", layer, std::string(64, 'a'), "test"};
  r.built = std::move(built);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: example_plugin_check PLUGIN_FILE WORK_DIR\n";
    return 2;
  }
  fs::path work = argv[2];
  fs::create_directories(work / "src");
  try {
    lcake::core::PluginHost host({});
    const auto& plugin = host.load_file(argv[1]);
    const auto& info = plugin.info();
    EXPECT(info.name == "publish-dir");
    EXPECT(info.version == "1.0.0");
    EXPECT(info.roles == std::vector<std::string>{"uploader"});
    EXPECT(info.role.at("uploader").settings.at("required") == nlohmann::json::array({"directory"}));

    // Two artifacts: one by path in id (a disk), one by metadata.path (id is a digest).
    std::string disk(3 * 1024 * 1024 + 17, '\0');
    for (std::size_t i = 0; i < disk.size(); ++i) disk[i] = static_cast<char>((i * 7919) >> 3);
    std::ofstream(work / "src/disk.qcow2", std::ios::binary) << disk;
    std::ofstream(work / "src/notes.txt") << "built by lcake\n";

    auto uploader = plugin.make_uploader({{"directory", (work / "out").string()}});
    lcake::testing::FakeContext ctx(work / "ctx");
    auto a = uploader->upload(request("base", {"qcow2", (work / "src/disk.qcow2").string(), {}, ""}), ctx);
    EXPECT(a.type == "file");
    EXPECT(a.id == (work / "out/debian-12-base-disk.qcow2").string());
    EXPECT(slurp(a.id) == disk);
    EXPECT(a.metadata.at("sha256").get<std::string>().size() == 64);
    EXPECT(ledger_clean(ctx));

    auto named = plugin.make_uploader(
        {{"directory", (work / "out").string()}, {"name", "{layer}-{key}.txt"}});
    lcake::Artifact notes{"note", "sha256:1234", {{"path", (work / "src/notes.txt").string()}}, ""};
    auto b = named->upload(request("stack", notes), ctx);
    EXPECT(b.id == (work / "out" / ("stack-" + std::string(64, 'a') + ".txt")).string());
    EXPECT(slurp(b.id) == "built by lcake\n");
    EXPECT(uploader->exists(b, ctx));

    // A third upload that is then removed: gone from the dir and from SHA256SUMS.
    auto c = uploader->upload(request("extra", {"qcow2", (work / "src/disk.qcow2").string(), {}, ""}), ctx);
    EXPECT(fs::exists(c.id));
    uploader->remove(c, ctx);
    EXPECT(!fs::exists(c.id));
    EXPECT(!uploader->exists(c, ctx));
    uploader->remove(c, ctx);  // idempotent
    EXPECT(slurp(work / "out/SHA256SUMS").find("extra") == std::string::npos);
    EXPECT(ledger_clean(ctx));

    // Not a file: a BuildError, not a crash, and nothing left behind.
    bool threw = false;
    try {
      uploader->upload(request("bad", {"qcow2", (work / "src/missing").string(), {}, ""}), ctx);
    } catch (const lcake::BuildError&) {
      threw = true;
    }
    EXPECT(threw);

    // Missing directory: the factory's error comes back as a one-line InputError.
    try {
      plugin.make_uploader(nlohmann::json::object());
      EXPECT(false && "make_uploader without directory should fail");
    } catch (const lcake::InputError& e) {
      EXPECT(std::string(e.what()).find("failed to create its uploader") != std::string::npos);
      EXPECT(std::string(e.what()).find("directory") != std::string::npos);
    }
  } catch (const std::exception& e) {
    std::cerr << "example_plugin_check: " << e.what() << "\n";
    return 1;
  }
  if (failures) std::cerr << failures << " check(s) failed\n";
  return failures ? 1 : 0;
}
