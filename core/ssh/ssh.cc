#include "ssh/ssh.h"

#include "ssh/server_probe.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

namespace lcake::core {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A handshake or login that may succeed on a later try (sshd still starting, keys not yet
// installed by the guest's boot scripts).
struct RetryableError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void init_libssh_once() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

// libssh hands out strings it allocated; this frees them.
std::string take_ssh_string(char* s) {
  std::string out = s ? s : "";
  ssh_string_free_char(s);
  return out;
}

std::string key_line(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) return "";
  return std::string(ssh_key_type_to_char(ssh_key_type(key))) + " " + take_ssh_string(b64);
}

// "type base64 [comment]" -> "type base64", so comments never cause a mismatch.
std::string without_comment(const std::string& line) {
  std::istringstream in(line);
  std::string type, b64;
  in >> type >> b64;
  return b64.empty() ? type : type + " " + b64;
}

// Which host key algorithms to ask for, so the server presents the key we expect.
std::string hostkey_algorithms_for(const std::string& key) {
  std::string type = key.substr(0, key.find(' '));
  if (type == "ssh-rsa") return "rsa-sha2-512,rsa-sha2-256,ssh-rsa";
  return type;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string sftp_error_text(sftp_session sftp, ssh_session session) {
  switch (sftp_get_error(sftp)) {
    case SSH_FX_NO_SUCH_FILE: return "no such file";
    case SSH_FX_PERMISSION_DENIED: return "permission denied";
    case SSH_FX_NO_SUCH_PATH: return "no such directory";
    case SSH_FX_FILE_ALREADY_EXISTS: return "file exists";
    case SSH_FX_WRITE_PROTECT: return "read-only file system";
    case SSH_FX_NO_MEDIA: return "no media";
    case SSH_FX_FAILURE: return "failure (disk full, or a directory in the way?)";
    default: return ssh_get_error(session);
  }
}

class LibsshCommunicator : public lcake::SshCommunicator {
 public:
  LibsshCommunicator(lcake::SshOptions options, const lcake::CancelToken& cancel,
                     std::function<void(std::string_view)> debug_log)
      : options_(std::move(options)), cancel_(cancel), log_(std::move(debug_log)) {
    if (!options_.expected_host_key.empty()) host_key_ = without_comment(options_.expected_host_key);
  }
  ~LibsshCommunicator() override {
    disconnect();
    if (private_key_) ssh_key_free(private_key_);
  }

  std::string host_key() const override { return host_key_; }

  void connect_with_retry() {
    if (!private_key_ && ssh_pki_import_privkey_file(options_.private_key.c_str(), nullptr, nullptr,
                                                     nullptr, &private_key_) != SSH_OK)
      throw lcake::BuildError("cannot read SSH private key " + options_.private_key.string() +
                              ": expected an unencrypted OpenSSH private key file");
    const auto deadline = Clock::now() + options_.connect_timeout;
    // An error from a server that answered (say, the key refused) explains more than the
    // waiting that may follow it, so that is the one reported.
    std::string last_error = "no attempt made", last_server_error;
    auto tick = [&] {
      cancel_.throw_if_cancelled();
      if (options_.still_alive) options_.still_alive();
    };
    for (int attempt = 1;; ++attempt) {
      tick();
      std::string error;
      try {
        connect_once(connect_when_talking(options_.host, options_.port, deadline, tick));
        log("ssh: connected to " + where() + " (attempt " + std::to_string(attempt) + ")");
        return;
      } catch (const ServerSilent& e) {
        error = e.what();
      } catch (const RetryableError& e) {
        error = last_server_error = e.what();
      }
      if (error != last_error) log("ssh: attempt " + std::to_string(attempt) + " to " + where() + ": " + error);
      last_error = error;
      if (Clock::now() >= deadline) break;
      if (cancel_.wait_for(250ms)) throw lcake::Cancelled();
    }
    if (!last_server_error.empty()) last_error = last_server_error;
    std::string message = "SSH connection to " + where() + " failed after " +
                          std::to_string(options_.connect_timeout.count()) + "s: " + last_error;
    if (options_.diagnostics) {
      std::string diag = options_.diagnostics();
      if (!diag.empty()) message += "\n" + diag;
    }
    throw lcake::BuildError(message);
  }

  int run(const std::string& command, const OutputFn& on_output,
          std::chrono::seconds timeout) override {
    return drain(open_exec(command), on_output, timeout);
  }

  void upload(const std::filesystem::path& local, const std::string& remote) override {
    const std::string what = "upload of " + local.string() + " to " + where() + ":" + remote;
    std::ifstream in(local, std::ios::binary);
    struct stat st {};
    if (!in || ::stat(local.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      throw lcake::BuildError(what + " failed: cannot read the local file");
    const mode_t mode = st.st_mode & 07777;
    std::vector<char> buf(32 * 1024);  // sftp_write sends one packet per call: keep it small
    if (sftp_session sftp = sftp_or_null()) {
      sftp_file f = sftp_open(sftp, remote.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
      if (!f) throw lcake::BuildError(what + " failed: " + sftp_error_text(sftp, session_));
      while (in) {
        in.read(buf.data(), buf.size());
        std::size_t n = in.gcount();
        if (n == 0) break;
        if (cancel_.cancelled()) {
          sftp_close(f);
          throw lcake::Cancelled();
        }
        if (sftp_write(f, buf.data(), n) != static_cast<ssize_t>(n)) {
          std::string err = sftp_error_text(sftp, session_);
          sftp_close(f);
          throw lcake::BuildError(what + " failed: " + err);
        }
      }
      if (sftp_close(f) != SSH_NO_ERROR || sftp_chmod(sftp, remote.c_str(), mode) != 0)
        throw lcake::BuildError(what + " failed: " + sftp_error_text(sftp, session_));
      return;
    }
    // No SFTP subsystem: stream through the shell.
    char mode_text[8];
    snprintf(mode_text, sizeof mode_text, "%04o", static_cast<unsigned>(mode));
    ssh_channel ch = open_exec("cat > " + shell_quote(remote) + " && chmod " + mode_text + " " +
                               shell_quote(remote));
    while (in) {
      in.read(buf.data(), buf.size());
      std::size_t n = in.gcount();
      if (n == 0) break;
      if (cancel_.cancelled()) {
        abort_channel(ch);
        throw lcake::Cancelled();
      }
      if (ssh_channel_write(ch, buf.data(), n) != static_cast<int>(n)) {
        std::string err = ssh_get_error(session_);
        abort_channel(ch);
        throw lcake::BuildError(what + " failed: " + err);
      }
    }
    ssh_channel_send_eof(ch);
    finish_transfer_channel(ch, what, nullptr);
  }

  void download(const std::string& remote, const std::filesystem::path& local) override {
    const std::string what = "download of " + where() + ":" + remote + " to " + local.string();
    std::ofstream out(local, std::ios::binary | std::ios::trunc);
    if (!out) throw lcake::BuildError(what + " failed: cannot write the local file");
    try {
      if (sftp_session sftp = sftp_or_null()) {
        sftp_file f = sftp_open(sftp, remote.c_str(), O_RDONLY, 0);
        if (!f) throw lcake::BuildError(what + " failed: " + sftp_error_text(sftp, session_));
        try {
          sftp_download(sftp, f, out);
        } catch (const lcake::BuildError& e) {
          sftp_close(f);
          throw lcake::BuildError(what + " failed: " + e.what());
        } catch (...) {
          sftp_close(f);
          throw;
        }
        sftp_close(f);
      } else {
        ssh_channel ch = open_exec("cat " + shell_quote(remote));
        finish_transfer_channel(ch, what, &out);
      }
      out.close();
      if (!out) throw lcake::BuildError(what + " failed: cannot write the local file");
    } catch (...) {
      out.close();
      std::error_code ec;
      std::filesystem::remove(local, ec);  // no half-written files left behind
      throw;
    }
  }

 private:
  std::string where() const {
    return options_.user + "@" + options_.host + ":" + std::to_string(options_.port);
  }
  void log(const std::string& m) const {
    if (log_) log_(m);
  }

  // Runs the SSH handshake and authentication on `fd`, a socket the server is talking on.
  void connect_once(int fd) {
    disconnect();
    init_libssh_once();
    session_ = ssh_new();
    if (!session_) {
      close(fd);
      throw lcake::BuildError("libssh: out of memory creating a session");
    }
    const unsigned port = options_.port;
    const int verbosity = SSH_LOG_NOLOG;
    const bool process_config = false;  // never read ~/.ssh/config or /etc/ssh/ssh_config
    // The server is talking, so from here on slowness is an emulated guest's, not absence.
    const long timeout_s = 60;
    ssh_options_set(session_, SSH_OPTIONS_HOST, options_.host.c_str());
    ssh_options_set(session_, SSH_OPTIONS_PORT, &port);
    ssh_options_set(session_, SSH_OPTIONS_USER, options_.user.c_str());
    ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &timeout_s);
    ssh_options_set(session_, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
    ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &process_config);
    ssh_options_set(session_, SSH_OPTIONS_FD, &fd);
    // known_hosts files would reorder host key algorithms; we pin keys ourselves.
    ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
    ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    if (!host_key_.empty())
      ssh_options_set(session_, SSH_OPTIONS_HOSTKEYS, hostkey_algorithms_for(host_key_).c_str());

    if (ssh_connect(session_) != SSH_OK) throw RetryableError(ssh_get_error(session_));
    ssh_key server_key = nullptr;
    if (ssh_get_server_publickey(session_, &server_key) != SSH_OK)
      throw RetryableError(std::string("no host key: ") + ssh_get_error(session_));
    std::string seen = key_line(server_key);
    ssh_key_free(server_key);
    if (!host_key_.empty() && seen != host_key_) {
      disconnect();
      throw lcake::BuildError("SSH host key mismatch for " + options_.host + ":" +
                              std::to_string(options_.port) + ": expected " + host_key_ + ", got " +
                              seen + " (another server on this port, or the image's host key changed)");
    }
    host_key_ = seen;
    int rc = ssh_userauth_publickey(session_, nullptr, private_key_);
    if (rc != SSH_AUTH_SUCCESS)
      throw RetryableError("publickey authentication as " + options_.user + " with " +
                           options_.private_key.string() + " was refused" +
                           (rc == SSH_AUTH_ERROR ? std::string(": ") + ssh_get_error(session_) : ""));
    // Operations after the handshake may be slow on an emulated guest.
    const long op_timeout = 120;
    ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &op_timeout);
  }

  // Reconnects (enforcing the recorded host key) if the session dropped, e.g. after a reboot.
  void ensure_connected() {
    if (session_ && ssh_is_connected(session_)) return;
    log("ssh: session to " + where() + " is gone; reconnecting");
    connect_with_retry();
  }

  ssh_channel open_exec(const std::string& command) {
    ensure_connected();
    for (int tries = 1;; ++tries) {
      cancel_.throw_if_cancelled();
      ssh_channel ch = ssh_channel_new(session_);
      if (ch && ssh_channel_open_session(ch) == SSH_OK && ssh_channel_request_exec(ch, command.c_str()) == SSH_OK)
        return ch;
      std::string err = ssh_get_error(session_);
      if (ch) ssh_channel_free(ch);
      // libssh notices a dropped connection (guest rebooted) only when it next uses it.
      if (tries == 1 && !ssh_is_connected(session_)) {
        log("ssh: connection to " + where() + " dropped (" + err + "); reconnecting");
        connect_with_retry();
        continue;
      }
      throw lcake::BuildError("cannot start a command on " + where() + ": " + err);
    }
  }

  // Reads a transfer command's stdout into `out` (if any) and its stderr for the error text.
  void finish_transfer_channel(ssh_channel ch, const std::string& what, std::ofstream* out) {
    std::string err_text;
    int status = -1;
    try {
      status = drain(ch, [&](std::string_view chunk, bool is_stderr) {
        if (!is_stderr && out) out->write(chunk.data(), chunk.size());
        else if (is_stderr && err_text.size() < 400) err_text.append(chunk);
      }, std::chrono::seconds(0));
    } catch (const lcake::BuildError& e) {
      throw lcake::BuildError(what + " failed: " + e.what());
    }
    if (status != 0) {
      while (!err_text.empty() && (err_text.back() == '\n' || err_text.back() == '\r')) err_text.pop_back();
      std::replace(err_text.begin(), err_text.end(), '\n', ' ');
      throw lcake::BuildError(what + " failed: exit status " + std::to_string(status) +
                              (err_text.empty() ? "" : ": " + err_text));
    }
  }

  // Streams a started command's output until it ends; returns its exit status.
  int drain(ssh_channel ch, const OutputFn& on_output, std::chrono::seconds timeout) {
    const auto start = Clock::now();
    std::vector<char> buf(64 * 1024);
    bool eof[2] = {false, false};
    while (!eof[0] || !eof[1]) {
      if (cancel_.cancelled()) {
        abort_channel(ch);
        throw lcake::Cancelled();
      }
      if (timeout.count() > 0 && Clock::now() - start > timeout) {
        abort_channel(ch);
        throw lcake::BuildError("command timed out after " + std::to_string(timeout.count()) +
                                "s on " + where());
      }
      bool got = false;
      for (int is_stderr = 0; is_stderr < 2; ++is_stderr) {
        if (eof[is_stderr]) continue;
        int n = ssh_channel_read_nonblocking(ch, buf.data(), buf.size(), is_stderr);
        if (n == SSH_EOF) {
          eof[is_stderr] = true;
        } else if (n < 0) {
          std::string err = ssh_get_error(session_);
          abort_channel(ch);
          throw lcake::BuildError("SSH connection to " + where() + " lost during a command: " + err);
        } else if (n > 0) {
          got = true;
          if (on_output) on_output(std::string_view(buf.data(), n), is_stderr == 1);
        }
      }
      // Wait a little for more output; stdout wakes us at once, stderr within 50 ms.
      if (!got && !(eof[0] && eof[1])) ssh_channel_poll_timeout(ch, 50, 0);
    }
    int status = ssh_channel_get_exit_status(ch);
    close_channel(ch);
    if (status < 0)
      throw lcake::BuildError("command on " + where() +
                              " ended without an exit status (killed by a signal, or the connection dropped)");
    return status;
  }

  void close_channel(ssh_channel ch) {
    ssh_channel_send_eof(ch);
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
  // Best effort: ask the server to kill the command (OpenSSH honours it), then close.
  void abort_channel(ssh_channel ch) {
    ssh_channel_request_send_signal(ch, "KILL");
    close_channel(ch);
  }

  // Synchronous reads, one round trip per 32 KiB. libssh 0.10's pipelined reads
  // (sftp_async_read_begin/sftp_async_read) returned wrong bytes from the
  // guests' sftp-server here (a 300000-byte file arrived as 327680 bytes), and
  // downloads are small (verify tables), so correctness wins over speed.
  void sftp_download(sftp_session sftp, sftp_file f, std::ofstream& out) {
    std::vector<char> buf(32 * 1024);
    for (;;) {
      cancel_.throw_if_cancelled();
      ssize_t n = sftp_read(f, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) throw lcake::BuildError(sftp_error_text(sftp, session_));
      out.write(buf.data(), n);
    }
  }

  // The SFTP session, opened on first use; null when the server offers no SFTP.
  sftp_session sftp_or_null() {
    ensure_connected();
    if (sftp_checked_) return sftp_;
    sftp_checked_ = true;
    sftp_ = sftp_new(session_);
    if (sftp_ && sftp_init(sftp_) != SSH_OK) {
      sftp_free(sftp_);
      sftp_ = nullptr;
    }
    if (!sftp_) {
      log("ssh: " + where() + " offers no SFTP; transferring files through the shell");
      // A refused subsystem can leave the session unusable on some servers; check.
      if (!ssh_is_connected(session_)) connect_with_retry();
    }
    return sftp_;
  }

  void disconnect() {
    if (sftp_) sftp_free(sftp_);
    sftp_ = nullptr;
    sftp_checked_ = false;
    if (session_) {
      // libssh closes a socket passed with SSH_OPTIONS_FD itself only after EOF or an error
      // (then ssh_get_fd is invalid); a plain disconnect leaves it open for us to close.
      socket_t fd = ssh_get_fd(session_);
      ssh_disconnect(session_);
      ssh_free(session_);
      if (fd != SSH_INVALID_SOCKET) close(fd);
    }
    session_ = nullptr;
  }

 private:
  lcake::SshOptions options_;
  const lcake::CancelToken& cancel_;
  std::function<void(std::string_view)> log_;
  std::string host_key_;
  ssh_key private_key_ = nullptr;
  ssh_session session_ = nullptr;
  sftp_session sftp_ = nullptr;
  bool sftp_checked_ = false;
};

void write_file_with_mode(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw lcake::BuildError("cannot write " + path.string() + ": " + strerror(errno));
  ::fchmod(fd, mode);  // an existing file keeps its old mode otherwise
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) throw lcake::BuildError("cannot write " + path.string() + ": " + strerror(errno));
}

}  // namespace

std::unique_ptr<lcake::SshCommunicator> connect_ssh(const lcake::SshOptions& options,
                                                    const lcake::CancelToken& cancel,
                                                    std::function<void(std::string_view)> debug_log) {
  auto comm = std::make_unique<LibsshCommunicator>(options, cancel, std::move(debug_log));
  comm->connect_with_retry();
  return comm;
}

std::string generate_ed25519_key(const std::filesystem::path& dir) {
  init_libssh_once();
  ssh_key key = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
    throw lcake::BuildError("libssh could not generate an ed25519 key");
  char* priv = nullptr;
  int rc = ssh_pki_export_privkey_base64(key, nullptr, nullptr, nullptr, &priv);
  std::string pub = key_line(key);
  ssh_key_free(key);
  if (rc != SSH_OK || pub.empty()) throw lcake::BuildError("libssh could not export an ed25519 key");
  std::string priv_text = priv;
  explicit_bzero(priv, priv_text.size());
  ssh_string_free_char(priv);
  std::filesystem::create_directories(dir);
  try {
    write_file_with_mode(dir / "id_ed25519", priv_text, 0600);
  } catch (...) {
    explicit_bzero(priv_text.data(), priv_text.size());
    throw;
  }
  explicit_bzero(priv_text.data(), priv_text.size());
  pub += " lcake";
  write_file_with_mode(dir / "id_ed25519.pub", pub + "\n", 0644);
  return pub;
}

}  // namespace lcake::core
