#include "qemu_machine.h"

#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

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
  process_.reset();  // kills a still running qemu
  if (!socket_dir_.empty()) {
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

void QemuMachine::throw_if_exited() {
  auto code = process_ ? process_->poll() : std::optional<int>(exit_code_);
  if (!code) return;
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
    write_nocloud_seed(spec.seed, {g.public_key, user, "lcake-" + random_id()}, ctx);
  } else {
    if (spec.guest.ssh_private_key.empty())
      throw InputError("source has cloud_init false but no ssh_private_key: set one the image accepts, "
                       "or enable cloud_init");
    private_key = spec.guest.ssh_private_key;
  }
  g.machine = QemuMachine::launch(spec, ctx);
  try {
    g.ssh = g.machine->connect(ctx, user, private_key, spec.guest.host_key, spec.settings.ssh_timeout);
  } catch (...) {
    g.machine->kill(ctx);
    throw;
  }
  return g;
}

}  // namespace lcake::qemu
