// File helpers every uploader needs: content hashes (OpenSSL EVP) and atomic
// writes into a directory. Header-only; link OpenSSL::Crypto (lcake_add_plugin does).
#pragma once
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lcake/context.hpp"
#include "lcake/errors.hpp"

namespace lcake {

// Incremental digest: Hasher h("sha256"); h.update(...); h.hex().
class Hasher {
 public:
  explicit Hasher(const char* algorithm = "sha256") : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    const EVP_MD* md = EVP_get_digestbyname(algorithm);
    if (!md || !ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
      throw BuildError(std::string("unknown digest ") + algorithm);
  }
  void update(std::string_view bytes) { EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()); }
  std::string raw() {  // the digest bytes; ends the hasher
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), out, &n);
    return std::string(reinterpret_cast<char*>(out), n);
  }
  std::string hex() {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw()) out += digits[c >> 4], out += digits[c & 15];
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

inline std::string sha256_hex(std::string_view bytes) {
  Hasher h;
  h.update(bytes);
  return h.hex();
}

// Hex digest of a file's bytes, read in 1 MiB pieces; checks `cancel` between them.
inline std::string file_digest(const std::filesystem::path& file, const CancelToken* cancel = nullptr,
                               const char* algorithm = "sha256") {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw BuildError("cannot read " + file.string());
  Hasher h(algorithm);
  std::vector<char> buf(1 << 20);
  while (in) {
    if (cancel) cancel->throw_if_cancelled();
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  return h.hex();
}
inline std::string sha256_file(const std::filesystem::path& file, const CancelToken* cancel = nullptr) {
  return file_digest(file, cancel, "sha256");
}

// A file written under a temporary name beside its destination and renamed over
// it by commit(): readers see the old file or the whole new one, never a part.
// Without commit() the temporary file is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path dest) : dest_(std::move(dest)) {
    std::filesystem::create_directories(dest_.parent_path());
    tmp_ = dest_.parent_path() / ("." + dest_.filename().string() + ".tmp-" + std::to_string(::getpid()));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (!committed_) {
      std::error_code ec;
      std::filesystem::remove_all(tmp_, ec);
    }
  }
  // Where to write (a file, or a directory for directory artifacts).
  const std::filesystem::path& path() const { return tmp_; }
  void commit() {
    std::error_code ec;
    if (std::FILE* f = std::fopen(tmp_.c_str(), "rb")) {  // flush to disk before the rename
      ::fsync(fileno(f));
      std::fclose(f);
    }
    std::filesystem::rename(tmp_, dest_, ec);
    if (ec) throw BuildError("cannot rename " + tmp_.string() + " to " + dest_.string() + ": " + ec.message());
    committed_ = true;
  }

 private:
  std::filesystem::path dest_, tmp_;
  bool committed_ = false;
};

inline void write_file_atomic(const std::filesystem::path& dest, std::string_view bytes) {
  AtomicFile f(dest);
  {
    std::ofstream out(f.path(), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw BuildError("cannot write " + f.path().string());
  }
  f.commit();
}

inline void copy_file_atomic(const std::filesystem::path& src, const std::filesystem::path& dest) {
  AtomicFile f(dest);
  std::error_code ec;
  std::filesystem::copy_file(src, f.path(), std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) throw BuildError("cannot copy " + src.string() + " to " + f.path().string() + ": " + ec.message());
  f.commit();
}

}  // namespace lcake
