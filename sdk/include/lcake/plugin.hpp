// The plugin declaration: one C struct returned by one extern "C" entry point.
//
//   class DirUploader : public lcake::Uploader { public: explicit DirUploader(const nlohmann::json& settings); ... };
//   LCAKE_PLUGIN("publish-dir", "1.0.0", "Copies artifacts into a directory",
//                lcake::uploader<DirUploader>(kSettingsSchema));
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "lcake/roles.hpp"
#include "lcake/version.hpp"

extern "C" {

enum lcake_role : std::uint32_t {
  LCAKE_ROLE_BUILDER = 1u << 0,
  LCAKE_ROLE_UPLOADER = 1u << 1,
  LCAKE_ROLE_VERIFIER = 1u << 2,
};

// A factory never throws: on failure it returns nullptr and writes a
// NUL-terminated message into err (at most err_size bytes).
typedef void* (*lcake_factory)(const char* settings_json, char* err, std::size_t err_size);

struct lcake_plugin_descriptor {
  std::uint32_t api_major;
  std::uint32_t api_minor;
  std::uint32_t struct_size;  // sizeof(lcake_plugin_descriptor) the plugin was built with
  const char* name;
  const char* version;
  const char* summary;
  std::uint32_t roles;  // LCAKE_ROLE_* bits
  // JSON Schema (draft 7) text for each role's settings; null when the role is absent.
  const char* builder_schema;
  const char* uploader_schema;
  const char* verifier_schema;
  // Each returns a new lcake::Builder* / lcake::Uploader* / lcake::Verifier*
  // (as void*), owned by the host.
  lcake_factory make_builder;
  lcake_factory make_uploader;
  lcake_factory make_verifier;
};

typedef const lcake_plugin_descriptor* (*lcake_plugin_entry)(void);
}

namespace lcake::detail {

template <class Base, class T>
void* construct(const char* settings_json, char* err, std::size_t err_size) noexcept {
  auto fail = [&](const std::string& msg) -> void* {
    if (err && err_size) {
      std::strncpy(err, msg.c_str(), err_size - 1);
      err[err_size - 1] = '\0';
    }
    return nullptr;
  };
  try {
    auto settings = nlohmann::json::parse(settings_json ? settings_json : "{}");
    Base* made = new T(settings);
    return static_cast<void*>(made);
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown exception");
  }
}

struct RoleDef {
  std::uint32_t role;
  const char* schema;
  lcake_factory factory;
};

inline void apply(lcake_plugin_descriptor& d, const RoleDef& r) {
  d.roles |= r.role;
  if (r.role == LCAKE_ROLE_BUILDER) d.builder_schema = r.schema, d.make_builder = r.factory;
  if (r.role == LCAKE_ROLE_UPLOADER) d.uploader_schema = r.schema, d.make_uploader = r.factory;
  if (r.role == LCAKE_ROLE_VERIFIER) d.verifier_schema = r.schema, d.make_verifier = r.factory;
}

template <class... Roles>
lcake_plugin_descriptor describe(const char* name, const char* version, const char* summary,
                                 const Roles&... roles) {
  static_assert(sizeof...(Roles) > 0, "LCAKE_PLUGIN: name at least one role, e.g. lcake::builder<MyBuilder>(schema)");
  lcake_plugin_descriptor d{};
  d.api_major = LCAKE_API_MAJOR;
  d.api_minor = LCAKE_API_MINOR;
  d.struct_size = sizeof(lcake_plugin_descriptor);
  d.name = name;
  d.version = version;
  d.summary = summary;
  (apply(d, roles), ...);
  return d;
}

template <class Base, class T>
constexpr void check_role(const char* role) {
  (void)role;
  static_assert(std::is_base_of_v<Base, T>, "the class given to lcake::builder/uploader/verifier must derive from lcake::Builder/Uploader/Verifier");
  static_assert(std::is_constructible_v<T, const nlohmann::json&>, "a role class needs a constructor taking (const nlohmann::json& settings)");
}

}  // namespace lcake::detail

namespace lcake {

// `schema` is the JSON Schema of the role's settings; the host validates the
// settings against it before the constructor sees them.
template <class T>
detail::RoleDef builder(const char* schema) {
  detail::check_role<Builder, T>("builder");
  return {LCAKE_ROLE_BUILDER, schema, &detail::construct<Builder, T>};
}
template <class T>
detail::RoleDef uploader(const char* schema) {
  detail::check_role<Uploader, T>("uploader");
  return {LCAKE_ROLE_UPLOADER, schema, &detail::construct<Uploader, T>};
}
template <class T>
detail::RoleDef verifier(const char* schema) {
  detail::check_role<Verifier, T>("verifier");
  return {LCAKE_ROLE_VERIFIER, schema, &detail::construct<Verifier, T>};
}

}  // namespace lcake

#define LCAKE_PLUGIN(NAME, VERSION, SUMMARY, ...)                                             \
  extern "C" __attribute__((visibility("default"))) const lcake_plugin_descriptor*           \
  LCAKE_ENTRY_NAME(void) {                                                                     \
    static const lcake_plugin_descriptor descriptor =                                          \
        ::lcake::detail::describe(NAME, VERSION, SUMMARY, __VA_ARGS__);                        \
    return &descriptor;                                                                        \
  }
