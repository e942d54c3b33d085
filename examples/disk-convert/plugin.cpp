// lcake-disk-convert: an uploader that turns a built qemu disk into a disk
// image for another hypervisor (stream-optimized VMDK for VMware/vSphere, VHD
// for Hyper-V/Azure) with qemu-img, into a directory. It runs a local tool
// without any process code of its own: Context::run_checked starts it in its
// own process group, in the cleanup ledger, killed on Ctrl-C.
#include <lcake/sdk.hpp>

#include <filesystem>

namespace fs = std::filesystem;

namespace {

constexpr const char* kSettings = R"json({
  "type": "object",
  "additionalProperties": false,
  "required": ["directory"],
  "properties": {
    "directory": {"type": "string", "minLength": 1, "description": "where the converted disks go"},
    "format": {"enum": ["vmdk", "vhd"], "default": "vmdk",
               "description": "vmdk: stream-optimized VMDK; vhd: fixed-size VHD (what Azure takes)"}
  }
})json";

class ConvertUploader : public lcake::Uploader {
 public:
  explicit ConvertUploader(const nlohmann::json& s)
      : dir_(s.at("directory").get<std::string>()), format_(s.value("format", "vmdk")) {}

  lcake::Artifact upload(const lcake::UploadRequest& r, lcake::Context& ctx) override {
    fs::path src = r.built.metadata.value("path", r.built.id);
    fs::path dest = target_file(r.layer);
    lcake::AtomicFile out(dest);  // a cancelled or failed conversion leaves no partial file
    std::vector<std::string> argv = {"qemu-img", "convert", "-O", format_ == "vmdk" ? "vmdk" : "vpc"};
    if (format_ == "vmdk") argv.insert(argv.end(), {"-o", "subformat=streamOptimized"});
    if (format_ == "vhd") argv.insert(argv.end(), {"-o", "subformat=fixed,force_size=on"});
    argv.insert(argv.end(), {src.string(), out.path().string()});
    ctx.info("converting " + src.filename().string() + " to " + format_);
    ctx.run_checked({.argv = argv});
    std::string sum = lcake::sha256_file(out.path(), &ctx.cancel());
    out.commit();
    return {format_, dest.string(), {{"sha256", sum}, {"source", src.string()}}, ""};
  }

  // The file name holds the upload key, so the directory itself is the index.
  std::optional<lcake::Artifact> find(const lcake::FindRequest& r, lcake::Context& ctx) override {
    fs::path f = target_file(r.layer);
    if (!fs::is_regular_file(f)) return std::nullopt;
    return lcake::Artifact{format_, f.string(), {{"sha256", lcake::sha256_file(f, &ctx.cancel())}}, ""};
  }
  bool exists(const lcake::Artifact& a, lcake::Context&) override { return fs::is_regular_file(a.id); }
  void remove(const lcake::Artifact& a, lcake::Context&) override { fs::remove(a.id); }

 private:
  fs::path target_file(const lcake::LayerInfo& l) const {
    std::string key = l.upload_key.empty() ? l.key : l.upload_key;
    return dir_ / (l.variant + "-" + l.layer + "-" + key.substr(0, 12) + "." + format_);
  }
  fs::path dir_;
  std::string format_;
};

}  // namespace

LCAKE_PLUGIN("disk-convert", "1.0.0", "Converts qemu disks to VMDK or VHD with qemu-img",
             lcake::uploader<ConvertUploader>({.settings = kSettings, .accepts = "qcow2 raw",
                                               .produces = "vmdk vhd"}))
