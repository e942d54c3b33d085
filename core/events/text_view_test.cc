// The text view against a fake terminal (a string) and a clock the test moves.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "text_view.h"

using namespace lcake::core;
using namespace std::chrono_literals;

namespace {

struct FakeTerminal : Terminal {
  std::string out;
  void write(std::string_view text) override { out += text; }
  int width() const override { return 100; }
};

struct Fixture {
  FakeTerminal term;
  TextView::Clock::time_point now{};
  TextView view;
  explicit Fixture(bool smart)
      : view(term, {lcake::LogLevel::info, smart, [this] { return now; }, 100ms, 10s}) {}
  void emit(EventType type, const std::string& stage = "build", const std::string& msg = "",
            double fraction = -1, std::uint64_t done = 0, std::uint64_t total = 0) {
    Event e;
    e.type = type;
    e.scope = "v1/app", e.variant = "v1", e.layer = "app", e.stage = stage;
    e.message = msg, e.fraction = fraction, e.done_bytes = done, e.total_bytes = total;
    e.key = "0123456789abcdef";
    if (type == EventType::layer_finished) e.status = "ok", e.artifact = lcake::Artifact{"raw", "disk.raw", {}, ""};
    view.emit(e);
  }
};

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

}  // namespace

TEST_CASE("plain: one line per event, no escape codes, progress at most every 10 s") {
  Fixture f(false);
  f.emit(EventType::layer_started);
  f.emit(EventType::step, "build", "provisioner 1/2: shell");
  f.emit(EventType::transfer, "build", "uploading disk.raw", 0.25, 256, 1024);
  f.now += 1s;
  f.emit(EventType::transfer, "build", "uploading disk.raw", 0.5, 512, 1024);  // too soon: dropped
  f.now += 10s;
  f.emit(EventType::wait, "build", "waiting for snapshot", 0.4);
  f.emit(EventType::layer_finished);
  CHECK(f.term.out ==
        "==> v1/app: building (key 0123456789ab)\n"
        "==> v1/app: provisioner 1/2: shell\n"
        "==> v1/app: uploading disk.raw 25% 256 B of 1.0 KiB\n"
        "==> v1/app: waiting for snapshot 40%\n"
        "==> v1/app: built raw disk.raw in 0s\n");
  CHECK(f.term.out.find('\x1b') == std::string::npos);
}

TEST_CASE("plain: progress of a scope no layer_started announced (publish) keeps the same pace") {
  Fixture f(false);
  // A copy waited on every 5 s for 30 s: one line per 10 s, not one per poll.
  for (int i = 0; i <= 6; ++i) {
    f.emit(EventType::wait, "publish", "waiting for copy ami-1 in eu-west-1 (pending)");
    f.now += 5s;
  }
  CHECK(count(f.term.out, "waiting for copy") == 4);  // at 0, 10, 20 and 30 s
}

TEST_CASE("smart: a status block under the log, redrawn in place, at most 10 times a second") {
  Fixture f(true);
  f.emit(EventType::layer_started);
  // The log line, then the block (one running build).
  CHECK(f.term.out == "==> v1/app: building (key 0123456789ab)\n\r\x1b[2K  v1/app build 0s\n");
  f.term.out.clear();
  f.now += 2s;
  f.emit(EventType::transfer, "build", "uploading disk.raw", 0.5, 512 << 20, 1024 << 20);
  // Erase the old block line, draw the new one with a bar.
  CHECK(f.term.out == "\x1b[1A\r\x1b[2K\r\x1b[2K  v1/app build 2s: uploading disk.raw "
                      "[##########..........] 50% 512.0 MiB of 1.0 GiB\n");
  f.term.out.clear();
  f.now += 50ms;
  f.emit(EventType::transfer, "build", "uploading disk.raw", 0.6, 600 << 20, 1024 << 20);
  CHECK(f.term.out.empty());  // throttled
  f.now += 1s;
  f.emit(EventType::transfer, "build", "uploading disk.raw", 0.75, 768 << 20, 1024 << 20);
  CHECK(f.term.out.find("75% 768.0 MiB of 1.0 GiB, 243.8 MiB/s") != std::string::npos);
  f.term.out.clear();
  f.emit(EventType::layer_finished);
  // The block goes, the line is printed, nothing is left running.
  CHECK(f.term.out == "\x1b[1A\r\x1b[2K==> v1/app: built raw disk.raw in 0s\n");
}

TEST_CASE("smart: one line per running build; log lines scroll above the block") {
  Fixture f(true);
  f.emit(EventType::layer_started);
  Event other;
  other.type = EventType::layer_started;
  other.scope = "v2/app", other.stage = "verify";
  f.view.emit(other);
  f.term.out.clear();
  f.view.log(lcake::LogLevel::warn, "v2/app", "slow guest");
  CHECK(f.term.out == "\x1b[1A\r\x1b[2K\x1b[1A\r\x1b[2K==> v2/app: warning: slow guest\n"
                      "\r\x1b[2K  v1/app build 0s\n\r\x1b[2K  v2/app verify 0s\n");
  CHECK(count(f.term.out, "\n") == 3);
}

TEST_CASE("smart: a silent step's elapsed time still moves (tick), at most once a second") {
  Fixture f(true);
  f.emit(EventType::layer_started);
  f.term.out.clear();
  f.now += 500ms;
  f.view.tick();
  CHECK(f.term.out.empty());  // drawn half a second ago
  f.now += 64500ms;
  f.view.tick();
  CHECK(f.term.out == "\x1b[1A\r\x1b[2K\r\x1b[2K  v1/app build 1m05s\n");
  f.emit(EventType::layer_finished);
  f.term.out.clear();
  f.now += 5s;
  f.view.tick();
  CHECK(f.term.out.empty());  // nothing runs: nothing to draw
}

TEST_CASE("smart: the ticker thread redraws on its own and stops with the view") {
  FakeTerminal term;
  std::mutex mu;  // the view writes from its thread
  struct LockedTerminal : Terminal {
    FakeTerminal& t;
    std::mutex& m;
    LockedTerminal(FakeTerminal& t, std::mutex& m) : t(t), m(m) {}
    void write(std::string_view text) override {
      std::lock_guard l(m);
      t.write(text);
    }
    int width() const override { return 100; }
  } locked(term, mu);
  std::atomic<int> clock_s{0};
  {
    TextView view(locked, {lcake::LogLevel::info, true,
                           [&] { return TextView::Clock::time_point{} + std::chrono::seconds(clock_s.load()); },
                           100ms, 10s, 20ms});
    Event e;
    e.type = EventType::layer_started;
    e.scope = "v1/app", e.stage = "build", e.key = "0123456789abcdef";
    view.emit(e);
    clock_s = 7;
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard l(mu);
        if (term.out.find("build 7s") != std::string::npos) break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  CHECK(term.out.find("  v1/app build 7s\n") != std::string::npos);
}

TEST_CASE("status lines and sizes read well") {
  CHECK(human_bytes(0) == "0 B");
  CHECK(human_bytes(1536) == "1.5 KiB");
  CHECK(human_bytes(3ull << 30) == "3.0 GiB");
  CHECK(human_duration(65) == "1m05s");
  CHECK(human_duration(3700) == "1h01m");
  CHECK(TextView::status_line("v/l", "upload", 5, "waiting for snapshot", 0.4, 0, 0, 0) ==
        "  v/l upload 5s: waiting for snapshot [########............] 40%");
}
