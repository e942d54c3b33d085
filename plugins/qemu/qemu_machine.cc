#include "qemu_machine.h"

#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cloud_init_seed.h"
#include "local_sockets.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lcake::qemu {

// QEMU option values escape a comma by doubling it.
static std::string opt(const fs::path& p) {
  std::string out;
  for (char c : p.string()) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

std::vector<std::string> qemu_args(const MachineSpec& spec, int ssh_port, const fs::path& qmp_socket,
                                   const fs::path& console) {
  const auto& s = spec.settings;
  std::vector<std::string> a = {
      "-name", spec.name, "-machine", s.machine, "-accel", spec.accelerator,
      "-m", std::to_string(s.memory_mib), "-smp", std::to_string(s.cpus),
      "-nodefaults", "-display", "none",
      "-drive", "file=" + opt(spec.disk) + ",format=" + spec.disk_format + ",if=virtio,discard=unmap",
      // restrict=on: the guest reaches nothing outside; the host reaches its sshd.
      "-nic", "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:" + std::to_string(ssh_port) + "-:22",
      "-chardev", "socket,id=qmp,path=" + opt(qmp_socket) + ",server=on,wait=off",
      "-mon", "chardev=qmp,mode=control",
      "-chardev", "file,id=console,path=" + opt(console),
      "-serial", "chardev:console",
      // Entropy at boot: without it sshd (dropbear especially) waits ~2 s for randomness.
      "-device", "virtio-rng-pci"};
  if (!spec.seed.empty()) {
    a.push_back("-drive");
    a.push_back("file=" + opt(spec.seed) + ",format=raw,if=virtio,readonly=on");
  }
  if (!spec.guest.kernel.empty()) {
    a.insert(a.end(), {"-kernel", spec.guest.kernel});
    if (!spec.guest.initrd.empty()) a.insert(a.end(), {"-initrd", spec.guest.initrd});
    auto append = spec.guest.append;
    // The serial console is where boot failures are diagnosed from.
    if (append.find("console=") == std::string::npos) append += (append.empty() ? "" : " ") + std::string("console=ttyS0");
    a.insert(a.end(), {"-append", append});
  }
  a.insert(a.end(), s.qemuargs.begin(), s.qemuargs.end());
  return a;
}

std::unique_ptr<QemuMachine> QemuMachine::launch(const MachineSpec& spec, Context& ctx) {
  std::unique_ptr<QemuMachine> m(new QemuMachine());
  auto exe = find_program(spec.settings.qemu_binary, "/qemu_binary");
  fs::create_directories(spec.work_dir);
  m->console_ = spec.work_dir / "console.log";
  m->log_ = spec.work_dir / "qemu.log";
  m->qmp_socket_ = spec.work_dir / "qmp.sock";
  if (m->qmp_socket_.string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    // A unix socket path has a ~108 byte limit: use a short directory instead.
    std::string tmpl = "/tmp/lcake-qmp-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw BuildError("cannot create a directory under /tmp for the QMP socket");
    m->socket_dir_ = tmpl;
    m->socket_dir_entry_ = ctx.ledger().intend("path", tmpl, {{"path", tmpl}});
    m->qmp_socket_ = m->socket_dir_ / "qmp.sock";
  }
  try {
    m->start(spec, exe, ctx);
  } catch (...) {
    m->kill(ctx);
    throw;
  }
  return m;
}

void QemuMachine::start(const MachineSpec& spec, const fs::path& exe, Context& ctx) {
  for (int attempt = 1;; ++attempt) {
    port_ = free_local_port();
    std::error_code ec;
    fs::remove(qmp_socket_, ec);
    std::error_code ignored;
    fs::remove(log_, ignored);  // the tail read on failure is this attempt's
    ProcessSpec ps;
    ps.argv = qemu_args(spec, port_, qmp_socket_, console_);
    ps.argv.insert(ps.argv.begin(), exe.string());
    ps.output_file = log_;
    process_ = ctx.spawn(ps);
    ctx.debug("qemu pid " + std::to_string(process_->pid()) + ", ssh forwarded from 127.0.0.1:" +
              std::to_string(port_));
    // The monitor answers only once qemu finished setting up (including hostfwd).
    auto deadline = std::chrono::steady_clock::now() + 30s;
    bool up = false;
    while (!up) {
      if (!running()) break;
      up = qmp_exchange(qmp_socket_, "query-status", 2s);
      if (up) break;
      if (std::chrono::steady_clock::now() > deadline) {
        throw BuildError("qemu did not answer on its monitor within 30 s; see " + log_.string());
      }
      if (ctx.cancel().wait_for(100ms)) throw Cancelled();
    }
    if (up) return;
    auto log = file_tail(log_, 5);
    int code = process_->poll().value_or(-1);
    process_.reset();
    if (log.find("host forwarding") != std::string::npos && attempt < 5) {
      ctx.debug("port " + std::to_string(port_) + " was taken; retrying with another");
      continue;
    }
    while (!log.empty() && log.back() == '\n') log.pop_back();
    for (auto& c : log) c = c == '\n' ? ' ' : c;
    throw BuildError("qemu failed to start (exit " + std::to_string(code) +
                     "): " + log + " (see the qemu settings: memory, accelerator, qemuargs)");
  }
}

QemuMachine::~QemuMachine() {
  process_.reset();  // kills a still running qemu, unless kept
  if (!socket_dir_.empty() && !kept_) {
    std::error_code ec;
    fs::remove_all(socket_dir_, ec);
  }
}

std::string QemuMachine::console_tail(int lines) const { return file_tail(console_, lines); }

std::string QemuMachine::console_report() const {
  auto tail = console_tail(20);
  auto panic = last_line_with(console_, "Kernel panic");
  std::string earlier = !panic.empty() && tail.find(panic) == std::string::npos
                            ? "last kernel panic before the guest rebooted: " + panic + "\n"
                            : "";
  return earlier + "serial console (last 20 lines):\n" + tail;
}

std::string dead_end_kind(const std::string& line) {
  std::string l;
  for (char c : line) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto has = [&](const char* s) { return l.find(s) != std::string::npos; };
  if (has("kernel panic")) return "kernel panic";
  if (has("dropping to a shell")) return "the initramfs dropped to a shell (no root file system)";
  if (has("give root password for maintenance") || has("press enter for maintenance"))
    return "the guest waits for a root password (maintenance shell)";
  if (has("you are in emergency mode") || has("entering emergency mode") || has("you are in rescue mode"))
    return "systemd's emergency mode";
  return "";
}

void QemuMachine::throw_if_exited() {
  auto code = process_ ? process_->poll() : std::optional<int>(exit_code_);
  if (!code) {
    if (dead_end_.empty()) {
      std::ifstream in(console_, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(console_scanned_));
      std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      console_scanned_ += chunk.size();
      console_partial_ += chunk;
      std::size_t start = 0;
      for (std::size_t nl; dead_end_.empty() && (nl = console_partial_.find('\n', start)) != std::string::npos;
           start = nl + 1) {
        auto line = console_partial_.substr(start, nl - start);
        if (auto kind = dead_end_kind(line); !kind.empty()) {
          while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
          dead_end_ = kind + ": " + line;
          dead_end_seen_ = std::chrono::steady_clock::now();
        }
      }
      console_partial_.erase(0, start);
      if (console_partial_.size() > 4096) console_partial_.erase(0, console_partial_.size() - 4096);
      // The "(initramfs)" prompt has no newline after it.
      if (dead_end_.empty() && console_partial_.find("(initramfs)") != std::string::npos) {
        dead_end_ = "the initramfs dropped to a shell: (initramfs)";
        dead_end_seen_ = std::chrono::steady_clock::now();
      }
    }
    // A moment for the lines that explain it (the panic's reason, the ALERT's device).
    if (!dead_end_.empty() && std::chrono::steady_clock::now() - dead_end_seen_ >= 2s)
      throw BuildError("the guest will not boot: " + dead_end_ +
                       "\n(fix the source's kernel, append (root=...) or disk; see the console)\n" +
                       console_report());
    return;
  }
  auto log = file_tail(log_, 1);
  while (!log.empty() && log.back() == '\n') log.pop_back();
  throw BuildError("qemu exited (code " + std::to_string(*code) +
                   ") before the guest was reachable over SSH" + (log.empty() ? "" : ": " + log) + "\n" +
                   console_report());
}

std::unique_ptr<SshCommunicator> QemuMachine::connect(Context& ctx, const std::string& user,
                                                      const fs::path& private_key,
                                                      const std::string& expected_host_key,
                                                      std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ssh_banner_seen(port_)) {
    throw_if_exited();
    if (std::chrono::steady_clock::now() >= deadline)
      throw BuildError("the guest's SSH server did not answer on 127.0.0.1:" + std::to_string(port_) + " within " +
                       std::to_string(timeout.count()) + " s (ssh_timeout)\n" + console_report());
    if (ctx.cancel().wait_for(250ms)) throw Cancelled();
  }
  SshOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.user = user;
  o.private_key = private_key;
  o.expected_host_key = expected_host_key;
  // sshd is up; what is left is key installation races (cloud-init) and the like.
  o.connect_timeout = std::max<std::chrono::seconds>(
      std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now()), 30s);
  o.diagnostics = [this] { return console_report(); };
  o.still_alive = [this] { throw_if_exited(); };
  return ctx.connect_ssh(o);
}

bool QemuMachine::qmp(const std::string& command) {
  return process_ && running() && qmp_exchange(qmp_socket_, command, 5s);
}

bool QemuMachine::wait_exit(std::chrono::milliseconds d) { return !process_ || process_->wait_for(d).has_value(); }

void QemuMachine::kill(Context& ctx) {
  if (process_) process_->kill();
  forget(ctx);
}

void QemuMachine::keep() {
  kept_ = true;
  if (process_) process_->keep();
}

void QemuMachine::forget(Context& ctx) {
  if (process_) {
    auto code = process_->poll();
    if (!code) return;
    exit_code_ = *code;
    process_.reset();  // reaped: its ledger entry goes with it
  }
  if (!socket_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(socket_dir_, ec);
    socket_dir_.clear();
    ctx.ledger().release(socket_dir_entry_);
  }
}

bool shut_down(QemuMachine& machine, std::unique_ptr<SshCommunicator> ssh, std::chrono::seconds timeout,
               Context& ctx) {
  auto first = std::max<std::chrono::seconds>(timeout / 2, std::min<std::chrono::seconds>(timeout, 5s));
  if (ssh) {
    try {
      // The connection may drop as the guest goes down: that is expected.
      ssh->run("if [ \"$(id -u)\" = 0 ]; then poweroff; else sudo -n poweroff; fi",
               [](std::string_view, bool) {}, 15s);
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {
      ctx.debug(std::string("poweroff over SSH: ") + e.what());
    }
    ssh.reset();
    if (machine.wait_exit(first)) return machine.forget(ctx), true;
    ctx.info("guest did not power off within " + std::to_string(first.count()) +
             " s after poweroff over SSH; sending ACPI power-down");
  }
  machine.qmp("system_powerdown");
  if (machine.wait_exit(timeout - first)) return machine.forget(ctx), true;
  ctx.warn("guest did not shut down within " + std::to_string(timeout.count()) +
           " s (shutdown_timeout); killing qemu");
  machine.kill(ctx);
  return false;
}

int run_as_root(SshCommunicator& ssh, const std::string& script, std::string& output, std::chrono::seconds timeout) {
  std::string quoted = "'";
  for (char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  output.clear();
  return ssh.run("if [ \"$(id -u)\" = 0 ]; then sh -c " + quoted + "; else sudo -n sh -c " + quoted + "; fi",
                 [&](std::string_view chunk, bool) { output.append(chunk); }, timeout);
}

void wait_for_cloud_init(SshCommunicator& ssh, std::chrono::seconds timeout, Context& ctx) {
  auto t0 = std::chrono::steady_clock::now();
  ctx.info("waiting for cloud-init to finish");
  std::string out;
  // status --wait exits non-zero on an error (and 2 on a recoverable one in newer releases):
  // the status line says which.
  int rc = ssh.run(
      "command -v cloud-init >/dev/null 2>&1 || { echo 'status: absent'; exit 0; }; "
      "cloud-init status --wait >/dev/null 2>&1; cloud-init status 2>&1",
      [&](std::string_view chunk, bool) { out.append(chunk); }, timeout);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto status = out.substr(0, out.find('\n'));
  if (status.find("status: absent") != std::string::npos) {
    ctx.debug("no cloud-init in the guest: nothing to wait for");
    return;
  }
  if (rc == 0 && (status.find("done") != std::string::npos || status.find("disabled") != std::string::npos)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", secs);
    ctx.info(std::string("cloud-init finished (") + status + ") after " + buf + " s");
    return;
  }
  if (status.find("running") != std::string::npos || status.find("not started") != std::string::npos)
    throw BuildError("cloud-init did not finish within " + std::to_string(timeout.count()) +
                     " s (" + status + "): raise ssh_timeout, or set the source's cloud_init.wait false");
  std::string details, log;
  run_as_root(ssh, "cloud-init status --long 2>&1 | tail -n 15", details, 60s);
  run_as_root(ssh,
              "grep -E 'WARNING|ERROR|Traceback|failed' /var/log/cloud-init.log 2>/dev/null | tail -n 15; "
              "tail -n 10 /var/log/cloud-init-output.log 2>/dev/null",
              log, 60s);
  throw BuildError("cloud-init reported an error (" + status + "): fix the source's cloud_init user_data "
                   "(or the image)\ncloud-init status --long:\n" + details +
                   "cloud-init's log (/var/log/cloud-init.log, cloud-init-output.log):\n" + log);
}

void remove_lcake_key(SshCommunicator& ssh, const std::string& public_key, Context& ctx) {
  std::istringstream fields(public_key);
  std::string type, blob;
  fields >> type >> blob;
  if (blob.empty()) return;
  // cat > keeps each file's owner and mode; a file left empty stays (cloud-init may have made it).
  std::string script =
      "k='" + blob + "'; n=0; for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do "
      "[ -f \"$f\" ] || continue; grep -qF \"$k\" \"$f\" || continue; "
      "grep -vF \"$k\" \"$f\" > \"$f.lcake\" || true; cat \"$f.lcake\" > \"$f\" && rm -f \"$f.lcake\" || exit 1; "
      "n=$((n+1)); done; echo \"$n\"";
  std::string out;
  int rc = run_as_root(ssh, script, out, 60s);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  // The count is the last line (sudo may warn first, e.g. "unable to resolve host").
  if (rc == 0 && out.rfind('\n') != std::string::npos) out = out.substr(out.rfind('\n') + 1);
  if (rc != 0)
    throw BuildError("cannot remove lcake's build key from the image's authorized_keys (exit " + std::to_string(rc) +
                     "): " + out + " (the SSH user needs root or passwordless sudo)");
  ctx.info("removed lcake's build key from " + out + " authorized_keys file(s)");
}

void generalize_guest(SshCommunicator& ssh, Context& ctx) {
  ctx.info("generalizing the image: machine-id, cloud-init state, SSH host keys, logs, shell history");
  // Each item is documented in docs/backends/qemu.md ("generalize").
  const std::string script = R"(set -u
# machine-id: empty, so systemd makes a new one on the first boot of each machine
if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi
rm -f /var/lib/dbus/machine-id
[ -e /etc/machine-id ] && [ -d /var/lib/dbus ] && ln -s /etc/machine-id /var/lib/dbus/machine-id
# cloud-init: instance state, its logs and the seed it was given (the build's user data)
if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs --seed >/dev/null 2>&1 || true; fi
rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem /var/lib/cloud/seed
rm -f /var/log/cloud-init.log /var/log/cloud-init-output.log
# SSH host keys: every machine gets its own on its first boot (cloud-init, or sshd-keygen)
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
# logs: the journal and rotated or plain log files (files are truncated, not removed)
rm -rf /var/log/journal/*
for rotated in '*.gz' '*.[0-9]' '*.old'; do find /var/log -type f -name "$rotated" -exec rm -f {} \; 2>/dev/null; done
find /var/log -type f -exec sh -c ': > "$1"' _ {} \; 2>/dev/null
# shell history of root and the users under /home
rm -f /root/.bash_history /root/.ash_history /root/.sh_history /home/*/.bash_history /home/*/.ash_history /home/*/.sh_history
# temporary files
rm -rf /tmp/* /var/tmp/* 2>/dev/null
sync
echo generalized
)";
  std::string out;
  int rc = run_as_root(ssh, script, out, 300s);
  if (rc != 0 || out.find("generalized") == std::string::npos)
    throw BuildError("generalizing the image failed (exit " + std::to_string(rc) + "): " + out +
                     " (the SSH user needs root or passwordless sudo)");
}

std::string BootedGuest::ssh_command() const {
  return "ssh -i " + private_key.string() + " -p " + std::to_string(machine ? machine->ssh_port() : 0) +
         " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null " + user + "@127.0.0.1";
}

std::string BootedGuest::keep() {
  ssh.reset();
  if (!machine || !machine->running()) {
    return machine ? "the guest has stopped; its serial console: " + machine->console_file().string() : "";
  }
  machine->keep();
  return "the guest is still running, get in with: " + ssh_command() + "\n  serial console: " +
         machine->console_file().string() + "\n  `lcake gc` stops it and deletes its files";
}

static std::string random_id() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

BootedGuest boot_guest(MachineSpec spec, Context& ctx) {
  BootedGuest g;
  auto user = spec.guest.ssh_user.empty() ? spec.settings.ssh_user : spec.guest.ssh_user;
  fs::path private_key;
  if (spec.guest.cloud_init) {
    auto key_dir = spec.work_dir / "ssh";
    fs::create_directories(key_dir);
    g.public_key = ctx.generate_ssh_key(key_dir);
    private_key = key_dir / "id_ed25519";
    spec.seed = spec.work_dir / "seed.img";
    SeedContent seed{g.public_key, user, spec.instance_id.empty() ? "lcake-" + random_id() : spec.instance_id,
                     spec.guest.user_data, spec.guest.meta_data, spec.guest.network_config};
    write_nocloud_seed(spec.seed, seed, ctx);
  } else {
    if (spec.guest.ssh_private_key.empty())
      throw InputError("source has cloud_init false but no ssh_private_key: set one the image accepts, "
                       "or enable cloud_init");
    private_key = spec.guest.ssh_private_key;
  }
  g.private_key = fs::absolute(private_key);
  g.user = user;
  g.machine = QemuMachine::launch(spec, ctx);
  try {
    auto t0 = std::chrono::steady_clock::now();
    g.ssh = g.machine->connect(ctx, user, private_key, spec.guest.host_key, spec.settings.ssh_timeout);
    if (spec.guest.cloud_init && spec.guest.cloud_init_wait) {
      auto left = spec.settings.ssh_timeout -
                  std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0);
      wait_for_cloud_init(*g.ssh, std::max<std::chrono::seconds>(left, 60s), ctx);
    }
  } catch (...) {
    g.machine->kill(ctx);
    throw;
  }
  return g;
}

}  // namespace lcake::qemu
