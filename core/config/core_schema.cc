#include "config/core_schema.h"

namespace lcake::core {

// additionalProperties is false wherever the core reads every key, so a typo
// ("provisoners") is an error naming its file and line instead of being ignored.
// Per-role option objects and plugin settings stay open: plugins check those.
const std::string& core_schema_text() {
  static const std::string text = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["pipeline", "target"],
  "additionalProperties": false,
  "properties": {
    "$schema": { "$ref": "#/definitions/editor_schema" },
    "pipeline": { "$ref": "#/definitions/pipeline" },
    "target": { "$ref": "#/definitions/target" },
    "vars": { "type": "object", "additionalProperties": { "$ref": "#/definitions/scalar" } }
  },
  "definitions": {
    "editor_schema": { "type": "string", "description": "the file's JSON Schema, for editors (lcake config schema); ignored by lcake" },
    "scalar": { "type": ["string", "number", "boolean"] },
    "duration": { "type": ["string", "number"] },
    "strings": { "type": "array", "items": { "type": "string" } },
    "pipeline": {
      "type": "object",
      "required": ["name", "layers"],
      "additionalProperties": false,
      "properties": {
        "$schema": { "$ref": "#/definitions/editor_schema" },
        "name": { "type": "string" },
        "description": { "type": "string" },
        "variables": { "type": "object", "additionalProperties": { "$ref": "#/definitions/variable" } },
        "variants": { "type": "object", "additionalProperties": { "$ref": "#/definitions/variant" } },
        "layers": { "type": "object", "minProperties": 1, "additionalProperties": { "$ref": "#/definitions/layer" } },
        "verify": { "$ref": "#/definitions/verify" }
      }
    },
    "variable": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "default": { "$ref": "#/definitions/scalar" },
        "env": { "type": "string" },
        "file": { "type": "string" },
        "sensitive": { "type": "boolean" },
        "key": { "enum": ["used", "value-hash"] },
        "description": { "type": "string" }
      }
    },
    "variant": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "description": { "type": "string" },
        "variables": { "type": "object", "additionalProperties": { "$ref": "#/definitions/scalar" } },
        "sources": { "type": "object", "additionalProperties": { "type": "object" } }
      }
    },
    "layer": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "description": { "type": "string" },
        "from": { "type": "string" },
        "inputs": { "$ref": "#/definitions/strings" },
        "provisioners": { "type": "array", "items": { "$ref": "#/definitions/provisioner" } },
        "verify": { "$ref": "#/definitions/verify" },
        "builder": { "type": "object" },
        "uploader": { "type": "object" },
        "verifier": { "type": "object" },
        "publish": { "type": "object" }
      }
    },
    "provisioner": {
      "type": "object",
      "required": ["type"],
      "additionalProperties": false,
      "properties": {
        "type": { "enum": ["shell", "file", "env"] },
        "description": { "type": "string" },
        "inline": { "$ref": "#/definitions/strings" },
        "script": { "type": "string" },
        "source": { "type": "string" },
        "destination": { "type": "string" },
        "vars": { "type": "object", "additionalProperties": { "$ref": "#/definitions/scalar" } },
        "timeout": { "$ref": "#/definitions/duration" },
        "retries": { "type": "integer", "minimum": 0 },
        "sensitive": { "type": "boolean" },
        "sudo": { "type": "boolean" },
        "run_as": { "type": "string", "minLength": 1 },
        "execute_command": { "type": "string", "minLength": 1 }
      }
    },
    "verify": { "type": "array", "items": { "$ref": "#/definitions/verify_step" } },
    "verify_step": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "name": { "type": "string" },
        "description": { "type": "string" },
        "run": { "type": "string" },
        "expect_exit": { "type": "integer" },
        "expect_output": { "$ref": "#/definitions/strings" },
        "timeout": { "$ref": "#/definitions/duration" },
        "sudo": { "type": "boolean" },
        "run_as": { "type": "string", "minLength": 1 },
        "execute_command": { "type": "string", "minLength": 1 },
        "compare": {
          "type": "object",
          "required": ["actual", "expected"],
          "additionalProperties": false,
          "properties": {
            "actual": { "type": "string" },
            "expected": { "type": "string" },
            "abs_tol": { "type": "number", "minimum": 0 },
            "rel_tol": { "type": "number", "minimum": 0 }
          }
        }
      }
    },
    "role": {
      "type": "object",
      "required": ["plugin"],
      "additionalProperties": false,
      "properties": {
        "plugin": { "type": "string" },
        "settings": { "type": "object" }
      }
    },
    "uploader": {
      "type": "object",
      "required": ["plugin"],
      "additionalProperties": false,
      "properties": {
        "plugin": { "type": "string" },
        "settings": { "type": "object" },
        "layers": { "$ref": "#/definitions/strings" }
      }
    },
    "verifier": {
      "type": "object",
      "required": ["plugin"],
      "additionalProperties": false,
      "properties": {
        "plugin": { "type": "string" },
        "settings": { "type": "object" },
        "boots": { "enum": ["upload", "build"] }
      }
    },
    "target": {
      "type": "object",
      "required": ["builder"],
      "additionalProperties": false,
      "properties": {
        "$schema": { "$ref": "#/definitions/editor_schema" },
        "name": { "type": "string" },
        "description": { "type": "string" },
        "pipeline": { "type": "string" },
        "builder": { "$ref": "#/definitions/role" },
        "uploader": { "$ref": "#/definitions/uploader" },
        "verifier": { "$ref": "#/definitions/verifier" },
        "publish": { "type": "object" },
        "after_publish": { "type": "array", "items": { "$ref": "#/definitions/hook" } }
      }
    },
    "hook": {
      "type": "object",
      "required": ["run"],
      "additionalProperties": false,
      "properties": {
        "run": { "type": "string", "minLength": 1 },
        "description": { "type": "string" },
        "timeout": { "$ref": "#/definitions/duration" },
        "on": { "enum": ["published", "always"] }
      }
    }
  }
})json";
  return text;
}

}  // namespace lcake::core
