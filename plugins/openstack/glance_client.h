// The Glance v2 calls lcake makes: images (create, show, list by name or
// property, JSON-patch, delete), image data (streamed upload, stage + import)
// and members. Every call goes through ServiceClient (token, TLS, retries).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service_client.h"

namespace lcake::openstack {

class GlanceClient {
 public:
  GlanceClient(std::shared_ptr<KeystoneSession> session, Context& ctx, bool cancellable = true);
  ServiceClient& service() { return client_; }

  // POST /v2/images: returns the image record (status "queued").
  nlohmann::json create_image(const nlohmann::json& body);
  // GET /v2/images/{id}; nullopt on 404.
  std::optional<nlohmann::json> show_image(const std::string& id);
  // GET /v2/images?<query> following "next" links; query is "k=v&k2=v2" (already escaped).
  std::vector<nlohmann::json> list_images(const std::string& query);
  // A Glance image given by id (a UUID that exists) or by name (exactly one image
  // visible to the project with that name, else BuildError listing the ids).
  nlohmann::json resolve_image(const std::string& name_or_id);
  // PATCH with application/openstack-images-v2.1-json-patch; returns the new record.
  nlohmann::json patch_image(const std::string& id, const nlohmann::json& ops);
  // Was this image published by lcake (or made non-private)? Such images are never deleted by gc.
  static bool is_published(const nlohmann::json& image) {
    return image.value("visibility", "private") != "private" || image.contains("lcake_published");
  }
  // DELETE; true if it was deleted, false if already gone. A protected image is
  // unprotected first only when `force` is set.
  bool delete_image(const std::string& id, bool force = false);

  struct Sent {
    std::uint64_t bytes = 0;
    std::string sha512;  // of the bytes sent
  };
  // Streams `file` to PUT /v2/images/{id}/file (or .../stage when `stage`), in
  // constant memory, hashing with sha512 as it goes; `progress(sent, total)`.
  Sent upload_file(const std::string& id, const std::filesystem::path& file, bool stage,
                   const std::function<void(std::uint64_t, std::uint64_t)>& progress);
  // POST /v2/images/{id}/import {"method": {"name": "glance-direct"}}.
  void import_staged(const std::string& id);
  // Polls until the image is "active" (BuildError on killed/deleted/timeout). Cancellable.
  nlohmann::json wait_active(const std::string& id, std::chrono::seconds timeout);

  // PUT / DELETE /v2/images/{id}/tags/{tag} (removing a tag that is not there is fine).
  void add_tag(const std::string& id, const std::string& tag);
  void remove_tag(const std::string& id, const std::string& tag);

  // POST /v2/images/{id}/members (409 "already a member" is fine).
  void add_member(const std::string& id, const std::string& project_id);
  // PUT /v2/images/{id}/members/{project}: status accepted | rejected | pending
  // (must be called with a token of that project).
  void set_member_status(const std::string& id, const std::string& project_id, const std::string& status);

 private:
  ServiceClient client_;
};

}  // namespace lcake::openstack
