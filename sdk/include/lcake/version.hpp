// The SDK's version. lcake plugins share C++ types with the host (std::string,
// nlohmann::json, std::function, std::unique_ptr, exceptions), so the promise is
// the one LLVM makes for pass plugins: a plugin loads only into an lcake built
// with the same plugin API version and the same C++ ABI (LCAKE_ABI_TAG). There is
// no minor version: any change to a header in sdk/ bumps LCAKE_API_VERSION.
#pragma once
#include <nlohmann/json.hpp>

#define LCAKE_API_VERSION 5

#define LCAKE_DETAIL_STR2(x) #x
#define LCAKE_DETAIL_STR(x) LCAKE_DETAIL_STR2(x)
#define LCAKE_DETAIL_CAT2(a, b) a##b
#define LCAKE_DETAIL_CAT(a, b) LCAKE_DETAIL_CAT2(a, b)

// What must match for C++ objects to cross the boundary: the compiler family and
// major version, libstdc++'s dual ABI, and the nlohmann::json version.
#if defined(__clang__)
#define LCAKE_DETAIL_COMPILER "clang" LCAKE_DETAIL_STR(__clang_major__)
#elif defined(__GNUC__)
#define LCAKE_DETAIL_COMPILER "gcc" LCAKE_DETAIL_STR(__GNUC__)
#else
#define LCAKE_DETAIL_COMPILER "unknown"
#endif
#define LCAKE_ABI_TAG                                                                          \
  LCAKE_DETAIL_COMPILER "/cxx11abi" LCAKE_DETAIL_STR(_GLIBCXX_USE_CXX11_ABI) "/json" \
  LCAKE_DETAIL_STR(NLOHMANN_JSON_VERSION_MAJOR) "." LCAKE_DETAIL_STR(NLOHMANN_JSON_VERSION_MINOR) "." \
  LCAKE_DETAIL_STR(NLOHMANN_JSON_VERSION_PATCH)

// The entry point's name carries the API version, so the host can read it from
// the symbol table (Boost.DLL library_info) without running plugin code.
#define LCAKE_ENTRY_PREFIX "lcake_plugin_entry_v"
#define LCAKE_ENTRY_NAME LCAKE_DETAIL_CAT(lcake_plugin_entry_v, LCAKE_API_VERSION)
