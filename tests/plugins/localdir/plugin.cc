// lcake-localdir: a backend for the test suite. A "machine" is a directory; an
// artifact is a directory; commands run with /bin/sh inside it. It creates a
// stand-in "cloud resource" (a file in settings.resource_dir) per session so
// tests can see leaks, and records everything in the cleanup ledger.
#include <cstdlib>
#include <fstream>

#include "lcake/sdk.hpp"
#include "local_shell.h"

namespace fs = std::filesystem;

namespace localdir {
namespace {

const char* kBuilderSchema = R"({
  "type": "object",
  "properties": {
    "resource_dir": {"type": "string", "description": "where stand-in cloud resources are created"},
    "tarball": {"type": "boolean", "description": "the artifact is a tar file of the directory"},
    "memory": {"type": "integer", "minimum": 1}
  },
  "additionalProperties": false
})";

// variants.V.sources.localdir: the first layer starts as a copy of "dir".
const char* kSourceSchema = R"({
  "type": "object",
  "properties": {"dir": {"type": "string", "x-lcake-path": "dir"}},
  "additionalProperties": false
})";

// layers.L.builder. "refuse" makes start() raise an lcake::ValueError about it,
// so tests see how the host names a plugin's complaint about its own input.
const char* kBuilderOptionsSchema = R"({
  "type": "object",
  "properties": {
    "tarball": {"type": "boolean", "description": "overrides the tarball setting for this layer"},
    "refuse": {"type": "string", "description": "start() refuses the layer with this reason"},
    "seal": {"type": "boolean", "x-lcake-cloud-default": true,
             "description": "finish writes .sealed into the artifact; on by default for a cloud target's last layer"}
  },
  "additionalProperties": false
})";

// layers.L.publish: a label recorded in the published artifact's metadata.
const char* kPublishSchema = R"({
  "type": "object",
  "properties": {"label": {"type": "string", "default": "published"}},
  "additionalProperties": false
})";

const char* kUploaderSchema = R"({
  "type": "object",
  "properties": {"remote_dir": {"type": "string"}},
  "required": ["remote_dir"],
  "additionalProperties": false
})";

const char* kVerifierSchema = R"({
  "type": "object",
  "properties": {"resource_dir": {"type": "string"}},
  "additionalProperties": false
})";

// A stand-in external resource: a file in resource_dir, recorded in the ledger
// before it is created.
class FakeResource {
 public:
  FakeResource(lcake::Context& ctx, const fs::path& dir, const std::string& name) {
    if (dir.empty()) return;
    path_ = dir / name;
    entry_ = ctx.ledger().intend("fake-vm", name, {{"file", path_.string()}});
    fs::create_directories(dir);
    std::ofstream(path_) << "running\n";
    ctx.ledger().confirm(entry_, name, {{"file", path_.string()}});
  }
  void destroy(lcake::Context& ctx) noexcept {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove(path_, ec);
    try {
      ctx.ledger().release(entry_);
    } catch (...) {
    }
    path_.clear();
  }

 private:
  fs::path path_;
  std::int64_t entry_ = 0;
};

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  if (!from.empty()) fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
}

class DirSession : public lcake::BuildSession {
 public:
  DirSession(const lcake::BuildRequest& req, lcake::Context& ctx, const fs::path& resource_dir, bool tarball)
      : root_(ctx.store_dir() / "root"),
        tarball_(tarball),
        seal_(req.options.value("seal", false)),
        shell_(root_, ctx.cancel()),
        vm_(ctx, resource_dir, req.layer.variant + "-" + req.layer.layer + "-build") {
    root_entry_ = ctx.ledger().intend("path", root_.string(), {{"path", root_.string()}});
    fs::remove_all(root_);
    fs::path from = req.parent ? fs::path(req.parent->metadata.value("dir", req.parent->id))
                               : fs::path(req.source.is_object() ? req.source.value("dir", "") : "");
    copy_tree(from, root_);
    ctx.ledger().confirm(root_entry_, root_.string(), {{"path", root_.string()}});
  }
  lcake::Communicator& communicator() override { return shell_; }
  lcake::Artifact finish(lcake::Context& ctx) override {
    vm_.destroy(ctx);
    if (seal_) std::ofstream(root_ / ".sealed") << "sealed\n";
    ctx.ledger().release(root_entry_);
    std::size_t files = 0;
    for (auto& e : fs::recursive_directory_iterator(root_)) files += e.is_regular_file();
    if (tarball_) {
      fs::path tar = root_.parent_path() / "layer.tar";
      std::string cmd = "tar -C '" + root_.string() + "' -cf '" + tar.string() + "' .";
      if (std::system(cmd.c_str()) != 0) throw lcake::BuildError("tar failed: " + cmd);
      return {"tar", tar.string(), {{"files", files}, {"dir", root_.string()}}, ""};
    }
    return {"dir", root_.string(), {{"files", files}}, ""};
  }
  void abort(lcake::Context& ctx) noexcept override {
    vm_.destroy(ctx);
    std::error_code ec;
    fs::remove_all(root_, ec);
    try {
      ctx.ledger().release(root_entry_);
    } catch (...) {
    }
  }

 private:
  fs::path root_;
  bool tarball_, seal_;
  LocalShell shell_;
  FakeResource vm_;
  std::int64_t root_entry_ = 0;
};

class DirBuilder : public lcake::Builder {
 public:
  explicit DirBuilder(const nlohmann::json& s)
      : resource_dir_(s.value("resource_dir", "")), tarball_(s.value("tarball", false)) {}
  std::unique_ptr<lcake::BuildSession> start(const lcake::BuildRequest& req, lcake::Context& ctx) override {
    if (req.options.contains("refuse")) throw lcake::ValueError("options", "/refuse", req.options["refuse"].get<std::string>());
    ctx.info("machine directory " + (ctx.store_dir() / "root").string());
    return std::make_unique<DirSession>(req, ctx, resource_dir_, req.options.value("tarball", tarball_));
  }
  bool exists(const lcake::Artifact& a, lcake::Context&) override { return fs::exists(a.id); }
  void remove(const lcake::Artifact& a, lcake::Context&) override {
    fs::remove_all(a.metadata.value("dir", a.id));
    fs::remove_all(a.id);
  }
  void reap(const lcake::LedgerEntry& e, lcake::Context&) override {
    if (e.kind != "fake-vm") throw lcake::BuildError("unknown resource kind " + e.kind);
    fs::remove(e.how.value("file", ""));
  }

 private:
  fs::path resource_dir_;
  bool tarball_;
};

class DirUploader : public lcake::Uploader {
 public:
  explicit DirUploader(const nlohmann::json& s) : remote_(s.at("remote_dir").get<std::string>()) {}
  lcake::Artifact upload(const lcake::UploadRequest& req, lcake::Context& ctx) override {
    fs::path dest = remote_ / req.layer.variant / (req.layer.layer + "-" + req.layer.key.substr(0, 12));
    fs::remove_all(dest);
    copy_tree(req.built.id, dest);
    ctx.info("uploaded to " + dest.string());
    nlohmann::json meta = {{"parent_upload", req.parent_upload ? req.parent_upload->id : ""}};
    return {"dir", dest.string(), meta, ""};
  }
  lcake::Artifact publish(const lcake::Artifact& up, const lcake::PublishRequest& req, lcake::Context&) override {
    std::ofstream(remote_ / req.layer.variant / (req.layer.layer + ".published")) << up.id << "\n";
    lcake::Artifact out = up;
    out.metadata["published"] = true;
    out.metadata["label"] = req.options.at("label");  // injected from the schema's default when not given
    return out;
  }
  bool exists(const lcake::Artifact& a, lcake::Context&) override { return fs::is_directory(a.id); }
  void remove(const lcake::Artifact& a, lcake::Context&) override { fs::remove_all(a.id); }

 private:
  fs::path remote_;
};

class DirVerifySession : public lcake::VerifySession {
 public:
  DirVerifySession(const lcake::VerifyRequest& req, lcake::Context& ctx, const fs::path& resource_dir)
      : root_(ctx.work_dir() / "verify-root"),
        shell_(root_, ctx.cancel()),
        vm_(ctx, resource_dir, req.layer.variant + "-" + req.layer.layer + "-verify") {
    ctx.info("booting candidate " + req.candidate.id);  // tests check which one (boots)
    copy_tree(req.candidate.id, root_);
  }
  lcake::Communicator& communicator() override { return shell_; }
  void finish(lcake::Context& ctx) override { abort(ctx); }
  void abort(lcake::Context& ctx) noexcept override {
    vm_.destroy(ctx);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

 private:
  fs::path root_;
  LocalShell shell_;
  FakeResource vm_;
};

class DirVerifier : public lcake::Verifier {
 public:
  explicit DirVerifier(const nlohmann::json& s) : resource_dir_(s.value("resource_dir", "")) {}
  std::unique_ptr<lcake::VerifySession> start(const lcake::VerifyRequest& req, lcake::Context& ctx) override {
    return std::make_unique<DirVerifySession>(req, ctx, resource_dir_);
  }
  void reap(const lcake::LedgerEntry& e, lcake::Context&) override { fs::remove(e.how.value("file", "")); }

 private:
  fs::path resource_dir_;
};

}  // namespace
}  // namespace localdir

// Built a second time as "localcloud", whose uploader says it publishes to a cloud (so the
// host turns "seal" on for the last layer), for core/plan/input_check_test.
#ifndef LOCALDIR_NAME
#define LOCALDIR_NAME "localdir"
#define UPLOADER_CAPABILITIES nullptr
#endif

LCAKE_PLUGIN(LOCALDIR_NAME, "1.0.0", "Test backend: directories as machines, /bin/sh as communicator",
             lcake::builder<localdir::DirBuilder>(
                 {.settings = localdir::kBuilderSchema, .source = localdir::kSourceSchema,
                  .options = localdir::kBuilderOptionsSchema, .accepts = "dir tar", .produces = "dir tar"}),
             lcake::uploader<localdir::DirUploader>(
                 {.settings = localdir::kUploaderSchema, .publish = localdir::kPublishSchema,
                  .accepts = "dir tar", .produces = "dir", .capabilities = UPLOADER_CAPABILITIES}),
             lcake::verifier<localdir::DirVerifier>(
                 {.settings = localdir::kVerifierSchema, .accepts = "dir tar"}))
