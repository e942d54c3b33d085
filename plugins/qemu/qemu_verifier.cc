#include "accelerator.h"
#include "disk_image.h"
#include "qemu_machine.h"
#include "qemu_verifier.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lcake::qemu {
namespace {

class QemuVerifySession : public VerifySession {
 public:
  QemuVerifySession(BootedGuest guest, fs::path overlay, std::int64_t overlay_entry)
      : guest_(std::move(guest)), overlay_(std::move(overlay)), overlay_entry_(overlay_entry) {}

  Communicator& communicator() override {
    if (!guest_.ssh) throw BuildError("the qemu verify session is finished");
    return *guest_.ssh;
  }

  // The overlay is thrown away, so there is nothing to shut down cleanly for.
  void finish(Context& ctx) override { tear_down(ctx); }
  std::string keep(Context& ctx) noexcept override {
    (void)ctx;
    try {
      return guest_.keep();  // the overlay stays in the ledger too
    } catch (const std::exception& e) {
      return std::string("could not keep the guest: ") + e.what();
    }
  }

  void abort(Context& ctx) noexcept override {
    try {
      tear_down(ctx);
    } catch (...) {
      // left in the ledger for the host
    }
  }

 private:
  void tear_down(Context& ctx) {
    guest_.ssh.reset();
    if (guest_.machine) {
      if (!(guest_.machine->qmp("quit") && guest_.machine->wait_exit(5s)))
        guest_.machine->kill(ctx);
      guest_.machine->forget(ctx);
    }
    if (overlay_entry_) {
      std::error_code ec;
      fs::remove(overlay_, ec);
      ctx.ledger().release(overlay_entry_);
      overlay_entry_ = 0;
    }
  }

  BootedGuest guest_;
  fs::path overlay_;
  std::int64_t overlay_entry_ = 0;
};

}  // namespace

QemuVerifier::QemuVerifier(const nlohmann::json& settings) : settings_(MachineSettings::from_json(settings)) {}

std::unique_ptr<VerifySession> QemuVerifier::start(const VerifyRequest& request, Context& ctx) {
  const auto& candidate = request.candidate;
  if (candidate.type != "qcow2" && candidate.type != "raw")
    throw InputError("the qemu verifier boots qcow2 or raw disks, not '" + candidate.type +
                     "': pick a verifier matching the target's uploader");
  if (!fs::is_regular_file(candidate.id))
    throw BuildError("candidate disk " + candidate.id + " of layer " + request.layer.layer + " is missing");

  MachineSpec spec;
  spec.settings = settings_;
  spec.accelerator = choose_accelerator(settings_.accelerator, settings_.qemu_binary, ctx.work_dir() / "probe", ctx);
  spec.guest = GuestFacts::from_metadata(candidate.metadata);
  spec.work_dir = ctx.work_dir();
  spec.name = "lcake-verify-" + request.layer.variant + "-" + request.layer.layer;
  spec.instance_id = "lcake-" + request.layer.key.substr(0, 16) + "-verify";

  auto overlay = ctx.work_dir() / "verify.qcow2";
  auto entry = ctx.ledger().intend("path", overlay.string(), {{"path", overlay.string()}});
  try {
    fs::create_directories(ctx.work_dir());
    create_overlay(overlay, candidate.id, candidate.metadata.value("format", candidate.type), ctx);
    spec.disk = overlay;
    ctx.info("booting a throwaway overlay of " + candidate.id + " (" + spec.accelerator + ")");
    return std::make_unique<QemuVerifySession>(boot_guest(spec, ctx), overlay, entry);
  } catch (...) {
    std::error_code ec;
    fs::remove(overlay, ec);
    ctx.ledger().release(entry);
    throw;
  }
}

}  // namespace lcake::qemu
