// The human view of the event stream: "==> variant/layer: message" lines and,
// on a smart terminal, a live status block under them (one line per running
// step: stage, elapsed time, what it does, a bar for transfers and waits),
// redrawn in place like ninja's LinePrinter. Plain lines otherwise.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "event.h"
#include "terminal.h"

namespace lcake::core {

class TextView : public EventSink {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    lcake::LogLevel min_level = lcake::LogLevel::info;
    bool smart = false;                        // draw the status block
    std::function<Clock::time_point()> now;    // default: steady_clock::now
    std::chrono::milliseconds redraw_every{100};  // progress redraws at most this often
    std::chrono::seconds plain_progress_every{10};  // plain mode: one progress line per this
    // Smart mode: a thread redraws the block this often so elapsed times move while a step
    // is silent (a boot, a cloud wait). Zero: only events redraw (tests call tick()).
    std::chrono::milliseconds tick_every{0};
  };
  TextView(Terminal& term, Options options);
  ~TextView() override;  // erases the status block
  void emit(const Event& e) override;
  // Redraws the status block when something runs and the last draw is older than a second
  // (what the ticker thread calls).
  void tick();

  // One status line, as drawn (tests).
  static std::string status_line(const std::string& scope, const std::string& stage,
                                 double elapsed_s, const std::string& what, double fraction,
                                 std::uint64_t done, std::uint64_t total, double rate);

 private:
  struct Running {
    std::string scope, stage, what;
    Clock::time_point started;
    double fraction = -1;
    std::uint64_t done = 0, total = 0;
    std::optional<std::pair<Clock::time_point, std::uint64_t>> first_sample;
    double rate = 0;  // bytes/s
    std::optional<Clock::time_point> last_plain;
  };
  std::optional<std::string> line_for(const Event& e) const;
  bool track(const Event& e, Clock::time_point now);  // true when the block changed
  void print(const std::string& line);
  void erase_block();
  void draw_block();

  Terminal& term_;
  Options opt_;
  std::mutex mu_;
  std::vector<Running> running_;
  // Plain mode: when each scope last printed a progress line, also for scopes no layer_started
  // announced (publish, cleanup), which are not in running_.
  std::map<std::string, Clock::time_point> last_plain_;
  int shown_ = 0;  // lines of the block now on screen
  Clock::time_point last_draw_{};
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread ticker_;
};

std::string human_bytes(std::uint64_t n);  // "1.5 GiB"
std::string human_duration(double seconds);  // "1m05s"

}  // namespace lcake::core
