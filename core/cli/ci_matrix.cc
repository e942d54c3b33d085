#include "ci_matrix.h"

#include <nlohmann/json.hpp>

#include "lcake/errors.hpp"

namespace lcake::cli {
namespace {

using json = nlohmann::json;

std::vector<std::string> job_command(const MatrixInput& in, const std::string& variant) {
  std::vector<std::string> argv = {"lcake", "build", "--target", in.target, "--only", variant};
  argv.insert(argv.end(), in.config_flags.begin(), in.config_flags.end());
  if (in.no_verify) argv.push_back("--no-verify");
  argv.push_back("--no-publish");
  return argv;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& w : argv) out += (out.empty() ? "" : " ") + shell_quote(w);
  return out;
}

// A YAML scalar: JSON's string syntax is valid YAML.
std::string yaml(const std::string& s) { return json(s).dump(); }

}  // namespace

std::string shell_quote(const std::string& word) {
  bool plain = !word.empty();
  for (char c : word)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string("-_./=:,+@%").find(c) != std::string::npos))
      plain = false;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string emit_matrix(const std::string& format, const MatrixInput& in,
                        const std::vector<core::VariantPlan>& plan) {
  json jobs = json::array();
  for (const auto& v : plan) {
    json layers = json::array();
    bool selected = false, all_cached = true;
    for (const auto& l : v.layers) {
      if (!l.selected) continue;
      selected = true;
      bool cached = !l.build_needed && (!l.upload_wanted || l.upload_cached);
      all_cached = all_cached && cached;
      layers.push_back({{"layer", l.layer}, {"key", l.key}, {"cached", cached}});
    }
    if (!selected) continue;
    auto argv = job_command(in, v.variant);
    jobs.push_back({{"name", in.target + "/" + v.variant}, {"variant", v.variant}, {"target", in.target},
                    {"argv", argv}, {"command", joined(argv)}, {"cached", all_cached}, {"layers", layers}});
  }
  std::vector<std::string> publish = {"lcake", "build", "--target", in.target};
  publish.insert(publish.end(), in.config_flags.begin(), in.config_flags.end());
  if (in.no_verify) publish.push_back("--no-verify");
  if (format == "json") {
    return json({{"version", 1}, {"target", in.target}, {"jobs", jobs},
                 {"publish", {{"argv", publish}, {"command", joined(publish)}}}})
               .dump(2) + "\n";
  }
  if (format == "github-actions") {
    json include = json::array();
    for (const auto& j : jobs)
      include.push_back({{"name", j["name"]}, {"variant", j["variant"]}, {"target", j["target"]},
                         {"command", j["command"]}});
    return json({{"include", include}}).dump() + "\n";
  }
  if (format == "gitlab") {
    std::string out = "# lcake plan --emit gitlab: one job per variant of target " + in.target +
                      "; publish runs after all of them\nstages: [build, publish]\n";
    for (const auto& j : jobs) {
      out += "\n" + yaml("lcake " + j["name"].get<std::string>()) + ":\n  stage: build\n  script:\n    - " +
             yaml(j["command"].get<std::string>()) + "\n  after_script:\n    - \"lcake gc\"\n";
    }
    out += "\n" + yaml("lcake publish " + in.target) + ":\n  stage: publish\n  script:\n    - " +
           yaml(joined(publish)) + "\n  after_script:\n    - \"lcake gc\"\n";
    return out;
  }
  throw InputError("--emit " + format + ": say github-actions, gitlab or json");
}

}  // namespace lcake::cli
