#include "text_view.h"

#include <algorithm>
#include <cmath>

#include "redactor.h"

namespace lcake::core {

std::string human_bytes(std::uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%lds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  return buf;
}

static std::string progress_text(double fraction, std::uint64_t done, std::uint64_t total,
                                 double rate, bool bar) {
  std::string out;
  if (fraction >= 0) {
    if (bar) {
      int filled = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 20));
      out += " [" + std::string(filled, '#') + std::string(20 - filled, '.') + "]";
    }
    out += " " + std::to_string(static_cast<int>(std::lround(fraction * 100))) + "%";
  }
  if (total || done) {
    out += " " + human_bytes(done) + (total ? " of " + human_bytes(total) : "");
    if (rate > 0) out += ", " + human_bytes(static_cast<std::uint64_t>(rate)) + "/s";
  }
  return out;
}

std::string TextView::status_line(const std::string& scope, const std::string& stage,
                                  double elapsed_s, const std::string& what, double fraction,
                                  std::uint64_t done, std::uint64_t total, double rate) {
  std::string line = "  " + scope + " " + stage + " " + human_duration(elapsed_s);
  if (!what.empty()) line += ": " + what;
  return line + progress_text(fraction, done, total, rate, true);
}

TextView::TextView(Terminal& term, Options options) : term_(term), opt_(std::move(options)) {
  if (!opt_.now) opt_.now = [] { return Clock::now(); };
  if (opt_.smart && opt_.tick_every.count() > 0) {
    ticker_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stop_cv_.wait_for(lock, opt_.tick_every, [this] { return stopping_; })) {
        lock.unlock();
        tick();
        lock.lock();
      }
    });
  }
}

TextView::~TextView() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard lock(mu_);
  erase_block();
}

void TextView::tick() {
  std::lock_guard lock(mu_);
  if (!opt_.smart || running_.empty() || opt_.now() - last_draw_ < std::chrono::seconds(1)) return;
  erase_block();
  draw_block();
}

static std::string short_key(const std::string& key) { return key.substr(0, 12); }

std::optional<std::string> TextView::line_for(const Event& e) const {
  std::string text;
  lcake::LogLevel level = lcake::LogLevel::info;
  switch (e.type) {
    case EventType::log:
      level = e.level;
      if (level == lcake::LogLevel::warn) text = "warning: ";
      if (level == lcake::LogLevel::error) text = "error: ";
      text += e.message;
      break;
    case EventType::layer_cached:
      if (e.stage == "build") text = "cached (key " + short_key(e.key) + ")";
      else if (e.data.value("found", "") == "backend" && e.artifact)
        text = "found in the backend: " + e.artifact->type + " " + e.artifact->id;
      else return std::nullopt;
      break;
    case EventType::layer_started:
      if (e.stage == "build")
        text = "building (key " + short_key(e.key) + (e.message.empty() ? "" : ": " + e.message) + ")";
      else if (e.stage == "upload") text = "uploading";
      else if (e.stage == "verify") text = "verifying";
      else return std::nullopt;
      break;
    case EventType::layer_finished:
      if (e.status != "ok" || !e.artifact) return std::nullopt;
      if (e.stage == "build")
        text = "built " + e.artifact->type + " " + e.artifact->id + " in " +
               std::to_string(static_cast<int>(e.seconds)) + "s";
      else if (e.stage == "upload") text = "uploaded " + e.artifact->type + " " + e.artifact->id;
      else return std::nullopt;
      break;
    case EventType::step: text = e.message; break;
    case EventType::verified:
      if (!e.data.value("again", true)) return std::nullopt;
      text = "verified in " + std::to_string(static_cast<int>(e.seconds)) + "s";
      break;
    case EventType::published:
      text = "published " + (e.artifact ? e.artifact->id : std::string());
      if (!e.verified) text += " UNVERIFIED (--no-verify)";
      break;
    case EventType::cleanup:
      if (e.status != "ok") level = lcake::LogLevel::error, text = "error: ";
      text += e.message;
      break;
    case EventType::manifest: text = "manifest: " + e.message; break;
    case EventType::hook:
      if (e.status == "started") text = "running: " + e.message;
      else if (e.status == "ok") text = "ok in " + std::to_string(static_cast<int>(e.seconds)) + "s";
      else if (e.status == "skipped") text = "skipped: " + e.data.value("reason", std::string());
      else return std::nullopt;  // a failure is logged as an error with its output
      break;
    default: return std::nullopt;  // planned, run, progress: the status block and other views
  }
  if (level < opt_.min_level) return std::nullopt;
  return (e.scope.empty() ? std::string() : "==> " + e.scope + ": ") + text;
}

bool TextView::track(const Event& e, Clock::time_point now) {
  auto it = std::find_if(running_.begin(), running_.end(),
                         [&](const Running& r) { return r.scope == e.scope; });
  switch (e.type) {
    case EventType::layer_started:
      if (it != running_.end()) running_.erase(it);
      running_.emplace_back();
      running_.back().scope = e.scope, running_.back().stage = e.stage;
      running_.back().started = now;
      return true;
    case EventType::layer_finished:
      if (it == running_.end()) return false;
      running_.erase(it);
      return true;
    case EventType::step:
      if (it == running_.end()) return false;
      it->what = e.message, it->fraction = -1, it->done = it->total = 0, it->first_sample.reset();
      it->rate = 0;
      return true;
    case EventType::transfer:
    case EventType::wait: {
      if (it == running_.end()) return false;
      if (it->what != e.message) it->first_sample.reset(), it->rate = 0;
      it->what = e.message, it->fraction = e.fraction, it->done = e.done_bytes, it->total = e.total_bytes;
      if (e.type == EventType::transfer) {
        if (!it->first_sample) it->first_sample = std::make_pair(now, e.done_bytes);
        double dt = std::chrono::duration<double>(now - it->first_sample->first).count();
        if (dt > 0.5 && e.done_bytes >= it->first_sample->second)
          it->rate = static_cast<double>(e.done_bytes - it->first_sample->second) / dt;
      }
      return true;
    }
    default: return false;
  }
}

void TextView::emit(const Event& e) {
  std::lock_guard lock(mu_);
  Clock::time_point now = opt_.now();
  bool changed = track(e, now);
  auto line = line_for(e);
  bool progress = e.type == EventType::transfer || e.type == EventType::wait;
  if (!opt_.smart) {
    if (line) print(*line);
    if (!progress) return;
    // Plain lines: one per scope every few seconds, so CI logs show that something moves;
    // a scope without layer_started (publish, cleanup) is held to the same pace.
    auto it = std::find_if(running_.begin(), running_.end(),
                           [&](const Running& r) { return r.scope == e.scope; });
    bool debug = opt_.min_level <= lcake::LogLevel::debug;
    auto last = last_plain_.find(e.scope);
    bool fresh_start = it != running_.end() && !it->last_plain;  // a new layer_started resets the pace
    if (!debug && !fresh_start && last != last_plain_.end() && now - last->second < opt_.plain_progress_every)
      return;
    last_plain_[e.scope] = now;
    if (it != running_.end()) it->last_plain = now;
    if (opt_.min_level <= lcake::LogLevel::info)
      print("==> " + e.scope + ": " + e.message +
            progress_text(e.fraction, e.done_bytes, e.total_bytes,
                          it != running_.end() ? it->rate : 0, false));
    return;
  }
  if (line) {
    erase_block();
    print(*line);
    draw_block();
  } else if (changed && (!progress || now - last_draw_ >= opt_.redraw_every)) {
    erase_block();
    draw_block();
  }
}

void TextView::print(const std::string& line) {
  term_.write(Redactor::instance().apply(line) + "\n");
}

void TextView::erase_block() {
  std::string out;
  for (; shown_ > 0; --shown_) out += "\x1b[1A\r\x1b[2K";  // up one line, clear it
  if (!out.empty()) term_.write(out);
}

void TextView::draw_block() {
  Clock::time_point now = opt_.now();
  last_draw_ = now;
  std::string out;
  std::size_t width = static_cast<std::size_t>(std::max(20, term_.width() - 1));
  for (const auto& r : running_) {
    double elapsed = std::chrono::duration<double>(now - r.started).count();
    std::string line = Redactor::instance().apply(
        status_line(r.scope, r.stage, elapsed, r.what, r.fraction, r.done, r.total, r.rate));
    if (line.size() > width) line = line.substr(0, width - 3) + "...";
    out += "\r\x1b[2K" + line + "\n";
    ++shown_;
  }
  if (!out.empty()) term_.write(out);
}

}  // namespace lcake::core
