// The aws plugin's declaration: the uploader (modes ebs and import, publish)
// and the EC2 verifier. The uploader's settings schema is the ebs mode's, with
// the properties the import mode and publish read merged in.
#include <string>

#include "aws_uploader.h"
#include "ec2_verifier.h"
#include "import_uploader.h"
#include "lcake/plugin.hpp"
#include "publish.h"
#include "uploader_schema.h"

namespace {

const char* uploader_settings_schema() {
  static const std::string text = [] {
    auto schema = nlohmann::json::parse(lcake::aws::kUploaderSettingsSchema);
    for (const char* part : {lcake::aws::kImportSettingsProperties, lcake::aws::kPublishSettingsProperties})
      schema["properties"].update(nlohmann::json::parse("{" + std::string(part) + "}"));
    return schema.dump();
  }();
  return text.c_str();
}

}  // namespace

LCAKE_PLUGIN("aws", "0.1.0", "AWS AMIs: EBS direct snapshots (only changed blocks per layer) or S3 + ImportSnapshot, verified on EC2, published to regions",
             lcake::uploader<lcake::aws::AwsUploader>({.settings = uploader_settings_schema(),
                                                       .options = lcake::aws::kUploaderOptionsSchema,
                                                       .publish = lcake::aws::kPublishOptionsSchema,
                                                       .accepts = "qcow2 raw",
                                                       .produces = "ami",
                                                       .capabilities = "publishes-to-cloud"}),
             lcake::verifier<lcake::aws::Ec2Verifier>({.settings = lcake::aws::kVerifierSchema, .accepts = "ami"}))
