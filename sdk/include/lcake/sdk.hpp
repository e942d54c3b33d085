// Everything a plugin author needs: #include <lcake/sdk.hpp>
// (and, in a plugin's own unit tests, <lcake/testing.hpp>)
#pragma once
#include "lcake/artifact.hpp"
#include "lcake/communicator.hpp"
#include "lcake/context.hpp"
#include "lcake/errors.hpp"
#include "lcake/files.hpp"
#include "lcake/plugin.hpp"
#include "lcake/roles.hpp"
#include "lcake/version.hpp"
