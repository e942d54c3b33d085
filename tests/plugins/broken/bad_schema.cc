// Its uploader settings schema is not JSON.
#include <lcake/sdk.hpp>

namespace {
class Up : public lcake::Uploader {
 public:
  explicit Up(const nlohmann::json&) {}
  lcake::Artifact upload(const lcake::UploadRequest& r, lcake::Context&) override { return r.built; }
};
}  // namespace

LCAKE_PLUGIN("bad-schema", "0.1", "Schema is not JSON",
             lcake::uploader<Up>({.settings = "{\"type\": \"object\",\n \"properties\": {oops}}", .produces = "file"}))
