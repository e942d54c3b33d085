// --json: the documented schema (docs/events.md), one object per line.
#include <doctest/doctest.h>

#include <cstdio>

#include "json_view.h"
#include "manifest_writer.h"
#include "redactor.h"

using namespace lcake::core;

TEST_CASE("events carry the schema version and their typed fields") {
  Event e;
  e.type = EventType::transfer;
  e.scope = "v/l", e.variant = "v", e.layer = "l", e.stage = "upload";
  e.message = "uploading disk", e.fraction = 0.5, e.done_bytes = 5, e.total_bytes = 10;
  auto j = event_to_json(e);
  CHECK(j["v"] == kEventSchemaVersion);
  CHECK(j["event"] == "transfer");
  CHECK(j["what"] == "uploading disk");
  CHECK(j["done_bytes"] == 5);
  CHECK(j["total_bytes"] == 10);
  CHECK(j["stage"] == "upload");
  Event p;
  p.type = EventType::published;
  p.verified = false;
  p.artifact = lcake::Artifact{"oci-image", "r/x@sha256:1", {}, "docker"};
  auto pj = event_to_json(p);
  CHECK(pj["verified"] == false);
  CHECK(pj["artifact"]["id"] == "r/x@sha256:1");
}

TEST_CASE("the JSON view filters log levels and redacts secrets") {
  Redactor::instance().add("hunter2-secret");
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  {
    JsonView view(out, lcake::LogLevel::info);
    view.log(lcake::LogLevel::debug, "s", "hidden");
    view.log(lcake::LogLevel::info, "s", "password hunter2-secret");
  }
  std::fclose(out);
  std::string text(buf, len);
  std::free(buf);
  CHECK(text.find("hidden") == std::string::npos);
  CHECK(text.find("hunter2-secret") == std::string::npos);
  auto j = nlohmann::json::parse(text);
  CHECK(j["event"] == "log");
  CHECK(j["level"] == "info");
  CHECK(j["message"] == "password <redacted>");
  CHECK(j.contains("time"));
}

TEST_CASE("the manifest is built from the events alone") {
  ManifestWriter m;
  Event start;
  start.type = EventType::run_started;
  start.data = {{"run_id", "r1"}, {"command", "build"}};
  m.emit(start);
  Event fin;
  fin.type = EventType::layer_finished;
  fin.variant = "v", fin.layer = "l", fin.stage = "build", fin.status = "ok", fin.seconds = 2;
  fin.artifact = lcake::Artifact{"raw", "d", {}, "qemu"};
  m.emit(fin);
  Event bad = fin;
  bad.stage = "verify", bad.status = "failed", bad.message = "demo failed";
  m.emit(bad);
  auto j = m.manifest();
  CHECK(j["run_id"] == "r1");
  CHECK(j["variants"]["v"]["layers"]["l"]["build"]["seconds"] == 2);
  CHECK(j["variants"]["v"]["layers"]["l"]["verified"] == false);
  CHECK(j["variants"]["v"]["layers"]["l"]["error"] == "demo failed");
}
