// A descriptor written by hand, to build what LCAKE_PLUGIN never would: another
// API version, another C++ ABI, no descriptor at all.
// Compiled once per case with ENTRY, NAME, VERSION, ABI, CAPABILITIES (and NULL_DESCRIPTOR).
#include <cstdio>

#include <lcake/plugin.hpp>

#ifndef ABI
#define ABI LCAKE_ABI_TAG
#endif
#ifndef CAPABILITIES
#define CAPABILITIES nullptr
#endif

extern "C" __attribute__((visibility("default"))) const lcake_plugin_descriptor* ENTRY(void) {
#ifdef NULL_DESCRIPTOR
  return nullptr;
#else
  static const lcake_plugin_descriptor d = [] {
    lcake_plugin_descriptor x{};
    x.api_version = VERSION;
    x.abi = ABI;
    x.name = NAME;
    x.version = "0.1";
    x.summary = "hand-written descriptor";
    x.uploader.settings = "{}";
    x.uploader.produces = "file";
    x.uploader.capabilities = CAPABILITIES;
    x.uploader.factory = [](const char*, char* err, std::size_t n) -> void* {
      std::snprintf(err, n, "hand-written plugins make nothing");
      return nullptr;
    };
    return x;
  }();
  return &d;
#endif
}
