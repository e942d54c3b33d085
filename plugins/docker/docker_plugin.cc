// lcake-docker.so: container images through the Docker Engine API (or podman's).
#include <lcake/sdk.hpp>

#include "docker_builder.h"
#include "docker_uploader.h"
#include "docker_verifier.h"

LCAKE_PLUGIN("docker", "0.1.0", "Container images via the Docker Engine API; pushes to OCI registries",
             lcake::builder<lcake::docker::DockerBuilder>(
                 {.settings = lcake::docker::kBuilderSchema, .source = lcake::docker::kSourceSchema,
                  .options = lcake::docker::kOptionsSchema, .accepts = "oci-image", .produces = "oci-image"}),
             lcake::uploader<lcake::docker::DockerUploader>(
                 {.settings = lcake::docker::kUploaderSchema, .publish = lcake::docker::kPublishSchema,
                  .accepts = "oci-image", .produces = "oci-image"}),
             lcake::verifier<lcake::docker::DockerVerifier>(
                 {.settings = lcake::docker::kVerifierSchema, .options = lcake::docker::kOptionsSchema,
                  .accepts = "oci-image"}))
