#include "glance_uploader.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <tuple>

#include "glance_disk.h"
#include "glance_naming.h"
#include "lcake/errors.hpp"

namespace lcake::openstack {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string new_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw BuildError("no random bytes for an image id");
  b[6] = (b[6] & 0x0f) | 0x40, b[8] = (b[8] & 0x3f) | 0x80;  // version 4, RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

std::string as_property(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Layer options over target settings, field by field (properties merge by key).
json image_spec(const json& settings, const json& options) {
  json spec = settings;
  for (const char* k : {"name", "min_disk", "min_ram", "tags"})
    if (options.contains(k)) spec[k] = options[k];
  if (options.contains("properties"))
    for (auto it = options["properties"].begin(); it != options["properties"].end(); ++it)
      spec["properties"][it.key()] = *it;
  return spec;
}

// Properties lcake reserves: what find() and gc rely on.
const char* kReserved[] = {"lcake_key", "lcake_layer_key", "lcake_variant", "lcake_layer", "lcake_pipeline",
                           "lcake_target", "lcake_published", "lcake_verified", "lcake_ssh_user"};

// lcake's own properties of an uploaded image (find() looks for lcake_key).
void set_lcake_properties(json& body, const LayerInfo& l) {
  body["lcake_key"] = l.upload_key.empty() ? l.key : l.upload_key;
  body["lcake_layer_key"] = l.key;
  body["lcake_variant"] = l.variant;
  body["lcake_layer"] = l.layer;
  body["lcake_pipeline"] = l.pipeline;
  body["lcake_target"] = l.target;
}

}  // namespace

GlanceUploader::GlanceUploader(const json& settings) : settings_(settings) {
  json props = settings_.value("properties", json::object());
  for (auto it = props.begin(); it != props.end(); ++it)
    for (const char* r : kReserved)
      if (it.key() == r) throw ValueError("settings", "/properties/" + it.key(), "property " + it.key() + " is lcake's own");
}

std::shared_ptr<KeystoneSession> GlanceUploader::session(Context& ctx) {
  std::lock_guard lock(mu_);
  if (!session_) session_ = std::make_shared<KeystoneSession>(AuthSettings::from_json(settings_), ctx);
  return session_;
}

GlanceClient GlanceUploader::glance(Context& ctx, bool cancellable) {
  GlanceClient g(session(ctx), ctx, cancellable);
  if (retry.attempts > 0) {
    g.service().retry_policy.attempts = retry.attempts;
    g.service().retry_policy.initial_delay = retry.initial_delay;
    g.service().retry_policy.max_delay = retry.max_delay;
  }
  return g;
}

Artifact GlanceUploader::to_artifact(const json& image, Context& ctx) {
  Artifact a;
  a.type = "glance-image";
  a.id = image.value("id", "");
  const CloudConfig& c = session(ctx)->config();
  a.metadata = {{"cloud", c.cloud},
                {"auth_url", c.auth_url},
                {"region", c.region_name},
                {"name", image.value("name", "")},
                {"checksum", image.value("checksum", "")},
                {"os_hash_algo", image.value("os_hash_algo", "")},
                {"os_hash_value", image.value("os_hash_value", "")},
                {"size", image.value("size", json(nullptr))},
                {"disk_format", image.value("disk_format", "")},
                {"container_format", image.value("container_format", "")},
                {"visibility", image.value("visibility", "")},
                {"owner", image.value("owner", "")},
                {"upload_key", image.value("lcake_key", "")}};
  // The Nova builder's snapshot says who logs in (lcake_ssh_user): a child built on an
  // image found in Glance, and the verifier booting it, log in as that user.
  if (auto u = image.find("lcake_ssh_user"); u != image.end() && u->is_string() && !u->get<std::string>().empty())
    a.metadata["ssh_user"] = *u;
  return a;
}

Artifact GlanceUploader::upload(const UploadRequest& request, Context& ctx) {
  const Artifact& built = request.built;
  if (built.type != "qcow2" && built.type != "raw" && built.type != "glance-image")
    throw InputError("the openstack uploader uploads qcow2 or raw disks, not '" + built.type +
                     "' (or takes over the Nova builder's glance-image): pair it with the qemu or the openstack builder");
  json spec = image_spec(settings_, request.options);
  std::string where = "layers." + request.layer.layer + " uploader name";
  std::string name = render_name(spec.value("name", "${variant}-${layer}-${upload_key12}"), where,
                                 naming_vars(request.layer));
  if (built.type == "glance-image") return adopt(request, spec, name, ctx);
  std::string disk_format = settings_.value("disk_format", "auto");
  if (disk_format == "auto") disk_format = built.type;
  PreparedDisk disk = prepare_disk(built.id, disk_format, ctx);

  std::uint64_t gib = 1ull << 30;
  json body = {{"id", new_uuid()},
               {"name", name},
               {"disk_format", disk_format},
               {"container_format", settings_.value("container_format", "bare")},
               {"visibility", "private"},
               {"min_disk", spec.contains("min_disk") ? spec["min_disk"].get<std::uint64_t>()
                                                      : (disk.facts.virtual_size + gib - 1) / gib},
               {"min_ram", spec.value("min_ram", 0)},
               {"tags", spec.value("tags", json::array())}};
  json props = spec.value("properties", json::object());
  for (auto it = props.begin(); it != props.end(); ++it) body[it.key()] = as_property(*it);
  set_lcake_properties(body, request.layer);

  GlanceClient g = glance(ctx);
  std::string id = body["id"];
  const CloudConfig& c = session(ctx)->config();
  json how = {{"cloud", c.cloud}, {"region", c.region_name}, {"name", name}, {"auth_url", c.auth_url}};
  LedgerScope entry(ctx.ledger(), "glance-image", id, how);  // before it exists: a crash leaves it for gc
  std::uint64_t total = fs::file_size(disk.file);
  bool import = settings_.value("method", "direct") == "import";
  try {
    g.create_image(body);
    entry.confirmed(id);
    ctx.info("uploading " + disk.file.filename().string() + " (" + std::to_string(total) + " bytes, " + disk_format +
             ") to Glance image " + name + " (" + id + ")" + (import ? " by glance-direct import" : ""));
    std::string what = "uploading " + name;
    auto sent = g.upload_file(id, disk.file, import, [&](std::uint64_t done, std::uint64_t all) {
      ctx.progress_bytes(done, all ? all : total, what);
    });
    if (import) g.import_staged(id);
    json image = import ? g.wait_active(id, std::chrono::seconds(settings_.value("active_timeout", 600)))
                        : g.show_image(id).value_or(json::object());
    if (image.value("status", "") != "active")
      throw BuildError("Glance image " + id + " is " + image.value("status", std::string("gone")) + " after the upload, not active");
    if (image.value("size", std::uint64_t{0}) != sent.bytes)
      throw BuildError("Glance image " + id + " holds " + image.value("size", json(0)).dump() + " bytes; lcake sent " +
                       std::to_string(sent.bytes));
    if (image.value("os_hash_algo", "") == "sha512") {
      if (image.value("os_hash_value", "") != sent.sha512)
        throw BuildError("Glance image " + id + " has sha512 " + image.value("os_hash_value", "") +
                         "; the bytes lcake sent have " + sent.sha512);
    } else {
      ctx.warn("Glance image " + id + " has no sha512 os_hash_value (" + image.value("os_hash_algo", "none") +
               "): only its size was checked");
    }
    Artifact a = to_artifact(image, ctx);
    a.metadata["sha512"] = sent.sha512;
    a.metadata["built"] = built.id;
    entry.promote();
    if (disk.converted) fs::remove(disk.file);
    return a;
  } catch (...) {
    // Failed or cancelled: the half-made image goes now (uncancellable), not at the next gc.
    try {
      glance(ctx, false).delete_image(id, true);
      entry.deleted();
    } catch (const std::exception& e) {
      ctx.warn("could not delete Glance image " + id + " after the failed upload (left for cleanup): " + e.what());
    }
    throw;
  }
}

// A Glance image the builder made (the Nova builder's snapshot) is already where it is
// wanted: it takes the upload's name, tags and properties in place, so find() and publish
// treat it as any upload. Nothing is created, so nothing needs cleaning up on failure.
Artifact GlanceUploader::adopt(const UploadRequest& request, const json& spec, const std::string& name, Context& ctx) {
  const std::string& id = request.built.id;
  GlanceClient g = glance(ctx);
  auto image = g.show_image(id);
  if (!image) throw BuildError("Glance image " + id + " of layer " + request.layer.layer + " is gone: rebuild it (--force)");
  if (image->value("status", "") != "active")
    throw BuildError("Glance image " + id + " is " + image->value("status", "") + ", not active: it cannot be uploaded");
  std::string project = session(ctx)->project_id(ctx);
  if (!project.empty() && image->value("owner", "") != project)
    throw BuildError("Glance image " + id + " belongs to project " + image->value("owner", "") +
                     ", not to this cloud's project " + project + ": the uploader and builder must use the same cloud");
  json want = {{"name", name}};
  if (spec.contains("min_disk")) want["min_disk"] = spec["min_disk"];
  if (spec.contains("min_ram")) want["min_ram"] = spec["min_ram"];
  json props = spec.value("properties", json::object());
  for (auto it = props.begin(); it != props.end(); ++it) want[it.key()] = as_property(*it);
  set_lcake_properties(want, request.layer);
  json ops = json::array();
  for (auto it = want.begin(); it != want.end(); ++it)
    if (!image->contains(it.key()) || (*image)[it.key()] != *it)
      ops.push_back({{"op", image->contains(it.key()) ? "replace" : "add"}, {"path", "/" + it.key()}, {"value", *it}});
  // Nova copies the booted image's properties into a snapshot: what the parent layer's image
  // earned (verified, published, superseded) is not this new image's.
  for (const char* inherited : {"lcake_verified", "lcake_published", "lcake_superseded_by"})
    if (image->contains(inherited)) ops.push_back({{"op", "remove"}, {"path", std::string("/") + inherited}});
  ctx.info("Glance image " + id + " is already in Glance: it becomes the upload " + name);
  json now = ops.empty() ? *image : g.patch_image(id, ops);
  for (const auto& tag : spec.value("tags", json::array())) g.add_tag(id, tag.get<std::string>());
  Artifact a = to_artifact(now, ctx);
  a.metadata["built"] = id;
  if (request.built.metadata.contains("ssh_user")) a.metadata["ssh_user"] = request.built.metadata["ssh_user"];
  return a;
}

// This project's active images carrying the upload key, the winner first: one
// not superseded by a later publish (lcake_superseded_by), a published one, then
// the one created first, then the lowest id, so every runner's find(), publish
// and gc pick the same one (docs/ci.md).
std::vector<json> GlanceUploader::keyed_images(const FindRequest& request, Context& ctx) {
  std::string key = request.layer.upload_key.empty() ? request.layer.key : request.layer.upload_key;
  GlanceClient g = glance(ctx);
  std::string project = session(ctx)->project_id(ctx);
  std::vector<json> out;
  for (const auto& img : g.list_images("lcake_key=" + http::url_escape(key) + "&status=active")) {
    if (img.value("lcake_key", "") != key || img.value("status", "") != "active") continue;
    if (!project.empty() && img.value("owner", "") != project) continue;  // someone else's upload
    out.push_back(img);
  }
  auto rank = [](const json& img) {
    return std::make_tuple(img.contains("lcake_superseded_by"), !img.contains("lcake_published"),
                           img.value("created_at", ""), img.value("id", ""));
  };
  std::sort(out.begin(), out.end(), [&](const json& a, const json& b) { return rank(a) < rank(b); });
  return out;
}

Artifact GlanceUploader::found_artifact(const json& image, Context& ctx) {
  bool verified = image.contains("lcake_verified"), published = image.contains("lcake_published");
  Artifact a = to_artifact(image, ctx);
  // The host records the found upload as verified/published from these (the image's own marks).
  a.metadata["lcake_found"] = {{"verified", verified}, {"published", published}};
  a.metadata["lcake_created"] = image.value("created_at", "");
  return a;
}

std::optional<Artifact> GlanceUploader::find(const FindRequest& request, Context& ctx) {
  auto images = keyed_images(request, ctx);
  if (images.empty()) return std::nullopt;
  const json& best = images.front();
  bool verified = best.contains("lcake_verified"), published = best.contains("lcake_published");
  ctx.info("Glance already has image " + best.value("name", "") + " (" + best.value("id", "") +
           ") for this upload key" + (published ? ", published" : verified ? ", verified" : "") +
           (images.size() > 1 ? " (and " + std::to_string(images.size() - 1) + " duplicate(s) for `lcake gc --target`)" : ""));
  return found_artifact(best, ctx);
}

std::vector<Artifact> GlanceUploader::find_all(const FindRequest& request, Context& ctx) {
  std::vector<Artifact> out;
  for (const auto& img : keyed_images(request, ctx)) out.push_back(found_artifact(img, ctx));
  return out;
}

bool GlanceUploader::exists(const Artifact& artifact, Context& ctx) {
  auto img = glance(ctx).show_image(artifact.id);
  return img && img->value("status", "") == "active";
}

void GlanceUploader::remove(const Artifact& artifact, Context& ctx) {
  GlanceClient g = glance(ctx, false);
  auto img = g.show_image(artifact.id);
  if (!img) return;
  if (GlanceClient::is_published(*img)) {
    ctx.warn("not deleting Glance image " + artifact.id + " (" + img->value("name", "") +
             "): it was published; delete it by hand if it is no longer wanted");
    return;
  }
  g.delete_image(artifact.id, true);
}

void GlanceUploader::reap(const LedgerEntry& entry, Context& ctx) {
  if (entry.kind != "glance-image") return Uploader::reap(entry, ctx);
  if (!glance(ctx, false).delete_image(entry.resource_id, true))
    throw AlreadyGone("Glance image " + entry.resource_id + " (" + entry.how.value("name", "") + ") is already gone");
  ctx.info("deleted leftover Glance image " + entry.resource_id + " (" + entry.how.value("name", "") + ")");
}

}  // namespace lcake::openstack
