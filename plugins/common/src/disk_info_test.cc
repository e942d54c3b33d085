// The qemu-img info reader: real images made with qemu-img (a qcow2 overlay on a
// raw base, named relatively and absolutely), and the JSON shapes qemu-img prints.
#include "lcake/common/disk_info.h"

#include <doctest/doctest.h>

#include "lcake/errors.hpp"
#include "lcake/testing.hpp"
#include "test_support.h"

using lcake::common::disk_info;
using lcake::common::parse_disk_info;

TEST_CASE("disk_info of real images: format, virtual size, the backing file resolved") {
  lcake::test::TempDir tmp;
  lcake::testing::FakeContext ctx(tmp.path / "ctx");
  ctx.echo = false;
  auto sh = [&](const std::string& cmd) { ctx.run_checked({.argv = {"/bin/sh", "-c", cmd}}); };
  sh("cd " + tmp.path.string() + " && qemu-img create -q -f raw base.raw 3M && "
     "qemu-img create -q -f qcow2 -b base.raw -F raw child.qcow2 5M");
  auto base = disk_info(tmp.path / "base.raw", ctx);
  CHECK(base.format == "raw");
  CHECK(base.virtual_size == 3u << 20);
  CHECK_FALSE(base.has_backing());
  auto child = disk_info(tmp.path / "child.qcow2", ctx);
  CHECK(child.format == "qcow2");
  CHECK(child.virtual_size == 5u << 20);
  REQUIRE(child.has_backing());
  CHECK(*child.backing == (tmp.path / "base.raw").string());
  CHECK(child.backing_format == "raw");
  CHECK_THROWS_AS(disk_info(tmp.path / "missing.qcow2", ctx), lcake::BuildError);
}

TEST_CASE("parse_disk_info: warnings before the JSON, relative and absolute backing names, no JSON") {
  auto d = parse_disk_info("qemu-img: warning: something\n{\"format\": \"qcow2\", \"virtual-size\": 1048576, "
                           "\"backing-filename\": \"parent.qcow2\", \"backing-filename-format\": \"qcow2\"}",
                           "/images/layers/child.qcow2");
  CHECK(d.format == "qcow2");
  CHECK(d.virtual_size == 1048576);
  REQUIRE(d.backing);
  CHECK(*d.backing == "/images/layers/parent.qcow2");
  auto full = parse_disk_info(R"({"format": "qcow2", "virtual-size": 1, "backing-filename": "parent.qcow2",
                                  "full-backing-filename": "/elsewhere/parent.qcow2"})", "/images/child.qcow2");
  CHECK(*full.backing == "/elsewhere/parent.qcow2");
  auto abs = parse_disk_info(R"({"format": "qcow2", "backing-filename": "/abs/p.raw"})", "/images/c.qcow2");
  CHECK(*abs.backing == "/abs/p.raw");
  try {
    parse_disk_info("qemu-img: Could not open 'x'", "/images/x.qcow2");
    FAIL("no error");
  } catch (const lcake::BuildError& e) {
    CHECK(std::string(e.what()) == "qemu-img info /images/x.qcow2 printed no JSON");
  }
}
