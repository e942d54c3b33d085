// Its builder's constructor throws: the factory must turn that into an error message.
#include <lcake/sdk.hpp>

namespace {
class ThrowingBuilder : public lcake::Builder {
 public:
  explicit ThrowingBuilder(const nlohmann::json&) {
    throw std::runtime_error("cannot reach the build farm\n(second line)");
  }
  std::unique_ptr<lcake::BuildSession> start(const lcake::BuildRequest&, lcake::Context&) override {
    return nullptr;
  }
};
}  // namespace

LCAKE_PLUGIN("throwing", "0.1", "Builder constructor throws", lcake::builder<ThrowingBuilder>({.settings = "{}", .produces = "none"}))
