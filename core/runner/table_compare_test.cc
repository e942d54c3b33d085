#include "table_compare.h"

#include <doctest/doctest.h>

using lcake::core::compare_tables;

TEST_CASE("numbers differ only beyond both tolerances") {
  std::string e = "id,mag,flag\n1,21.5,ok\n2,0.000001,bad\n";
  CHECK(compare_tables(e, e, 1e-10, 1e-10).ok());
  // 1e-12 absolute difference on 21.5: inside the absolute tolerance.
  CHECK(compare_tables(e, "id,mag,flag\n1,21.500000000001,ok\n2,0.000001,bad\n", 1e-10, 1e-10).ok());
  auto r = compare_tables(e, "id,mag,flag\n1,21.6,ok\n2,0.000001,bad\n", 1e-10, 1e-10);
  REQUIRE(r.differences.size() == 1);
  CHECK(r.differences[0].row == 1);
  CHECK(r.differences[0].column == "mag");
  CHECK(r.differences[0].describe() == "row 1 column mag: expected 21.5, got 21.6");
  // A relative difference alone is not enough when the absolute one is tiny.
  CHECK(compare_tables("x\n1e-20\n", "x\n2e-20\n", 1e-10, 1e-10).ok());
}

TEST_CASE("flags and other text must match exactly") {
  auto r = compare_tables("id,flag\n1,ok\n", "id,flag\n1,OK\n", 1, 1);
  REQUIRE(r.differences.size() == 1);
  CHECK(r.differences[0].expected == "ok");
}

TEST_CASE("structure: header and row count") {
  CHECK(compare_tables("a,b\n1,2\n", "a,c\n1,2\n", 0, 0).structural_error == "header differs");
  CHECK(compare_tables("a\n1\n2\n", "a\n1\n", 0, 0).structural_error == "expected 2 rows, got 1");
  CHECK(!compare_tables("a\n1\n", "", 0, 0).ok());
}
