// Provenance: who set each leaf of the merged tree, and whom it overrode.
#include "config/config.h"

namespace lcake::core {
namespace {

void append_unique(std::vector<Origin>& list, const Origin& origin) {
  for (const auto& o : list) {
    if (o.source == origin.source && o.line == origin.line) return;
  }
  list.push_back(origin);
}

// Removes the entries at and under pointer from map, appending their history to out.
// Keys under "/a" all start with "/a/", but "/a-b" sorts between "/a" and "/a/x",
// so the exact key and the "/a/" range are visited separately.
template <typename Map, typename Fn>
void for_subtree(Map& map, const std::string& pointer, Fn&& fn) {
  if (auto it = map.find(pointer); it != map.end()) fn(it);
  const std::string prefix = pointer + "/";
  for (auto it = map.lower_bound(prefix); it != map.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = fn(it);
  }
}

// Removes the entries at and under pointer from map, appending their history to out.
void take_subtree(std::map<std::string, ProvenanceEntry>& map, const std::string& pointer, std::vector<Origin>& out) {
  for_subtree(map, pointer, [&](auto it) {
    for (const auto& o : it->second.overridden) append_unique(out, o);
    append_unique(out, it->second.origin);
    return map.erase(it);
  });
}

void drop_subtree(std::map<std::string, Origin>& map, const std::string& pointer) {
  for_subtree(map, pointer, [&](auto it) { return map.erase(it); });
}

template <typename Map>
bool has_under(const Map& map, const std::string& pointer) {
  const std::string prefix = pointer + "/";
  auto it = map.lower_bound(prefix);
  return it != map.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

std::string parent_pointer(const std::string& pointer) {
  auto slash = pointer.rfind('/');
  return slash == std::string::npos ? std::string() : pointer.substr(0, slash);
}

}  // namespace

std::string Origin::describe() const {
  return line > 0 ? source + ":" + std::to_string(line) : source;
}

void Provenance::set(const std::string& pointer, const Origin& origin) {
  ProvenanceEntry entry{pointer, origin, {}};
  // Deleted keys first: their history is older than anything set after the delete.
  take_subtree(deleted_, pointer, entry.overridden);
  take_subtree(entries_, pointer, entry.overridden);
  // Set again under a deleted key: the deletion is now history of this leaf.
  for (std::string p = pointer; !p.empty();) {
    p = parent_pointer(p);
    if (auto it = deleted_.find(p); it != deleted_.end()) {
      for (const auto& o : it->second.overridden) append_unique(entry.overridden, o);
      append_unique(entry.overridden, it->second.origin);
      deleted_.erase(it);
    }
  }
  drop_subtree(objects_, pointer);
  drop_subtree(inner_, pointer);
  entries_[pointer] = std::move(entry);
}

void Provenance::open_object(const std::string& pointer, const Origin& origin) {
  if (auto it = entries_.find(pointer); it != entries_.end()) entries_.erase(it);  // a scalar became an object
  drop_subtree(inner_, pointer);
  objects_.emplace(pointer, origin);
}

void Provenance::set_inner(const std::string& pointer, const Origin& origin) {
  inner_[pointer] = origin;
}

void Provenance::erase_subtree(const std::string& pointer, const Origin& by) {
  ProvenanceEntry entry{pointer, by, {}};
  take_subtree(deleted_, pointer, entry.overridden);
  take_subtree(entries_, pointer, entry.overridden);
  if (entry.overridden.empty()) {
    if (auto it = objects_.find(pointer); it != objects_.end()) entry.overridden.push_back(it->second);
  }
  drop_subtree(objects_, pointer);
  drop_subtree(inner_, pointer);
  deleted_[pointer] = std::move(entry);
}

std::optional<Origin> Provenance::origin_of(const std::string& pointer) const {
  for (std::string p = pointer;; p = parent_pointer(p)) {
    if (auto it = inner_.find(p); it != inner_.end()) return it->second;
    if (auto it = entries_.find(p); it != entries_.end()) return it->second.origin;
    // Deleted and not re-created: the overlay or flag that deleted it is to blame.
    if (auto it = deleted_.find(p); it != deleted_.end() && !objects_.contains(p)) return it->second.origin;
    if (auto it = objects_.find(p); it != objects_.end()) return it->second;
    if (p.empty()) return std::nullopt;
  }
}

std::vector<ProvenanceEntry> Provenance::leaves() const {
  std::map<std::string, ProvenanceEntry> all = entries_;
  for (auto it = objects_.begin(); it != objects_.end(); ++it) {
    // An object with nothing recorded under it is shown as a leaf ({}).
    if (!has_under(entries_, it->first) && !has_under(objects_, it->first)) all.emplace(it->first, ProvenanceEntry{it->first, it->second, {}});
  }
  std::vector<ProvenanceEntry> out;
  out.reserve(all.size());
  for (auto& [pointer, entry] : all) out.push_back(std::move(entry));
  return out;
}

std::vector<ProvenanceEntry> Provenance::deletions() const {
  std::vector<ProvenanceEntry> out;
  for (const auto& [pointer, entry] : deleted_) {
    if (!objects_.contains(pointer)) out.push_back(entry);  // re-created as an object since
  }
  return out;
}

}  // namespace lcake::core
