#include "nova_builder.h"
#include "lcake/common/json_text.h"

#include "glance_client.h"
#include "nova_server.h"

namespace lcake::openstack {

using nlohmann::json;
using namespace std::chrono_literals;

const char* const kNovaSourceSchema = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object", "additionalProperties": false, "required": ["image"],
  "properties": {
    "image": {"type": "string", "minLength": 1,
              "description": "the Glance image (name or id) the first layer boots"},
    "ssh_user": {"type": "string", "minLength": 1, "description": "the image's SSH user (default: settings.ssh_user)"}
  }
})json";

const char* const kNovaBuildOptionsSchema = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object", "additionalProperties": false,
  "properties": {
    "image_name": {"type": "string", "minLength": 1,
                   "description": "name of the snapshot image (default lcake-<variant>-<layer>-<key prefix>)"},
    "properties": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
                   "description": "extra properties of the snapshot image"}
  }
})json";

namespace {

// createImage may have happened without its answer reaching us (a cancel, a lost connection):
// Nova marks a snapshot with its server's id; an earlier build's image of the same name is kept.
bool delete_unanswered_snapshots(GlanceClient& glance, const std::string& name, const std::string& server) {
  bool deleted = false;
  for (auto& i : glance.list_images("name=" + http::url_escape(name))) {
    bool ours = i.contains("instance_uuid") ? i["instance_uuid"] == server : i.value("status", "") != "active";
    if (ours && glance.delete_image(i.at("id"))) deleted = true;
  }
  return deleted;
}

class NovaBuildSession : public BuildSession {
 public:
  NovaBuildSession(const ServerSettings& settings, std::shared_ptr<KeystoneSession> session,
                   std::unique_ptr<BootedServer> server, const BuildRequest& request, std::string ssh_user,
                   std::string base_image)
      : settings_(settings), session_(std::move(session)), server_(std::move(server)), request_(request),
        ssh_user_(std::move(ssh_user)), base_image_(std::move(base_image)) {}

  Communicator& communicator() override { return server_->ssh(); }

  Artifact finish(Context& ctx) override {
    auto& nova = server_->nova();
    const auto& id = server_->id();
    // os-stop may end in a hard power-off (a guest that ignores the ACPI button): what the
    // provisioners wrote must be on the disk before, or the snapshot loses it.
    try {
      server_->ssh().run("sync", [](std::string_view, bool) {}, 60s);
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {
      ctx.warn(std::string("sync over SSH before stopping the server failed: ") + e.what());
    }
    server_->close_ssh();
    ctx.info("stopping server " + id);
    nova.stop_server(id);
    nova.wait_for_status(id, "SHUTOFF", {settings_.stop_timeout, settings_.poll});

    auto& layer = request_.layer;
    auto name = request_.options.value("image_name", "lcake-" + layer.variant + "-" + layer.layer + "-" +
                                                         layer.key.substr(0, 12));
    std::map<std::string, std::string> props = {
        {"lcake_key", layer.key},          {"lcake_layer", layer.layer},   {"lcake_variant", layer.variant},
        {"lcake_target", layer.target},    {"lcake_ssh_user", ssh_user_},  {"lcake_version", layer.lcake_version},
        {"lcake_base_image", base_image_}};
    if (!layer.pipeline.empty()) props["lcake_pipeline"] = layer.pipeline.substr(0, 255);
    const json extra = request_.options.value("properties", json::object());
    for (auto& [k, v] : extra.items()) props[k] = v;

    image_entry_.emplace(ctx.ledger(), kImageKind, name, json{{"name", name}, {"server", id}});
    image_name_ = name, image_server_ = id;
    ctx.info("snapshotting server " + id + " to image " + name);
    image_id_ = nova.create_image(id, name, props);
    image_entry_->confirmed(image_id_, {{"name", name}, {"server", id}, {"id", image_id_}});
    GlanceClient(session_, ctx).wait_active(image_id_, settings_.image_timeout);
    server_->tear_down(ctx);
    image_entry_->promote();

    Artifact a;
    a.type = "glance-image";
    a.id = image_id_;
    a.metadata = {{"name", name}, {"ssh_user", ssh_user_}, {"base_image", base_image_}, {"server", id}};
    return a;
  }

  void abort(Context& ctx) noexcept override {
    server_->tear_down_quietly(ctx);
    if (!image_entry_ || !image_entry_->open()) return;
    try {
      GlanceClient glance(session_, ctx, false);
      if (!image_id_.empty()) glance.delete_image(image_id_);
      else delete_unanswered_snapshots(glance, image_name_, image_server_);  // cancelled mid-createImage
      image_entry_->deleted();
    } catch (const std::exception& e) {
      ctx.warn(std::string("could not delete snapshot image (left for lcake gc): ") + e.what());
    }
  }

 private:
  ServerSettings settings_;
  std::shared_ptr<KeystoneSession> session_;
  std::unique_ptr<BootedServer> server_;
  BuildRequest request_;
  std::string ssh_user_, base_image_, image_id_;
  std::string image_name_, image_server_;  // the createImage in flight, for abort()
  std::optional<LedgerScope> image_entry_;
};

}  // namespace

NovaBuilder::NovaBuilder(const json& settings) : settings_(ServerSettings::from_json(settings)) {}

std::unique_ptr<BuildSession> NovaBuilder::start(const BuildRequest& request, Context& ctx) {
  auto session = std::make_shared<KeystoneSession>(settings_.auth, ctx);
  std::string image, ssh_user = settings_.ssh_user;
  if (request.parent) {
    if (request.parent->type != "glance-image")
      throw InputError("the Nova builder builds on Glance images, but the parent of layer " + request.layer.layer +
                       " is a '" + request.parent->type + "': use the openstack builder for every layer");
    image = request.parent->id;
    ssh_user = lcake::common::text_or(request.parent->metadata, "ssh_user", ssh_user);
    auto found = GlanceClient(session, ctx).show_image(image);
    if (!found || found->value("status", "") != "active")
      throw BuildError("parent image " + image + " of layer " + request.layer.layer +
                       " is gone from Glance: rebuild the parent layer (--force)");
  } else {
    auto where = "variants." + request.layer.variant + ".sources.openstack";
    if (!request.source.is_object() || !request.source.contains("image"))
      throw ValueError("source", "", where + " is required for the first layer: {\"image\": \"<Glance name or id>\"}");
    auto found = GlanceClient(session, ctx).resolve_image(request.source["image"]);
    if (found.value("status", "") != "active")
      throw BuildError(where + "/image: Glance image " + found.value("id", "") + " is " +
                       found.value("status", "") + ", not active: it cannot be booted");
    image = found.at("id");
    ssh_user = request.source.value("ssh_user", ssh_user);
  }
  BootRequest boot;
  boot.name = run_unique_name(request.layer, "build");
  boot.image_id = image;
  boot.ssh_user = ssh_user;
  boot.metadata = {{"lcake_layer", request.layer.layer}, {"lcake_key", request.layer.key}};
  auto server = std::make_unique<BootedServer>(settings_, session, boot, ctx);
  return std::make_unique<NovaBuildSession>(settings_, session, std::move(server), request, ssh_user, image);
}

void NovaBuilder::reap(const LedgerEntry& entry, Context& ctx) {
  auto session = std::make_shared<KeystoneSession>(settings_.auth, ctx);
  if (entry.kind == kImageKind) {
    GlanceClient glance(session, ctx, false);
    auto name = entry.how.value("name", entry.resource_id);
    bool deleted = false;
    if (entry.how.contains("id")) {
      deleted = glance.delete_image(entry.how["id"]);
    } else {
      deleted = delete_unanswered_snapshots(glance, name, entry.how.value("server", std::string()));
    }
    if (!deleted) throw AlreadyGone("snapshot image " + name + " is already gone (or was never made)");
    ctx.info("deleted leftover snapshot image " + name);
    return;
  }
  if (!is_server_resource(entry.kind)) Builder::reap(entry, ctx);
  reap_server_resource(entry, session, ctx);
}

bool NovaBuilder::exists(const Artifact& artifact, Context& ctx) {
  auto image = GlanceClient(std::make_shared<KeystoneSession>(settings_.auth, ctx), ctx).show_image(artifact.id);
  return image && image->value("status", "") == "active";
}

void NovaBuilder::remove(const Artifact& artifact, Context& ctx) {
  GlanceClient glance(std::make_shared<KeystoneSession>(settings_.auth, ctx), ctx, false);
  auto image = glance.show_image(artifact.id);
  if (!image) return;
  // With the openstack uploader the snapshot itself is the upload, and may be published.
  if (GlanceClient::is_published(*image)) {
    ctx.warn("not deleting Glance image " + artifact.id + " (" + image->value("name", "") +
             "): it was published; delete it by hand if it is no longer wanted");
    return;
  }
  glance.delete_image(artifact.id);
}

}  // namespace lcake::openstack
