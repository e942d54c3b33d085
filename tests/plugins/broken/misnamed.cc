// Built as lcake-misnamed.so but calls itself something else.
#include <lcake/sdk.hpp>

namespace {
class Up : public lcake::Uploader {
 public:
  explicit Up(const nlohmann::json&) {}
  lcake::Artifact upload(const lcake::UploadRequest& r, lcake::Context&) override { return r.built; }
};
}  // namespace

LCAKE_PLUGIN("something-else", "0.1", "Wrong name inside", lcake::uploader<Up>({.settings = "{}", .produces = "file"}))
