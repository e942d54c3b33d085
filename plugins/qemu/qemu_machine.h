// One QEMU guest: launch (ledgered, on a free localhost port forwarded to the
// guest's sshd), QMP for power-down, serial console to a file, and the way in
// over SSH. Shared by the builder and the verifier.
#pragma once
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "host_tools.h"
#include "lcake/context.hpp"
#include "qemu_settings.h"

namespace lcake::qemu {

struct MachineSpec {
  MachineSettings settings;
  std::string accelerator;  // resolved: "kvm" | "tcg"
  std::filesystem::path disk;
  std::string disk_format = "qcow2";
  std::filesystem::path seed;  // NoCloud seed image; empty: none
  GuestFacts guest;            // kernel/initrd/append
  std::filesystem::path work_dir;  // QMP socket, console and qemu log live here
  std::string name = "lcake";
  // cloud-init's instance-id in the seed; stable for one build (a reboot inside it, a retry of
  // the same key) so per-instance modules run once. Empty: a random one.
  std::string instance_id;
};

// The qemu command line for `spec` (everything but the port-specific -nic and the paths of
// the QMP socket and console).
std::vector<std::string> qemu_args(const MachineSpec& spec, int ssh_port,
                                   const std::filesystem::path& qmp_socket,
                                   const std::filesystem::path& console);

class QemuMachine {
 public:
  // Starts qemu and waits until its monitor answers. Records the process in the
  // ledger before spawning it; retries with another port if qemu cannot bind one.
  static std::unique_ptr<QemuMachine> launch(const MachineSpec& spec, Context& ctx);
  ~QemuMachine();  // kills qemu if it still runs

  int ssh_port() const { return port_; }
  bool running() { return process_ && !process_->poll(); }
  const std::filesystem::path& console_file() const { return console_; }
  std::string console_tail(int lines = 20) const;
  // "serial console (last 20 lines):\n..." plus the last kernel panic when the
  // guest has rebooted past it (a panic=N reboot loop would hide it).
  std::string console_report() const;
  // Throws BuildError (with the console tail) when qemu has exited, or when the serial
  // console shows a dead end the guest will not boot out of (see dead_end_line).
  void throw_if_exited();

  // Logs in over SSH, retrying while the guest boots (up to `timeout`).
  std::unique_ptr<SshCommunicator> connect(Context& ctx, const std::string& user,
                                           const std::filesystem::path& private_key,
                                           const std::string& expected_host_key,
                                           std::chrono::seconds timeout);

  // Sends a QMP command ("system_powerdown", "quit"); false when qemu did not answer.
  bool qmp(const std::string& command);
  // Waits for qemu to exit; true if it did within `d`. Throws Cancelled (after killing it).
  bool wait_exit(std::chrono::milliseconds d);
  // Kills qemu if needed and releases what it held.
  void kill(Context& ctx);
  // Releases what qemu held (the short QMP socket directory) once it has exited on its own.
  void forget(Context& ctx);
  // --on-error abort: qemu keeps running after this object is gone; its ledger entries
  // (the process, the socket directory) stay open for `lcake gc`.
  void keep();

 private:
  QemuMachine() = default;
  void start(const MachineSpec& spec, const std::filesystem::path& exe, Context& ctx);
  std::unique_ptr<Process> process_;  // Context::spawn: ledgered, own process group; reset once reaped
  int exit_code_ = -1;                 // once process_ is reset
  int port_ = 0;
  std::filesystem::path qmp_socket_, console_, log_;
  std::filesystem::path socket_dir_;  // under /tmp when work_dir is too long for a socket path
  std::int64_t socket_dir_entry_ = 0;
  bool kept_ = false;
  // Dead-end scan of the console: bytes read so far, the unfinished last line, the first
  // dead-end line seen and when (the error waits a moment for the lines that follow it).
  std::uintmax_t console_scanned_ = 0;
  std::string console_partial_, dead_end_;
  std::chrono::steady_clock::time_point dead_end_seen_{};
};

// The console line `line` is one a booting guest never gets past: a kernel panic, the
// initramfs dropping to a shell (root device missing), sulogin's "Give root password for
// maintenance", systemd's emergency mode. Returns what it is, "" otherwise.
std::string dead_end_kind(const std::string& line);

// Powers the guest off: `poweroff` over SSH (connection drop ignored), then QMP
// system_powerdown, then kill. Returns true when it exited cleanly within `timeout`.
bool shut_down(QemuMachine& machine, std::unique_ptr<SshCommunicator> ssh,
               std::chrono::seconds timeout, Context& ctx);

// A booted guest one can SSH into: seed made, qemu launched, SSH connected.
struct BootedGuest {
  std::unique_ptr<QemuMachine> machine;  // declared first: outlives ssh
  std::unique_ptr<SshCommunicator> ssh;
  std::string public_key;  // the per-boot key installed through the seed
  std::filesystem::path private_key;  // the key it logs in with
  std::string user;                   // ... as this user
  // `ssh ...` that gets into the guest as lcake does (for --on-error abort).
  std::string ssh_command() const;
  // --on-error abort: leaves the guest running; returns how to get in.
  std::string keep();
};

// Runs `script` as root over `ssh` (sudo -n when the login user is not root); returns its
// exit code, output in `output`.
int run_as_root(SshCommunicator& ssh, const std::string& script, std::string& output,
                std::chrono::seconds timeout);

// Waits for cloud-init to finish (`cloud-init status --wait`); a guest without cloud-init
// passes. BuildError with cloud-init's status and log lines when it reports an error.
void wait_for_cloud_init(SshCommunicator& ssh, std::chrono::seconds timeout, Context& ctx);

// Removes the lines holding `public_key` from every authorized_keys file of root and of the
// users under /home (cloud-init put it there from lcake's seed). BuildError when it cannot.
void remove_lcake_key(SshCommunicator& ssh, const std::string& public_key, Context& ctx);

// Generalizes the image (docs/backends/qemu.md, "generalize"): machine-id, cloud-init state,
// SSH host keys, logs, shell history, the seed's user data.
void generalize_guest(SshCommunicator& ssh, Context& ctx);

// Generates a per-boot key and seed (when spec.guest.cloud_init), launches, connects,
// and waits for cloud-init (spec.guest.cloud_init_wait).
// On failure nothing is left running and the ledger entries are released.
BootedGuest boot_guest(MachineSpec spec, Context& ctx);

}  // namespace lcake::qemu
