// The qemu plugin's declaration and the JSON Schemas of its settings.
#include "lcake/plugin.hpp"
#include "qemu_roles.h"

namespace {

constexpr const char* kBuilderSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "qemu builder settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "accelerator": {"enum": ["kvm", "tcg", "auto"], "default": "auto",
      "description": "auto probes KVM with a tiny guest and falls back to TCG"},
    "memory": {"type": "integer", "minimum": 64, "default": 512, "description": "guest memory, MiB"},
    "cpus": {"type": "integer", "minimum": 1, "default": 1},
    "qemu_binary": {"type": "string", "minLength": 1, "default": "qemu-system-x86_64"},
    "machine": {"type": "string", "minLength": 1, "default": "q35"},
    "ssh_timeout": {"type": "integer", "minimum": 1, "default": 300,
      "description": "seconds to wait for SSH after starting the guest"},
    "shutdown_timeout": {"type": "integer", "minimum": 1, "default": 60,
      "description": "seconds to wait for a clean power-off"},
    "ssh_user": {"type": "string", "minLength": 1, "default": "root"},
    "qemuargs": {"type": "array", "items": {"type": "string"}, "default": [],
      "description": "extra arguments appended to the qemu command line"}
  }
})schema";

constexpr const char* kVerifierSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "qemu verifier settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "accelerator": {"enum": ["kvm", "tcg", "auto"], "default": "auto"},
    "memory": {"type": "integer", "minimum": 64, "default": 512},
    "cpus": {"type": "integer", "minimum": 1, "default": 1},
    "qemu_binary": {"type": "string", "minLength": 1, "default": "qemu-system-x86_64"},
    "machine": {"type": "string", "minLength": 1, "default": "q35"},
    "ssh_timeout": {"type": "integer", "minimum": 1, "default": 300},
    "ssh_user": {"type": "string", "minLength": 1, "default": "root"},
    "qemuargs": {"type": "array", "items": {"type": "string"}, "default": []}
  }
})schema";

constexpr const char* kUploaderSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "qemu uploader settings (local artifact store)",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "output_directory": {"type": "string", "minLength": 1,
      "description": "write standalone copies to <output_directory>/<variant>/<layer>.qcow2; without it the built artifact is the upload"},
    "compress": {"type": "boolean", "default": false}
  }
})schema";

}  // namespace

LCAKE_PLUGIN("qemu", "0.1.0", "QEMU disk images: qcow2 overlay layers built over SSH, local store, boot verification",
             lcake::builder<lcake::qemu::QemuBuilder>(
                 {.settings = kBuilderSchema, .accepts = "qcow2 raw", .produces = "qcow2 raw"}),
             lcake::uploader<lcake::qemu::QemuUploader>(
                 {.settings = kUploaderSchema, .accepts = "qcow2 raw", .produces = "qcow2"}),
             lcake::verifier<lcake::qemu::QemuVerifier>({.settings = kVerifierSchema, .accepts = "qcow2 raw"}))
