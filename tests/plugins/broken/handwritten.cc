// A descriptor written by hand, to build what LCAKE_PLUGIN never would: another
// API major, a newer minor, a truncated struct, no descriptor at all.
// Compiled once per case with ENTRY, NAME, MAJOR, MINOR, SIZE (and NULL_DESCRIPTOR).
#include <cstdio>

#include <lcake/plugin.hpp>

#ifndef SIZE
#define SIZE sizeof(lcake_plugin_descriptor)
#endif

extern "C" __attribute__((visibility("default"))) const lcake_plugin_descriptor* ENTRY(void) {
#ifdef NULL_DESCRIPTOR
  return nullptr;
#else
  static const lcake_plugin_descriptor d = [] {
    lcake_plugin_descriptor x{};
    x.api_major = MAJOR;
    x.api_minor = MINOR;
    x.struct_size = SIZE;
    x.name = NAME;
    x.version = "0.1";
    x.summary = "hand-written descriptor";
    x.roles = LCAKE_ROLE_UPLOADER;
    x.uploader_schema = "{}";
    x.make_uploader = [](const char*, char* err, std::size_t n) -> void* {
      std::snprintf(err, n, "hand-written plugins make nothing");
      return nullptr;
    };
    return x;
  }();
  return &d;
#endif
}
