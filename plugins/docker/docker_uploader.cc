#include "docker_uploader.h"

#include <algorithm>
#include <regex>

#include "engine_client.h"
#include "image_pull.h"
#include "lcake/errors.hpp"
#include "registry_auth.h"
#include "registry_client.h"

namespace lcake::docker {

// pipeline layers.L.publish
const char* const kPublishSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "moving_tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
                    "description": "tag templates set at publish, e.g. \"${variant}-stack\""}
  }
})schema";

const char* const kUploaderSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "registry": {"type": "string", "default": "127.0.0.1:5000", "description": "host[:port] of the OCI registry"},
    "repository": {"type": "string", "default": "lcake/stack", "pattern": "^[a-z0-9]+([._/-][a-z0-9]+)*$"},
    "tls_verify": {"type": "boolean", "default": true},
    "scheme": {"enum": ["auto", "https", "http"], "default": "auto",
               "description": "auto: http for localhost/127.x, https elsewhere"},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1,
             "default": ["${variant}-${layer}-${key12}"],
             "description": "immutable tags pushed at upload; templates"},
    "moving_tags": {"type": "array", "items": {"type": "string"}, "default": [],
                    "description": "tags moved at publish for every published layer; templates"},
    "docker_host": {"type": "string"},
    "docker_context": {"type": "string", "minLength": 1, "description": "a docker context (~/.docker/contexts) to use unless docker_host is set; overrides $DOCKER_HOST, $DOCKER_CONTEXT and currentContext"},
    "api_timeout": {"type": "integer", "minimum": 1, "default": 60},
    "transfer_timeout": {"type": "integer", "minimum": 1, "default": 3600}
  }
})schema";

namespace {

// "127.0.0.1:5000/lcake/stack@sha256:…" → {registry, repository, digest}
struct PushedRef {
  std::string registry, repository, digest;
};

PushedRef parse_pushed(const lcake::Artifact& a) {
  PushedRef p;
  p.registry = a.metadata.value("registry", std::string());
  p.repository = a.metadata.value("repository", std::string());
  p.digest = a.metadata.value("digest", std::string());
  auto at = a.id.find('@');
  if (p.digest.empty() && at != std::string::npos) p.digest = a.id.substr(at + 1);
  if ((p.registry.empty() || p.repository.empty()) && at != std::string::npos) {
    std::string name = a.id.substr(0, at);
    auto slash = name.find('/');
    p.registry = name.substr(0, slash);
    p.repository = slash == std::string::npos ? "" : name.substr(slash + 1);
  }
  if (p.registry.empty() || p.repository.empty() || p.digest.rfind("sha256:", 0) != 0) {
    throw lcake::BuildError("artifact " + a.id + " is not an image the docker uploader pushed (REGISTRY/REPO@sha256:…)");
  }
  return p;
}

std::vector<std::string> string_list(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_array()) return {};
  std::vector<std::string> out;
  for (const auto& v : j[key]) {
    if (v.is_string()) out.push_back(v);
  }
  return out;
}

// Puts the moving tags this publish already moved back where they were. A tag
// that did not exist before can only go by deleting the manifest (distribution
// deletes by digest, dropping every tag on it), so the other tags that pointed
// at it are written again afterwards. Returns a note for the error message.
std::string rollback(const RegistryClient& cancellable, const std::string& repo, const Manifest& manifest,
                     const std::vector<std::string>& moved, std::map<std::string, std::optional<Manifest>>& before,
                     lcake::Context& ctx) {
  if (moved.empty()) return "; no moving tag was changed";
  RegistryClient registry = cancellable.uncancellable();
  std::vector<std::string> created;
  std::string failed;
  for (const auto& t : moved) {
    if (!before[t]) {
      created.push_back(t);
      continue;
    }
    try {
      registry.put_manifest(repo, t, *before[t]);
    } catch (const std::exception& e) {
      failed += " " + t;
      ctx.warn(std::string("could not restore moving tag ") + t + ": " + e.what());
    }
  }
  if (!created.empty()) {
    try {
      std::vector<std::string> keep;
      for (const auto& t : registry.list_tags(repo)) {
        if (std::find(created.begin(), created.end(), t) != created.end()) continue;
        if (registry.head_manifest(repo, t).value_or("") == manifest.digest) keep.push_back(t);
      }
      registry.delete_manifest(repo, manifest.digest);
      for (const auto& t : keep) registry.put_manifest(repo, t, manifest);
    } catch (const std::exception& e) {
      for (const auto& t : created) failed += " " + t;
      ctx.warn(std::string("could not remove new moving tags: ") + e.what());
    }
  }
  if (!failed.empty()) return "; could not undo moving tags" + failed + " (fix them by hand)";
  return "; moving tags already changed were put back";
}

}  // namespace

std::string render_tag(const std::string& tmpl, const lcake::LayerInfo& layer, const std::string& part,
                       const std::string& pointer) {
  std::map<std::string, std::string> vars = {
      {"variant", layer.variant}, {"layer", layer.layer}, {"key", layer.key},
      {"key12", layer.key.substr(0, std::min<size_t>(12, layer.key.size()))},
      {"target", layer.target}, {"lcake_version", layer.lcake_version}};
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 2, "${") == 0) {
      auto close = tmpl.find('}', i);
      if (close == std::string::npos) throw lcake::ValueError(part, pointer, "unclosed ${ in tag template '" + tmpl + "'");
      std::string name = tmpl.substr(i + 2, close - i - 2);
      auto it = vars.find(name);
      if (it == vars.end()) {
        throw lcake::ValueError(part, pointer, "unknown ${" + name + "} in tag template '" + tmpl +
                                "'; use ${variant}, ${layer}, ${key}, ${key12}, ${target}, ${lcake_version} or ${var.NAME}");
      }
      out += it->second;
      i = close + 1;
    } else {
      out += tmpl[i++];
    }
  }
  // The registry also limits length (128); the charset is checked here since tags go into URLs.
  static const std::regex kTag("[A-Za-z0-9_][A-Za-z0-9_.-]*");
  if (!std::regex_match(out, kTag)) {
    throw lcake::ValueError(part, pointer, "'" + out + "' (from '" + tmpl +
                            "') is not a valid image tag; use letters, digits, '_', '.' and '-'");
  }
  return out;
}

DockerUploader::DockerUploader(const nlohmann::json& settings) : settings_(settings) {
  registry_ = settings_.value("registry", "127.0.0.1:5000");
  repository_ = settings_.value("repository", "lcake/stack");
  tokens_ = std::make_shared<TokenCache>();
  EngineClient probe(engine_options(settings_, nullptr));
  (void)probe;
}

RegistryClient DockerUploader::registry_client(lcake::Context& ctx, const std::string& registry) const {
  RegistryOptions o;
  o.registry = registry;
  o.scheme = registry_scheme(settings_.value("scheme", "auto"), registry);
  o.tls_verify = settings_.value("tls_verify", true);
  o.credentials = find_registry_credentials(registry, ctx);
  o.timeout = std::chrono::seconds(settings_.value("api_timeout", 60));
  o.cancel = &ctx.cancel();
  o.tokens = tokens_;
  o.redact = [&ctx](const std::string& token) { ctx.redact(token); };
  return RegistryClient(o);
}

lcake::Artifact DockerUploader::upload(const lcake::UploadRequest& request, lcake::Context& ctx) {
  if (request.built.type != "oci-image") {
    throw lcake::InputError("the docker uploader pushes 'oci-image' artifacts, not '" + request.built.type +
                            "': pair it with the docker builder");
  }
  std::vector<std::string> tags = render_tags(request.layer);
  // Per-key tags are immutable: when another runner already pushed this key,
  // its image is used and nothing is pushed (a rebuild has a new digest).
  std::optional<lcake::Artifact> found;
  try {
    found = find(lcake::FindRequest{request.layer, request.options}, ctx);
  } catch (const lcake::BuildError& e) {
    ctx.debug(std::string("looking up the per-key tag failed (pushing anyway): ") + e.what());
  }
  if (found) {
    ctx.info("the registry already has " + found->metadata.value("reference", found->id) +
             " for this layer key; using it, not pushing");
    return *found;
  }
  EngineClient engine(engine_options(settings_, &ctx.cancel()));
  engine.negotiate();
  if (!engine.inspect_image(request.built.id)) {
    throw lcake::BuildError("built image " + request.built.id + " is not in the Docker engine at " + engine.docker_host() +
                            ": rebuild the layer (lcake build --force)");
  }
  auto creds = find_registry_credentials(registry_, ctx);
  std::string auth = engine_registry_auth(registry_, creds);
  if (!auth.empty()) ctx.redact(auth);
  // A plain-HTTP registry (loopback by default) is one podman must not try TLS with.
  bool tls_verify = settings_.value("tls_verify", true) &&
                    registry_scheme(settings_.value("scheme", "auto"), registry_) == "https";
  std::string name = registry_ + "/" + repository_;
  // The per-key tag find() reads is pushed first; the other tags are then put on
  // the manifest it names, so a runner pushing the same key at the same time
  // cannot leave the tags split between two images (the registry keeps the last
  // push of a tag; find() and every runner then use what the per-key tag names).
  std::size_t primary = key_tag_index();
  const std::string& tag = tags[primary];
  engine.tag_image(request.built.id, name, tag);
  ctx.info("pushing " + name + ":" + tag);
  std::string digest;
  try {
    digest = engine.push_image(name, tag, auth, tls_verify, [&](const std::string& s) { ctx.debug(s); });
  } catch (const lcake::BuildError& e) {
    throw lcake::BuildError("push of " + name + ":" + tag + " failed: " + e.what());
  }
  auto registry = registry_client(ctx, registry_);
  std::string named = registry.head_manifest(repository_, tag).value_or("");
  if (digest.empty()) digest = named;
  if (digest.empty()) throw lcake::BuildError("pushed " + name + ":" + tag + " but the registry does not show it");
  if (named.empty()) named = digest;
  if (named != digest)
    ctx.info("another runner pushed " + name + ":" + tag + " meanwhile (" + named + "): the registry keeps that one");
  if (tags.size() > 1) {
    auto manifest = registry.get_manifest(repository_, named);
    if (!manifest) throw lcake::BuildError("registry " + registry_ + " lost " + name + "@" + named + " right after the push");
    manifest->digest = named;
    for (std::size_t i = 0; i < tags.size(); ++i) {
      if (i == primary) continue;
      ctx.info("tagging " + name + ":" + tags[i]);
      registry.put_manifest(repository_, tags[i], *manifest);
    }
  }
  std::vector<std::string> ordered = {tag};
  for (const auto& t : tags)
    if (t != tag) ordered.push_back(t);
  return pushed_artifact(digest, ordered, request.built.id);
}

// The tag find() reads: the first one made from the key (the first one when none is).
std::size_t DockerUploader::key_tag_index() const {
  std::vector<std::string> templates = settings_.value("tags", std::vector<std::string>{"${variant}-${layer}-${key12}"});
  for (std::size_t i = 0; i < templates.size(); ++i)
    if (templates[i].find("${key") != std::string::npos) return i;
  return 0;
}

std::vector<std::string> DockerUploader::render_tags(const lcake::LayerInfo& layer) const {
  std::vector<std::string> templates = settings_.value("tags", std::vector<std::string>{"${variant}-${layer}-${key12}"});
  std::vector<std::string> tags;
  for (size_t i = 0; i < templates.size(); ++i)
    tags.push_back(render_tag(templates[i], layer, "settings", "/tags/" + std::to_string(i)));
  return tags;
}

lcake::Artifact DockerUploader::pushed_artifact(const std::string& digest, const std::vector<std::string>& tags,
                                                const std::string& image_id) const {
  std::string name = registry_ + "/" + repository_;
  lcake::Artifact a;
  a.type = "oci-image";
  a.id = name + "@" + digest;
  a.metadata = {{"digest", digest},
                {"tags", tags},
                {"registry", registry_},
                {"repository", repository_},
                {"reference", name + ":" + tags.front()}};
  if (!image_id.empty()) a.metadata["image_id"] = image_id;
  return a;
}

std::optional<lcake::Artifact> DockerUploader::find(const lcake::FindRequest& request, lcake::Context& ctx) {
  std::vector<std::string> templates = settings_.value("tags", std::vector<std::string>{"${variant}-${layer}-${key12}"});
  std::vector<std::string> tags = render_tags(request.layer);
  for (size_t i = 0; i < templates.size(); ++i) {
    // Only a tag made from the key identifies this layer's content.
    if (templates[i].find("${key") == std::string::npos) continue;
    auto digest = registry_client(ctx, registry_).head_manifest(repository_, tags[i]);
    if (!digest || digest->empty()) return std::nullopt;
    std::vector<std::string> ordered = {tags[i]};
    for (const auto& t : tags)
      if (t != tags[i]) ordered.push_back(t);
    auto a = pushed_artifact(*digest, ordered, "");
    a.metadata["found_in_registry"] = true;
    return a;
  }
  return std::nullopt;
}

lcake::Artifact DockerUploader::publish(const lcake::Artifact& uploaded, const lcake::PublishRequest& request,
                                        lcake::Context& ctx) {
  auto ref = parse_pushed(uploaded);
  std::vector<std::string> tags;
  auto add = [&](const std::vector<std::string>& templates, const std::string& part) {
    for (size_t i = 0; i < templates.size(); ++i) {
      std::string t = render_tag(templates[i], request.layer, part, "/moving_tags/" + std::to_string(i));
      if (std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);
    }
  };
  add(string_list(settings_, "moving_tags"), "settings");
  add(string_list(request.options, "moving_tags"), "publish");
  lcake::Artifact out = uploaded;
  out.metadata["moving_tags"] = tags;
  // The names people pull (lcake outputs): registry/repository:tag.
  nlohmann::json names = nlohmann::json::array();
  for (const auto& t : tags) names.push_back(ref.registry + "/" + ref.repository + ":" + t);
  out.metadata["moving_names"] = names;
  if (tags.empty()) return out;

  auto registry = registry_client(ctx, ref.registry);
  auto manifest = registry.get_manifest(ref.repository, ref.digest);
  if (!manifest) {
    throw lcake::BuildError("registry " + ref.registry + " no longer has " + uploaded.id + ": upload the layer again");
  }
  manifest->digest = ref.digest;
  // What each moving tag pointed at before, to put it back if a later tag fails.
  std::map<std::string, std::optional<Manifest>> before;
  for (const auto& t : tags) before[t] = registry.get_manifest(ref.repository, t);

  std::vector<std::string> moved;
  for (const auto& t : tags) {
    if (before[t] && before[t]->digest == ref.digest) continue;
    try {
      registry.put_manifest(ref.repository, t, *manifest);
      moved.push_back(t);
      ctx.info("tagged " + ref.registry + "/" + ref.repository + ":" + t + " → " + ref.digest.substr(0, 19));
    } catch (const lcake::Cancelled&) {
      rollback(registry, ref.repository, *manifest, moved, before, ctx);
      throw;
    } catch (const std::exception& e) {
      std::string undone = rollback(registry, ref.repository, *manifest, moved, before, ctx);
      throw lcake::BuildError("publishing moving tag " + t + " failed: " + e.what() + undone);
    }
  }
  return out;
}

bool DockerUploader::exists(const lcake::Artifact& artifact, lcake::Context& ctx) {
  auto ref = parse_pushed(artifact);
  return registry_client(ctx, ref.registry).head_manifest(ref.repository, ref.digest).has_value();
}

void DockerUploader::remove(const lcake::Artifact& artifact, lcake::Context& ctx) {
  auto ref = parse_pushed(artifact);
  auto registry = registry_client(ctx, ref.registry);
  // The registry API deletes manifests by digest only, which drops every tag on
  // it: when a tag other than this upload's own per-key tags points at the
  // digest (a moving tag, a user's tag, another layer with the same content),
  // the manifest stays and that is reported.
  std::vector<std::string> own = string_list(artifact.metadata, "tags");
  std::vector<std::string> others;
  for (const auto& t : registry.list_tags(ref.repository)) {
    if (std::find(own.begin(), own.end(), t) != own.end()) continue;
    if (registry.head_manifest(ref.repository, t).value_or("") == ref.digest) others.push_back(t);
  }
  if (!others.empty()) {
    std::string list;
    for (const auto& t : others) list += (list.empty() ? "" : ", ") + t;
    ctx.warn("left " + artifact.id + " in " + ref.registry + ": other tags point at it (" + list +
             "); the registry can only delete a manifest with all its tags, so delete it by hand once they are unused");
    return;
  }
  registry.delete_manifest(ref.repository, ref.digest);
}

}  // namespace lcake::docker
