#include "child_process.h"

#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2.hpp>
#include <cstdio>
#include <deque>
#include <fstream>
#include <sstream>

namespace bp = boost::process::v2;
namespace fs = std::filesystem;

namespace lcake::qemu {

fs::path find_program(const std::string& name, const std::string& setting) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
  } else if (auto found = bp::environment::find_executable(name); !found.empty()) {
    return found.string();
  }
  if (!setting.empty()) throw ValueError("settings", setting, "program '" + name + "' not found: install it or set the full path");
  throw InputError("program '" + name + "' not found: install it");
}

struct ChildProcess::Impl {
  boost::asio::io_context io;
  std::optional<bp::process> proc;
};

ChildProcess::ChildProcess(const fs::path& exe, const std::vector<std::string>& args,
                           const fs::path& output_file)
    : impl_(std::make_unique<Impl>()) {
  FILE* out = std::fopen(output_file.c_str(), "we");
  if (!out) throw BuildError("cannot write " + output_file.string());
  try {
    impl_->proc.emplace(impl_->io, exe.string(), args, bp::process_stdio{nullptr, out, out});
  } catch (const std::exception& e) {
    std::fclose(out);
    throw BuildError("cannot start " + exe.string() + ": " + e.what());
  }
  std::fclose(out);
  start_time_ = process_start_time(pid());
}

ChildProcess::~ChildProcess() {
  if (impl_ && impl_->proc) {
    boost::system::error_code ec;
    if (impl_->proc->running(ec)) kill_and_wait();
  }
}

int ChildProcess::pid() const { return impl_->proc->id(); }

bool ChildProcess::running() {
  boost::system::error_code ec;
  return impl_->proc->running(ec);
}

std::optional<int> ChildProcess::exit_code() {
  if (running()) return std::nullopt;
  return impl_->proc->exit_code();
}

bool ChildProcess::wait_for(std::chrono::milliseconds d, const CancelToken& cancel) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (running()) {
    cancel.throw_if_cancelled();
    if (std::chrono::steady_clock::now() >= deadline) return false;
    cancel.wait_for(std::chrono::milliseconds(50));
  }
  return true;
}

void ChildProcess::send_signal(int signo) {
  if (running()) ::kill(pid(), signo);
}

void ChildProcess::kill_and_wait() {
  boost::system::error_code ec;
  if (impl_->proc->running(ec)) {
    impl_->proc->terminate(ec);  // SIGKILL and reap
  }
  impl_->proc->wait(ec);
}

CommandResult run_command(const std::vector<std::string>& argv, const CancelToken& cancel,
                          std::chrono::seconds timeout) {
  auto exe = find_program(argv.at(0), "");
  std::FILE* capture = std::tmpfile();
  if (!capture) throw BuildError("cannot create a temporary file for " + argv[0] + "'s output");
  CommandResult result;
  try {
    boost::asio::io_context io;
    bp::process proc(io, exe.string(), std::vector<std::string>(argv.begin() + 1, argv.end()),
                     bp::process_stdio{nullptr, capture, capture});
    auto deadline = std::chrono::steady_clock::now() + timeout;
    boost::system::error_code ec;
    while (proc.running(ec)) {
      if (cancel.cancelled()) throw Cancelled();  // ~process kills it
      if (timeout.count() && std::chrono::steady_clock::now() >= deadline)
        throw BuildError(argv[0] + " did not finish within " + std::to_string(timeout.count()) + " s");
      cancel.wait_for(std::chrono::milliseconds(20));
    }
    result.exit_code = proc.exit_code();
  } catch (...) {
    std::fclose(capture);
    throw;
  }
  std::rewind(capture);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, capture)) > 0;) result.output.append(buf, n);
  std::fclose(capture);
  return result;
}

std::string run_checked(const std::vector<std::string>& argv, const CancelToken& cancel,
                        std::chrono::seconds timeout) {
  auto r = run_command(argv, cancel, timeout);
  if (r.exit_code != 0) {
    std::string text = r.output;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto nl = text.rfind('\n');
    std::string last = nl == std::string::npos ? text : text.substr(nl + 1);
    std::string cmd;
    for (auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw BuildError(cmd + " failed (exit " + std::to_string(r.exit_code) + "): " + last);
  }
  return r.output;
}

std::uint64_t process_start_time(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');  // the command name may contain spaces
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::stoull(field);
  }
  return 0;
}

static std::string printable(const std::string& line) {
  // Keep printable text; drop ANSI escape sequences (firmware clears the screen on reboot).
  std::string clean;
  for (size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c == 0x1b) {
      if (i + 1 < line.size() && line[i + 1] == '[') {
        for (i += 2; i < line.size() && !std::isalpha(static_cast<unsigned char>(line[i])); ++i) {}
      } else {
        ++i;
      }
    } else if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
      clean += static_cast<char>(c);
    }
  }
  return clean;
}

std::string file_tail(const fs::path& file, int lines) {
  std::ifstream in(file, std::ios::binary);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    auto clean = printable(line);
    if (clean.find_first_not_of(' ') == std::string::npos) continue;
    last.push_back(clean);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (auto& l : last) out += l + "\n";
  return out;
}

std::string last_line_with(const fs::path& file, const std::string& needle) {
  std::ifstream in(file, std::ios::binary);
  std::string found;
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) found = printable(line);
  return found;
}

}  // namespace lcake::qemu
