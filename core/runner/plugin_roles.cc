#include "plugin_roles.h"

#include "config/schema_check.h"
#include "lcake/errors.hpp"

namespace lcake::core {

const LoadedPlugin& PluginRoles::load_role(const RoleConfig& rc, const std::string& role) {
  const LoadedPlugin& p = host_.load(rc.plugin);
  if (!p.has_role(role))
    throw lcake::InputError(loaded_->target_file.string() + ": " + rc.pointer + "/plugin: plugin '" +
                            rc.plugin + "' (" + p.info().file.string() + ") provides no " + role +
                            ": choose a plugin that does (see `lcake plugins list`)");
  const nlohmann::json& schema = p.info().role.at(role).settings;
  if (!schema.is_null())
    check_against_schema(loaded_->provenance, rc.pointer + "/settings", rc.settings, schema,
                         "plugin '" + rc.plugin + "' " + role + " schema");
  return p;
}

void PluginRoles::prepare() {
  builder_ = &load_role(target_->builder, "builder");
  if (target_->uploader) uploader_ = &load_role(*target_->uploader, "uploader");
  if (target_->verifier) verifier_ = &load_role(*target_->verifier, "verifier");
}

static std::optional<PluginId> id_of(const LoadedPlugin* p) {
  if (!p) return std::nullopt;
  return PluginId{p->info().name, p->info().version};
}

PluginId PluginRoles::builder() const { return *id_of(builder_); }
BuilderDeclared PluginRoles::builder_declared() const {
  return builder_->info().role.at("builder");
}

std::optional<PluginId> PluginRoles::uploader() const { return id_of(uploader_); }
std::optional<PluginId> PluginRoles::verifier() const { return id_of(verifier_); }

std::unique_ptr<lcake::Builder> PluginRoles::make_builder() {
  return builder_->make_builder(target_->builder.settings);
}
std::unique_ptr<lcake::Uploader> PluginRoles::make_uploader() {
  return uploader_ ? uploader_->make_uploader(target_->uploader->settings) : nullptr;
}
std::unique_ptr<lcake::Verifier> PluginRoles::make_verifier() {
  return verifier_ ? verifier_->make_verifier(target_->verifier->settings) : nullptr;
}

std::unique_ptr<lcake::Role> PluginRoles::make_role(const std::string& plugin,
                                                    const std::string& role,
                                                    const nlohmann::json& settings) {
  return host_.load(plugin).make_role(role, settings);
}

}  // namespace lcake::core
