// lcake-openstack.so: Keystone v3 auth as the openstack CLI finds it, Glance v2
// uploads and publish; the Nova builder (server → createImage) and verifier.
#include <lcake/sdk.hpp>

#include "glance_uploader.h"
#include "nova_builder.h"
#include "nova_verifier.h"

LCAKE_PLUGIN("openstack", "0.1.0",
             "OpenStack: Nova builds and verifies, Glance v2 images (streamed, hash-checked, found by upload key), published by visibility",
             lcake::uploader<lcake::openstack::GlanceUploader>({.settings = lcake::openstack::glance_settings_schema(),
                                                                 .options = lcake::openstack::glance_options_schema(),
                                                                 .publish = lcake::openstack::glance_publish_schema(),
                                                                 .accepts = "qcow2 raw glance-image",
                                                                 .produces = "glance-image",
                                                                 .capabilities = "publishes-to-cloud"}),
             lcake::builder<lcake::openstack::NovaBuilder>({.settings = lcake::openstack::nova_settings_schema(),
                                                            .source = lcake::openstack::kNovaSourceSchema,
                                                            .options = lcake::openstack::kNovaBuildOptionsSchema,
                                                            .accepts = "glance-image",
                                                            .produces = "glance-image",
                                                            .capabilities = "builds-on-upload"}),
             lcake::verifier<lcake::openstack::NovaVerifier>({.settings = lcake::openstack::nova_settings_schema(),
                                                              .accepts = "glance-image"}))
