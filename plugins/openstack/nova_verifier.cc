#include "nova_verifier.h"
#include "lcake/common/json_text.h"

#include <ctime>

#include "glance_client.h"
#include "nova_server.h"

namespace lcake::openstack {
using nlohmann::json;
namespace {

class NovaVerifySession : public VerifySession {
 public:
  NovaVerifySession(std::unique_ptr<BootedServer> server, std::shared_ptr<KeystoneSession> session, std::string image)
      : server_(std::move(server)), session_(std::move(session)), image_(std::move(image)) {}
  Communicator& communicator() override { return server_->ssh(); }
  // The verify steps passed: the server goes, and the image remembers it (property
  // lcake_verified, UTC time), so a runner with an empty state that finds the image
  // records it verified instead of verifying it again.
  void finish(Context& ctx) override {
    server_->tear_down(ctx);
    GlanceClient glance(session_, ctx);
    auto image = glance.show_image(image_);
    if (!image) throw BuildError("Glance image " + image_ + " went away while it was verified");
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    try {
      glance.patch_image(image_, json::array({{{"op", image->contains("lcake_verified") ? "replace" : "add"},
                                               {"path", "/lcake_verified"},
                                               {"value", stamp}}}));
    } catch (const BuildError& e) {  // verified all the same; a fresh runner verifies it again
      ctx.warn("could not mark Glance image " + image_ + " verified (lcake_verified): " + e.what());
    }
  }
  void abort(Context& ctx) noexcept override { server_->tear_down_quietly(ctx); }

 private:
  std::unique_ptr<BootedServer> server_;
  std::shared_ptr<KeystoneSession> session_;
  std::string image_;
};

}  // namespace

NovaVerifier::NovaVerifier(const nlohmann::json& settings) : settings_(ServerSettings::from_json(settings)) {}

std::unique_ptr<VerifySession> NovaVerifier::start(const VerifyRequest& request, Context& ctx) {
  const auto& candidate = request.candidate;
  if (candidate.type != "glance-image")
    throw InputError("the Nova verifier boots Glance images, not '" + candidate.type +
                     "': pair it with the openstack uploader or builder");
  BootRequest boot;
  boot.name = run_unique_name(request.layer, "verify");
  boot.image_id = candidate.id;
  boot.ssh_user = lcake::common::text_or(
      candidate.metadata, "ssh_user", lcake::common::text_or(request.built.metadata, "ssh_user", settings_.ssh_user));
  boot.metadata = {{"lcake_layer", request.layer.layer}, {"lcake_key", request.layer.key}};
  auto session = std::make_shared<KeystoneSession>(settings_.auth, ctx);
  ctx.info("verifying image " + candidate.id + " on a Nova server");
  return std::make_unique<NovaVerifySession>(std::make_unique<BootedServer>(settings_, session, boot, ctx), session,
                                             candidate.id);
}

void NovaVerifier::reap(const LedgerEntry& entry, Context& ctx) {
  if (!is_server_resource(entry.kind)) Verifier::reap(entry, ctx);
  reap_server_resource(entry, std::make_shared<KeystoneSession>(settings_.auth, ctx), ctx);
}

}  // namespace lcake::openstack
