#include "nova_verifier.h"

#include "nova_server.h"

namespace lcake::openstack {
namespace {

class NovaVerifySession : public VerifySession {
 public:
  explicit NovaVerifySession(std::unique_ptr<BootedServer> server) : server_(std::move(server)) {}
  Communicator& communicator() override { return server_->ssh(); }
  void finish(Context& ctx) override { server_->tear_down(ctx); }
  void abort(Context& ctx) noexcept override { server_->tear_down_quietly(ctx); }

 private:
  std::unique_ptr<BootedServer> server_;
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
  boot.ssh_user = candidate.metadata.value(
      "ssh_user", request.built.metadata.value("ssh_user", settings_.ssh_user));
  boot.metadata = {{"lcake_layer", request.layer.layer}, {"lcake_key", request.layer.key}};
  auto session = std::make_shared<KeystoneSession>(settings_.auth, ctx);
  ctx.info("verifying image " + candidate.id + " on a Nova server");
  return std::make_unique<NovaVerifySession>(std::make_unique<BootedServer>(settings_, session, boot, ctx));
}

void NovaVerifier::reap(const LedgerEntry& entry, Context& ctx) {
  if (entry.kind != kServerKind && entry.kind != kKeypairKind) Verifier::reap(entry, ctx);
  NovaClient nova(std::make_shared<KeystoneSession>(settings_.auth, ctx), ctx, false);
  reap_nova(entry, nova, ctx);
}

}  // namespace lcake::openstack
