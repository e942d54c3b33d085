// Talks to real servers: OpenSSH's sshd and dropbear, started here on 127.0.0.1
// with throwaway host keys and configs, and stopped by PID.
#include "ssh/ssh.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <iostream>

#include "test_support.h"
#include "lcake/testing.hpp"
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using lcake::test::TempDir;
using TestCancel = lcake::testing::ManualCancel;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_file(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string first_two_fields(const std::string& line) {
  std::istringstream in(line);
  std::string a, b;
  in >> a >> b;
  return a + " " + b;
}

using lcake::test::free_port;

bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

// A server child process, stopped by PID when this goes out of scope.
struct Server {
  pid_t pid = -1;
  Server() = default;
  Server(const std::vector<std::string>& argv, const fs::path& log) { start(argv, log); }
  void start(const std::vector<std::string>& argv, const fs::path& log) {
    pid = fork();
    if (pid == 0) {
      FILE* f = fopen(log.c_str(), "w");
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  Server(const Server&) = delete;
  ~Server() { stop(); }
  void stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    pid = -1;
  }
};

bool wait_port(int port) {
  for (int i = 0; i < 100; ++i) {
    if (port_open(port)) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string current_user() { return getpwuid(getuid())->pw_name; }

// A throwaway OpenSSH sshd: its own host key and authorized_keys in a temp dir.
struct Sshd {
  TempDir dir;
  int port = free_port();
  std::string client_pub;  // from generate_ed25519_key
  std::string host_pub;
  Server server;

  explicit Sshd(bool with_sftp = true, std::chrono::milliseconds delay = 0ms) {
    client_pub = lcake::core::generate_ed25519_key(dir.path / "client");
    write_file(dir.path / "authorized_keys", client_pub + "\n");
    REQUIRE(sh("ssh-keygen -q -t ed25519 -N '' -f " + (dir.path / "host_ed25519").string()) == 0);
    host_pub = first_two_fields(read_file(dir.path / "host_ed25519.pub"));
    std::ofstream cfg(dir.path / "sshd_config");
    cfg << "Port " << port << "\nListenAddress 127.0.0.1\n"
        << "HostKey " << (dir.path / "host_ed25519").string() << "\n"
        << "AuthorizedKeysFile " << (dir.path / "authorized_keys").string() << "\n"
        << "StrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\n"
        << "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n";
    if (with_sftp) cfg << "Subsystem sftp /usr/lib/openssh/sftp-server\n";
    cfg.close();
    std::error_code ec;
    fs::create_directories("/run/sshd", ec);  // sshd (as root) insists on its privsep dir
    if (delay == 0ms) REQUIRE_MESSAGE(start(), read_file(dir.path / "sshd.log"));
  }
  // No doctest assertions here: it also runs on a helper thread.
  bool start() {
    server.start({"/usr/sbin/sshd", "-D", "-e", "-f", (dir.path / "sshd_config").string()},
                 dir.path / "sshd.log");
    return wait_port(port);
  }
  lcake::SshOptions options() const {
    lcake::SshOptions o;
    o.port = port;
    o.user = current_user();
    o.private_key = dir.path / "client" / "id_ed25519";
    o.connect_timeout = 10s;
    return o;
  }
};

std::vector<std::string> debug_lines;
std::mutex debug_mu;
auto debug_log = [](std::string_view m) {
  std::lock_guard lock(debug_mu);
  debug_lines.emplace_back(m);
};

struct Captured {
  std::string out, err;
  lcake::Communicator::OutputFn fn() {
    return [this](std::string_view c, bool is_err) { (is_err ? err : out).append(c); };
  }
};

std::string random_bytes(std::size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void round_trip_files(lcake::SshCommunicator& c, const fs::path& tmp) {
  std::string data = random_bytes(5 * 1024 * 1024);
  write_file(tmp / "big.bin", data);
  c.upload(tmp / "big.bin", (tmp / "remote-big.bin").string());
  c.download((tmp / "remote-big.bin").string(), tmp / "back.bin");
  CHECK(read_file(tmp / "back.bin") == data);

  write_file(tmp / "script.sh", "#!/bin/sh\necho script-ran\n");
  fs::permissions(tmp / "script.sh", fs::perms(0755));
  c.upload(tmp / "script.sh", (tmp / "remote script.sh").string());
  Captured cap;
  CHECK(c.run("stat -c %a '" + (tmp / "remote script.sh").string() + "' && '" +
                  (tmp / "remote script.sh").string() + "'",
              cap.fn(), 10s) == 0);
  CHECK(cap.out == "755\nscript-ran\n");

  // Errors name both paths.
  try {
    c.download("/nonexistent/file", tmp / "never");
    FAIL("download of a missing file succeeded");
  } catch (const lcake::BuildError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/file") != std::string::npos);
    CHECK(std::string(e.what()).find((tmp / "never").string()) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(tmp / "never"));
}

}  // namespace

TEST_CASE("generate_ed25519_key writes an OpenSSH key pair that ssh-keygen reads") {
  TempDir t;
  std::string pub = lcake::core::generate_ed25519_key(t.path);
  CHECK(pub.rfind("ssh-ed25519 AAAA", 0) == 0);
  CHECK(pub.substr(pub.size() - 6) == " lcake");
  CHECK(read_file(t.path / "id_ed25519.pub") == pub + "\n");
  CHECK(read_file(t.path / "id_ed25519").rfind("-----BEGIN OPENSSH PRIVATE KEY-----", 0) == 0);
  CHECK((fs::status(t.path / "id_ed25519").permissions() & fs::perms::all) == fs::perms(0600));
  REQUIRE(sh("ssh-keygen -y -f " + (t.path / "id_ed25519").string() + " > " +
             (t.path / "derived.pub").string()) == 0);
  CHECK(first_two_fields(read_file(t.path / "derived.pub")) == first_two_fields(pub));
}

TEST_CASE("commands against OpenSSH sshd: exit codes, streams, timeout, cancel") {
  Sshd sshd;
  TestCancel cancel;
  auto c = lcake::core::connect_ssh(sshd.options(), cancel, debug_log);
  CHECK(c->host_key() == sshd.host_pub);

  Captured a;
  CHECK(c->run("echo out; echo err >&2", a.fn(), 10s) == 0);
  CHECK(a.out == "out\n");
  CHECK(a.err == "err\n");
  Captured b;
  CHECK(c->run("echo x; exit 3", b.fn(), 10s) == 3);
  CHECK(c->run("true", nullptr, 0s) == 0);

  SUBCASE("output streams while the command runs") {
    auto start = Clock::now();
    std::vector<double> when;
    c->run("echo first; sleep 2; echo second", [&](std::string_view, bool) {
      when.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }, 10s);
    REQUIRE(when.size() >= 2);
    CHECK(when.front() < 1.5);  // generous: the machine may be busy
    CHECK(when.back() >= 1.9);
  }
  SUBCASE("a command running past its timeout fails") {
    auto start = Clock::now();
    try {
      c->run("sleep 30", nullptr, 1s);
      FAIL("no timeout");
    } catch (const lcake::BuildError& e) {
      CHECK(std::string(e.what()).find("command timed out after 1s") != std::string::npos);
    }
    CHECK(Clock::now() - start < 5s);
    CHECK(c->run("echo still usable", nullptr, 10s) == 0);
  }
  SUBCASE("cancel from another thread stops a running command") {
    auto start = Clock::now();
    std::thread t([&] {
      std::this_thread::sleep_for(500ms);
      cancel.fire();
    });
    CHECK_THROWS_AS(c->run("sleep 30", nullptr, 0s), lcake::Cancelled);
    t.join();
    CHECK(Clock::now() - start < 5s);
  }
}

TEST_CASE("a dropped connection is re-established, with the host key enforced") {
  Sshd sshd;
  TestCancel cancel;
  auto c = lcake::core::connect_ssh(sshd.options(), cancel, debug_log);
  // Kill this session's sshd process: the connection drops as in a guest reboot.
  CHECK_THROWS_AS(c->run("kill -9 $PPID; sleep 5", nullptr, 10s), lcake::BuildError);
  Captured a;
  CHECK(c->run("echo back", a.fn(), 10s) == 0);
  CHECK(a.out == "back\n");
  CHECK(c->host_key() == sshd.host_pub);
}

TEST_CASE("file transfer over SFTP and, without SFTP, through the shell") {
  TempDir tmp;
  TestCancel cancel;
  SUBCASE("sftp") {
    Sshd sshd(true);
    auto c = lcake::core::connect_ssh(sshd.options(), cancel, debug_log);
    round_trip_files(*c, tmp.path);
  }
  SUBCASE("shell fallback") {
    Sshd sshd(false);
    auto c = lcake::core::connect_ssh(sshd.options(), cancel, debug_log);
    round_trip_files(*c, tmp.path);
  }
}

TEST_CASE("host keys: recorded, then enforced") {
  Sshd sshd;
  TestCancel cancel;
  auto opts = sshd.options();
  opts.expected_host_key = sshd.host_pub + " some comment";
  CHECK(lcake::core::connect_ssh(opts, cancel, debug_log)->host_key() == sshd.host_pub);

  TempDir other;
  sh("ssh-keygen -q -t ed25519 -N '' -f " + (other.path / "k").string());
  opts.expected_host_key = read_file(other.path / "k.pub");
  auto start = Clock::now();
  try {
    lcake::core::connect_ssh(opts, cancel, debug_log);
    FAIL("mismatch accepted");
  } catch (const lcake::BuildError& e) {
    std::string m = e.what();
    CHECK(m.find("SSH host key mismatch for 127.0.0.1:" + std::to_string(sshd.port)) == 0);
    CHECK(m.find("expected " + first_two_fields(opts.expected_host_key)) != std::string::npos);
    CHECK(m.find("got " + sshd.host_pub) != std::string::npos);
  }
  CHECK(Clock::now() - start < 5s);  // no retries on a mismatch (they would take 10 s)
}

TEST_CASE("connecting waits for a server that appears later") {
  Sshd sshd(true, 1000ms);
  TestCancel cancel;
  int alive_checks = 0;
  auto opts = sshd.options();
  opts.still_alive = [&] { ++alive_checks; };
  std::thread late([&] {
    std::this_thread::sleep_for(1000ms);
    sshd.start();
  });
  auto c = lcake::core::connect_ssh(opts, cancel, debug_log);
  late.join();
  CHECK(alive_checks > 0);
  CHECK(c->run("true", nullptr, 10s) == 0);
}

TEST_CASE("connect failures: timeout with diagnostics, still_alive, cancel, wrong key") {
  TestCancel cancel;
  TempDir keys;
  lcake::core::generate_ed25519_key(keys.path);
  lcake::SshOptions opts;
  opts.port = free_port();  // nothing listens here
  opts.private_key = keys.path / "id_ed25519";
  opts.connect_timeout = 2s;
  opts.diagnostics = [] { return std::string("console tail: kernel panic"); };

  SUBCASE("timeout") {
    auto start = Clock::now();
    try {
      lcake::core::connect_ssh(opts, cancel, debug_log);
      FAIL("connected to nothing");
    } catch (const lcake::BuildError& e) {
      std::string m = e.what();
      CHECK(m.find("SSH connection to root@127.0.0.1:" + std::to_string(opts.port) + " failed after 2s") == 0);
      CHECK(m.find("console tail: kernel panic") != std::string::npos);
    }
    CHECK(Clock::now() - start < 5s);
  }
  SUBCASE("still_alive throwing aborts the wait") {
    opts.connect_timeout = 30s;
    opts.still_alive = [] { throw lcake::BuildError("qemu exited with status 1"); };
    CHECK_THROWS_WITH_AS(lcake::core::connect_ssh(opts, cancel, debug_log), "qemu exited with status 1",
                         lcake::BuildError);
  }
  SUBCASE("cancel aborts the wait") {
    opts.connect_timeout = 30s;
    std::thread t([&] {
      std::this_thread::sleep_for(300ms);
      cancel.fire();
    });
    auto start = Clock::now();
    CHECK_THROWS_AS(lcake::core::connect_ssh(opts, cancel, debug_log), lcake::Cancelled);
    t.join();
    CHECK(Clock::now() - start < 3s);
  }
  SUBCASE("wrong key") {
    Sshd sshd;
    auto o = sshd.options();
    o.private_key = keys.path / "id_ed25519";
    o.connect_timeout = 2s;
    try {
      lcake::core::connect_ssh(o, cancel, debug_log);
      FAIL("wrong key accepted");
    } catch (const lcake::BuildError& e) {
      CHECK(std::string(e.what()).find("publickey authentication as " + current_user() + " with " +
                                       o.private_key.string() + " was refused") != std::string::npos);
    }
  }
  SUBCASE("missing key file") {
    opts.private_key = keys.path / "nope";
    CHECK_THROWS_WITH_AS(lcake::core::connect_ssh(opts, cancel, debug_log),
                         doctest::Contains("cannot read SSH private key"), lcake::BuildError);
  }
}

TEST_CASE("connections leave no file descriptors behind") {
  auto open_fds = [] {
    return std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator{});
  };
  Sshd sshd;
  TestCancel cancel;
  auto before = open_fds();
  for (int i = 0; i < 3; ++i) {
    auto c = lcake::core::connect_ssh(sshd.options(), cancel, debug_log);
    c->run("true", nullptr, 10s);
  }
  auto o = sshd.options();
  o.port = free_port();
  o.connect_timeout = 1s;
  CHECK_THROWS_AS(lcake::core::connect_ssh(o, cancel, debug_log), lcake::BuildError);
  CHECK(open_fds() == before);
}

TEST_CASE("communicators run in parallel threads") {
  Sshd sshd;
  TestCancel cancel;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      auto c = lcake::core::connect_ssh(sshd.options(), cancel, debug_log);
      std::string out;
      c->run("echo " + std::to_string(i), [&](std::string_view s, bool) { out.append(s); }, 10s);
      if (out == std::to_string(i) + "\n") ++ok;
    });
  for (auto& t : threads) t.join();
  CHECK(ok == 4);
}

// Dropbear reads ~user/.ssh/authorized_keys of the real user; rather than touch
// the real home, run it in a private mount namespace with a temp dir over it.
TEST_CASE("dropbear: commands, transfers, host key") {
  if (getuid() != 0 || !fs::exists("/usr/sbin/dropbear") || sh("unshare -m true 2>/dev/null") != 0) {
    // Its own ctest entry (ssh_dropbear_test) turns this line into "skipped".
    std::cout << "SKIPPED: needs root, /usr/sbin/dropbear and unshare -m" << std::endl;
    return;
  }
  TempDir dir;
  fs::path home = dir.path / "home";
  fs::create_directories(home / ".ssh");
  fs::permissions(home, fs::perms(0700));
  fs::permissions(home / ".ssh", fs::perms(0700));
  std::string client_pub = lcake::core::generate_ed25519_key(dir.path / "client");
  write_file(home / ".ssh/authorized_keys", client_pub + "\n");
  REQUIRE(sh("dropbearkey -t ed25519 -f " + (dir.path / "hostkey").string() + " > " +
             (dir.path / "hostkey.pub").string() + " 2>/dev/null") == 0);
  std::string host_pub;
  {
    std::ifstream in(dir.path / "hostkey.pub");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("ssh-ed25519 ", 0) == 0) host_pub = first_two_fields(line);
  }
  int port = free_port();
  std::string real_home = getpwuid(0)->pw_dir;
  Server server({"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                 "mount --bind '" + home.string() + "' '" + real_home + "' && exec /usr/sbin/dropbear -F -E -s -p 127.0.0.1:" +
                     std::to_string(port) + " -r '" + (dir.path / "hostkey").string() + "' -P '" +
                     (dir.path / "pid").string() + "'"},
                dir.path / "dropbear.log");
  REQUIRE_MESSAGE(wait_port(port), read_file(dir.path / "dropbear.log"));

  TestCancel cancel;
  lcake::SshOptions o;
  o.port = port;
  o.private_key = dir.path / "client" / "id_ed25519";
  o.connect_timeout = 10s;
  o.expected_host_key = host_pub;
  auto c = lcake::core::connect_ssh(o, cancel, debug_log);
  Captured a;
  CHECK(c->run("echo out; echo err >&2; exit 5", a.fn(), 10s) == 5);
  CHECK(a.out == "out\n");
  CHECK(a.err == "err\n");
  TempDir tmp;
  round_trip_files(*c, tmp.path);
}
