// Loading, merging and resolving lcake's configuration.
// Merge order (later wins): defaults < pipeline < target < system overlays
// (/etc/lcake/*.json) < user overlays ($XDG_CONFIG_HOME/lcake/*.json) < --site
// overlays (in order given) < --overlay files < --var-file files < --var < --set.
//
// The merged tree has three top-level keys:
//   /pipeline  the pipeline file's content (layers, variants, variables, verify)
//   /target    the target file's content (builder, uploader, verifier, publish)
//   /vars      variable values (from var files, --var, overlays)
// A pipeline file is loaded under /pipeline, a target file under /target; overlay
// files are whole trees ({"pipeline":…, "target":…, "vars":…}); a var file is a
// flat object loaded under /vars.
#pragma once
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace lcake::core {

// Where a value came from: a file and line, or a flag ("--var TAG=x", "--set /a/b").
struct Origin {
  std::string source;
  int line = 0;  // 0 when not from a file
  std::string describe() const;  // "configs/sites/ncsa.json:12" or "--var TAG=x"
};

struct ProvenanceEntry {
  std::string pointer;              // JSON pointer of a leaf in the merged tree
  Origin origin;                    // who set the current value
  std::vector<Origin> overridden;   // who set it before, oldest first
};

class Provenance {
 public:
  void set(const std::string& pointer, const Origin& origin);
  void erase_subtree(const std::string& pointer, const Origin& by);  // a null in an overlay
  // Origin of the value at pointer, or of its nearest recorded ancestor; for a
  // deleted key (or one under it), who deleted it.
  std::optional<Origin> origin_of(const std::string& pointer) const;
  std::vector<ProvenanceEntry> leaves() const;  // sorted by pointer

  // Added by core/config. An object (not a leaf) first created at pointer; an
  // object that ends up empty is reported by leaves() like a leaf.
  void open_object(const std::string& pointer, const Origin& origin);
  // Keys a null deleted and that nothing set again: origin is who deleted it,
  // overridden who had set it. Not part of leaves(): the key is not in the tree.
  std::vector<ProvenanceEntry> deletions() const;  // sorted by pointer
  // A position inside a leaf array (e.g. /pipeline/layers/x/provisioners/2/timeout),
  // so origin_of can name its exact line. Not a leaf; forgotten when the array is replaced.
  void set_inner(const std::string& pointer, const Origin& origin);

 private:
  std::map<std::string, ProvenanceEntry> entries_;
  std::map<std::string, Origin> objects_;          // where each object was opened
  std::map<std::string, ProvenanceEntry> deleted_;
  std::map<std::string, Origin> inner_;
};

struct LoadOptions {
  std::string target;                            // a name in <config dir>/targets/, or a path to a .json file
  std::optional<std::filesystem::path> pipeline;  // default: ./lcake.json if present, else the target's
                                                 // "pipeline" (a name in pipelines/ or a path), else "stack"
  std::vector<std::string> sites;                // names in <config dir>/sites/
  std::vector<std::filesystem::path> overlays;
  std::vector<std::filesystem::path> var_files;
  std::vector<std::string> vars;                 // "NAME=value"
  std::vector<std::string> sets;                 // "/json/pointer=value" (value parsed as JSON, else a string)
  std::vector<std::filesystem::path> config_dirs;  // searched in order for targets/, sites/, pipelines/
  std::optional<std::filesystem::path> user_overlay_dir;    // default $XDG_CONFIG_HOME/lcake (~/.config/lcake)
  std::optional<std::filesystem::path> system_overlay_dir;  // default /etc/lcake
};

struct LoadedConfig {
  nlohmann::json tree;
  Provenance provenance;
  std::filesystem::path pipeline_file;
  std::filesystem::path target_file;
  std::vector<std::string> sources;  // every file/flag merged, in order
};

// Throws lcake::InputError with a one-line message naming the file (and line) or flag.
LoadedConfig load_config(const LoadOptions& options);

// Default config search path: $LCAKE_CONFIG_PATH (colon-separated), ./configs, and
// <dir of the lcake executable>/../share/lcake/configs.
std::vector<std::filesystem::path> default_config_dirs();

// ---- The typed model, resolved for one variant (${var.X} substituted) ----

// How a shell provisioner or verify step runs its commands: as the SSH user (both empty),
// as another user through sudo ("sudo": true is run_as root), or through an
// execute_command template ("{{path}}": the script's path in the machine).
struct RunAs {
  std::string user;
  std::string execute_command;
  bool plain() const { return user.empty() && execute_command.empty(); }
};

struct Provisioner {
  std::string type;                       // "shell" | "file" | "env"
  std::vector<std::string> inline_commands;  // shell: "inline"
  std::optional<std::filesystem::path> script;  // shell: "script" (absolute, resolved against the pipeline dir)
  std::filesystem::path source;           // file: local source (absolute)
  std::string destination;                // file: remote path
  bool sensitive = false;                 // file: a secret, deleted before the disk becomes an artifact;
                                          // its bytes are not part of the layer key
  std::map<std::string, std::string> env;  // env: exported to every later shell step of the layer
  std::chrono::seconds timeout{0};        // "timeout": "90s" | "5m" | "1h" | number of seconds; 0 = none
  int retries = 0;
  RunAs run_as;                           // shell: "sudo" / "run_as" / "execute_command"
  std::string pointer;                    // e.g. /pipeline/layers/newinstall/provisioners/2
};

struct CompareSpec {
  std::string actual;                     // path inside the machine
  std::filesystem::path expected;         // local file (absolute)
  double abs_tol = 1e-10;
  double rel_tol = 1e-10;
};

struct VerifyStep {
  std::string name;
  std::string run;                        // shell command; may be empty for a pure compare step
  int expect_exit = 0;
  std::vector<std::string> expect_output;  // ECMAScript regexes; each must match somewhere in stdout+stderr
  std::optional<CompareSpec> compare;
  std::chrono::seconds timeout{0};
  RunAs run_as;                           // "sudo" / "run_as" / "execute_command", as for shell provisioners
  std::string pointer;
};

// A builder option the host set because the layer did not: the value the option's schema
// gives as "x-lcake-cloud-default", for the last layer of a variant that the target uploads
// with an uploader that publishes to a cloud (core/plan/cloud_defaults.cc). It is in the
// layer's builder_options and in its recipe, so in its key.
struct HostDefault {
  std::string option;     // a top-level property of the builder's layer options, e.g. "generalize"
  nlohmann::json value;   // e.g. true
  std::string why;        // one phrase, for plan and config show
};

struct Layer {
  std::string name;
  std::optional<std::string> from;        // parent layer; none for the first layer
  std::vector<std::filesystem::path> inputs;  // absolute
  std::vector<std::string> input_names;   // as written in the config (relative), parallel to inputs
  std::vector<std::string> input_pointers;  // where each was named (inputs/k, provisioners/i/source|script)
  std::vector<Provisioner> provisioners;
  std::vector<VerifyStep> verify;         // empty: not verified (the last layer gets pipeline /verify by default)
  nlohmann::json builder_options = nlohmann::json::object();   // layers.L.builder
  nlohmann::json uploader_options = nlohmann::json::object();  // layers.L.uploader
  nlohmann::json verifier_options = nlohmann::json::object();  // layers.L.verifier
  nlohmann::json publish_options = nlohmann::json::object();   // layers.L.publish
  nlohmann::json recipe;                  // the resolved layer object: what its key hashes
  std::vector<HostDefault> host_defaults;  // set by check_inputs (input_check.h)
};

// A variable declared "sensitive" (or read from a secret source) that has a value:
// redacted everywhere; in a layer key only as "used" (or its value's hash).
struct SensitiveVariable {
  std::string name, value;
  bool key_value_hash = false;            // "key": "value-hash"
};

struct Variant {
  std::string name;
  std::map<std::string, std::string> variables;  // resolved values
  std::vector<SensitiveVariable> sensitive;      // the sensitive ones among them
  nlohmann::json source;                  // variants.V.sources.<builder plugin>, resolved
  std::vector<Layer> layers;              // parents before children
};

struct RoleConfig {
  std::string plugin;
  nlohmann::json settings = nlohmann::json::object();  // resolved
  std::string pointer;                    // /target/builder
};

// A local command run once per run after every variant finished publishing
// (target after_publish; docs/configuration.md).
struct Hook {
  std::string run;                        // a /bin/sh -c command line
  std::chrono::seconds timeout{300};      // default 5m; killed with its process group after it
  bool always = false;                    // on: "always" (also runs when nothing was published)
  std::string pointer;                    // /target/after_publish/0
};

struct Target {
  std::string name;
  RoleConfig builder;
  std::optional<RoleConfig> uploader;
  std::vector<std::string> upload_layers;  // globs; default {"*"}
  std::optional<RoleConfig> verifier;
  // What the verifier boots: "upload" or "build"; empty until check_inputs
  // (core/plan/input_check.h) chose the default from the plugins' artifact types.
  std::string verifier_boots;
  std::vector<Hook> after_publish;
};

struct ResolvedConfig {
  std::string pipeline_name;
  Target target;
  std::vector<Variant> variants;          // in name order
};

// Validates the merged tree against the core schema, substitutes variables
// per variant and builds the model. Errors name the JSON pointer and the
// file (and line) that set the value. An undefined ${var.X} names where it is used.
struct ResolveOptions {
  // Leave /target/verifier out (not interpolated, no Target::verifier): for the commands that
  // never verify (gc, outputs), so a variable only the verifier uses (SSH_CIDR) need not be given.
  // Keys do not depend on the verifier, so they are the same as a build's.
  bool without_verifier = false;
};
ResolvedConfig resolve_config(const LoadedConfig& loaded, const ResolveOptions& options = {});

// Validates `value` (found at `pointer` of the merged tree) against a JSON Schema
// text (a plugin's settings schema). Throws InputError naming the first failing
// pointer, the file that set it, and what the schema wanted.
void validate_against_schema(const LoadedConfig& loaded, const std::string& pointer,
                             const nlohmann::json& value, const std::string& schema_text,
                             const std::string& schema_owner);

}  // namespace lcake::core
