// lcake-openstack.so: Keystone v3 auth as the openstack CLI finds it, Glance v2
// uploads and publish; the Nova builder and verifier join below.
#include <lcake/sdk.hpp>

#include "glance_uploader.h"

LCAKE_PLUGIN("openstack", "0.1.0",
             "OpenStack: Glance v2 images (streamed, hash-checked, found by upload key), published by visibility",
             lcake::uploader<lcake::openstack::GlanceUploader>({.settings = lcake::openstack::glance_settings_schema(),
                                                                 .options = lcake::openstack::glance_options_schema(),
                                                                 .publish = lcake::openstack::glance_publish_schema(),
                                                                 .accepts = "qcow2 raw",
                                                                 .produces = "glance-image"})
             // Nova roles (nova_builder.h, nova_verifier.h) go here:
             //   , lcake::builder<lcake::openstack::NovaBuilder>({...}),
             //     lcake::verifier<lcake::openstack::NovaVerifier>({...})
)
