#include "config/merge.h"

#include <stdexcept>

namespace lcake::core {
namespace {

struct MergeSource {
  Provenance& provenance;
  const std::string& source;
  const LineMap* lines;  // null for flags
  Origin origin(const std::string& relative) const {
    if (!lines) return Origin{source, 0};
    auto it = lines->find(relative);
    return Origin{source, it == lines->end() ? 0 : it->second};
  }
};

void merge_member(nlohmann::json& base, const std::string& key, const nlohmann::json& value,
                  const std::string& absolute, const std::string& relative, const MergeSource& from);

// Both base and overlay are objects.
void merge_objects(nlohmann::json& base, const nlohmann::json& overlay, const std::string& absolute,
                   const std::string& relative, const MergeSource& from) {
  for (const auto& [key, value] : overlay.items()) {
    merge_member(base, key, value, pointer_append(absolute, key), pointer_append(relative, key), from);
  }
}

void merge_member(nlohmann::json& base, const std::string& key, const nlohmann::json& value,
                  const std::string& absolute, const std::string& relative, const MergeSource& from) {
  if (value.is_null()) {
    base.erase(key);
    from.provenance.erase_subtree(absolute, from.origin(relative));
  } else if (value.is_object()) {
    auto it = base.find(key);
    if (it == base.end() || !it->is_object()) {
      base[key] = nlohmann::json::object();
      from.provenance.open_object(absolute, from.origin(relative));
    }
    merge_objects(base[key], value, absolute, relative, from);
  } else {
    base[key] = value;
    from.provenance.set(absolute, from.origin(relative));
    if (value.is_array() && from.lines) {
      // Arrays replace as a whole, but errors inside them should still name their line.
      const std::string prefix = relative + "/";
      for (auto it = from.lines->lower_bound(prefix); it != from.lines->end() && it->first.starts_with(prefix); ++it) {
        from.provenance.set_inner(absolute + it->first.substr(relative.size()), Origin{from.source, it->second});
      }
    }
  }
}

std::string a_json_type(const nlohmann::json& value) {
  if (value.is_null()) return "null";
  if (value.is_number_integer()) return "an integer";
  if (value.is_array()) return "an array";
  return std::string("a ") + value.type_name();
}

}  // namespace

void merge_document(nlohmann::json& tree, Provenance& provenance, const std::string& at,
                    const nlohmann::json& doc, const std::string& source, const LineMap& lines) {
  MergeSource from{provenance, source, &lines};
  nlohmann::json* base = &tree;
  if (!at.empty()) {
    nlohmann::json::json_pointer where(at);
    if (!tree.contains(where) || !tree[where].is_object()) {
      tree[where] = nlohmann::json::object();
      provenance.open_object(at, from.origin(""));
    }
    base = &tree[where];
  }
  merge_objects(*base, doc, at, "", from);
}

std::vector<std::string> split_pointer(const std::string& pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') throw std::invalid_argument("a JSON pointer starts with '/', like /target/builder/settings/memory");
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(token);
      token.clear();
    } else if (pointer[i] == '~') {
      if (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) {
        throw std::invalid_argument("'~' in a JSON pointer must be followed by 0 (for ~) or 1 (for /)");
      }
      token += pointer[++i] == '0' ? '~' : '/';
    } else {
      token += pointer[i];
    }
  }
  return tokens;
}

void merge_at_pointer(nlohmann::json& tree, Provenance& provenance, const std::string& pointer,
                      const nlohmann::json& value, const Origin& origin) {
  std::vector<std::string> tokens = split_pointer(pointer);
  if (tokens.empty()) throw std::invalid_argument("cannot replace the whole tree; name a key, like /vars/TAG");
  MergeSource from{provenance, origin.source, nullptr};
  nlohmann::json* cur = &tree;
  std::string at;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    std::string next = pointer_append(at, token);
    bool last = i + 1 == tokens.size();
    if (cur->is_object()) {
      if (last) {
        merge_member(*cur, token, value, next, "", from);
        return;
      }
      if (!cur->contains(token)) {
        (*cur)[token] = nlohmann::json::object();
        provenance.open_object(next, origin);
      }
      cur = &(*cur)[token];
    } else if (cur->is_array()) {
      size_t index = 0;
      try {
        size_t used = 0;
        index = std::stoul(token, &used);
        if (used != token.size()) throw std::invalid_argument(token);
      } catch (const std::exception&) {
        throw std::invalid_argument((at.empty() ? "/" : at) + " is an array; address an element by its index");
      }
      if (index > cur->size() || (index == cur->size() && !last)) {
        throw std::invalid_argument(at + " has " + std::to_string(cur->size()) + " elements; no index " + token);
      }
      if (last) {
        if (value.is_null()) {
          if (index < cur->size()) cur->erase(index);
          provenance.erase_subtree(next, origin);
        } else {
          if (index == cur->size()) cur->push_back(nullptr);
          if (value.is_object()) {
            (*cur)[index] = nlohmann::json::object();
            provenance.open_object(next, origin);
            merge_objects((*cur)[index], value, next, "", from);
          } else {
            (*cur)[index] = value;
            provenance.set(next, origin);
          }
        }
        return;
      }
      cur = &(*cur)[index];
    } else {
      throw std::invalid_argument(at + " is " + a_json_type(*cur) +
                                  ", not an object or array");
    }
    at = next;
  }
}

}  // namespace lcake::core
