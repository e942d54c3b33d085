// The Glance uploader's input schemas, built once as JSON (the auth properties
// are shared with the Nova roles) and handed to the host as text.
#include <nlohmann/json.hpp>
#include <string>

#include "auth.h"
#include "glance_uploader.h"

namespace lcake::openstack {
namespace {

using nlohmann::json;

const char* kTemplateVars = "${variant} ${layer} ${key} ${key12} ${upload_key} ${upload_key12} ${target} ${pipeline} ${date}";

json image_fields() {
  return {
      {"name", {{"type", "string"}, {"minLength", 1},
                {"description", std::string("image name template; vars ") + kTemplateVars}}},
      {"min_disk", {{"type", "integer"}, {"minimum", 0},
                    {"description", "GiB; default: the disk's virtual size rounded up"}}},
      {"min_ram", {{"type", "integer"}, {"minimum", 0}, {"description", "MiB"}}},
      {"properties", {{"type", "object"},
                      {"additionalProperties", {{"type", {"string", "number", "boolean"}}}},
                      {"description", "image properties (os_distro, hw_disk_bus, ...); values sent as strings"}}},
      {"tags", {{"type", "array"}, {"items", {{"type", "string"}, {"minLength", 1}}}}},
  };
}

json publish_properties() {
  return {
      {"visibility", {{"enum", {"public", "community", "shared", "private"}},
                      {"description", "visibility after publish (public usually needs the admin role)"}}},
      {"members", {{"type", "array"},
                   {"items", {{"oneOf", json::array({
                                 {{"type", "string"}, {"minLength", 1}},
                                 {{"type", "object"}, {"additionalProperties", false}, {"required", {"project"}},
                                  {"properties", {{"project", {{"type", "string"}, {"minLength", 1}}},
                                                  {"cloud", {{"type", "string"},
                                                             {"description", "clouds.yaml cloud of that project: lcake accepts the share with it"}}}}}}})}}},
                   {"description", "project ids the image is shared with (visibility shared)"}}},
      {"moving_name", {{"type", "string"}, {"minLength", 1},
                       {"description", "a name moved to this image; the image that had it is superseded"}}},
      {"moving_tags", {{"type", "array"}, {"items", {{"type", "string"}, {"minLength", 1}}},
                       {"description", "image tags moved to this image from the project's other images"}}},
      {"supersede", {{"enum", {"rename", "tag", "delete"}},
                     {"description", "what happens to the image that had the moving name: renamed <name>-superseded-<date> (and tagged), only tagged, or deleted"}}},
      {"protected", {{"type", "boolean"}, {"description", "set the image's protected flag"}}},
  };
}

json object_schema(const json& properties) {
  return {{"$schema", "http://json-schema.org/draft-07/schema#"},
          {"type", "object"},
          {"additionalProperties", false},
          {"properties", properties}};
}

}  // namespace

const char* glance_settings_schema() {
  static const std::string text = [] {
    json p = auth_schema_properties();
    p.update(image_fields());
    p["name"]["default"] = "${variant}-${layer}-${upload_key12}";
    p["min_ram"]["default"] = 0;
    p["tags"]["default"] = json::array();
    p["properties"]["default"] = json::object();
    p["disk_format"] = {{"enum", {"auto", "qcow2", "raw"}}, {"default", "auto"},
                        {"description", "auto: the built disk's format; a qcow2 with a backing file is flattened"}};
    p["container_format"] = {{"enum", {"bare", "ovf", "ova", "aki", "ari", "ami", "docker", "compressed"}},
                             {"default", "bare"}};
    p["method"] = {{"enum", {"direct", "import"}}, {"default", "direct"},
                   {"description", "direct: PUT the data; import: stage it and import with glance-direct"}};
    p["active_timeout"] = {{"type", "integer"}, {"minimum", 1}, {"default", 600},
                           {"description", "seconds to wait for an imported image to become active"}};
    p["publish"] = object_schema(publish_properties());
    p["publish"].erase("$schema");
    p["publish"]["description"] = "publish options for every layer (a layer's own publish options win)";
    return object_schema(p).dump();
  }();
  return text.c_str();
}

const char* glance_options_schema() {
  static const std::string text = object_schema(image_fields()).dump();
  return text.c_str();
}

const char* glance_publish_schema() {
  static const std::string text = object_schema(publish_properties()).dump();
  return text.c_str();
}

}  // namespace lcake::openstack
