#include "glance_client.h"

#include <cstdio>
#include <fstream>
#include <regex>

#include "lcake/errors.hpp"
#include "lcake/files.hpp"

namespace lcake::openstack {

namespace {

const char* kPatchType = "application/openstack-images-v2.1-json-patch";

bool looks_like_uuid(const std::string& s) {
  static const std::regex kUuid("[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}");
  return std::regex_match(s, kUuid);
}

nlohmann::json parse(const http::HttpResponse& r, const std::string& what) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) throw BuildError(what + ": Glance answered unreadable JSON");
  return j;
}

}  // namespace

GlanceClient::GlanceClient(std::shared_ptr<KeystoneSession> session, Context& ctx, bool cancellable)
    : client_(std::move(session), "image", ctx, cancellable) {}

nlohmann::json GlanceClient::create_image(const nlohmann::json& body) {
  std::string what = "creating Glance image " + body.value("name", std::string("?"));
  auto r = client_.call("POST", "/v2/images", &body);
  if (r.status != 201 && r.status != 200) fail(r, "Glance", what);
  return parse(r, what);
}

std::optional<nlohmann::json> GlanceClient::show_image(const std::string& id) {
  auto r = client_.call("GET", "/v2/images/" + http::url_escape(id));
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail(r, "Glance", "reading image " + id);
  return parse(r, "reading image " + id);
}

std::vector<nlohmann::json> GlanceClient::list_images(const std::string& query) {
  std::vector<nlohmann::json> out;
  std::string path = "/v2/images?" + query + (query.empty() ? "" : "&") + "limit=100";
  for (int page = 0; page < 1000 && !path.empty(); ++page) {
    nlohmann::json j = client_.get_json(path, "listing images (" + query + ")");
    for (const auto& img : j.value("images", nlohmann::json::array())) out.push_back(img);
    path = j.value("next", "");
  }
  return out;
}

nlohmann::json GlanceClient::resolve_image(const std::string& name_or_id) {
  if (looks_like_uuid(name_or_id))
    if (auto img = show_image(name_or_id)) return *img;
  auto found = list_images("name=" + http::url_escape(name_or_id));
  if (found.size() == 1) return found.front();
  if (found.empty()) throw BuildError("Glance has no image named or with id \"" + name_or_id + "\" visible to this project");
  std::string ids;
  for (const auto& img : found) ids += (ids.empty() ? "" : ", ") + img.value("id", std::string());
  throw BuildError("Glance has " + std::to_string(found.size()) + " images named \"" + name_or_id +
                   "\" (" + ids + "): name one by id");
}

nlohmann::json GlanceClient::patch_image(const std::string& id, const nlohmann::json& ops) {
  auto r = client_.call("PATCH", "/v2/images/" + http::url_escape(id), &ops, {}, kPatchType);
  if (r.status != 200) fail(r, "Glance", "updating image " + id);
  return parse(r, "updating image " + id);
}

bool GlanceClient::delete_image(const std::string& id, bool force) {
  auto r = client_.call("DELETE", "/v2/images/" + http::url_escape(id));
  if (r.status == 403 && force) {
    auto img = show_image(id);
    if (!img) return false;
    if (img->value("protected", false)) {
      patch_image(id, nlohmann::json::array({{{"op", "replace"}, {"path", "/protected"}, {"value", false}}}));
      r = client_.call("DELETE", "/v2/images/" + http::url_escape(id));
    }
  }
  if (r.status == 404) return false;
  if (r.status != 204 && r.status != 200) fail(r, "Glance", "deleting image " + id);
  return true;
}

GlanceClient::Sent GlanceClient::upload_file(const std::string& id, const std::filesystem::path& file, bool stage,
                                             const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!in) throw BuildError("cannot read " + file.string());
  std::uint64_t size = std::filesystem::file_size(file);
  auto hasher = std::make_unique<Hasher>("sha512");
  std::uint64_t sent = 0;

  http::HttpRequest r;
  r.method = "PUT";
  r.url = "/v2/images/" + http::url_escape(id) + (stage ? "/stage" : "/file");
  r.headers = {"Content-Type: application/octet-stream"};
  r.body_size = size;
  r.body_reader = [&](char* buf, std::size_t max) -> std::size_t {
    std::size_t n = std::fread(buf, 1, max, in.get());
    hasher->update(std::string_view(buf, n));
    sent += n;
    return n;
  };
  r.rewind = [&] {
    std::fseek(in.get(), 0, SEEK_SET);
    hasher = std::make_unique<Hasher>("sha512");
    sent = 0;
  };
  r.on_upload_progress = progress;
  r.stall_timeout = std::chrono::seconds(120);
  auto resp = client_.send(std::move(r));
  std::string what = "uploading " + file.string() + " to image " + id;
  if (resp.status != 204 && resp.status != 200 && resp.status != 201) fail(resp, "Glance", what);
  if (sent != size) throw BuildError(what + ": sent " + std::to_string(sent) + " of " + std::to_string(size) + " bytes");
  return {sent, hasher->hex()};
}

void GlanceClient::import_staged(const std::string& id) {
  nlohmann::json body = {{"method", {{"name", "glance-direct"}}}};
  auto r = client_.call("POST", "/v2/images/" + http::url_escape(id) + "/import", &body);
  if (r.status != 202 && r.status != 200) fail(r, "Glance", "importing staged image " + id);
}

nlohmann::json GlanceClient::wait_active(const std::string& id, std::chrono::seconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(200);
  for (;;) {
    auto img = show_image(id);
    if (!img) throw BuildError("image " + id + " disappeared from Glance while waiting for it to become active");
    std::string status = img->value("status", "");
    if (status == "active") return *img;
    if (status == "killed" || status == "deleted" || status == "pending_delete")
      throw BuildError("image " + id + " went to status " + status + " in Glance");
    if (std::chrono::steady_clock::now() > end)
      throw BuildError("image " + id + " still " + status + " after " + std::to_string(timeout.count()) + " s");
    client_.context().progress(-1, "waiting for image " + id + " (" + status + ")");
    if (client_.context().cancel().wait_for(delay)) throw Cancelled();
    delay = std::min(delay * 2, std::chrono::milliseconds(3000));
  }
}

void GlanceClient::add_tag(const std::string& id, const std::string& tag) {
  auto r = client_.call("PUT", "/v2/images/" + http::url_escape(id) + "/tags/" + http::url_escape(tag));
  if (r.status != 204 && r.status != 200) fail(r, "Glance", "tagging image " + id + " " + tag);
}

void GlanceClient::remove_tag(const std::string& id, const std::string& tag) {
  auto r = client_.call("DELETE", "/v2/images/" + http::url_escape(id) + "/tags/" + http::url_escape(tag));
  if (r.status != 204 && r.status != 200 && r.status != 404) fail(r, "Glance", "untagging image " + id + " " + tag);
}

void GlanceClient::add_member(const std::string& id, const std::string& project_id) {
  nlohmann::json body = {{"member", project_id}};
  auto r = client_.call("POST", "/v2/images/" + http::url_escape(id) + "/members", &body);
  if (r.status == 409) return;  // already a member
  if (r.status != 200) fail(r, "Glance", "sharing image " + id + " with project " + project_id);
}

void GlanceClient::set_member_status(const std::string& id, const std::string& project_id, const std::string& status) {
  nlohmann::json body = {{"status", status}};
  auto r = client_.call("PUT", "/v2/images/" + http::url_escape(id) + "/members/" + http::url_escape(project_id), &body);
  if (r.status != 200) fail(r, "Glance", "setting member " + project_id + " of image " + id + " to " + status);
}

}  // namespace lcake::openstack
