// Image names from templates: "${variant}-${layer}-${upload_key12}".
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "lcake/roles.hpp"

namespace lcake::openstack {

using NameVars = std::vector<std::pair<std::string, std::string>>;

// ${variant} ${layer} ${key} ${key12} ${upload_key} ${upload_key12} ${target} ${pipeline} ${date} (UTC, YYYYmmdd).
NameVars naming_vars(const LayerInfo& layer);

// Expands the template; `where` names the setting in errors (InputError on an
// unknown variable or an unusable result).
std::string render_name(const std::string& tmpl, const std::string& where, const NameVars& vars);

// "20261201T193012Z", for superseded names.
std::string utc_stamp();

}  // namespace lcake::openstack
