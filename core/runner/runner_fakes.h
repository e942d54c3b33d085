// In-memory roles for runner_test: a builder, uploader and verifier whose
// "backend" is a FakeWorld the test inspects and scripts (failures, cancel).
#pragma once
#include <mutex>
#include <set>

#include "lcake/testing.hpp"
#include "runner/role_factory.h"

namespace lcake::core::fake {

struct FakeWorld {
  std::mutex mu;
  int builds = 0, uploads = 0, verifies = 0, publishes = 0, finds = 0, aborts = 0;
  std::set<std::string> built_ids;                 // what exists in the "builder's disk"
  std::map<std::string, lcake::Artifact> backend;  // upload key -> what the uploader holds
  std::vector<std::string> reaped;                 // ledger resources deleted through reap()
  std::vector<std::string> built_layers, verified_ids, published_ids;
  std::set<std::string> fail_build, fail_verify;   // layer names
  std::string cancel_during_build;                 // layer name: fire `cancel` in finish()
  lcake::testing::ManualCancel* cancel = nullptr;
  bool find_enabled = true;
  bool unique_upload_ids = false;   // each upload a new id (two runners' uploads of one key differ)
  std::vector<std::string> removed;  // uploads deleted through remove()
  std::set<std::string> upload_ids;  // every upload still in the backend (tagged or not)
  // Another runner's upload of the same key lands right after ours (and wins, as a last push does).
  bool overtaken_after_upload = false;
};

class FakeComm : public lcake::Communicator {
 public:
  int run(const std::string& command, const OutputFn& out, std::chrono::seconds) override {
    out("ran " + command + "\n", false);
    return command == "fail" ? 1 : 0;
  }
  void upload(const std::filesystem::path&, const std::string&) override {}
  void download(const std::string&, const std::filesystem::path&) override {}
};

class FakeBuildSession : public lcake::BuildSession {
 public:
  FakeBuildSession(FakeWorld& w, lcake::BuildRequest r, std::int64_t entry)
      : w_(w), req_(std::move(r)), entry_(entry) {}
  lcake::Communicator& communicator() override { return comm_; }
  lcake::Artifact finish(lcake::Context& ctx) override {
    if (w_.cancel_during_build == req_.layer.layer && w_.cancel) {
      w_.cancel->fire();
      ctx.cancel().throw_if_cancelled();
    }
    if (w_.fail_build.count(req_.layer.layer)) throw lcake::BuildError("the fake build failed");
    ctx.progress_bytes(50, 100, "writing disk");
    ctx.ledger().release(entry_);  // the VM became the artifact
    std::lock_guard lock(w_.mu);
    std::string id = "disk-" + req_.layer.variant + "-" + req_.layer.layer + "-" +
                     std::to_string(++w_.builds);
    w_.built_ids.insert(id);
    w_.built_layers.push_back(req_.layer.variant + "/" + req_.layer.layer);
    return {"raw", id, {{"parent", req_.parent ? req_.parent->id : ""}}, ""};
  }
  void abort(lcake::Context&) noexcept override {
    std::lock_guard lock(w_.mu);
    ++w_.aborts;
  }

 private:
  FakeWorld& w_;
  lcake::BuildRequest req_;
  std::int64_t entry_;
  FakeComm comm_;
};

class FakeBuilder : public lcake::Builder {
 public:
  explicit FakeBuilder(FakeWorld& w) : w_(w) {}
  std::unique_ptr<lcake::BuildSession> start(const lcake::BuildRequest& r, lcake::Context& ctx) override {
    auto entry = ctx.ledger().intend("fake-vm", "vm-" + r.layer.layer, {});
    return std::make_unique<FakeBuildSession>(w_, r, entry);
  }
  bool exists(const lcake::Artifact& a, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    return w_.built_ids.count(a.id) > 0;
  }
  void reap(const lcake::LedgerEntry& e, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    w_.reaped.push_back(e.resource_id);
  }

 private:
  FakeWorld& w_;
};

class FakeUploader : public lcake::Uploader {
 public:
  explicit FakeUploader(FakeWorld& w) : w_(w) {}
  lcake::Artifact upload(const lcake::UploadRequest& r, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    ++w_.uploads;
    std::string id = "img-" + r.layer.upload_key.substr(0, 8);
    if (w_.unique_upload_ids) id += "-" + std::to_string(w_.uploads);
    lcake::Artifact a{"fake-image", id, {{"from", r.built.id}}, ""};
    w_.backend[r.layer.upload_key] = a;  // like a registry tag: the last upload of a key wins
    w_.upload_ids.insert(id);
    if (w_.overtaken_after_upload) {
      lcake::Artifact other{"fake-image", id + "-other-runner", {{"from", "elsewhere"}}, ""};
      w_.backend[r.layer.upload_key] = other;
      w_.upload_ids.insert(other.id);
    }
    return a;
  }
  std::optional<lcake::Artifact> find(const lcake::FindRequest& r, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    ++w_.finds;
    if (!w_.find_enabled) return std::nullopt;
    auto it = w_.backend.find(r.layer.upload_key);
    if (it == w_.backend.end()) return std::nullopt;
    return it->second;
  }
  bool exists(const lcake::Artifact& a, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    return w_.upload_ids.count(a.id) > 0;
  }
  void remove(const lcake::Artifact& a, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    w_.removed.push_back(a.id);
    w_.upload_ids.erase(a.id);
  }
  lcake::Artifact publish(const lcake::Artifact& a, const lcake::PublishRequest&, lcake::Context&) override {
    std::lock_guard lock(w_.mu);
    ++w_.publishes;
    w_.published_ids.push_back(a.id);
    lcake::Artifact out = a;
    out.metadata["public"] = true;
    return out;
  }

 private:
  FakeWorld& w_;
};

class FakeVerifySession : public lcake::VerifySession {
 public:
  FakeVerifySession(FakeWorld& w, lcake::VerifyRequest r) : w_(w), req_(std::move(r)) {}
  lcake::Communicator& communicator() override { return comm_; }
  void finish(lcake::Context&) override {
    if (w_.fail_verify.count(req_.layer.layer)) throw lcake::BuildError("the demo gave wrong numbers");
    std::lock_guard lock(w_.mu);
    ++w_.verifies;
    w_.verified_ids.push_back(req_.candidate.id);
  }
  void abort(lcake::Context&) noexcept override {}

 private:
  FakeWorld& w_;
  lcake::VerifyRequest req_;
  FakeComm comm_;
};

class FakeVerifier : public lcake::Verifier {
 public:
  explicit FakeVerifier(FakeWorld& w) : w_(w) {}
  std::unique_ptr<lcake::VerifySession> start(const lcake::VerifyRequest& r, lcake::Context&) override {
    return std::make_unique<FakeVerifySession>(w_, r);
  }

 private:
  FakeWorld& w_;
};

class FakeRoles : public RoleFactory {
 public:
  FakeRoles(FakeWorld& w, bool uploader, bool verifier) : w_(w), up_(uploader), ver_(verifier) {}
  void prepare() override {}
  PluginId builder() const override { return {"fake", "1.0"}; }
  BuilderDeclared builder_declared() const override { return declared; }
  std::optional<PluginId> uploader() const override {
    return up_ ? std::optional<PluginId>(PluginId{"fakeup", "1.0"}) : std::nullopt;
  }
  std::optional<PluginId> verifier() const override {
    return ver_ ? std::optional<PluginId>(PluginId{"fakever", "1.0"}) : std::nullopt;
  }
  std::unique_ptr<lcake::Builder> make_builder() override { return std::make_unique<FakeBuilder>(w_); }
  std::unique_ptr<lcake::Uploader> make_uploader() override {
    return std::make_unique<FakeUploader>(w_);
  }
  std::unique_ptr<lcake::Verifier> make_verifier() override {
    return std::make_unique<FakeVerifier>(w_);
  }
  std::unique_ptr<lcake::Role> make_role(const std::string&, const std::string&,
                                         const nlohmann::json&) override {
    return std::make_unique<FakeBuilder>(w_);
  }

  // The fake builder's RoleSpec: accepts anything, no capabilities (tests set them).
  BuilderDeclared declared;

 private:
  FakeWorld& w_;
  bool up_, ver_;
};

}  // namespace lcake::core::fake
