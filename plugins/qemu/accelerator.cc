#include "accelerator.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>

#include "host_tools.h"

namespace fs = std::filesystem;

namespace lcake::qemu {

std::string probe_boot_sector() {
  std::string sector(512, '\0');
  const unsigned char code[] = {0xB0, 0x01, 0xE6, 0xF4, 0xF4};  // mov al,1; out 0xf4,al; hlt
  for (size_t i = 0; i < sizeof code; ++i) sector[i] = static_cast<char>(code[i]);
  sector[510] = static_cast<char>(0x55), sector[511] = static_cast<char>(0xAA);
  return sector;
}

bool boot_probe(const std::string& qemu_binary, const std::string& accel, const fs::path& scratch,
                std::chrono::milliseconds timeout, Context& ctx) {
  fs::create_directories(scratch);
  auto image = scratch / "probe-boot.img";
  std::ofstream(image, std::ios::binary) << probe_boot_sector();
  auto exe = find_program(qemu_binary, "/qemu_binary");
  // "pc": its IDE disk boots from SeaBIOS without further devices.
  ProcessSpec spec;
  spec.argv = {exe.string(), "-machine", "pc", "-accel", accel, "-m", "16", "-nodefaults", "-display", "none",
               "-drive", "file=" + image.string() + ",format=raw,if=ide", "-device",
               "isa-debug-exit,iobase=0xf4,iosize=0x04"};
  spec.output_file = scratch / "probe.log";
  auto probe = ctx.spawn(spec);  // in the ledger while it runs; killed on cancel
  auto code = probe->wait_for(timeout);
  if (!code) probe->kill();
  return code == 3;
}

static std::string kvm_unusable_reason() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return "/dev/kvm is not usable";
  ::close(fd);
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("flags", 0) == 0 &&
        (line.find(" vmx") != std::string::npos || line.find(" svm") != std::string::npos))
      return "";
  }
  return "no vmx/svm in /proc/cpuinfo";
}

std::string choose_accelerator(const std::string& setting, const std::string& qemu_binary,
                               const fs::path& scratch, Context& ctx) {
  if (setting == "kvm" || setting == "tcg") return setting;  // the user asked for it
  if (setting != "auto")
    throw ValueError("settings", "/accelerator", "'" + setting + "' is not one of kvm, tcg, auto");
  static std::mutex mutex;
  static std::map<std::string, std::string> chosen;  // per qemu binary
  std::lock_guard lock(mutex);
  if (auto it = chosen.find(qemu_binary); it != chosen.end()) return it->second;

  std::string accel = "tcg";
  if (auto reason = kvm_unusable_reason(); !reason.empty()) {
    ctx.info("accelerator auto: " + reason + ", using TCG");
  } else if (boot_probe(qemu_binary, "kvm", scratch, std::chrono::seconds(3), ctx)) {
    accel = "kvm";
    ctx.info("accelerator auto: KVM probe passed, using KVM");
  } else {
    ctx.info("accelerator auto: KVM probe timed out, using TCG");
  }
  chosen[qemu_binary] = accel;
  return accel;
}

}  // namespace lcake::qemu
