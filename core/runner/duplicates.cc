// `lcake gc --target`: the duplicates of an upload key that runners racing on it
// left (docs/ci.md, "Two runners, one key"). The backend names one upload per key
// (find(), the winner); every other one is deleted once it is unpublished and
// older than the grace period, so no runner still using it mid-run loses it.
#include <ctime>

#include "runner_impl.h"

namespace lcake::core {

namespace {

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS..." (UTC); 0 when unreadable.
std::int64_t epoch_of(const std::string& iso) {
  std::tm tm{};
  if (!strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::int64_t created_of(const lcake::Artifact& a) {
  auto it = a.metadata.find("lcake_created");
  if (it == a.metadata.end()) return 0;
  if (it->is_number()) return it->get<std::int64_t>();
  if (it->is_string()) return epoch_of(it->get<std::string>());
  return 0;
}

bool published_mark(const lcake::Artifact& a) {
  auto it = a.metadata.find("lcake_found");
  return it != a.metadata.end() && it->is_object() && it->value("published", false);
}

struct Duplicate {
  lcake::Artifact artifact;
  std::int64_t created = 0;  // 0: unknown
  bool published = false;
  std::optional<std::int64_t> record;  // this state's "duplicate" record of it
};

}  // namespace

int Runner::remove_duplicates(std::int64_t grace_seconds) {
  auto& im = *impl_;
  if (!im.cfg.target.uploader || !im.factory.uploader()) return 0;
  Roles roles = im.make_roles();
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  int removed = 0;
  // The plan itself adopts the backend's pick where this state's record lost a race.
  for (const auto& vp : plan({})) {
    const Variant* v = nullptr;
    for (const auto& x : im.cfg.variants)
      if (x.name == vp.variant) v = &x;
    if (!v) continue;
    for (const auto& lp : vp.layers) {
      if (lp.upload_key.empty()) continue;
      const Layer* l = nullptr;
      for (const auto& x : v->layers)
        if (x.name == lp.layer) l = &x;
      if (!l) continue;
      auto ctx = im.context(*v, *l, "gc", *im.cfg.target.uploader, "uploader", {}, {});
      std::vector<lcake::Artifact> all;
      try {
        all = roles.uploader->find_all(lcake::FindRequest{im.layer_info(*v, *l, lp), l->uploader_options}, *ctx);
      } catch (const std::exception& e) {
        ctx->warn("could not list the uploads of key " + short_key(lp.upload_key) + ": " + e.what());
        continue;
      }
      const std::string winner = all.empty() ? "" : all.front().id;
      std::vector<Duplicate> dups;
      for (std::size_t i = 1; i < all.size(); ++i)
        if (all[i].id != winner) dups.push_back({all[i], created_of(all[i]), published_mark(all[i]), {}});
      if (auto d = im.state.find_artifact(im.target(), v->name, l->name, lp.upload_key, "duplicate")) {
        if (d->artifact.id == winner) {
          im.state.delete_artifact(d->id);  // it is the backend's pick now: no duplicate
        } else {
          bool listed = false;
          for (auto& x : dups)
            if (x.artifact.id == d->artifact.id) x.record = d->id, x.published |= d->published, listed = true;
          if (!listed) dups.push_back({d->artifact, epoch_of(d->created_at), d->published, d->id});
        }
      }
      for (const auto& d : dups) {
        const std::string what = "duplicate upload " + d.artifact.id + " of key " + short_key(lp.upload_key);
        if (d.published) {
          ctx->warn("kept " + what + ": it was published (the backend names " + winner + " for the key)");
          continue;
        }
        if (d.created == 0 || now - d.created < grace_seconds) {
          ctx->info("kept " + what + " for now: created less than " + std::to_string(grace_seconds) +
                    " s ago (--grace), a runner may still be using it");
          continue;
        }
        try {
          roles.uploader->remove(d.artifact, *ctx);
          if (d.record) im.state.delete_artifact(*d.record);
          ++removed;
          ctx->info("removed " + what + (winner.empty() ? "" : " (the backend names " + winner + ")"));
        } catch (const std::exception& e) {
          ctx->warn("could not remove " + what + ": " + e.what());
        }
      }
    }
  }
  return removed;
}

}  // namespace lcake::core
