#include "config/layers.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <regex>
#include <set>

#include "config/duration.h"
#include "config/json_lines.h"
#include "config/names.h"
#include "config/schema_check.h"
#include "events/redactor.h"
#include "lcake/errors.hpp"

namespace lcake::core {
namespace fs = std::filesystem;
namespace {

class LayerBuilder {
 public:
  LayerBuilder(const LoadedConfig& loaded, Interpolator& interpolator)
      : loaded_(loaded), interpolator_(interpolator), base_dir_(loaded.pipeline_file.parent_path()) {
    if (base_dir_.empty()) base_dir_ = fs::current_path();
  }

  std::vector<Layer> build() {
    const auto& raw_layers = loaded_.tree.at("pipeline").at("layers");
    std::map<std::string, Layer> layers;
    for (const auto& [name, raw] : raw_layers.items()) {
      check_name(loaded_.provenance, pointer_append("/pipeline/layers", name), name, "layer");
      layers[name] = build_layer(name, raw);
    }
    std::vector<std::string> order = order_layers(layers);
    apply_pipeline_verify(layers);
    std::vector<Layer> out;
    for (const auto& name : order) out.push_back(std::move(layers[name]));
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& pointer, const std::string& message) const {
    throw InputError(origin_prefix(loaded_.provenance, pointer) + pointer + ": " + message);
  }

  fs::path resolve_path(const std::string& path) const {
    fs::path p(path);
    return (p.is_absolute() ? p : base_dir_ / p).lexically_normal();
  }

  std::chrono::seconds duration_at(const nlohmann::json& object, const std::string& pointer) const {
    auto it = object.find("timeout");
    if (it == object.end()) return std::chrono::seconds(0);
    auto duration = parse_duration(*it);
    if (!duration) {
      fail(pointer_append(pointer, "timeout"),
           "expected a duration like \"90s\", \"5m\", \"1h\" or a number of seconds, got " + it->dump());
    }
    return *duration;
  }

  void add_input(Layer& layer, const std::string& name, const std::string& pointer) const {
    fs::path path = resolve_path(name);
    if (std::find(layer.inputs.begin(), layer.inputs.end(), path) != layer.inputs.end()) return;
    layer.inputs.push_back(path);
    layer.input_names.push_back(name);
    layer.input_pointers.push_back(pointer);
  }

  Layer build_layer(const std::string& name, const nlohmann::json& raw) {
    const std::string pointer = pointer_append("/pipeline/layers", name);
    nlohmann::json object = interpolator_.apply(raw, pointer, name);
    Layer layer;
    layer.name = name;
    if (object.contains("from")) layer.from = object["from"].get<std::string>();
    const auto inputs = object.value("inputs", nlohmann::json::array());
    for (size_t k = 0; k < inputs.size(); ++k)
      add_input(layer, inputs[k].get<std::string>(), pointer_append(pointer_append(pointer, "inputs"), k));
    const auto provisioners = object.value("provisioners", nlohmann::json::array());
    for (size_t i = 0; i < provisioners.size(); ++i) {
      layer.provisioners.push_back(build_provisioner(layer, provisioners[i], pointer_append(pointer_append(pointer, "provisioners"), i)));
    }
    if (object.contains("verify")) {
      has_own_verify_.insert(name);
      layer.verify = build_verify(object["verify"], pointer_append(pointer, "verify"));
    }
    layer.builder_options = object.value("builder", nlohmann::json::object());
    layer.uploader_options = object.value("uploader", nlohmann::json::object());
    layer.verifier_options = object.value("verifier", nlohmann::json::object());
    layer.publish_options = object.value("publish", nlohmann::json::object());
    // The key covers what changes the image, not how it is checked, uploaded,
    // published or described (the upload key covers the uploader options).
    for (const char* field : {"verify", "description", "uploader", "verifier", "publish"})
      object.erase(field);
    layer.recipe = std::move(object);
    return layer;
  }

  RunAs run_as_at(const nlohmann::json& o, const std::string& pointer) const {
    RunAs r;
    if (o.value("sudo", false)) r.user = "root";
    if (o.contains("run_as")) r.user = o["run_as"].get<std::string>();
    if (o.contains("execute_command")) {
      r.execute_command = o["execute_command"].get<std::string>();
      if (!r.user.empty())
        fail(pointer_append(pointer, "execute_command"),
             "replaces \"sudo\" and \"run_as\": drop those, or write sudo into the template");
      if (r.execute_command.find("{{path}}") == std::string::npos)
        fail(pointer_append(pointer, "execute_command"),
             "has no {{path}} (where the script is in the machine), e.g. \"sudo -E sh {{path}}\"");
    }
    return r;
  }

  Provisioner build_provisioner(Layer& layer, const nlohmann::json& p, const std::string& pointer) const {
    Provisioner out;
    out.pointer = pointer;
    out.type = p.at("type").get<std::string>();
    static const std::map<std::string, std::set<std::string>> kKeys = {
        {"shell", {"inline", "script", "sudo", "run_as", "execute_command"}},
        {"file", {"source", "destination"}},
        {"env", {"vars"}}};
    for (const auto& [key, _] : p.items()) {
      bool common = key == "type" || key == "timeout" || key == "retries" || key == "description" ||
                    (key == "sensitive" && out.type == "file");
      if (!common && !kKeys.at(out.type).contains(key)) {
        fail(pointer_append(pointer, key), "\"" + key + "\" is not used by a " + out.type + " provisioner");
      }
    }
    if (out.type == "shell") {
      if (p.contains("inline") == p.contains("script")) {
        fail(pointer, "a shell provisioner needs either \"inline\" (commands) or \"script\" (a file), not both or neither");
      }
      if (p.contains("inline")) out.inline_commands = p["inline"].get<std::vector<std::string>>();
      if (p.contains("script")) {
        out.script = resolve_path(p["script"].get<std::string>());
        add_input(layer, p["script"].get<std::string>(), pointer_append(pointer, "script"));
      }
    } else if (out.type == "file") {
      for (const char* key : {"source", "destination"}) {
        if (!p.contains(key)) fail(pointer, std::string("a file provisioner needs \"") + key + "\"");
      }
      out.source = resolve_path(p["source"].get<std::string>());
      out.destination = p["destination"].get<std::string>();
      out.sensitive = p.value("sensitive", false);
      // A secret's bytes stay out of the key (its path and destination are in the recipe).
      if (out.sensitive) register_secret_file(out, pointer);
      else add_input(layer, p["source"].get<std::string>(), pointer_append(pointer, "source"));
    } else {
      if (!p.contains("vars")) fail(pointer, "an env provisioner needs \"vars\": {\"NAME\": \"value\"}");
      for (const auto& [key, value] : p["vars"].items()) out.env[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
    out.timeout = duration_at(p, pointer);
    out.retries = p.value("retries", 0);
    out.run_as = run_as_at(p, pointer);
    return out;
  }

  // The file's bytes are redacted like a sensitive variable's value. A missing file is
  // reported by the local files check (core/plan), before anything runs.
  void register_secret_file(const Provisioner& p, const std::string& pointer) const {
    std::error_code ec;
    if (!fs::exists(p.source, ec)) return;
    if (!fs::is_regular_file(p.source, ec))
      fail(pointer_append(pointer, "source"), p.source.string() +
           " is not a regular file: a sensitive file provisioner uploads one file (write one provisioner per secret file)");
    std::ifstream in(p.source, std::ios::binary);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf()))
      fail(pointer_append(pointer, "source"), "cannot read the secret file " + p.source.string() + ": check its permissions");
    std::string value = text.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (value.size() < Redactor::kMinLength)
      fail(pointer_append(pointer, "source"), "the sensitive file " + p.source.string() + " holds " +
           std::to_string(value.size()) + " character(s); lcake redacts only values of at least " +
           std::to_string(Redactor::kMinLength) + " characters: use a longer secret, or drop \"sensitive\"");
    Redactor::instance().add(value);
  }

  std::vector<VerifyStep> build_verify(const nlohmann::json& steps, const std::string& pointer) const {
    std::vector<VerifyStep> out;
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto& s = steps[i];
      VerifyStep step;
      step.pointer = pointer_append(pointer, i);
      step.name = s.value("name", "verify-" + std::to_string(i + 1));
      step.run = s.value("run", "");
      step.expect_exit = s.value("expect_exit", 0);
      const auto patterns = s.value("expect_output", nlohmann::json::array());
      for (size_t j = 0; j < patterns.size(); ++j) {
        std::string pattern = patterns[j].get<std::string>();
        try {
          std::regex check(pattern, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          fail(pointer_append(pointer_append(step.pointer, "expect_output"), j),
               "not a valid regular expression (" + std::string(e.what()) + ")");
        }
        step.expect_output.push_back(pattern);
      }
      if (s.contains("compare")) {
        const auto& c = s["compare"];
        step.compare = CompareSpec{c.at("actual").get<std::string>(), resolve_path(c.at("expected").get<std::string>()),
                                   c.value("abs_tol", 1e-10), c.value("rel_tol", 1e-10)};
      }
      if (step.run.empty() && !step.compare) fail(step.pointer, "a verify step needs \"run\" (a command) or \"compare\"");
      step.timeout = duration_at(s, step.pointer);
      step.run_as = run_as_at(s, step.pointer);
      out.push_back(std::move(step));
    }
    return out;
  }

  // Parents before children: a walk from the single root, children by name.
  std::vector<std::string> order_layers(const std::map<std::string, Layer>& layers) const {
    std::string names;
    for (const auto& [name, _] : layers) names += (names.empty() ? "" : ", ") + name;
    std::vector<std::string> roots;
    std::map<std::string, std::vector<std::string>> children;
    for (const auto& [name, layer] : layers) {
      if (!layer.from) {
        roots.push_back(name);
      } else if (!layers.contains(*layer.from)) {
        fail(pointer_append(pointer_append("/pipeline/layers", name), "from"),
             "layer \"" + name + "\" is built from \"" + *layer.from + "\", which is not a layer (layers: " + names + ")");
      } else {
        children[*layer.from].push_back(name);
      }
    }
    if (roots.size() > 1) {
      fail(pointer_append("/pipeline/layers", roots[1]),
           "layers \"" + roots[0] + "\" and \"" + roots[1] +
               "\" both have no \"from\": exactly one layer starts from the variant's source; give the other a \"from\"");
    }
    std::vector<std::string> order;
    std::vector<std::string> stack(roots.rbegin(), roots.rend());
    while (!stack.empty()) {
      std::string name = stack.back();
      stack.pop_back();
      order.push_back(name);
      const auto& kids = children[name];
      stack.insert(stack.end(), kids.rbegin(), kids.rend());
    }
    if (order.size() != layers.size()) {
      // Every layer not reached has a parent, so following "from" must loop.
      std::set<std::string> reached(order.begin(), order.end());
      std::string start;
      for (const auto& [name, _] : layers) {
        if (!reached.contains(name)) {
          start = name;
          break;
        }
      }
      std::vector<std::string> path;
      std::string at = start;
      while (std::find(path.begin(), path.end(), at) == path.end()) {
        path.push_back(at);
        at = *layers.at(at).from;
      }
      std::string cycle;
      for (auto it = std::find(path.begin(), path.end(), at); it != path.end(); ++it) cycle += *it + " -> ";
      fail(pointer_append(pointer_append("/pipeline/layers", at), "from"),
           "layer \"" + at + "\" is in a cycle: " + cycle + at + "; one layer must start from the source (no \"from\")");
    }
    return order;
  }

  // The pipeline's verify steps go to each last layer (one no layer builds from)
  // that has no "verify" of its own.
  void apply_pipeline_verify(std::map<std::string, Layer>& layers) const {
    const auto& pipeline = loaded_.tree.at("pipeline");
    if (!pipeline.contains("verify")) return;
    nlohmann::json steps = interpolator_.apply(pipeline["verify"], "/pipeline/verify", "");
    std::vector<VerifyStep> verify = build_verify(steps, "/pipeline/verify");
    std::set<std::string> parents;
    for (const auto& [_, layer] : layers) {
      if (layer.from) parents.insert(*layer.from);
    }
    for (auto& [name, layer] : layers) {
      if (!parents.contains(name) && !has_own_verify_.contains(name)) layer.verify = verify;
    }
  }

  const LoadedConfig& loaded_;
  Interpolator& interpolator_;
  fs::path base_dir_;
  std::set<std::string> has_own_verify_;
};

}  // namespace

std::vector<Layer> build_layers(const LoadedConfig& loaded, Interpolator& interpolator) {
  return LayerBuilder(loaded, interpolator).build();
}

}  // namespace lcake::core
