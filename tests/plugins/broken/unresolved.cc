// Needs a symbol nothing provides: loading rtld_now must fail cleanly, not later at a call.
extern "C" int lcake_test_symbol_nobody_defines(int);
extern "C" __attribute__((visibility("default"))) int uses_missing(int x) {
  return lcake_test_symbol_nobody_defines(x);
}
#include <lcake/sdk.hpp>
namespace {
class Up : public lcake::Uploader {
 public:
  explicit Up(const nlohmann::json&) {}
  lcake::Artifact upload(const lcake::UploadRequest& r, lcake::Context&) override { return r.built; }
};
}  // namespace
LCAKE_PLUGIN("unresolved", "0.1", "Has an undefined symbol", lcake::uploader<Up>({.settings = "{}", .produces = "file"}))
