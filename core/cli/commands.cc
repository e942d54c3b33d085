#include "commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

#include "config/interpolate.h"
#include "config/json_lines.h"
#include "lcake/errors.hpp"
#include "lcake/version.hpp"
#include "options.h"
#include "plan/input_check.h"
#include "plugin_host/plugin_host.h"
#include "runner/cancel.h"
#include "runner/outputs.h"
#include "events/json_view.h"
#include "events/log_level.h"
#include "events/redactor.h"
#include "events/text_view.h"
#include "ci_matrix.h"
#include "config/config_files.h"
#include "file_schemas.h"
#include "runner/plugin_roles.h"
#include "runner/reaper.h"
#include "runner/runner.h"
#include "state/state_store.h"

#ifndef LCAKE_VERSION
#define LCAKE_VERSION "0.0.0"
#endif

namespace lcake::cli {
namespace {

namespace fs = std::filesystem;

// Parses a subcommand's arguments; prints help and returns false on --help.
bool parse(const std::string& name, const std::string& usage_line, const std::vector<std::string>& args,
           po::options_description& desc, po::positional_options_description* positional = nullptr,
           po::variables_map* out = nullptr) {
  po::variables_map vm;
  auto parser = po::command_line_parser(args).options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: lcake " << name << " " << usage_line << "\n\n" << desc << "\n";
    return false;
  }
  po::notify(vm);
  if (out) *out = vm;
  return true;
}

struct Session {
  CommonOptions opts;
  core::FileTerminal terminal{stderr};
  std::unique_ptr<core::EventSink> log;  // the text view, or --json
  std::unique_ptr<core::StateStore> state;
  std::unique_ptr<core::PluginHost> plugins;
  core::LoadedConfig loaded;
  core::ResolvedConfig resolved;

  // `needs_verifier` false: a command that never verifies (gc, outputs); the target's verifier is
  // left out, so what only it uses (a variable like SSH_CIDR) need not be given.
  void open(bool needs_config, bool needs_verifier = true) {
    core::Redactor::instance().add_known_environment();
    auto level = core::parse_log_level(opts.log_level);
    if (opts.json) {
      log = std::make_unique<core::JsonView>(stderr, level);
    } else {
      core::TextView::Options view;
      view.min_level = level;
      view.smart = core::is_smart_terminal(stderr);
      view.tick_every = std::chrono::milliseconds(1000);  // elapsed times move during silent steps
      log = std::make_unique<core::TextView>(terminal, view);
    }
    state = core::StateStore::open(opts.state_dir.empty() ? core::StateStore::default_dir()
                                                          : fs::path(opts.state_dir));
    std::vector<fs::path> paths(opts.plugin_path.begin(), opts.plugin_path.end());
    plugins = std::make_unique<core::PluginHost>(core::PluginHost::default_search_path(paths));
    if (needs_config) {
      loaded = core::load_config(opts.load);
      resolved = core::resolve_config(loaded, {.without_verifier = !needs_verifier});
    }
  }

  // Before any runner starts: plugin inputs, artifact types, the verify gate, --only.
  void check_inputs(bool no_verify, const std::vector<std::string>& only) {
    core::check_inputs(loaded, resolved, *plugins, {no_verify, only});
  }
};

po::options_description all_run_options(CommonOptions& o) {
  po::options_description d;
  d.add(config_options(o)).add(run_options(o)).add(global_options(o));
  return d;
}

int run_command(const std::string& name, const std::vector<std::string>& args) {
  Session s;
  auto desc = all_run_options(s.opts);
  bool hooks_only = false;
  if (name == "publish")
    desc.add_options()("hooks", po::bool_switch(&hooks_only),
                       "publish nothing: run the target's after_publish hooks again for its last build or publish run");
  if (!parse(name, name == "publish" ? "--target T [--hooks] [OPTIONS]" : "--target T [OPTIONS]", args, desc))
    return 0;
  finish_options(s.opts, true);
  s.open(true);
  s.check_inputs(s.opts.run.no_verify, s.opts.run.only);
  core::CancelSource cancel;
  core::EventSink* log = s.log.get();
  core::install_signal_cancel(
      cancel, [log] { log->log(LogLevel::warn, "", "interrupted: cancelling and cleaning up (press Ctrl-C again to stop at once and leave cleanup to `lcake gc`)"); },
      [log] { log->log(LogLevel::error, "", "stopped at once: run `lcake gc` to delete what this run left behind"); });
  core::PluginRoles roles(*s.plugins, &s.loaded, &s.resolved.target);
  core::Runner runner(s.loaded, s.resolved, roles, *s.state, *s.log, cancel);
  runner.prepare();
  if (hooks_only) return runner.run_hooks_again();
  if (name == "verify") return runner.verify(s.opts.run);
  if (name == "publish") return runner.publish(s.opts.run);
  return runner.build(s.opts.run);
}

int cmd_build(const std::vector<std::string>& a) { return run_command("build", a); }
int cmd_verify(const std::vector<std::string>& a) { return run_command("verify", a); }
int cmd_publish(const std::vector<std::string>& a) { return run_command("publish", a); }

// The flags that shaped the configuration, as a CI job must repeat them.
std::vector<std::string> config_flags(const core::LoadOptions& l) {
  std::vector<std::string> out;
  auto add = [&](const char* flag, const auto& values) {
    for (const auto& v : values) out.insert(out.end(), {flag, fs::path(v).string()});
  };
  add("--config-dir", l.config_dirs);
  if (l.pipeline) out.insert(out.end(), {"--pipeline", l.pipeline->string()});
  add("--site", l.sites);
  add("--overlay", l.overlays);
  add("--var-file", l.var_files);
  add("--var", l.vars);
  add("--set", l.sets);
  return out;
}

int cmd_plan(const std::vector<std::string>& args) {
  Session s;
  std::string emit;
  auto desc = all_run_options(s.opts);
  desc.add_options()("emit", po::value(&emit),
                     "print the CI build matrix instead: github-actions, gitlab or json (docs/ci.md)");
  if (!parse("plan", "--target T [OPTIONS]", args, desc)) return 0;
  std::vector<std::string> flags = config_flags(s.opts.load);  // before the default dirs join
  if (!emit.empty() && emit != "github-actions" && emit != "gitlab" && emit != "json")
    throw InputError("--emit " + emit + ": say github-actions, gitlab or json");
  finish_options(s.opts, true);
  s.open(true);
  s.check_inputs(s.opts.run.no_verify, s.opts.run.only);
  core::CancelSource cancel;
  core::PluginRoles roles(*s.plugins, &s.loaded, &s.resolved.target);
  core::Runner runner(s.loaded, s.resolved, roles, *s.state, *s.log, cancel);
  runner.prepare();
  auto plan = runner.plan(s.opts.run);
  if (!emit.empty()) {
    MatrixInput in{s.resolved.target.name, flags, s.opts.run.no_verify};
    if (core::looks_like_path(s.opts.load.target)) in.target = s.opts.load.target;
    std::cout << core::Redactor::instance().apply(emit_matrix(emit, in, plan));
    return 0;
  }
  // Builder options the host set for the final image of a cloud target (cloud_defaults.cc).
  auto host_defaults = [&](const core::LayerPlan& l) -> const std::vector<core::HostDefault>& {
    static const std::vector<core::HostDefault> none;
    for (const auto& v : s.resolved.variants)
      if (v.name == l.variant)
        for (const auto& layer : v.layers)
          if (layer.name == l.layer) return layer.host_defaults;
    return none;
  };
  if (s.opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : plan)
      for (const auto& l : v.layers) {
        nlohmann::json defaults = nlohmann::json::array();
        for (const auto& d : host_defaults(l))
          defaults.push_back({{"option", d.option}, {"value", d.value}, {"why", d.why}});
        out.push_back({{"variant", l.variant}, {"layer", l.layer}, {"key", l.key},
                       {"selected", l.selected}, {"cached", l.build_cached},
                       {"build", l.build_needed}, {"upload_found", l.upload_found},
                       {"upload", l.upload_wanted}, {"upload_cached", l.upload_cached},
                       {"verify", l.verify_wanted}, {"verified", l.verified},
                       {"published", l.published}, {"previous_key", l.previous_key.value_or("")},
                       {"on_parent_upload", l.on_parent_upload}, {"children_on_upload", l.children_on_upload},
                       {"reasons", l.reasons}, {"sensitive", l.sensitive},
                       {"builder_defaults", defaults}});
      }
    std::cout << core::Redactor::instance().apply(out.dump(2)) << "\n";
    return 0;
  }
  std::cout << "target " << s.resolved.target.name << ", pipeline " << s.resolved.pipeline_name << " ("
            << s.loaded.pipeline_file.string() << ")\n";
  for (const auto& v : plan) {
    std::cout << v.variant << "\n";
    for (const auto& l : v.layers) {
      std::string action;
      if (!l.selected) action = "skip (not selected)";
      else if (l.build_cached) {
        action = "cached";
        if (l.upload_wanted && !l.upload_cached) action += ", upload";
        if (l.verify_wanted) action += l.verified ? ", verified" : ", verify";
        if (l.upload_wanted && l.published) action += ", published";
      } else if (!l.build_needed) {
        action = l.upload_found ? "upload found in the backend" : "upload cached";
        if (l.children_on_upload) action += " (not built: its children are built from its upload)";
        if (l.verify_wanted) action += l.verified ? ", verified" : ", verify";
      } else {
        action = l.on_parent_upload ? "build on its parent's upload" : "build";
        if (l.upload_found) action += " (its upload was found in the backend: a child needs the build)";
        if (l.upload_wanted) action += ", upload";
        if (l.verify_wanted) action += ", verify";
      }
      std::printf("  %-14s %s  %s\n", l.layer.c_str(), l.key.substr(0, 12).c_str(), action.c_str());
      if (!l.sensitive.empty()) {
        std::string names;
        for (const auto& n : l.sensitive) names += (names.empty() ? "" : ", ") + n;
        std::printf("  %-14s   uses sensitive %s (in the key as \"used\", or its value's hash with \"key\": \"value-hash\")\n",
                    "", names.c_str());
      }
      for (const auto& d : host_defaults(l))
        std::printf("  %-14s   builder %s: %s (default for %s; \"builder\": {\"%s\": ...} on the layer overrides it)\n", "",
                    d.option.c_str(), d.value.dump().c_str(), d.why.c_str(), d.option.c_str());
      if (l.selected && l.build_needed) {
        if (l.previous_key) {
          std::printf("  %-14s   was %s:", "", l.previous_key->substr(0, 12).c_str());
          for (std::size_t i = 0; i < l.reasons.size(); ++i)
            std::printf("%s %s", i ? ";" : "", l.reasons[i].c_str());
          std::printf("\n");
        } else {
          std::printf("  %-14s   never built\n", "");
        }
      }
    }
  }
  std::fflush(stdout);
  return 0;
}

int cmd_gc(const std::vector<std::string>& args) {
  Session s;
  po::options_description desc;
  std::int64_t grace = 6 * 3600;
  desc.add_options()("grace", po::value(&grace),
                     "with --target: keep duplicate uploads of a key (runners that raced on it) "
                     "created less than SECONDS ago (default 21600)");
  desc.add(config_options(s.opts)).add(global_options(s.opts));
  if (!parse("gc", "[--target T [CONFIG OPTIONS]] [--grace SECONDS] [OPTIONS]", args, desc)) return 0;
  if (grace < 0) throw lcake::InputError("gc --grace " + std::to_string(grace) + ": give a number of seconds, 0 or more");
  finish_options(s.opts, false);
  s.open(!s.opts.load.target.empty(), false);
  std::vector<core::LedgerRow> rows;
  int skipped = 0;
  for (auto& row : s.state->ledger_open()) {
    // Never touch what a live lcake process is still working on.
    if (s.state->run_alive(row.run_id)) ++skipped;
    else rows.push_back(row);
  }
  core::CancelSource never;  // gc is not cancellable: it is the cleanup
  core::PluginRoles gc_roles(*s.plugins, nullptr, nullptr);
  core::Reaper reaper(*s.state, gc_roles, *s.log, s.state->dir() / "work" / "gc");
  auto counts = reaper.reap(rows);
  std::error_code ec;
  fs::remove_all(s.state->dir() / "work" / "gc", ec);
  // Work dirs of runs that are over.
  for (const auto& run : s.state->runs())
    if (!s.state->run_alive(run.id)) fs::remove_all(s.state->dir() / "work" / run.id, ec);
  std::printf("gc: %d deleted, %d already gone, %d failed, %d belong to running lcake processes\n",
              counts.deleted, counts.gone, counts.failed, skipped);
  if (!s.opts.load.target.empty()) {
    s.check_inputs(true, {});  // the same defaults as the builds, so the keys agree
    core::PluginRoles roles(*s.plugins, &s.loaded, &s.resolved.target);
    core::Runner runner(s.loaded, s.resolved, roles, *s.state, *s.log, never);
    runner.prepare();
    std::printf("gc: %d superseded artifact(s) of target %s removed\n", runner.remove_superseded(),
                s.resolved.target.name.c_str());
    std::printf("gc: %d duplicate upload(s) of target %s removed\n", runner.remove_duplicates(grace),
                s.resolved.target.name.c_str());
  }
  return counts.failed ? 1 : 0;
}

// Published under --no-verify (the runner marks the published artifact).
bool unverified(const core::ArtifactRecord& a) {
  return a.published && a.artifact.metadata.contains("lcake_unverified");
}

int cmd_artifacts(const std::vector<std::string>& args) {
  Session s;
  po::options_description desc;
  desc.add_options()("target,t", po::value(&s.opts.load.target), "only this target");
  desc.add(global_options(s.opts));
  if (!parse("artifacts", "[--target T] [OPTIONS]", args, desc)) return 0;
  finish_options(s.opts, false);
  s.open(false);
  auto list = s.state->list_artifacts(s.opts.load.target);
  if (s.opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& a : list)
      out.push_back({{"target", a.target}, {"variant", a.variant}, {"layer", a.layer}, {"key", a.key},
                     {"stage", a.stage}, {"artifact", a.artifact}, {"verified", a.verified},
                     {"published", a.published}, {"unverified", unverified(a)},
                     {"created", a.created_at}, {"run", a.run_id}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-10s %-16s %-12s %-7s %-12s %-9s %s\n", "TARGET", "VARIANT", "LAYER", "STAGE", "KEY",
              "STATUS", "ARTIFACT");
  for (const auto& a : list) {
    std::string status = unverified(a)  ? "published-UNVERIFIED"
                         : a.published ? "published"
                         : a.verified  ? "verified"
                                       : "-";
    std::printf("%-10s %-16s %-12s %-7s %-12s %-9s %s %s\n", a.target.c_str(), a.variant.c_str(),
                a.layer.c_str(), a.stage.c_str(), a.key.substr(0, 12).c_str(), status.c_str(),
                a.artifact.type.c_str(), a.artifact.id.c_str());
  }
  return 0;
}

int cmd_outputs(const std::vector<std::string>& args) {
  Session s;
  std::string format = "json";
  po::options_description desc;
  desc.add_options()("format", po::value(&format), "json (default), shell (KEY='value' lines) or tfvars (*.auto.tfvars.json)");
  desc.add(config_options(s.opts)).add(global_options(s.opts));
  if (!parse("outputs", "--target T [--format json|shell|tfvars] [OPTIONS]", args, desc)) return 0;
  if (format != "json" && format != "shell" && format != "tfvars")
    throw InputError("--format: '" + format + "' is not json, shell or tfvars");
  finish_options(s.opts, true);
  s.open(true, false);
  auto doc = core::collect_outputs(*s.state, s.resolved, "", {});
  std::string text = format == "shell"    ? core::outputs_as_shell(doc)
                     : format == "tfvars" ? core::outputs_as_tfvars(doc).dump(2) + "\n"
                                          : doc.dump(2) + "\n";
  std::cout << core::Redactor::instance().apply(text);
  return 0;
}

// The merged tree as `config show` prints it: every value of a sensitive variable
// (its default, a variant's value, /vars) is "<sensitive>".
nlohmann::json shown_config(nlohmann::json tree) {
  const nlohmann::json::json_pointer declared("/pipeline/variables");
  if (!tree.contains(declared) || !tree[declared].is_object()) return tree;
  auto hide = [](nlohmann::json& object, const std::string& key) {
    if (object.is_object() && object.contains(key) && !object[key].is_null()) object[key] = "<sensitive>";
  };
  for (auto& [name, declaration] : tree[declared].items()) {
    if (!core::declared_sensitive(declaration)) continue;
    hide(declaration, "default");
    if (tree.contains("vars")) hide(tree["vars"], name);
    if (tree["pipeline"].contains("variants") && tree["pipeline"]["variants"].is_object())
      for (auto& [_, variant] : tree["pipeline"]["variants"].items())
        if (variant.is_object() && variant.contains("variables")) hide(variant["variables"], name);
  }
  return tree;
}

int cmd_config(const std::vector<std::string>& args) {
  Session s;
  bool origin = false;
  std::string action, kind;
  po::options_description desc;
  desc.add_options()("origin", po::bool_switch(&origin), "show where each value came from")(
      "action", po::value(&action), "show | validate | schema")(
      "kind", po::value(&kind), "schema: pipeline | target | overlay | config (default pipeline)")(
      "no-verify", po::bool_switch(&s.opts.run.no_verify), "validate: allow verify steps without a verifier");
  desc.add(config_options(s.opts)).add(global_options(s.opts));
  po::positional_options_description pos;
  pos.add("action", 1).add("kind", 1);
  if (!parse("config", "show|validate --target T [--origin] [OPTIONS]\n       lcake config schema [pipeline|target|overlay|config]",
             args, desc, &pos))
    return 0;
  if (action == "schema") {
    finish_options(s.opts, false);
    std::vector<fs::path> paths(s.opts.plugin_path.begin(), s.opts.plugin_path.end());
    core::PluginHost host(core::PluginHost::default_search_path(paths));
    auto found = host.discover();
    for (const auto& [file, err] : found.errors) std::fprintf(stderr, "lcake: warning: %s (not in the schema)\n", err.c_str());
    std::cout << file_schema(kind.empty() ? "pipeline" : kind, found.plugins).dump(2) << "\n";
    return 0;
  }
  if (!kind.empty()) throw InputError("lcake config " + action + ": unexpected argument '" + kind + "'");
  if (action != "show" && action != "validate")
    throw InputError("lcake config: say `show`, `validate` or `schema`");
  finish_options(s.opts, true);
  s.open(true);
  if (action == "validate") {
    s.check_inputs(s.opts.run.no_verify, {});
    core::CancelSource cancel;
    core::PluginRoles roles(*s.plugins, &s.loaded, &s.resolved.target);
  core::Runner runner(s.loaded, s.resolved, roles, *s.state, *s.log, cancel);
    runner.prepare();
    std::printf("ok: target %s, pipeline %s, %zu variant(s)\n", s.resolved.target.name.c_str(),
                s.resolved.pipeline_name.c_str(), s.resolved.variants.size());
    return 0;
  }
  // The builder options the host sets for the final image of a cloud target come from the
  // plugins (their capabilities and schemas): shown when the plugins load and the inputs check out.
  std::map<std::string, const core::HostDefault*> defaults;  // by pointer
  try {
    s.check_inputs(true, {});
    for (const auto& v : s.resolved.variants)
      for (const auto& l : v.layers)
        for (const auto& d : l.host_defaults)
          defaults.emplace(core::pointer_append(core::pointer_append(core::pointer_append("/pipeline/layers", l.name),
                                                                     "builder"), d.option), &d);
  } catch (const InputError& e) {
    std::fprintf(stderr, "lcake: note: defaults the plugins set are not shown: %s\n",
                 core::Redactor::instance().apply(e.what()).c_str());
  }
  nlohmann::json tree = shown_config(s.loaded.tree);
  for (const auto& [pointer, d] : defaults) {
    nlohmann::json::json_pointer at(pointer);
    if (!tree.contains(at.parent_pointer()) || !tree[at.parent_pointer()].is_object())
      tree[at.parent_pointer()] = nlohmann::json::object();
    tree[at] = d->value;
  }
  if (!origin) {
    std::cout << core::Redactor::instance().apply(tree.dump(2)) << "\n";
    return 0;
  }
  std::vector<std::pair<std::string, std::string>> lines;  // (pointer, line), printed in pointer order
  for (const auto& [pointer, d] : defaults)
    lines.emplace_back(pointer, pointer + " = " + d->value.dump() + "    # default for " + d->why +
                                    " (builder plugin " + s.resolved.target.builder.plugin + ")");
  for (const auto& e : s.loaded.provenance.leaves()) {
    nlohmann::json value;
    try {
      value = tree.at(nlohmann::json::json_pointer(e.pointer));
    } catch (...) {
      value = nullptr;  // deleted by an overlay
    }
    std::string line = e.pointer + " = " + value.dump() + "    # " + e.origin.describe();
    if (!e.overridden.empty()) {
      line += " (overrides ";
      for (std::size_t i = 0; i < e.overridden.size(); ++i)
        line += (i ? ", " : "") + e.overridden[i].describe();
      line += ")";
    }
    lines.emplace_back(e.pointer, line);
  }
  std::stable_sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [_, line] : lines) std::cout << core::Redactor::instance().apply(line) << "\n";
  return 0;
}

void print_plugin(const core::PluginInfo& p, bool schemas) {
  std::string roles;
  for (const auto& r : p.roles) roles += (roles.empty() ? "" : ",") + r;
  std::printf("%-14s %-9s API %-4u %-26s %s\n", p.name.c_str(), p.version.c_str(), p.api_version,
              roles.c_str(), p.file.c_str());
  if (!schemas) return;
  std::printf("  %s\n", p.summary.c_str());
  for (const auto& [role, ri] : p.role) {
    auto types = [](const std::vector<std::string>& v) {
      std::string out;
      for (const auto& t : v) out += (out.empty() ? "" : " ") + t;
      return out.empty() ? std::string("(any)") : out;
    };
    std::printf("  %s: accepts %s", role.c_str(), types(ri.accepts).c_str());
    if (role != "verifier") std::printf(", produces %s", types(ri.produces).c_str());
    if (!ri.capabilities.empty()) {
      std::string words;
      for (const auto& c : ri.capabilities) words += (words.empty() ? "" : " ") + c;
      std::printf(", capabilities %s", words.c_str());
    }
    std::printf("\n");
    for (auto [part, schema] : {std::pair{"settings", &ri.settings}, {"source", &ri.source},
                                {"options", &ri.options}, {"publish", &ri.publish}})
      if (!schema->is_null()) std::printf("  %s %s schema:\n%s\n", role.c_str(), part, schema->dump(2).c_str());
  }
}

int cmd_plugins(const std::vector<std::string>& args) {
  Session s;
  std::vector<std::string> rest;
  po::options_description desc;
  desc.add_options()("args", po::value(&rest), "list | inspect FILE");
  desc.add(global_options(s.opts));
  po::positional_options_description pos;
  pos.add("args", -1);
  if (!parse("plugins", "list | inspect FILE [OPTIONS]", args, desc, &pos)) return 0;
  if (rest.empty() || (rest[0] != "list" && rest[0] != "inspect") || (rest[0] == "inspect" && rest.size() != 2))
    throw InputError("lcake plugins: say `list` or `inspect FILE`");
  finish_options(s.opts, false);
  std::vector<fs::path> paths(s.opts.plugin_path.begin(), s.opts.plugin_path.end());
  core::PluginHost host(core::PluginHost::default_search_path(paths));
  if (rest[0] == "inspect") {
    print_plugin(host.load_file(rest[1]).info(), true);
    return 0;
  }
  auto found = host.discover();
  for (const auto& p : found.plugins) print_plugin(p, false);
  for (const auto& [file, err] : found.errors) std::fprintf(stderr, "lcake: error: %s\n", err.c_str());
  if (found.plugins.empty() && found.errors.empty()) {
    std::string dirs;
    for (const auto& d : host.search_path()) dirs += " " + d.string();
    std::fprintf(stderr, "no plugins found in:%s\n", dirs.c_str());
  }
  return found.errors.empty() ? 0 : 2;
}

int cmd_version(const std::vector<std::string>&) {
  std::printf("lcake %s (plugin API %d, C++ ABI %s)\n", LCAKE_VERSION, LCAKE_API_VERSION, LCAKE_ABI_TAG);
  return 0;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"build", "build, upload, verify and publish the pipeline on a target (the default)", cmd_build},
      {"plan", "show each layer's key and whether it is cached, and why it changed", cmd_plan},
      {"verify", "run the verify steps again on built artifacts", cmd_verify},
      {"publish", "publish verified uploads that are not published yet", cmd_publish},
      {"gc", "delete what failed or killed runs left behind; with --target, superseded artifacts too", cmd_gc},
      {"artifacts", "list recorded artifacts", cmd_artifacts},
      {"outputs", "the target's published IDs per variant and layer (json, shell or tfvars)", cmd_outputs},
      {"config", "show (--origin) or validate the merged configuration", cmd_config},
      {"plugins", "list plugins, or inspect one plugin file", cmd_plugins},
      {"version", "print lcake's version and plugin API version", cmd_version},
      {"completion", "print a bash, zsh or fish completion script", cmd_completion},
      {"__complete", "names for the completion scripts", cmd_complete, true},
  };
  return table;
}

}  // namespace lcake::cli
