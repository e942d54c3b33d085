// Choosing between KVM and TCG. /dev/kvm alone is not to be trusted: on some
// hosts it answers ioctls while guests hang silently, so "auto" boots a
// 512-byte probe under KVM and falls back to TCG unless it exits in time.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>

#include "lcake/context.hpp"

namespace lcake::qemu {

// "kvm" | "tcg" for `setting` ("kvm" | "tcg" | "auto"). The auto result is
// cached per qemu binary for the life of the process. Probe files go to `scratch`.
std::string choose_accelerator(const std::string& setting, const std::string& qemu_binary,
                               const std::filesystem::path& scratch, Context& ctx);

// Boots the probe boot sector under `accel`; true when it exited with the
// expected code within `timeout`. The probe process is in the ledger meanwhile.
bool boot_probe(const std::string& qemu_binary, const std::string& accel,
                const std::filesystem::path& scratch, std::chrono::milliseconds timeout, Context& ctx);

// The 512-byte boot sector: `mov al,1; out 0xf4,al; hlt` + 0x55AA. With
// isa-debug-exit at 0xf4, QEMU exits with code (1 << 1) | 1 = 3.
std::string probe_boot_sector();

}  // namespace lcake::qemu
