// Where the runner gets its roles: the plugins of the target in a real run,
// fakes in runner_test. One factory per run; make_* is called once per variant.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "lcake/roles.hpp"
#include "plan/plan.h"

namespace lcake::core {

class RoleFactory {
 public:
  virtual ~RoleFactory() = default;
  // Loads and checks the target's plugins and settings (InputError on problems).
  virtual void prepare() = 0;
  virtual PluginId builder() const = 0;
  // What the builder's RoleSpec declares that planning uses (accepts, builds-on-upload).
  virtual BuilderDeclared builder_declared() const = 0;
  virtual std::optional<PluginId> uploader() const = 0;  // none: the target uploads nothing
  virtual std::optional<PluginId> verifier() const = 0;  // none: the target verifies nothing
  virtual std::unique_ptr<lcake::Builder> make_builder() = 0;
  virtual std::unique_ptr<lcake::Uploader> make_uploader() = 0;
  virtual std::unique_ptr<lcake::Verifier> make_verifier() = 0;
  // For cleanup: a role of any plugin with the settings the ledger recorded.
  virtual std::unique_ptr<lcake::Role> make_role(const std::string& plugin, const std::string& role,
                                                 const nlohmann::json& settings) = 0;
};

}  // namespace lcake::core
