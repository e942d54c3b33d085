// The artifact types of the target's roles must fit together, and a pipeline
// that says how to verify its layers gets verified: both are checked before
// anything is built, so "published only after it verified" holds by construction.
#include <algorithm>

#include "lcake/errors.hpp"
#include "plan/input_check_parts.h"

namespace lcake::core::input_check {
namespace {

std::string join(const std::vector<std::string>& types) {
  std::string out;
  for (const auto& t : types) out += (out.empty() ? "" : " ") + t;
  return out.empty() ? "(any)" : out;
}

// True when `taker` accepts at least one of `types` (an empty list on either side fits anything).
bool takes_any(const RoleInfo& taker, const std::vector<std::string>& types) {
  if (taker.accepts.empty() || types.empty()) return true;
  return std::any_of(types.begin(), types.end(), [&](const std::string& t) { return taker.accepts_type(t); });
}

const RoleInfo& role_of(const LoadedPlugin* p, const std::string& role) { return p->info().role.at(role); }

std::string describe(const LoadedPlugin* p, const std::string& role, const char* verb) {
  const RoleInfo& r = role_of(p, role);
  return "the " + p->info().name + " " + role + " " + verb + " " +
         join(std::string(verb) == "accepts" ? r.accepts : r.produces);
}

bool has_children(const ResolvedConfig& config) {
  for (const auto& v : config.variants)
    for (const auto& l : v.layers)
      if (l.from) return true;
  return false;
}

// Layers that have verify steps, "v/l, ..." (at most three named).
std::string verified_layers(const ResolvedConfig& config) {
  std::string out;
  int n = 0;
  for (const auto& v : config.variants)
    for (const auto& l : v.layers)
      if (!l.verify.empty() && n++ < 3) out += (out.empty() ? "" : ", ") + v.name + "/" + l.name;
  return n > 3 ? out + ", ..." : out;
}

void choose_boots(const LoadedConfig& loaded, ResolvedConfig& config, const TargetPlugins& p) {
  auto& t = config.target;
  const RoleInfo& verifier = role_of(p.verifier, "verifier");
  const RoleInfo& builder = role_of(p.builder, "builder");
  std::string field = t.verifier->pointer + (t.verifier_boots.empty() ? "/plugin" : "/boots");
  bool takes_build = takes_any(verifier, builder.produces);
  if (t.verifier_boots.empty()) {
    if (!p.uploader) {
      t.verifier_boots = "build";
    } else if (takes_any(verifier, role_of(p.uploader, "uploader").produces)) {
      t.verifier_boots = "upload";
    } else {
      throw InputError(where(loaded, field) + field + ": " + describe(p.verifier, "verifier", "accepts") +
                       ", but " + describe(p.uploader, "uploader", "produces") +
                       (takes_build ? ": set \"boots\": \"build\" in /target/verifier to verify the built artifact"
                                    : ": choose a verifier that boots what the uploader or builder makes"));
    }
  }
  if (t.verifier_boots == "upload" && !p.uploader)
    throw InputError(where(loaded, field) + field + ": \"boots\": \"upload\" but the target has no uploader: " +
                     "remove \"boots\" or add an uploader");
  if (t.verifier_boots == "upload" && !takes_any(verifier, role_of(p.uploader, "uploader").produces))
    throw InputError(where(loaded, field) + field + ": " + describe(p.verifier, "verifier", "accepts") + ", but " +
                     describe(p.uploader, "uploader", "produces") +
                     (takes_build ? ": set \"boots\": \"build\"" : ": choose another verifier"));
  if (t.verifier_boots == "build" && !takes_build)
    throw InputError(where(loaded, field) + field + ": " + describe(p.verifier, "verifier", "accepts") + ", but " +
                     describe(p.builder, "builder", "produces") + ": choose another verifier");
}

}  // namespace

void check_artifact_types(const LoadedConfig& loaded, ResolvedConfig& config, const TargetPlugins& p,
                          bool no_verify) {
  auto& t = config.target;
  const RoleInfo& builder = role_of(p.builder, "builder");
  std::string builder_field = t.builder.pointer + "/plugin";
  if (has_children(config) && !takes_any(builder, builder.produces))
    throw InputError(where(loaded, builder_field) + builder_field + ": " + describe(p.builder, "builder", "produces") +
                     " but builds layers only on " + join(builder.accepts) +
                     ", so it cannot build a layer with \"from\": choose a builder that builds on its own artifacts");
  if (p.uploader && !takes_any(role_of(p.uploader, "uploader"), builder.produces)) {
    std::string field = t.uploader->pointer + "/plugin";
    throw InputError(where(loaded, field) + field + ": " + describe(p.uploader, "uploader", "accepts") + ", but " +
                     describe(p.builder, "builder", "produces") + ": choose an uploader for the builder's artifacts");
  }
  if (p.verifier) {
    choose_boots(loaded, config, p);
    return;
  }
  std::string layers = verified_layers(config);
  if (layers.empty() || no_verify) return;
  // Names the overlay or --set that deleted the verifier, else the target file.
  std::string field = "/target/verifier";
  throw InputError(where(loaded, field) + field + ": the target has no verifier, but the pipeline has verify steps (" +
                   layers + "): add \"verifier\": {\"plugin\": ...} to the target, or pass --no-verify to " +
                   "publish unverified artifacts");
}

}  // namespace lcake::core::input_check
