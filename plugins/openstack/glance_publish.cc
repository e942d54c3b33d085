// GlanceUploader::publish: after verification, the image gets its moving name
// and tags (taken from the project's older images, which are superseded, not
// deleted by default), its visibility, members and protection.
#include "glance_naming.h"
#include "glance_uploader.h"
#include "lcake/errors.hpp"

namespace lcake::openstack {
using nlohmann::json;

namespace {

// Images of `project` other than `self` among `found`.
std::vector<json> others(const std::vector<json>& found, const std::string& self, const std::string& project) {
  std::vector<json> out;
  for (const auto& img : found)
    if (img.value("id", "") != self && (project.empty() || img.value("owner", "") == project)) out.push_back(img);
  return out;
}

json set_op(const json& image, const std::string& field, const json& value) {
  return {{"op", image.contains(field) ? "replace" : "add"}, {"path", "/" + field}, {"value", value}};
}

}  // namespace

Artifact GlanceUploader::publish(const Artifact& uploaded, const PublishRequest& request, Context& ctx) {
  json opts = settings_.value("publish", json::object());
  for (auto it = request.options.begin(); it != request.options.end(); ++it) opts[it.key()] = *it;
  GlanceClient g = glance(ctx);
  auto image = g.show_image(uploaded.id);
  if (!image) throw BuildError("Glance image " + uploaded.id + " to publish is gone: run the build again to re-upload it");
  if (image->value("status", "") != "active")
    throw BuildError("Glance image " + uploaded.id + " is " + image->value("status", "") + ", not active: cannot publish it");
  std::string visibility = opts.value("visibility", image->value("visibility", "private"));
  if (opts.contains("members") && !opts["members"].empty() && visibility != "shared")
    throw ValueError("publish", "/members", "members are only for visibility \"shared\" (it is \"" + visibility + "\")");

  std::string project = session(ctx)->project_id(ctx);
  NameVars vars = naming_vars(request.layer);
  std::string where = "layers." + request.layer.layer + ".publish";
  std::string stamp = utc_stamp();
  std::string supersede = opts.value("supersede", "rename");
  json ops = json::array();
  json moving = json::array();  // the names people look up (lcake outputs): the moving name, then tags

  if (opts.contains("moving_name")) {
    std::string name = render_name(opts["moving_name"], where + ".moving_name", vars);
    moving.push_back(name);
    for (const auto& old : others(g.list_images("name=" + http::url_escape(name)), uploaded.id, project)) {
      std::string old_id = old.value("id", "");
      if (supersede == "delete") {
        ctx.info("deleting superseded image " + name + " (" + old_id + ")");
        g.delete_image(old_id, false);
        continue;
      }
      json old_ops = json::array({set_op(old, "lcake_superseded_by", uploaded.id)});
      if (supersede == "rename") old_ops.push_back(set_op(old, "name", name + "-superseded-" + stamp));
      g.patch_image(old_id, old_ops);
      g.add_tag(old_id, "superseded");
      ctx.info("image " + name + " (" + old_id + ") superseded" +
               (supersede == "rename" ? ": renamed " + name + "-superseded-" + stamp : ": tagged superseded"));
    }
    ops.push_back(set_op(*image, "name", name));
  }
  for (const auto& t : opts.value("moving_tags", json::array())) {
    std::string tag = render_name(t, where + ".moving_tags", vars);
    moving.push_back(tag);
    for (const auto& old : others(g.list_images("tag=" + http::url_escape(tag)), uploaded.id, project))
      g.remove_tag(old.value("id", ""), tag);
    g.add_tag(uploaded.id, tag);
  }
  ops.push_back(set_op(*image, "visibility", visibility));
  if (opts.contains("protected")) ops.push_back(set_op(*image, "protected", opts["protected"].get<bool>()));
  ops.push_back(set_op(*image, "lcake_published", stamp));
  json updated = g.patch_image(uploaded.id, ops);

  json members = json::array();
  for (const auto& m : opts.value("members", json::array())) {
    std::string member = m.is_string() ? m.get<std::string>() : m.value("project", "");
    g.add_member(uploaded.id, member);
    std::string status = "pending";
    if (m.is_object() && m.contains("cloud")) {
      // The member project's own credentials accept the share.
      auto theirs = std::make_shared<KeystoneSession>(AuthSettings{m["cloud"], settings_.value("region", ""),
                                                                   settings_.value("interface", "")}, ctx);
      if (theirs->project_id(ctx) != member)
        throw ValueError("publish", "/members", "cloud \"" + m["cloud"].get<std::string>() + "\" is scoped to project " +
                                                    theirs->project_id(ctx) + ", not member " + member);
      GlanceClient(theirs, ctx).set_member_status(uploaded.id, member, "accepted");
      status = "accepted";
    } else {
      ctx.info("image " + uploaded.id + " shared with project " + member +
               ", which must accept it: openstack image set --accept " + uploaded.id);
    }
    members.push_back({{"project", member}, {"status", status}});
  }
  Artifact a = to_artifact(updated, ctx);
  a.metadata["sha512"] = uploaded.metadata.value("sha512", "");
  a.metadata["built"] = uploaded.metadata.value("built", "");
  a.metadata["published"] = stamp;
  a.metadata["tags"] = updated.value("tags", json::array());
  a.metadata["protected"] = updated.value("protected", false);
  if (!members.empty()) a.metadata["members"] = members;
  a.metadata["moving_names"] = moving;
  return a;
}

}  // namespace lcake::openstack
