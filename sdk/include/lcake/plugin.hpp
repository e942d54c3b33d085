// The plugin declaration: one struct returned by one extern "C" entry point.
//
//   LCAKE_PLUGIN("publish-dir", "1.0.0", "Copies artifacts into a directory",
//                lcake::uploader<DirUploader>({.settings = kSettings,
//                                              .accepts = "qcow2 raw", .produces = "file"}));
//
// The host loads a plugin only when LCAKE_API_VERSION and LCAKE_ABI_TAG equal its
// own (see version.hpp): C++ objects cross this boundary, exceptions do not.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "lcake/errors.hpp"
#include "lcake/roles.hpp"
#include "lcake/version.hpp"

extern "C" {

// A factory never throws: on failure it returns nullptr and writes a
// NUL-terminated message into err (at most err_size bytes).
typedef void* (*lcake_factory)(const char* settings_json, char* err, std::size_t err_size);

// What one role takes and makes. Every schema is JSON Schema (draft 7) text; the
// host validates each value against it (config validate, plan, before a build)
// and injects the schema's defaults before the plugin sees it. Null settings:
// they must be absent or {}; a null source/options/publish: the role reads none,
// and receives {} (one pipeline may hold options for another backend).
struct lcake_role_spec {
  const char* settings;  // target.<role>.settings
  const char* source;    // builder only: pipeline variants.V.sources.<plugin> (the first layer's source)
  const char* options;   // pipeline layers.L.<role> (builder | uploader | verifier)
  const char* publish;   // uploader only: pipeline layers.L.publish
  // Space-separated artifact types. builder: parent types it builds on;
  // uploader: built types it uploads; verifier: candidate types it boots.
  const char* accepts;
  const char* produces;  // builder, uploader: the types it returns
  // Space-separated words saying what the role does beyond its interface. Known:
  // uploader "publishes-to-cloud": what it publishes boots as new machines in a cloud
  // (Glance, EC2), so the host turns on the builder's options marked
  // "x-lcake-cloud-default" for the last layer of each variant it uploads. Builder
  // "builds-on-upload": it can build a child from the parent layer's upload artifact (one
  // its .accepts has), so a parent whose upload is cached or found is not rebuilt for it.
  const char* capabilities;
  lcake_factory factory; // null: the plugin has no such role
};

struct lcake_plugin_descriptor {
  std::uint32_t api_version;  // LCAKE_API_VERSION
  const char* abi;            // LCAKE_ABI_TAG
  const char* name;
  const char* version;
  const char* summary;
  lcake_role_spec builder;
  lcake_role_spec uploader;
  lcake_role_spec verifier;
};

typedef const lcake_plugin_descriptor* (*lcake_plugin_entry)(void);
}

namespace lcake {

// The C++ face of lcake_role_spec (designated initializers, all optional).
struct RoleSpec {
  const char* settings = nullptr;
  const char* source = nullptr;
  const char* options = nullptr;
  const char* publish = nullptr;
  const char* accepts = nullptr;
  const char* produces = nullptr;
  const char* capabilities = nullptr;
};

namespace detail {

template <class Base, class T>
void* construct(const char* settings_json, char* err, std::size_t err_size) noexcept {
  auto fail = [&](const char* msg) -> void* {
    if (err && err_size) {
      std::strncpy(err, msg, err_size - 1);
      err[err_size - 1] = '\0';
    }
    return nullptr;
  };
  try {
    auto settings = nlohmann::json::parse(settings_json ? settings_json : "{}");
    Base* made = new T(settings);
    return static_cast<void*>(made);
  } catch (const ValueError& e) {
    // The host turns "\x1f<part>\x1f<pointer>\x1f<message>" back into a ValueError.
    std::string coded = "\x1f" + e.part + "\x1f" + e.pointer + "\x1f" + e.what();
    return fail(coded.c_str());
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown exception");
  }
}

enum class RoleKind { builder, uploader, verifier };

struct RoleDef {
  RoleKind kind;
  lcake_role_spec spec;
};

inline lcake_role_spec to_c(const RoleSpec& s, lcake_factory f) {
  return {s.settings, s.source, s.options, s.publish, s.accepts, s.produces, s.capabilities, f};
}

inline void apply(lcake_plugin_descriptor& d, const RoleDef& r) {
  if (r.kind == RoleKind::builder) d.builder = r.spec;
  if (r.kind == RoleKind::uploader) d.uploader = r.spec;
  if (r.kind == RoleKind::verifier) d.verifier = r.spec;
}

template <class... Roles>
lcake_plugin_descriptor describe(const char* name, const char* version, const char* summary,
                                 const Roles&... roles) {
  static_assert(sizeof...(Roles) > 0,
                "LCAKE_PLUGIN: name at least one role, e.g. lcake::builder<MyBuilder>({...})");
  lcake_plugin_descriptor d{};
  d.api_version = LCAKE_API_VERSION;
  d.abi = LCAKE_ABI_TAG;
  d.name = name;
  d.version = version;
  d.summary = summary;
  (apply(d, roles), ...);
  return d;
}

template <class Base, class T>
constexpr void check_role() {
  static_assert(std::is_base_of_v<Base, T>,
                "the class given to lcake::builder/uploader/verifier must derive from "
                "lcake::Builder/Uploader/Verifier");
  static_assert(std::is_constructible_v<T, const nlohmann::json&>,
                "a role class needs a constructor taking (const nlohmann::json& settings)");
}

}  // namespace detail

template <class T>
detail::RoleDef builder(const RoleSpec& spec) {
  detail::check_role<Builder, T>();
  return {detail::RoleKind::builder, detail::to_c(spec, &detail::construct<Builder, T>)};
}
template <class T>
detail::RoleDef uploader(const RoleSpec& spec) {
  detail::check_role<Uploader, T>();
  return {detail::RoleKind::uploader, detail::to_c(spec, &detail::construct<Uploader, T>)};
}
template <class T>
detail::RoleDef verifier(const RoleSpec& spec) {
  detail::check_role<Verifier, T>();
  return {detail::RoleKind::verifier, detail::to_c(spec, &detail::construct<Verifier, T>)};
}

}  // namespace lcake

#define LCAKE_PLUGIN(NAME, VERSION, SUMMARY, ...)                                   \
  extern "C" __attribute__((visibility("default"))) const lcake_plugin_descriptor* \
  LCAKE_ENTRY_NAME(void) {                                                         \
    static const lcake_plugin_descriptor descriptor =                              \
        ::lcake::detail::describe(NAME, VERSION, SUMMARY, __VA_ARGS__);            \
    return &descriptor;                                                            \
  }
