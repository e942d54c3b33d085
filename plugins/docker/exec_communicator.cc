#include "exec_communicator.h"

#include <cstdio>
#include <random>

#include "lcake/errors.hpp"
#include "tar_archive.h"

namespace lcake::docker {
namespace {

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Docker reports Go's os.FileMode: the directory bit is 1<<31.
bool is_dir_stat(const nlohmann::json& st) {
  return st.contains("mode") && st["mode"].is_number() && (st["mode"].get<std::uint64_t>() & (1ull << 31));
}

}  // namespace

int ExecCommunicator::run(const std::string& command, const OutputFn& on_output, std::chrono::seconds timeout) {
  ExecOptions options = defaults_;
  options.timeout = timeout;
  // The Engine API cannot kill an exec. The engine starts each exec as a session
  // leader, so the wrapper notes its PID (= process group) in /dev/shm (a tmpfs,
  // never committed) for kill_group() to end the whole command on timeout/cancel.
  std::random_device rd;
  char token[32];
  std::snprintf(token, sizeof token, "%08x%08x", static_cast<unsigned>(rd()), static_cast<unsigned>(rd()));
  std::string pid_file = std::string("/dev/shm/.lcake-exec-") + token;
  std::string wrapper = "echo $$ >" + pid_file + " 2>/dev/null; /bin/sh -c \"$1\"; rc=$?; rm -f " + pid_file +
                        " 2>/dev/null; exit $rc";
  try {
    return engine_.exec(container_, {"/bin/sh", "-c", wrapper, "sh", command}, options, on_output);
  } catch (...) {
    kill_group(pid_file);
    throw;
  }
}

void ExecCommunicator::kill_group(const std::string& pid_file) noexcept {
  try {
    EngineClient engine = engine_.uncancellable();
    ExecOptions root;
    root.user = "0";
    root.timeout = std::chrono::seconds(15);
    std::string cmd = "p=$(cat " + pid_file + " 2>/dev/null) && kill -KILL -$p 2>/dev/null; rm -f " + pid_file;
    engine.exec(container_, {"/bin/sh", "-c", cmd}, root, {});
  } catch (...) {
    // Best effort: the container's removal ends it anyway.
  }
}

void ExecCommunicator::make_dir(const std::string& dir) {
  if (engine_.stat_path(container_, dir)) return;
  ExecOptions root = defaults_;
  root.user = "0";
  root.timeout = std::chrono::seconds(60);
  std::string err;
  int code = engine_.exec(container_, {"mkdir", "-p", "--", dir}, root,
                          [&](std::string_view chunk, bool) { err.append(chunk); });
  if (code != 0) {
    throw lcake::BuildError("cannot create " + dir + " in container " + container_.substr(0, 12) + ": " + err);
  }
}

void ExecCommunicator::upload(const std::filesystem::path& local, const std::string& remote) {
  if (!std::filesystem::exists(std::filesystem::symlink_status(local))) {
    throw lcake::BuildError("upload: " + local.string() + " does not exist");
  }
  std::string dir, name;
  bool into = !remote.empty() && remote.back() == '/';
  std::string target = remote;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (!into) {
    auto st = engine_.stat_path(container_, target);
    into = st && is_dir_stat(*st) && !std::filesystem::is_directory(local);
  }
  if (into) {
    dir = target;
    name = local.filename().string();
  } else {
    dir = parent_of(target);
    name = target.substr(target.rfind('/') + 1);
  }
  make_dir(dir);
  engine_.put_archive(container_, dir, tar_path(local, name));
}

void ExecCommunicator::download(const std::string& remote, const std::filesystem::path& local) {
  auto st = engine_.stat_path(container_, remote);
  if (!st) throw lcake::BuildError("download: " + remote + " does not exist in container " + container_.substr(0, 12));
  untar_to(engine_.get_archive(container_, remote), local);
}

}  // namespace lcake::docker
