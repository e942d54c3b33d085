#include <fstream>

#include "accelerator.h"
#include "disk_image.h"
#include "qemu_machine.h"
#include "qemu_builder.h"
#include "lcake/files.hpp"
#include "source_fetch.h"

namespace fs = std::filesystem;

namespace lcake::qemu {
namespace {

// pipeline layers.L.builder, checked by the host against kOptionsSchema (plugin.cc)
// and completed with its defaults.
struct LayerOptions {
  bool flatten = false, compress = false, generalize = false;
  std::string format = "qcow2";

  static LayerOptions from_json(const nlohmann::json& o) {
    LayerOptions l;
    l.flatten = o.value("flatten", false);
    l.compress = o.value("compress", false);
    l.format = o.value("format", "qcow2");
    l.generalize = o.value("generalize", false);
    if (l.compress && l.format != "qcow2")
      throw ValueError("options", "/compress", "compress needs \"format\": \"qcow2\" (raw disks are not compressed)");
    return l;
  }
  bool standalone() const { return flatten || compress || format != "qcow2"; }
};

// Copies a boot file (kernel, initrd) named by the source into the store as
// NAME-<sha256 prefix>: files in the store are never overwritten, since
// artifacts of earlier builds (and guests booting them) may use them.
// A file created here stays in the ledger (its entry added to `fresh`) until it is part of an artifact.
std::string store_boot_file(const nlohmann::json& source, const char* key, const fs::path& store,
                            const std::string& name, Context& ctx, std::vector<std::int64_t>& fresh) {
  if (!source.contains(key) || source[key].is_null()) return "";
  auto from = strip_file_scheme(source[key].get<std::string>());
  if (!fs::is_regular_file(from))
    throw ValueError("source", std::string("/") + key, "no such file " + from + ": fix the path");
  auto temp = store / (name + ".part");
  auto entry = ctx.ledger().intend("path", temp.string(), {{"path", temp.string()}});
  fs::path dest;
  try {
    fs::copy_file(from, temp, fs::copy_options::overwrite_existing);
    dest = store / (name + "-" + sha256_file(temp, &ctx.cancel()).substr(0, 16));
    if (fs::exists(dest)) {
      fs::remove(temp);
    } else {
      ctx.ledger().confirm(entry, dest.string(), {{"path", dest.string()}});
      fs::rename(temp, dest);
      fresh.push_back(entry);
      return dest.string();
    }
  } catch (...) {
    std::error_code ec;
    fs::remove(temp, ec);
    ctx.ledger().release(entry);
    throw;
  }
  ctx.ledger().release(entry);
  return dest.string();
}

// The first unused name stem for this layer's disk: LAYER, LAYER.2, ... A
// forced rebuild must not overwrite the artifact it replaces (children of it
// may still be recorded and use it as their backing file).
fs::path free_disk_stem(const fs::path& store, const std::string& layer) {
  for (int n = 1;; ++n) {
    auto stem = store / (n == 1 ? layer : layer + "." + std::to_string(n));
    bool used = false;
    for (auto ext : {".qcow2", ".raw", ".qcow2.tmp", ".raw.tmp"}) used = used || fs::exists(stem.string() + ext);
    if (!used) return stem;
  }
}

// "ssh-ed25519 AAAA..." literally, or a file holding it (e.g. host_key.pub).
std::string read_host_key(const nlohmann::json& source) {
  auto value = source.value("host_key", std::string());
  if (value.empty() || value.rfind("ssh-", 0) == 0 || value.rfind("ecdsa-", 0) == 0) return value;
  std::ifstream in(strip_file_scheme(value));
  std::string type, key;
  if (!(in >> type >> key)) throw ValueError("source", "/host_key", "cannot read a public key from " + value);
  return type + " " + key;
}

class QemuBuildSession : public BuildSession {
 public:
  QemuBuildSession(BootedGuest guest, MachineSettings settings, LayerOptions options, LayerInfo layer,
                   fs::path overlay, std::int64_t overlay_entry, GuestFacts facts, nlohmann::json backing,
                   nlohmann::json store_files, std::vector<std::int64_t> fresh_entries)
      : guest_(std::move(guest)), settings_(std::move(settings)), options_(options), layer_(std::move(layer)),
        overlay_(std::move(overlay)), overlay_entry_(overlay_entry), facts_(std::move(facts)),
        backing_(std::move(backing)), store_files_(std::move(store_files)),
        fresh_entries_(std::move(fresh_entries)) {}

  Communicator& communicator() override {
    if (!guest_.ssh) throw BuildError("the qemu build session is finished");
    return *guest_.ssh;
  }

  // On failure everything stays in the ledger: the host calls abort(), or keeps
  // it for inspection (--on-error=abort).
  Artifact finish(Context& ctx) override { return finish_or_throw(ctx); }

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
      guest_.ssh.reset();
      if (guest_.machine) guest_.machine->kill(ctx);
      std::error_code ec;
      for (auto& [path, entry] : std::vector<std::pair<fs::path, std::int64_t>>{{overlay_, overlay_entry_},
                                                                                {temp_, temp_entry_}}) {
        if (!entry) continue;
        fs::remove(path, ec);
        ctx.ledger().release(entry);
      }
      overlay_entry_ = temp_entry_ = 0;
    } catch (...) {
      // abort must not throw; what is left stays in the ledger for the host.
    }
  }

 private:
  Artifact finish_or_throw(Context& ctx) {
    if (options_.generalize) {
      generalize_guest(*guest_.ssh, ctx);
      facts_.host_key.clear();  // the next boot makes new host keys: learned on first contact
    }
    // What lcake added to get in does not go into the artifact.
    if (!guest_.public_key.empty()) remove_lcake_key(*guest_.ssh, guest_.public_key, ctx);
    ctx.info("shutting down the guest");
    if (!shut_down(*guest_.machine, std::move(guest_.ssh), settings_.shutdown_timeout, ctx))
      throw BuildError("guest of layer " + layer_.layer + " did not shut down within " +
                       std::to_string(settings_.shutdown_timeout.count()) +
                       " s, so its disk may be incomplete: raise /target/builder/settings/shutdown_timeout");
    if (auto note = check_disk(overlay_, "qcow2", ctx); !note.empty()) ctx.warn(note);
    // The console of the last successful build of this layer key is kept next to its disk.
    std::error_code ec;
    auto console_log = overlay_.parent_path() / (layer_.layer + ".console.log");
    fs::copy_file(guest_.machine->console_file(), console_log, fs::copy_options::overwrite_existing, ec);

    fs::path disk = overlay_;
    if (options_.standalone()) {
      auto final_disk = fs::path(overlay_).replace_extension("." + options_.format);
      temp_ = final_disk.string() + ".tmp";
      temp_entry_ = ctx.ledger().intend("path", temp_.string(), {{"path", temp_.string()}});
      ctx.info("converting to a standalone " + options_.format + (options_.compress ? " (compressed)" : ""));
      convert_disk(overlay_, temp_, options_.format, options_.compress, ctx);
      fs::remove(overlay_);
      ctx.ledger().release(overlay_entry_);
      fs::rename(temp_, final_disk);
      overlay_entry_ = temp_entry_, temp_entry_ = 0;
      overlay_ = disk = final_disk;
      backing_ = nullptr;
    }
    auto info = disk_info(disk, ctx);
    Artifact a;
    a.type = options_.format;
    a.id = fs::absolute(disk).string();
    a.metadata = {{"backing", backing_}, {"format", options_.format},
                  {"virtual_size", info.virtual_size}, {"disk_bytes", info.disk_bytes}};
    facts_.to_metadata(a.metadata);
    if (!store_files_.empty()) a.metadata["store_files"] = store_files_;
    if (fs::exists(console_log)) a.metadata["console_log"] = fs::absolute(console_log).string();
    ctx.ledger().release(overlay_entry_);  // now an artifact
    overlay_entry_ = 0;
    for (auto e : fresh_entries_) ctx.ledger().release(e);  // the source copy and boot files: its files
    fresh_entries_.clear();
    return a;
  }

  BootedGuest guest_;
  MachineSettings settings_;
  LayerOptions options_;
  LayerInfo layer_;
  fs::path overlay_, temp_;
  std::int64_t overlay_entry_ = 0, temp_entry_ = 0;
  GuestFacts facts_;
  nlohmann::json backing_, store_files_;
  std::vector<std::int64_t> fresh_entries_;  // store files this build created (still in the ledger)
};

}  // namespace

QemuBuilder::QemuBuilder(const nlohmann::json& settings) : settings_(MachineSettings::from_json(settings)) {}

std::unique_ptr<BuildSession> QemuBuilder::start(const BuildRequest& request, Context& ctx) {
  auto options = LayerOptions::from_json(request.options);
  const auto& store = ctx.store_dir();
  fs::create_directories(store);
  GuestFacts facts;
  fs::path backing;
  std::string backing_format;
  auto store_files = nlohmann::json::array();
  std::vector<std::int64_t> fresh;  // ledger entries of store files created by this build
  if (request.parent) {
    facts = GuestFacts::from_metadata(request.parent->metadata);
    backing = request.parent->id;
    backing_format = request.parent->metadata.value("format", request.parent->type);
    if (!fs::is_regular_file(backing))
      throw BuildError("parent artifact " + backing.string() + " of layer " + request.layer.layer +
                       " is missing: rebuild the parent layer (--force)");
  } else {
    auto where = "the source of variant " + request.layer.variant;
    if (!request.source.is_object())
      throw ValueError("source", "", "is required for the first layer: {\"disk\": …, \"checksum\": \"sha256:…\"}");
    const auto& source = request.source;
    // Without a kernel the firmware boots the disk's own bootloader, which would ignore these.
    auto given = [&](const char* key) { return source.contains(key) && !source[key].is_null(); };
    for (auto key : {"initrd", "append"})
      if (given(key) && !given("kernel"))
        throw ValueError("source", std::string("/") + key,
                         std::string(key) + " needs kernel (direct kernel boot); drop it to boot the "
                         "disk's own bootloader");
    auto disk = fetch_source_disk(source, where, store, ctx);
    backing = disk.path, backing_format = disk.format;
    if (disk.entry) fresh.push_back(disk.entry);
    facts.kernel = store_boot_file(source, "kernel", store, "vmlinuz", ctx, fresh);
    facts.initrd = store_boot_file(source, "initrd", store, "initrd.img", ctx, fresh);
    facts.append = source.value("append", std::string());
    facts.set_cloud_init(source.contains("cloud_init") ? source["cloud_init"] : nlohmann::json(true));
    facts.ssh_user = source.value("ssh_user", std::string());
    facts.host_key = read_host_key(source);
    if (source.contains("ssh_private_key"))
      facts.ssh_private_key = fs::absolute(strip_file_scheme(source["ssh_private_key"].get<std::string>()));
    for (auto& f : {disk.path.string(), facts.kernel, facts.initrd})
      if (!f.empty()) store_files.push_back(f);
  }
  if (facts.ssh_user.empty()) facts.ssh_user = settings_.ssh_user;

  MachineSpec spec;
  spec.settings = settings_;
  spec.accelerator = choose_accelerator(settings_.accelerator, settings_.qemu_binary, ctx.work_dir() / "probe", ctx);
  spec.guest = facts;
  spec.work_dir = ctx.work_dir();
  spec.name = "lcake-build-" + request.layer.variant + "-" + request.layer.layer;
  spec.instance_id = "lcake-" + request.layer.key.substr(0, 16) + "-build";

  // The parent is never written: the guest runs on an overlay backed by it.
  auto overlay = fs::path(free_disk_stem(store, request.layer.layer).string() + ".qcow2");
  auto entry = ctx.ledger().intend("path", overlay.string(), {{"path", overlay.string()}});
  try {
    create_overlay(overlay, backing, backing_format, ctx);
    spec.disk = overlay;
    ctx.info("booting " + overlay.filename().string() + " on " + backing.string() + " (" + spec.accelerator + ")");
    auto guest = boot_guest(spec, ctx);
    if (facts.host_key.empty()) facts.host_key = guest.ssh->host_key();  // learned on first contact
    return std::make_unique<QemuBuildSession>(std::move(guest), settings_, options, request.layer, overlay, entry,
                                              facts, nlohmann::json(fs::absolute(backing).string()), store_files,
                                              fresh);
  } catch (...) {
    std::error_code ec;
    fs::remove(overlay, ec);
    ctx.ledger().release(entry);
    throw;
  }
}

bool QemuBuilder::exists(const Artifact& artifact, Context& ctx) {
  auto facts = GuestFacts::from_metadata(artifact.metadata);
  for (auto& f : {facts.kernel, facts.initrd})
    if (!f.empty() && !fs::exists(f)) return false;
  return backing_chain_intact(artifact.id, ctx);
}

void QemuBuilder::remove(const Artifact& artifact, Context& ctx) {
  (void)ctx;
  std::error_code ec;
  fs::remove(artifact.id, ec);
  // The source copy and boot files are shared by every first-layer disk built
  // in this store dir (forced rebuilds): they go with the last one.
  auto dir = fs::path(artifact.id).parent_path();
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (entry.path().extension() == ".qcow2" || entry.path().extension() == ".raw") {
      if (name.rfind("source-", 0) != 0) return;
    }
  }
  for (auto& f : artifact.metadata.value("store_files", nlohmann::json::array())) fs::remove(f.get<std::string>(), ec);
  if (artifact.metadata.contains("console_log")) fs::remove(artifact.metadata["console_log"].get<std::string>(), ec);
}

}  // namespace lcake::qemu
