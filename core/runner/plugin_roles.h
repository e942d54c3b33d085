// The RoleFactory of a real run: the target's roles from loaded plugins.
#pragma once
#include "config/config.h"
#include "plugin_host/plugin_host.h"
#include "role_factory.h"

namespace lcake::core {

class PluginRoles : public RoleFactory {
 public:
  // loaded/target may be null when only make_role is used (`lcake gc` without --target).
  PluginRoles(PluginHost& host, const LoadedConfig* loaded, const Target* target)
      : host_(host), loaded_(loaded), target_(target) {}
  void prepare() override;
  PluginId builder() const override;
  BuilderDeclared builder_declared() const override;
  std::optional<PluginId> uploader() const override;
  std::optional<PluginId> verifier() const override;
  std::unique_ptr<lcake::Builder> make_builder() override;
  std::unique_ptr<lcake::Uploader> make_uploader() override;
  std::unique_ptr<lcake::Verifier> make_verifier() override;
  std::unique_ptr<lcake::Role> make_role(const std::string& plugin, const std::string& role,
                                         const nlohmann::json& settings) override;

 private:
  const LoadedPlugin& load_role(const RoleConfig& rc, const std::string& role);
  PluginHost& host_;
  const LoadedConfig* loaded_;
  const Target* target_;
  const LoadedPlugin* builder_ = nullptr;
  const LoadedPlugin* uploader_ = nullptr;
  const LoadedPlugin* verifier_ = nullptr;
};

}  // namespace lcake::core
