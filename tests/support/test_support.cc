#include "test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace lcake::test {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TempDir::TempDir(const std::string& prefix) {
  const char* bin = std::getenv("LCAKE_BINARY_DIR");
  std::filesystem::path base = bin ? std::filesystem::path(bin) / "tmp" : std::filesystem::temp_directory_path();
  std::filesystem::create_directories(base);
  std::string tmpl = (base / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + base.string());
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::filesystem::path test_guest(const std::string& flavour) {
  namespace fs = std::filesystem;
  const char* bin = std::getenv("LCAKE_BINARY_DIR");
  const char* src = std::getenv("LCAKE_SOURCE_DIR");
  fs::path dir = (bin ? fs::path(bin) : fs::current_path()) / "tests" / "guest" / flavour;
  fs::path script = (src ? fs::path(src) : fs::path(LCAKE_TEST_SOURCE_DIR)) / "scripts" / "build-guest.sh";
  fs::create_directories(dir.parent_path());
  fs::path log = dir.string() + ".log";
  std::string cmd = "bash '" + script.string() + "' '" + dir.string() + "' --sshd '" + flavour + "' --reuse > '" +
                    log.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0)
    throw std::runtime_error("building the test guest failed (" + script.string() + "): see " + log.string());
  return dir;
}

}  // namespace lcake::test
