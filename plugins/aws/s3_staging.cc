#include "s3_staging.h"

#include <memory>

#include <atomic>
#include <fstream>
#include <mutex>
#include <pugixml.hpp>
#include <thread>
#include <vector>

#include "lcake/common/http_client.h"
#include "lcake/files.hpp"
#include "worker_threads.h"

namespace fs = std::filesystem;

namespace lcake::aws {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kMinPart = 5 * kMiB;
constexpr std::uint64_t kMaxParts = 10000;

std::string s3_url(const S3Location& where) { return "s3://" + where.bucket + "/" + where.key; }

// Path-style "/bucket/key", each key segment %-encoded (the '/'s stay).
std::string object_path(const S3Location& where) {
  std::string path = "/" + http::url_escape(where.bucket);
  if (where.key.empty()) return path;
  std::size_t start = 0;
  for (;;) {
    std::size_t slash = where.key.find('/', start);
    path += "/" + http::url_escape(where.key.substr(start, slash == std::string::npos ? slash : slash - start));
    if (slash == std::string::npos) return path;
    start = slash + 1;
  }
}

AwsRequest s3_request(const char* action, const char* method, const S3Location& where, Pairs query = {}) {
  AwsRequest r;
  r.service = Service::s3;
  r.action = action;
  r.method = method;
  r.path = object_path(where);
  r.query = std::move(query);
  return r;
}

bool gone(const AwsError& e) { return e.status == 404; }

}  // namespace

std::uint64_t choose_part_size(std::uint64_t size, std::uint64_t wanted) {
  std::uint64_t part = std::max(wanted, kMinPart);
  std::uint64_t needed = (size + kMaxParts - 1) / kMaxParts;
  if (part < needed) part = needed;
  return (part + kMiB - 1) / kMiB * kMiB;
}

void check_bucket(const AwsClient& client, const S3Location& where) {
  try {
    // ListObjectsV2 rather than HeadBucket: it needs only s3:ListBucket everywhere (moto included).
    client.send(s3_request("ListObjectsV2", "GET", {where.region, where.bucket, ""}, {{"list-type", "2"}, {"max-keys", "0"}}));
  } catch (const AwsError& e) {
    if (e.status == 404)
      throw InputError("S3 bucket " + where.bucket + " (uploader.settings.bucket) does not exist in " +
                       where.region + ": create it, or name an existing bucket the import may stage disks in");
    if (e.status == 403)
      throw InputError("S3 bucket " + where.bucket + " (uploader.settings.bucket) is not accessible with these "
                       "credentials (403): grant s3:ListBucket, s3:PutObject and s3:DeleteObject on it");
    throw;
  }
}

bool abort_multipart(const AwsClient& client, const S3Location& where, const std::string& upload_id) {
  auto r = s3_request("AbortMultipartUpload", "DELETE", where, {{"uploadId", upload_id}});
  r.cancellable = false;
  try {
    client.send(std::move(r));
    return true;
  } catch (const AwsError& e) {
    if (!gone(e)) throw;  // NoSuchUpload: already gone
    return false;
  }
}

bool object_exists(const AwsClient& client, const S3Location& where) {
  auto r = s3_request("ListObjectsV2", "GET", {where.region, where.bucket, ""},
                      {{"list-type", "2"}, {"prefix", where.key}, {"max-keys", "1"}});
  r.cancellable = false;
  r.resource = "s3://" + where.bucket + "/" + where.key;
  auto answer = client.send(std::move(r));
  pugi::xml_document doc;
  if (!doc.load_buffer(answer.body.data(), answer.body.size())) return true;  // unsure: try the delete
  for (auto c : doc.select_nodes("//*[local-name()='Contents']/*[local-name()='Key']"))
    if (where.key == c.node().text().get()) return true;
  return false;
}

bool delete_object(const AwsClient& client, const S3Location& where) {
  // S3 answers 204 whether or not the key existed: ask first, to tell "deleted" from "already gone".
  bool existed = object_exists(client, where);
  auto r = s3_request("DeleteObject", "DELETE", where);
  r.cancellable = false;
  try {
    client.send(std::move(r));
  } catch (const AwsError& e) {
    if (!gone(e)) throw;
    return false;
  }
  return existed;
}

std::int64_t upload_multipart(const AwsClient& client, const S3Location& where, const fs::path& file,
                              const MultipartOptions& options, Context& ctx) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(file, ec);
  if (ec) throw BuildError("cannot read the disk to upload, " + file.string() + ": " + ec.message());
  const std::uint64_t part_size = choose_part_size(size, options.part_size);
  const int parts = static_cast<int>(std::max<std::uint64_t>(1, (size + part_size - 1) / part_size));

  // The object is in the ledger before any byte can land: a crash after
  // CompleteMultipartUpload still leaves an entry that deletes it.
  LedgerScope object(ctx.ledger(), "s3-object", s3_url(where), where.how());
  LedgerScope upload(ctx.ledger(), "s3-multipart", s3_url(where), where.how());
  auto create = s3_request("CreateMultipartUpload", "POST", where, {{"uploads", ""}});
  create.headers = {{"content-type", "application/octet-stream"}};
  auto created = client.send(std::move(create));
  pugi::xml_document doc;
  doc.load_string(created.body.c_str());
  std::string upload_id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
  if (upload_id.empty()) throw BuildError("S3 started a multipart upload of " + s3_url(where) + " without an UploadId");
  auto how = where.how();
  how["upload_id"] = upload_id;
  upload.confirmed(upload_id, how);

  try {
    std::vector<std::string> etags(static_cast<std::size_t>(parts));
    std::atomic<int> next{0};
    std::atomic<std::uint64_t> sent{0};
    std::atomic<bool> failed{false};
    std::mutex failure_mu;
    std::exception_ptr failure;
    const std::string what = "uploading " + file.filename().string() + " to " + s3_url(where);
    // Each part is read twice and never held whole: once to hash it (SHA-256 for the
    // signature, MD5 for Content-MD5), then streamed from the file as it is sent (again
    // on a retry). Memory is one 1 MiB chunk per worker, whatever the part size.
    auto worker = [&] {
      try {
        std::ifstream in(file, std::ios::binary);
        std::string chunk(std::size_t{1} << 20, '\0');
        auto short_read = [&](std::uint64_t at) {
          return BuildError("short read of " + file.string() + " at byte " + std::to_string(at));
        };
        for (int i = next++; i < parts && !failed; i = next++) {
          ctx.cancel().throw_if_cancelled();
          std::uint64_t offset = static_cast<std::uint64_t>(i) * part_size;
          std::uint64_t length = std::min(part_size, size - offset);
          Hasher sha("sha256"), md5("md5");
          in.clear();
          in.seekg(static_cast<std::streamoff>(offset));
          for (std::uint64_t done = 0; done < length;) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), length - done));
            in.read(chunk.data(), static_cast<std::streamsize>(n));
            if (static_cast<std::size_t>(in.gcount()) != n) throw short_read(offset + done);
            sha.update({chunk.data(), n});
            md5.update({chunk.data(), n});
            done += n;
          }
          auto put = s3_request("UploadPart", "PUT", where,
                                {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}});
          put.headers = {{"content-md5", http::base64_encode(md5.raw())}};
          put.payload_hash = sha.hex();
          auto pos = std::make_shared<std::uint64_t>(0);
          put.body_size = length;
          // A short read ends the body early: the transfer fails and is retried or reported.
          put.body_reader = [&in, offset, length, pos](char* out, std::size_t max) -> std::size_t {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(max, length - *pos));
            if (n == 0) return 0;
            in.clear();
            in.seekg(static_cast<std::streamoff>(offset + *pos));
            in.read(out, static_cast<std::streamsize>(n));
            auto got = static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount()));
            *pos += got;
            return got;
          };
          put.rewind = [pos] { *pos = 0; };
          put.timeout = std::chrono::milliseconds(0);
          auto resp = client.send(std::move(put));
          etags[static_cast<std::size_t>(i)] = resp.header("etag");
          if (etags[static_cast<std::size_t>(i)].empty())
            throw BuildError("S3 accepted part " + std::to_string(i + 1) + " of " + s3_url(where) + " without an ETag");
          ctx.progress_bytes(sent += length, size, what);
        }
      } catch (...) {
        std::lock_guard lock(failure_mu);
        if (!failure) failure = std::current_exception();
        failed = true;
      }
    };
    {
      // A thread that cannot start stops and joins the others; the upload is aborted below.
      WorkerThreads pool(std::max(1, std::min(options.workers, parts)), worker, [&] { failed = true; });
      pool.join();
    }
    if (failure) std::rethrow_exception(failure);

    std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    for (int i = 0; i < parts; ++i)
      body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
              etags[static_cast<std::size_t>(i)] + "</ETag></Part>";
    body += "</CompleteMultipartUpload>";
    auto complete = s3_request("CompleteMultipartUpload", "POST", where, {{"uploadId", upload_id}});
    complete.headers = {{"content-type", "application/xml"}};
    complete.body = std::move(body);
    auto resp = client.send(std::move(complete));
    // CompleteMultipartUpload can answer 200 with an <Error> body.
    pugi::xml_document answer;
    answer.load_string(resp.body.c_str());
    if (auto err = answer.child("Error"))
      throw BuildError("completing the multipart upload of " + s3_url(where) + " failed: " +
                       err.child_value("Code") + ": " + err.child_value("Message"));
    upload.deleted();  // a completed upload no longer exists as an upload
    object.confirmed(s3_url(where));
    ctx.info("uploaded " + file.filename().string() + " (" + std::to_string(size) + " bytes in " +
             std::to_string(parts) + " parts) to " + s3_url(where));
    return object.entry();
  } catch (...) {
    try {
      abort_multipart(client, where, upload_id);
      upload.deleted();
      delete_object(client, where);  // in case Complete reached S3 after all
      object.deleted();
    } catch (const std::exception& e) {
      ctx.warn(std::string("cleanup after the failed upload: ") + e.what() + " (left to the ledger)");
    }
    throw;
  }
}

}  // namespace lcake::aws
