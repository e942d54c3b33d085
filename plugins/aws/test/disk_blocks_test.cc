// Which 512 KiB blocks a disk can hold data in, from qemu-img map of small
// images made with qemu-img/qemu-io: a first layer (data only), a child overlay
// (only what its own layer wrote or zeroed), reading blocks past the end.
#include <doctest/doctest.h>

#include "disk_blocks.h"
#include "lcake/testing.hpp"
#include "test_support.h"

using namespace lcake::aws;

namespace {
void sh(lcake::Context& ctx, const std::string& cmd) {
  lcake::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", cmd};
  ctx.run_checked(spec);
}
}  // namespace

TEST_CASE("candidate blocks of a first layer and of a child overlay") {
  lcake::test::TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path / "ctx");
  ctx.echo = false;
  std::string base = (tmp.path / "base.qcow2").string(), child = (tmp.path / "child.qcow2").string();
  sh(ctx, "qemu-img create -q -f qcow2 " + base + " 10M && qemu-io -c 'write -P 1 0 64K' -c 'write -P 2 1536K 1M' " +
              "-c 'write -P 3 9M 4K' " + base + " >/dev/null");
  auto facts = disk_facts(base, ctx);
  CHECK(facts.format == "qcow2");
  CHECK(facts.virtual_size == 10u << 20);
  CHECK_FALSE(facts.backing);
  std::vector<std::uint64_t> first = {0, 3, 4, 18};
  CHECK(candidate_blocks(image_map(base, ctx), false, facts.virtual_size) == first);

  sh(ctx, "qemu-img create -q -f qcow2 -b " + base + " -F qcow2 " + child + " && qemu-io -c 'write -P 9 5M 4K' " +
              "-c 'write -z 1536K 512K' " + child + " >/dev/null");
  auto cf = disk_facts(child, ctx);
  REQUIRE(cf.backing);
  CHECK(*cf.backing == base);
  std::vector<std::uint64_t> own = {3, 10};  // zeroed block 3 and the new write at 5 MiB
  CHECK(candidate_blocks(image_map(child, ctx), true, cf.virtual_size) == own);
  std::vector<std::uint64_t> whole = {0, 4, 10, 18};  // the child's content against an empty disk
  CHECK(candidate_blocks(image_map(child, ctx), false, cf.virtual_size) == whole);

  // Block contents through the raw view; beyond the end reads zeros.
  auto raw = raw_view(child, cf, tmp.path / "child.raw", ctx);
  BlockReader reader(raw);
  std::string block;
  reader.read(10, block);
  CHECK(block.size() == kEbsBlockSize);
  CHECK(block[0] == 9);
  CHECK(block[4096] == 0);
  reader.read(3, block);
  CHECK(all_zero(block));
  reader.read(100, block);
  CHECK(all_zero(block));
  CHECK(volume_size_gib(1) == 1);
  CHECK(volume_size_gib(kGiB) == 1);
  CHECK(volume_size_gib(kGiB + 1) == 2);
}

TEST_CASE("qemu-img map JSON") {
  auto m = parse_image_map(R"([{"start":0,"length":524288,"depth":0,"present":true,"zero":false,"data":true,"offset":327680},
    {"start":524288,"length":1048576,"depth":1,"present":false,"zero":true,"data":false}])");
  REQUIRE(m.size() == 2);
  CHECK(m[0].data);
  CHECK(m[1].depth == 1);
  CHECK(m[1].zero);
  CHECK_THROWS_AS(parse_image_map("nope"), lcake::BuildError);
}
