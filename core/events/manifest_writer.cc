#include "manifest_writer.h"

#include <fstream>

#include "redactor.h"

namespace lcake::core {

nlohmann::json& ManifestWriter::layer(const Event& e) {
  auto& entry = m_["variants"][e.variant]["layers"][e.layer];
  if (entry.is_null()) entry = nlohmann::json::object();
  return entry;
}

void ManifestWriter::emit(const Event& e) {
  std::lock_guard lock(mu_);
  switch (e.type) {
    case EventType::run_started:
      for (auto it = e.data.begin(); it != e.data.end(); ++it) m_[it.key()] = it.value();
      break;
    case EventType::run_finished:
      m_["status"] = e.status;
      m_["seconds"] = e.seconds;
      if (e.data.contains("variants")) {
        const auto& variants = e.data["variants"];
        for (auto it = variants.begin(); it != variants.end(); ++it)
          m_["variants"][it.key()]["status"] = it.value();
      }
      break;
    case EventType::layer_planned: layer(e)["key"] = e.key; break;
    case EventType::layer_cached:
      layer(e)[e.stage] = {{"artifact", e.artifact ? nlohmann::json(*e.artifact) : nlohmann::json()},
                           {"cached", true}};
      if (e.data.contains("found")) layer(e)[e.stage]["found"] = e.data["found"];
      break;
    case EventType::layer_finished: {
      auto& l = layer(e);
      if (e.status != "ok") {
        l["error"] = e.status == "cancelled" ? std::string("cancelled") : e.message;
        if (e.stage == "verify") l["verified"] = false;
      } else if ((e.stage == "build" || e.stage == "upload") && e.artifact) {
        l[e.stage] = {{"artifact", *e.artifact}, {"seconds", e.seconds}, {"cached", false}};
      }
      break;
    }
    case EventType::verified:
      layer(e)["verified"] = true;
      if (e.data.value("again", true)) layer(e)["verify_seconds"] = e.seconds;
      break;
    case EventType::published: {
      auto& l = layer(e);
      l["published"] = true;
      l["publish"] = {{"artifact", e.artifact ? nlohmann::json(*e.artifact) : nlohmann::json()}};
      if (!e.verified) l["unverified"] = true;  // published under --no-verify
      break;
    }
    case EventType::hook:
      if (e.status != "started") {
        nlohmann::json h = {{"run", e.message}, {"status", e.status}, {"seconds", e.seconds}};
        for (const char* k : {"exit_code", "reason"})
          if (e.data.contains(k)) h[k] = e.data[k];
        m_["after_publish"].push_back(h);
      }
      break;
    default: break;
  }
}

nlohmann::json ManifestWriter::manifest() const {
  std::lock_guard lock(mu_);
  return m_;
}

void ManifestWriter::write(const std::filesystem::path& path,
                           const std::optional<std::filesystem::path>& copy) const {
  std::string text = Redactor::instance().apply(manifest().dump(2));
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text << "\n";
  if (copy) {
    auto tmp = copy->string() + ".tmp";
    std::ofstream(tmp) << text << "\n";
    std::filesystem::rename(tmp, *copy);
  }
}

}  // namespace lcake::core
