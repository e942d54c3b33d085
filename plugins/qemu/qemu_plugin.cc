// The qemu plugin's declaration and the JSON Schemas of what its roles read.
#include "lcake/plugin.hpp"
#include "qemu_builder.h"
#include "qemu_uploader.h"
#include "qemu_verifier.h"

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

// pipeline variants.V.sources.qemu: the first layer's disk. "x-lcake-path": the
// host checks the local file exists at plan time, naming the file:line.
constexpr const char* kSourceSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "qemu builder source",
  "type": "object",
  "additionalProperties": false,
  "required": ["disk", "checksum"],
  "properties": {
    "disk": {"type": "string", "minLength": 1, "x-lcake-path": "file",
      "description": "a path, file:// or http(s):// URL of a standalone qcow2 or raw disk"},
    "checksum": {"type": "string", "pattern": "^(sha256:[0-9a-fA-F]{64}|file:.+)$",
      "description": "sha256:<64 hex digits>, or file:PATH of a sha256sum file"},
    "format": {"enum": ["qcow2", "raw"], "description": "checked against the disk; default: what the disk is"},
    "kernel": {"type": "string", "x-lcake-path": "file", "description": "direct kernel boot"},
    "initrd": {"type": "string", "x-lcake-path": "file"},
    "append": {"type": "string", "description": "kernel command line"},
    "cloud_init": {"default": true,
      "description": "attach a NoCloud seed with a per-boot SSH key (true), none (false), or a seed with more in it",
      "oneOf": [
        {"type": "boolean"},
        {"type": "object", "additionalProperties": false,
         "properties": {
           "wait": {"type": "boolean", "default": true,
             "description": "wait for cloud-init to finish (cloud-init status --wait) before the first provisioner"},
           "user_data": {"type": "object",
             "description": "#cloud-config keys; lcake's key is added to ssh_authorized_keys"},
           "meta_data": {"type": "object",
             "description": "NoCloud meta-data (local-hostname, ...); instance-id is lcake's"},
           "network_config": {"type": "object", "description": "NoCloud network-config (version 1 or 2)"}}}]},
    "ssh_user": {"type": "string", "minLength": 1},
    "host_key": {"type": "string", "description": "\"ssh-ed25519 AAAA...\" or a file holding it"},
    "ssh_private_key": {"type": "string", "x-lcake-path": "file",
      "description": "a key the image accepts; needed when cloud_init is false"}
  }
})schema";

// pipeline layers.L.builder
constexpr const char* kBuilderOptionsSchema = R"schema({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "qemu builder layer options",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "flatten": {"type": "boolean", "default": false, "description": "a standalone disk, not an overlay on the parent"},
    "compress": {"type": "boolean", "default": false, "description": "a standalone, compressed qcow2 (needs format qcow2)"},
    "format": {"enum": ["qcow2", "raw"], "default": "qcow2"},
    "generalize": {"type": "boolean", "default": false, "x-lcake-cloud-default": true,
      "description": "clear machine-id, cloud-init state, SSH host keys, logs and shell history before the disk becomes the artifact (default true on the last layer when the uploader publishes to a cloud)"}
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
                 {.settings = kBuilderSchema, .source = kSourceSchema, .options = kBuilderOptionsSchema,
                  .accepts = "qcow2 raw", .produces = "qcow2 raw"}),
             lcake::uploader<lcake::qemu::QemuUploader>(
                 {.settings = kUploaderSchema, .accepts = "qcow2 raw", .produces = "qcow2"}),
             lcake::verifier<lcake::qemu::QemuVerifier>({.settings = kVerifierSchema, .accepts = "qcow2 raw"}))
