// publish-dir: an lcake Uploader that copies each layer's file artifact into a
// directory (a web root, an NFS share) and keeps a `sha256sum -c`-able SHA256SUMS there.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <lcake/sdk.hpp>
#include <map>
#include <memory>

namespace fs = std::filesystem;

namespace {

constexpr const char* kSchema = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["directory"],
  "properties": {
    "directory": { "type": "string", "minLength": 1, "description": "where the files go" },
    "name": { "type": "string", "minLength": 1, "pattern": "^[^/]+$",
              "description": "file name; {variant} {layer} {key} {file} are replaced" }
  },
  "additionalProperties": false
})";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// Rewrites SHA256SUMS (sorted, sha256sum format) under an flock, since variants upload in parallel.
void update_sums(const fs::path& dir, const std::string& file, const std::string* sha) {
  struct Fd { int fd; ~Fd() { if (fd >= 0) ::close(fd); } } lock{::open((dir / ".SHA256SUMS.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)};
  if (lock.fd < 0 || ::flock(lock.fd, LOCK_EX) != 0) throw lcake::BuildError("publish-dir: cannot lock " + dir.string());
  std::map<std::string, std::string> sums;
  std::ifstream in(dir / "SHA256SUMS");
  for (std::string hash, name; in >> hash && std::getline(in >> std::ws, name);) sums[name] = hash;
  if (sha) sums[file] = *sha; else sums.erase(file);
  fs::path tmp = dir / ".SHA256SUMS.tmp";
  std::ofstream out(tmp, std::ios::trunc);
  for (const auto& [name, hash] : sums) out << hash << "  " << name << "\n";
  if (!out.flush()) throw lcake::BuildError("publish-dir: cannot write " + tmp.string());
  fs::rename(tmp, dir / "SHA256SUMS");
}

class DirUploader : public lcake::Uploader {
 public:
  explicit DirUploader(const nlohmann::json& s)
      : dir_(s.at("directory").get<std::string>()), name_(s.value("name", "{variant}-{layer}-{file}")) {}

  lcake::Artifact upload(const lcake::UploadRequest& r, lcake::Context& ctx) override {
    const auto& meta = r.built.metadata;
    fs::path src = meta.is_object() && meta.contains("path") ? meta["path"].get<std::string>() : r.built.id;
    if (!fs::is_regular_file(src))
      throw lcake::BuildError("publish-dir: '" + src.string() + "' is not a file; it copies file artifacts");
    if (meta.is_object() && meta.contains("backing") && meta["backing"].is_string())
      ctx.warn("publish-dir: " + src.string() + " is an overlay on " + meta["backing"].get<std::string>() +
               "; publish a standalone image (qemu builder option \"flatten\": true)");
    std::string name = name_;
    for (auto [k, v] : {std::pair{"{variant}", r.layer.variant}, {"{layer}", r.layer.layer},
                        {"{key}", r.layer.key}, {"{file}", src.filename().string()}})
      name = replace_all(name, k, v);
    fs::create_directories(dir_);
    fs::path dest = dir_ / name;
    static std::atomic<int> n{0};
    fs::path tmp = dir_ / ("." + name + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n++));

    // Ledger: intend before creating, confirm once it exists, release once renamed away.
    auto entry = ctx.ledger().intend("path", tmp.string(), {{"path", tmp.string()}});
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    if (!out) throw lcake::BuildError("publish-dir: cannot write " + tmp.string());
    ctx.ledger().confirm(entry, tmp.string(), {{"path", tmp.string()}});
    std::string sha = copy_hashing(src, out.get(), ctx);
    if (std::fflush(out.get()) != 0 || ::fsync(::fileno(out.get())) != 0)
      throw lcake::BuildError("publish-dir: cannot write " + tmp.string() + " (disk full?)");
    out.reset();
    fs::rename(tmp, dest);
    ctx.ledger().release(entry);
    update_sums(dir_, name, &sha);
    ctx.info("published " + dest.string() + " sha256:" + sha);
    return {"file", dest.string(), {{"sha256", sha}, {"size", fs::file_size(dest)}}, ""};
  }

  bool exists(const lcake::Artifact& a, lcake::Context&) override { return fs::is_regular_file(a.id); }

  void remove(const lcake::Artifact& a, lcake::Context&) override {
    fs::path file = a.id;
    fs::remove(file);
    if (fs::is_directory(file.parent_path())) update_sums(file.parent_path(), file.filename(), nullptr);
  }

 private:
  // Streams src into out through SHA-256; honours Ctrl-C between chunks.
  static std::string copy_hashing(const fs::path& src, FILE* out, lcake::Context& ctx) {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
    std::ifstream in(src, std::ios::binary);
    double total = static_cast<double>(fs::file_size(src)), done = 0;
    std::vector<char> buf(1 << 20);
    while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
      ctx.cancel().throw_if_cancelled();
      auto got = static_cast<std::size_t>(in.gcount());
      EVP_DigestUpdate(md.get(), buf.data(), got);
      if (std::fwrite(buf.data(), 1, got, out) != got) throw lcake::BuildError("publish-dir: write failed");
      ctx.progress(total > 0 ? (done += got) / total : 1.0, "copying " + src.filename().string());
    }
    if (!in.eof()) throw lcake::BuildError("publish-dir: cannot read " + src.string());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md.get(), digest, &len);
    std::string hex;
    for (unsigned i = 0; i < len; ++i) hex += "0123456789abcdef"[digest[i] >> 4], hex += "0123456789abcdef"[digest[i] & 15];
    return hex;
  }

  fs::path dir_;
  std::string name_;
};

}  // namespace

LCAKE_PLUGIN("publish-dir", "1.0.0", "Copies file artifacts into a directory with a SHA256SUMS",
             lcake::uploader<DirUploader>({.settings = kSchema, .accepts = "qcow2 raw tar file", .produces = "file"}))
