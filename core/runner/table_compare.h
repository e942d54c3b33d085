// Compares two CSV tables the way the original stack demo's bin/compare did: a
// number differs only when both its absolute and its relative difference
// exceed the tolerances; every other cell must match exactly.
#pragma once
#include <string>
#include <vector>

namespace lcake::core {

struct TableDifference {
  std::size_t row = 0;  // 1-based data row (the header is row 0)
  std::string column;
  std::string expected, actual;
  std::string describe() const;
};

struct TableComparison {
  std::vector<TableDifference> differences;
  std::string structural_error;  // header or row-count mismatch
  bool ok() const { return differences.empty() && structural_error.empty(); }
};

TableComparison compare_tables(const std::string& expected_csv, const std::string& actual_csv,
                               double abs_tol, double rel_tol);

}  // namespace lcake::core
