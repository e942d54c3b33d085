#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lcake/artifact.hpp"
#include "lcake/communicator.hpp"
#include "lcake/context.hpp"

namespace lcake {

struct LayerInfo {
  std::string target{};
  std::string variant{};
  std::string layer{};
  std::string key{};  // hex sha256 layer key (what was built)
  std::string lcake_version{};
  std::string pipeline{};
  std::string upload_key{};  // over the key and the uploader's settings and options (what is uploaded)
};

// Shared by the three roles: deleting what a role created.
class Role {
 public:
  virtual ~Role() = default;
  // Deletes a resource of a plugin-defined kind left in the ledger. Must be
  // idempotent: a resource that is already gone is not an error; throw
  // AlreadyGone (errors.hpp) to say so, and `lcake gc` does not count it as deleted.
  virtual void reap(const LedgerEntry& entry, Context& ctx) {
    (void)ctx;
    throw BuildError("don't know how to delete a '" + entry.kind + "' resource");
  }
  // Does an artifact recorded earlier still exist? (cache hits need it)
  virtual bool exists(const Artifact& artifact, Context& ctx) {
    (void)artifact, (void)ctx;
    return true;
  }
  // Deletes an artifact no longer wanted (`lcake gc`). Idempotent.
  virtual void remove(const Artifact& artifact, Context& ctx) { (void)artifact, (void)ctx; }
};

// ---- Builder ---------------------------------------------------------------

struct BuildRequest {
  LayerInfo layer{};
  // First layer: the variant's source for this builder (pipeline
  // variants.V.sources.<builder plugin>); null otherwise.
  nlohmann::json source{};
  std::optional<Artifact> parent{};  // the parent layer's built artifact
  // The layer's options for this builder (pipeline layers.L.builder).
  nlohmann::json options = nlohmann::json::object();
};

// A machine or container being built. The host runs the layer's provisioners
// through communicator(), then calls finish() (or abort() on failure/cancel).
class BuildSession {
 public:
  virtual ~BuildSession() = default;
  virtual Communicator& communicator() = 0;
  virtual Artifact finish(Context& ctx) = 0;
  // Tear down and delete everything not yet an artifact. Must not throw.
  virtual void abort(Context& ctx) noexcept = 0;
  // --on-error abort: leave everything as it is for inspection (a VM keeps
  // running); what is kept must stay in the ledger, so `lcake gc` deletes it
  // later. Returns how to get in (shown to the user), or "" when there is
  // nothing to show. The host keeps the step's work dir too. Must not throw.
  virtual std::string keep(Context& ctx) noexcept {
    (void)ctx;
    return {};
  }
};

class Builder : public Role {
 public:
  virtual std::unique_ptr<BuildSession> start(const BuildRequest& request, Context& ctx) = 0;
};

// ---- Uploader --------------------------------------------------------------

struct UploadRequest {
  LayerInfo layer{};
  Artifact built{};
  // The parent layer's uploaded artifact, so only what changed need be sent.
  std::optional<Artifact> parent_upload{};
  nlohmann::json options = nlohmann::json::object();  // pipeline layers.L.uploader
};

// Finding an upload made earlier for request.layer.upload_key in the backend
// itself (a registry tag, a Glance property, EC2 tags), so a runner with an empty
// state dir gets a cache hit.
struct FindRequest {
  LayerInfo layer{};
  nlohmann::json options = nlohmann::json::object();  // pipeline layers.L.uploader
};

struct PublishRequest {
  LayerInfo layer{};
  nlohmann::json options = nlohmann::json::object();  // pipeline layers.L.publish
};

class Uploader : public Role {
 public:
  virtual Artifact upload(const UploadRequest& request, Context& ctx) = 0;
  // The artifact uploaded earlier for this upload key, if the backend has it.
  // Must not create anything. Default: the backend keeps no such index.
  // When several runners uploaded the key, find() returns the same one to all of
  // them (the winner): among the complete uploads with the key, the one created
  // first, ties going to the lexically lowest id; a backend whose index holds one
  // upload per key (a registry tag) returns what the index names.
  virtual std::optional<Artifact> find(const FindRequest& request, Context& ctx) {
    (void)request, (void)ctx;
    return std::nullopt;
  }
  // Every complete upload the backend holds for this upload key: the winner
  // (what find() returns) first, the other duplicates after it. Each may say in
  // its metadata when it was created ("lcake_created": seconds since the epoch)
  // and, as find() does, what the backend recorded of it ("lcake_found").
  // `lcake gc --target` deletes the duplicates that are old enough and not
  // published (docs/ci.md). Must not create anything. Default: find()'s answer.
  virtual std::vector<Artifact> find_all(const FindRequest& request, Context& ctx) {
    std::vector<Artifact> out;
    if (auto a = find(request, ctx)) out.push_back(*a);
    return out;
  }
  // Make a verified upload public (moving tags, launch permissions...).
  // Returns the artifact with any metadata the publication added.
  virtual Artifact publish(const Artifact& uploaded, const PublishRequest& request, Context& ctx) {
    (void)request, (void)ctx;
    return uploaded;
  }
};

// ---- Verifier --------------------------------------------------------------

struct VerifyRequest {
  LayerInfo layer{};
  Artifact candidate{};  // the uploaded artifact when the layer was uploaded, else the built one
  Artifact built{};
  nlohmann::json options = nlohmann::json::object();
};

// An instance or container made from the candidate; the host runs the verify
// steps through communicator(), then calls finish().
class VerifySession {
 public:
  virtual ~VerifySession() = default;
  virtual Communicator& communicator() = 0;
  virtual void finish(Context& ctx) = 0;
  virtual void abort(Context& ctx) noexcept = 0;
  // As BuildSession::keep.
  virtual std::string keep(Context& ctx) noexcept {
    (void)ctx;
    return {};
  }
};

class Verifier : public Role {
 public:
  virtual std::unique_ptr<VerifySession> start(const VerifyRequest& request, Context& ctx) = 0;
};

}  // namespace lcake
