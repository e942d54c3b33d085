// A well-formed plugin with all three roles, each trivially implemented: the
// reference the plugin host test measures the broken ones against.
#include <lcake/sdk.hpp>

namespace {

constexpr const char* kSchema = R"({
  "type": "object",
  "properties": { "greeting": { "type": "string" } },
  "additionalProperties": false
})";

// A machine that is never there: run() echoes nothing and succeeds.
class NullCommunicator : public lcake::Communicator {
 public:
  int run(const std::string&, const OutputFn&, std::chrono::seconds) override { return 0; }
  void upload(const std::filesystem::path&, const std::string&) override {}
  void download(const std::string&, const std::filesystem::path&) override {}
};

class GoodBuilder : public lcake::Builder {
 public:
  explicit GoodBuilder(const nlohmann::json& settings) : greeting_(settings.value("greeting", "")) {}
  std::unique_ptr<lcake::BuildSession> start(const lcake::BuildRequest& request, lcake::Context&) override {
    struct Session : lcake::BuildSession {
      NullCommunicator comm;
      lcake::Artifact artifact;
      lcake::Communicator& communicator() override { return comm; }
      lcake::Artifact finish(lcake::Context&) override { return artifact; }
      void abort(lcake::Context&) noexcept override {}
    };
    auto s = std::make_unique<Session>();
    s->artifact = {"null", greeting_ + ":" + request.layer.layer, {{"greeting", greeting_}}, ""};
    return s;
  }
  // Lets the test check that an SDK exception from a role method is catchable by type in the host.
  bool exists(const lcake::Artifact& a, lcake::Context&) override {
    if (a.id == "throw") throw lcake::BuildError("good plugin was asked to throw");
    return a.type == "null";
  }

 private:
  std::string greeting_;
};

class GoodUploader : public lcake::Uploader {
 public:
  explicit GoodUploader(const nlohmann::json&) {}
  lcake::Artifact upload(const lcake::UploadRequest& request, lcake::Context&) override {
    return {"null-upload", request.built.id, {}, ""};
  }
};

class GoodVerifier : public lcake::Verifier {
 public:
  explicit GoodVerifier(const nlohmann::json&) {}
  std::unique_ptr<lcake::VerifySession> start(const lcake::VerifyRequest&, lcake::Context&) override {
    return nullptr;
  }
};

}  // namespace

// Built a second time as "leaf" (a builder that cannot build on what it makes),
// for the artifact-type checks of core/plan/input_check_test.
#ifndef GOOD_NAME
#define GOOD_NAME "good"
#define BUILDER_ACCEPTS nullptr
#define BUILDER_PRODUCES "none"
#endif

LCAKE_PLUGIN(GOOD_NAME, "1.2.3", "All three roles, doing nothing",
             lcake::builder<GoodBuilder>({.settings = kSchema, .accepts = BUILDER_ACCEPTS, .produces = BUILDER_PRODUCES}),
             lcake::uploader<GoodUploader>({.settings = "{}", .produces = "none"}),
             lcake::verifier<GoodVerifier>({.settings = "{}"}))
