#include "local_shell.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace localdir {

std::filesystem::path LocalShell::map(const std::string& remote) const {
  std::string rel = remote;
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  return root_ / rel;
}

int LocalShell::run(const std::string& command, const OutputFn& on_output, std::chrono::seconds timeout) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) throw lcake::BuildError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw lcake::BuildError("fork failed");
  if (pid == 0) {
    setpgid(0, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]), close(err[0]), close(out[1]), close(err[1]);
    if (chdir(root_.c_str()) != 0) _exit(127);
    setenv("LCAKE_ROOT", root_.c_str(), 1);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  close(out[1]), close(err[1]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed_for_timeout = false, cancelled = false;
  char buf[4096];
  while (open_fds > 0) {
    if (cancel_.cancelled()) { cancelled = true; break; }
    if (timeout.count() > 0 && std::chrono::steady_clock::now() > deadline) { killed_for_timeout = true; break; }
    if (poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else if (on_output) {
        on_output(std::string_view(buf, static_cast<std::size_t>(n)), i == 1);
      }
    }
  }
  if (cancelled || killed_for_timeout) kill(-pid, SIGKILL);
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (cancelled) throw lcake::Cancelled();
  if (killed_for_timeout) throw lcake::BuildError("command timed out after " + std::to_string(timeout.count()) + "s");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void LocalShell::upload(const std::filesystem::path& local, const std::string& remote) {
  auto dest = map(remote);
  std::filesystem::create_directories(dest.parent_path());
  std::filesystem::copy_file(local, dest, std::filesystem::copy_options::overwrite_existing);
}

void LocalShell::download(const std::string& remote, const std::filesystem::path& local) {
  auto src = map(remote);
  if (!std::filesystem::exists(src)) throw lcake::BuildError("no such file in the machine: " + remote);
  std::filesystem::copy_file(src, local, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace localdir
