#include "provision.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "events/log_level.h"
#include "events/redactor.h"
#include "lcake/errors.hpp"
#include "table_compare.h"

namespace lcake::core {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

namespace {

std::string exports(const std::map<std::string, std::string>& env) {
  std::string out;
  for (const auto& [k, v] : env) out += "export " + k + "=" + shell_quote(v) + "\n";
  return out;
}

// Runs a command, streaming whole output lines to the log and keeping them.
struct CommandRun {
  int exit_code = 0;
  std::string output;
};

CommandRun run_logged(lcake::Communicator& comm, lcake::Context& ctx, const std::string& command,
                      std::chrono::seconds timeout) {
  CommandRun r;
  LineSplitter out, err;
  auto emit_out = [&](const std::string& l) { ctx.info(l); };
  auto emit_err = [&](const std::string& l) { ctx.info(l); };
  r.exit_code = comm.run(
      command,
      [&](std::string_view chunk, bool is_stderr) {
        r.output.append(chunk);
        if (is_stderr) err.feed(chunk, emit_err);
        else out.feed(chunk, emit_out);
      },
      timeout);
  out.flush(emit_out);
  err.flush(emit_err);
  return r;
}

// Shell text that overwrites the file at `path` (quoted) in place with zeros, syncs and deletes
// it: the same blocks, so no copy of what it held is left in the freed space of the disk.
std::string scrub_text(const std::string& path) {
  return "if [ -f " + path + " ]; then n=$(($(wc -c < " + path + "))); if [ \"$n\" -gt 0 ]; then dd if=/dev/zero of=" +
         path + " bs=\"$n\" count=1 conv=notrunc 2>/dev/null || exit 1; fi; sync; fi; rm -f " + path +
         " && sync && [ ! -e " + path + " ]";
}

// Writes `text` to a new local file readable by its owner only (lcake's copy of a step that may
// hold a secret, for the moment it takes to upload it).
void write_private(const std::filesystem::path& local, const std::string& text) {
  std::filesystem::create_directories(local.parent_path());
  std::error_code ec;
  std::filesystem::remove(local, ec);
  int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw lcake::BuildError("cannot write " + local.string() + ": " + std::strerror(errno));
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      throw lcake::BuildError("cannot write " + local.string() + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

// The command that runs `body` (shell text) as `how` says: as is for the SSH user; else the body
// goes to a file in the machine (`remote`), run through sudo or the execute_command template, and
// deleted afterwards, overwritten with zeros first when it holds a secret, so the disk that becomes
// the artifact keeps no copy of it in its free space. `cleanup` (shell text, may be empty) runs as
// the SSH user after the body, whatever it exited with.
std::string command_for(const RunAs& how, const std::string& body, const std::string& remote,
                        lcake::Communicator& comm, lcake::Context& ctx, const std::string& cleanup = "") {
  if (how.plain()) return cleanup.empty() ? body : "{ " + body + "\n}; rc=$?; " + cleanup + "; exit $rc";
  const bool secret = Redactor::instance().apply(body) != body;
  auto local = ctx.work_dir() / std::filesystem::path(remote).filename();
  write_private(local, body);
  try {
    comm.upload(local, remote);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(local, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::remove(local, ec);
  auto path = shell_quote(remote);
  std::string run;
  if (!how.execute_command.empty()) {
    run = how.execute_command;
    for (std::size_t at; (at = run.find("{{path}}")) != std::string::npos;) run.replace(at, 8, path);
  } else {
    auto user = shell_quote(how.user);
    run = "if [ \"$(id -un)\" = " + user + " ]; then sh " + path + "; else sudo -n -H -u " + user + " sh " + path +
          "; fi";
  }
  return "chmod 0755 " + path + " && { " + run + "\n}; rc=$?; " + (cleanup.empty() ? "" : cleanup + "; ") +
         (secret ? scrub_text(path) : "rm -f " + path) + "; exit $rc";
}

std::string describe(const Provisioner& p) {
  if (p.type == "file") return "file " + p.source.filename().string() + " -> " + p.destination;
  if (p.type == "env") return "env";
  if (p.script) return "shell script " + p.script->filename().string();
  // Redacted before it is shortened, so no cut-off piece of a secret is left to show.
  std::string first = p.inline_commands.empty() ? "" : Redactor::instance().apply(p.inline_commands.front());
  if (first.size() > 60) first = first.substr(0, 57) + "...";
  return "shell: " + first + (p.inline_commands.size() > 1 ? " ..." : "");
}

void upload_path(lcake::Communicator& comm, lcake::Context& ctx, const std::filesystem::path& src,
                 const std::string& dest) {
  namespace fs = std::filesystem;
  if (!fs::exists(src)) throw lcake::InputError(src.string() + ": file to upload does not exist");
  if (!fs::is_directory(src)) {
    auto slash = dest.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      int rc = comm.run("mkdir -p " + shell_quote(dest.substr(0, slash)), nullptr, std::chrono::seconds(60));
      if (rc != 0) throw lcake::BuildError("cannot create the directory for " + dest);
    }
    comm.upload(src, dest);
    return;
  }
  // A directory: recreate its tree, file by file.
  int rc = comm.run("mkdir -p " + shell_quote(dest), nullptr, std::chrono::seconds(60));
  if (rc != 0) throw lcake::BuildError("cannot create directory " + dest);
  std::vector<fs::path> files;
  std::string dirs;
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    auto rel = fs::relative(e.path(), src).generic_string();
    if (e.is_directory()) dirs += " " + shell_quote(dest + "/" + rel);
    else if (e.is_regular_file()) files.push_back(e.path());
  }
  if (!dirs.empty() && comm.run("mkdir -p" + dirs, nullptr, std::chrono::seconds(60)) != 0)
    throw lcake::BuildError("cannot create directories under " + dest);
  for (const auto& f : files) {
    ctx.cancel().throw_if_cancelled();
    comm.upload(f, dest + "/" + fs::relative(f, src).generic_string());
  }
}

// Overwrites a secret file in place, then deletes it.
void scrub(lcake::Communicator& comm, const std::string& path) {
  if (comm.run(scrub_text(shell_quote(path)), nullptr, std::chrono::seconds(120)) != 0)
    throw lcake::BuildError("cannot delete the sensitive file " + path + " from the machine; the layer is not kept");
}

void run_provisioner_steps(const std::vector<Provisioner>& steps, lcake::Communicator& comm,
                           lcake::Context& ctx, const StepReport& on_step, std::vector<std::string>& secrets);

}  // namespace

void run_provisioners(const std::vector<Provisioner>& steps, lcake::Communicator& comm,
                      lcake::Context& ctx, const StepReport& on_step) {
  // Sensitive files live for the layer's provisioners only: deleted after the last
  // one, before the builder turns the disk into an artifact (also when one fails).
  std::vector<std::string> secrets;
  try {
    run_provisioner_steps(steps, comm, ctx, on_step, secrets);
  } catch (...) {
    for (const auto& path : secrets) {
      try {
        scrub(comm, path);
      } catch (const std::exception& e) {
        ctx.warn(e.what());
      }
    }
    throw;
  }
  for (const auto& path : secrets) {
    on_step("deleting sensitive file " + path);
    scrub(comm, path);
  }
}

namespace {

void run_provisioner_steps(const std::vector<Provisioner>& steps, lcake::Communicator& comm,
                           lcake::Context& ctx, const StepReport& on_step, std::vector<std::string>& secrets) {
  std::map<std::string, std::string> env;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Provisioner& p = steps[i];
    ctx.cancel().throw_if_cancelled();
    if (p.type == "env") {
      for (const auto& [k, v] : p.env) env[k] = v;
      continue;
    }
    on_step("provisioner " + std::to_string(i + 1) + "/" + std::to_string(steps.size()) + ": " +
            describe(p));
    std::string last_error;
    for (int attempt = 0; attempt <= p.retries; ++attempt) {
      ctx.cancel().throw_if_cancelled();
      if (attempt > 0) {
        ctx.warn("retrying (" + std::to_string(attempt) + "/" + std::to_string(p.retries) +
                 ") after: " + last_error);
        if (ctx.cancel().wait_for(std::chrono::seconds(2))) throw lcake::Cancelled();
      }
      try {
        if (p.type == "file") {
          if (p.sensitive) {
            if (std::find(secrets.begin(), secrets.end(), p.destination) == secrets.end())
              secrets.push_back(p.destination);
          }
          upload_path(comm, ctx, p.source, p.destination);
          last_error.clear();
          break;
        }
        std::string script, before, cleanup;
        if (p.script) {
          // Uploaded as is; run, and removed afterwards by the SSH user, who owns it.
          std::string remote = shell_quote("/tmp/lcake-provision-" + std::to_string(i) + ".sh");
          comm.upload(*p.script, "/tmp/lcake-provision-" + std::to_string(i) + ".sh");
          script = exports(env) + "sh " + remote + "\n";
          cleanup = "rm -f " + remote;
          if (!p.run_as.plain()) before = "chmod 0644 " + remote + " && ";
        } else {
          script = "set -e\n" + exports(env);
          for (const auto& c : p.inline_commands) script += c + "\n";
        }
        script = before + command_for(p.run_as, script, "/tmp/lcake-run-" + std::to_string(i) + ".sh", comm, ctx, cleanup);
        CommandRun r = run_logged(comm, ctx, script, p.timeout);
        if (r.exit_code == 0) {
          last_error.clear();
          break;
        }
        last_error = "exited with status " + std::to_string(r.exit_code);
      } catch (const lcake::Cancelled&) {
        throw;
      } catch (const lcake::InputError&) {
        throw;
      } catch (const std::exception& e) {
        last_error = e.what();
      }
    }
    if (!last_error.empty())
      throw lcake::BuildError("provisioner " + p.pointer + " (" + describe(p) + ") failed: " +
                              last_error);
  }
}

}  // namespace

static std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw lcake::InputError(p.string() + ": cannot read the expected table");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void run_verify_steps(const std::vector<VerifyStep>& steps, lcake::Communicator& comm,
                      lcake::Context& ctx, const StepReport& on_step) {
  for (const auto& step : steps) {
    ctx.cancel().throw_if_cancelled();
    std::string name = step.name.empty() ? step.pointer : step.name;
    on_step("verify step '" + name + "'");
    if (!step.run.empty()) {
      auto command = command_for(step.run_as, step.run + "\n",
                                 "/tmp/lcake-verify-" + std::to_string(&step - steps.data()) + ".sh", comm, ctx);
      CommandRun r = run_logged(comm, ctx, command, step.timeout);
      if (r.exit_code != step.expect_exit)
        throw lcake::BuildError("verify step '" + name + "' exited with status " +
                                std::to_string(r.exit_code) + ", expected " +
                                std::to_string(step.expect_exit));
      for (const auto& pattern : step.expect_output) {
        std::regex re;
        try {
          re = std::regex(pattern);
        } catch (const std::regex_error& e) {
          throw lcake::InputError(step.pointer + "/expect_output: invalid regex '" + pattern + "'");
        }
        if (!std::regex_search(r.output, re))
          throw lcake::BuildError("verify step '" + name + "': output did not match '" + pattern + "'");
      }
    }
    if (step.compare) {
      auto local = ctx.work_dir() / ("verify-actual-" + std::to_string(&step - steps.data()) + ".csv");
      comm.download(step.compare->actual, local);
      auto cmp = compare_tables(read_file(step.compare->expected), read_file(local),
                                step.compare->abs_tol, step.compare->rel_tol);
      if (!cmp.ok()) {
        std::string detail = cmp.structural_error;
        if (detail.empty()) {
          detail = std::to_string(cmp.differences.size()) + " cell(s) outside tolerance: ";
          for (std::size_t i = 0; i < cmp.differences.size() && i < 5; ++i)
            detail += (i ? "; " : "") + cmp.differences[i].describe();
          if (cmp.differences.size() > 5) detail += "; ...";
          for (const auto& d : cmp.differences) ctx.warn("differs: " + d.describe());
        }
        throw lcake::BuildError("verify step '" + name + "': " + step.compare->actual + " vs " +
                                step.compare->expected.string() + ": " + detail);
      }
      ctx.info("compare: " + step.compare->actual + " matches " +
               step.compare->expected.filename().string());
    }
  }
}

}  // namespace lcake::core
