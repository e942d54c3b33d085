#include "table_compare.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace lcake::core {

static std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(std::move(cells));
  }
  return rows;
}

static bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

std::string TableDifference::describe() const {
  return "row " + std::to_string(row) + " column " + column + ": expected " + expected + ", got " +
         actual;
}

TableComparison compare_tables(const std::string& expected_csv, const std::string& actual_csv,
                               double abs_tol, double rel_tol) {
  TableComparison result;
  auto exp = parse_csv(expected_csv);
  auto act = parse_csv(actual_csv);
  if (exp.empty()) {
    result.structural_error = "the expected table is empty";
    return result;
  }
  if (act.empty()) {
    result.structural_error = "the actual table is empty";
    return result;
  }
  if (exp[0] != act[0]) {
    result.structural_error = "header differs";
    return result;
  }
  if (exp.size() != act.size()) {
    result.structural_error = "expected " + std::to_string(exp.size() - 1) + " rows, got " +
                              std::to_string(act.size() - 1);
    return result;
  }
  const auto& header = exp[0];
  for (std::size_t r = 1; r < exp.size(); ++r) {
    for (std::size_t c = 0; c < std::max(exp[r].size(), act[r].size()); ++c) {
      std::string e = c < exp[r].size() ? exp[r][c] : "";
      std::string a = c < act[r].size() ? act[r][c] : "";
      double de, da;
      bool differs;
      if (parse_number(e, de) && parse_number(a, da)) {
        double diff = std::fabs(de - da);
        double scale = std::max(std::fabs(de), std::fabs(da));
        differs = diff > abs_tol && diff > rel_tol * scale;
        if (std::isnan(de) || std::isnan(da)) differs = std::isnan(de) != std::isnan(da);
      } else {
        differs = e != a;
      }
      if (differs)
        result.differences.push_back(
            {r, c < header.size() ? header[c] : "#" + std::to_string(c + 1), e, a});
    }
  }
  return result;
}

}  // namespace lcake::core
