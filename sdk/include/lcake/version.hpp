// The SDK's API version. A plugin records the version it was compiled against;
// the host accepts it when the major is equal and the minor is not newer.
#pragma once

#define LCAKE_API_MAJOR 1
#define LCAKE_API_MINOR 0

#define LCAKE_DETAIL_CAT2(a, b) a##b
#define LCAKE_DETAIL_CAT(a, b) LCAKE_DETAIL_CAT2(a, b)
// The entry point's name carries the major version, so the host can read it
// from the symbol table (Boost.DLL library_info) without running plugin code.
#define LCAKE_ENTRY_PREFIX "lcake_plugin_entry_v"
#define LCAKE_ENTRY_NAME LCAKE_DETAIL_CAT(lcake_plugin_entry_v, LCAKE_API_MAJOR)
