#include "import_uploader.h"

#include <pugixml.hpp>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lcake::aws {

const char* const kImportSettingsProperties = R"json(
    "bucket": {"type": "string", "minLength": 3,
               "description": "import mode: an existing S3 bucket in the target's region to stage the disk in; the object is deleted when the import ends"},
    "prefix": {"type": "string", "default": "lcake-import/", "description": "import mode: key prefix of the staged object"},
    "role_name": {"type": "string", "default": "vmimport",
                  "description": "import mode: the VM Import service role ImportSnapshot runs as"},
    "import_format": {"enum": ["raw", "vmdk"], "default": "raw",
                      "description": "import mode: the disk sent to S3: raw (the whole virtual size) or stream-optimized vmdk (only data, compressed)"},
    "part_size_mib": {"type": "integer", "minimum": 5, "maximum": 5120, "default": 16,
                      "description": "import mode: S3 multipart part size (raised for disks above 10000 parts)"},
    "upload_workers": {"type": "integer", "minimum": 1, "maximum": 64, "default": 4,
                       "description": "import mode: parts uploaded in parallel (memory: workers x part size)"},
    "import_poll_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5,
                            "description": "import mode: how often DescribeImportSnapshotTasks is asked"},
    "import_timeout_minutes": {"type": "integer", "minimum": 1, "default": 240,
                               "description": "import mode: give up (and cancel the task) after this long"})json";

ImportSettings ImportSettings::from_json(const nlohmann::json& s) {
  ImportSettings out;
  out.bucket = s.value("bucket", std::string());
  if (out.bucket.empty())
    throw ValueError("settings", "/bucket", "the import mode needs an S3 bucket to stage the disk in: set bucket");
  out.prefix = s.value("prefix", out.prefix);
  out.role_name = s.value("role_name", out.role_name);
  out.format = s.value("import_format", out.format);
  out.multipart.part_size = s.value("part_size_mib", 16ull) << 20;
  out.multipart.workers = s.value("upload_workers", 4);
  out.poll_interval = std::chrono::milliseconds(static_cast<long>(s.value("import_poll_seconds", 5.0) * 1000));
  out.timeout = std::chrono::minutes(s.value("import_timeout_minutes", 240));
  return out;
}

namespace {

struct TaskState {
  std::string status, message, snapshot_id;
  double progress = -1;
};

TaskState describe_task(const AwsClient& client, const std::string& task, bool cancellable) {
  auto doc = client.ec2("DescribeImportSnapshotTasks", {{"ImportTaskId.1", task}}, cancellable);
  auto item = doc.first_child().child("importSnapshotTaskSet").child("item");
  if (!item) throw BuildError("import task " + task + " is not known in " + client.region());
  auto detail = item.child("snapshotTaskDetail");
  TaskState t;
  t.status = detail.child_value("status");
  t.message = detail.child_value("statusMessage");
  t.snapshot_id = detail.child_value("snapshotId");
  std::string p = detail.child_value("progress");
  if (!p.empty()) t.progress = std::stod(p) / 100.0;
  return t;
}

// Ends a task and whatever it made: cancel while it runs, delete the snapshot once it has one.
// Returns whether there was anything to end (a task cancelled or a snapshot deleted).
bool end_task(const AwsClient& client, const std::string& task, Context& ctx) {
  TaskState t;
  try {
    t = describe_task(client, task, false);
  } catch (const AwsError& e) {
    if (e.code == "InvalidConversionTaskId" || e.code == "InvalidConversionTaskId.Malformed") return false;
    throw;
  } catch (const BuildError&) {
    return false;  // unknown task: nothing to end
  }
  bool ended = false;
  if (t.status == "active" || t.status == "pending") {
    try {
      client.ec2("CancelImportTask", {{"ImportTaskId", task}, {"CancelReason", "lcake cleanup"}}, false);
      ended = true;
    } catch (const AwsError& e) {
      if (e.code != "IncorrectState") throw;
      t = describe_task(client, task, false);  // it finished meanwhile
    }
  }
  if (!t.snapshot_id.empty()) {
    try {
      client.ec2("DeleteSnapshot", {{"SnapshotId", t.snapshot_id}}, false);
      ctx.info("deleted snapshot " + t.snapshot_id + " of import task " + task);
      ended = true;
    } catch (const AwsError& e) {
      if (e.code != "InvalidSnapshot.NotFound") throw;
    }
  }
  return ended;
}

fs::path convert_disk(const Artifact& built, const ImportSettings& settings, LedgerScope& scratch, Context& ctx) {
  std::string in_format = built.metadata.value("format", built.type);
  fs::path out = ctx.work_dir() / ("disk." + settings.format);
  std::vector<std::string> argv = {"qemu-img", "convert", "-f", in_format, "-O", settings.format};
  if (settings.format == "vmdk") argv.insert(argv.end(), {"-o", "subformat=streamOptimized"});
  argv.insert(argv.end(), {built.id, out.string()});
  scratch.confirmed(out.string(), {{"path", out.string()}});
  ctx.info("converting " + built.id + " to " + settings.format + " for the import");
  ProcessSpec convert;
  convert.argv = argv;
  ctx.run_checked(convert);
  return out;
}

std::string object_key(const ImportSettings& settings, const LayerInfo& layer) {
  std::string key = layer.upload_key.empty() ? layer.key : layer.upload_key;
  return settings.prefix + layer.variant + "-" + layer.layer + "-" + key.substr(0, 16) + "." + settings.format;
}

}  // namespace

ImportedSnapshot import_snapshot(const AwsClient& client, const ImportSettings& settings,
                                 const UploadRequest& request, Context& ctx) {
  const std::string& region = client.region();
  const Artifact& built = request.built;
  if (!fs::is_regular_file(built.id))
    throw BuildError("the built disk " + built.id + " of layer " + request.layer.layer + " is missing");
  S3Location where{region, settings.bucket, object_key(settings, request.layer)};
  check_bucket(client, where);

  LedgerScope scratch(ctx.ledger(), "path", "", {});
  fs::path disk = convert_disk(built, settings, scratch, ctx);
  std::uint64_t virtual_size = built.metadata.value("virtual_size", std::uint64_t{0});
  if (!virtual_size && settings.format == "raw") virtual_size = fs::file_size(disk);
  ImportedSnapshot out;
  out.volume_gib = std::max<std::uint64_t>(1, (virtual_size + (1ull << 30) - 1) >> 30);

  std::int64_t object_entry = upload_multipart(client, where, disk, settings.multipart, ctx);
  std::error_code ec;
  fs::remove(disk, ec);  // the S3 copy is what the import reads
  scratch.deleted();

  // Whatever happens from here, the staged object goes when the import ends.
  auto drop_object = [&]() noexcept {
    try {
      delete_object(client, where);
      ctx.ledger().release(object_entry);
      ctx.info("deleted the staged object s3://" + where.bucket + "/" + where.key);
    } catch (const std::exception& e) {
      ctx.warn(std::string("could not delete the staged object: ") + e.what() + " (left to the ledger)");
    }
  };

  std::string task;
  std::int64_t task_entry = 0;
  try {
    task_entry = ctx.ledger().intend("import-task", "", {{"region", region}});
    std::string upper = settings.format == "raw" ? "RAW" : "VMDK";
    auto doc = client.ec2("ImportSnapshot",
                          {{"Description", "lcake " + request.layer.variant + "/" + request.layer.layer},
                           {"RoleName", settings.role_name},
                           {"DiskContainer.Format", upper},
                           {"DiskContainer.Description", request.layer.layer},
                           {"DiskContainer.UserBucket.S3Bucket", where.bucket},
                           {"DiskContainer.UserBucket.S3Key", where.key},
                           {"TagSpecification.1.ResourceType", "import-snapshot-task"},
                           {"TagSpecification.1.Tag.1.Key", "lcake:key"},
                           {"TagSpecification.1.Tag.1.Value", request.layer.key}},
                          true);
    task = doc.first_child().child_value("importTaskId");
    if (task.empty()) throw BuildError("ImportSnapshot in " + region + " answered without an importTaskId");
    ctx.ledger().confirm(task_entry, task, {{"region", region}, {"task", task}});
    ctx.info("import task " + task + " started (role " + settings.role_name + ")");

    auto deadline = std::chrono::steady_clock::now() + settings.timeout;
    for (;;) {
      TaskState t = describe_task(client, task, true);
      if (t.status == "completed") {
        if (t.snapshot_id.empty()) throw BuildError("import task " + task + " completed without a snapshot");
        out.snapshot_id = t.snapshot_id;
        break;
      }
      if (t.status == "deleted" || t.status == "deleting")
        throw BuildError("import task " + task + " of s3://" + where.bucket + "/" + where.key + " failed: " +
                         (t.message.empty() ? "ended " + t.status : t.message));
      ctx.progress(t.progress, "importing snapshot (" + (t.message.empty() ? t.status : t.message) + ")");
      if (std::chrono::steady_clock::now() > deadline)
        throw BuildError("import task " + task + " did not finish within " +
                         std::to_string(settings.timeout.count() / 60) + " minutes");
      if (ctx.cancel().wait_for(settings.poll_interval)) throw Cancelled();
    }
  } catch (...) {
    if (!task.empty()) {
      try {
        end_task(client, task, ctx);
        ctx.ledger().release(task_entry);
        ctx.info("import task " + task + " cancelled");
      } catch (const std::exception& e) {
        ctx.warn("could not end import task " + task + ": " + e.what() + " (left to the ledger)");
      }
    } else if (task_entry) {
      ctx.ledger().release(task_entry);  // never started
    }
    drop_object();
    throw;
  }
  drop_object();
  ctx.info("import task " + task + " made snapshot " + out.snapshot_id);
  out.ledger_entry = task_entry;
  return out;
}

bool reap_import_entry(const AwsClient& any_region, const LedgerEntry& entry, Context& ctx) {
  const auto& how = entry.how;
  std::string region = how.value("region", any_region.region());
  AwsClient client = any_region.in_region(region);
  S3Location where{region, how.value("bucket", ""), how.value("key", "")};
  const std::string object = "s3://" + where.bucket + "/" + where.key;
  if (entry.kind == "s3-object") {
    if (!delete_object(client, where)) throw AlreadyGone("S3 object " + object + " is already gone");
    return true;
  }
  if (entry.kind == "s3-multipart") {
    if (!how.contains("upload_id") || !abort_multipart(client, where, how["upload_id"]))
      throw AlreadyGone("multipart upload of " + object + " is already gone");
    return true;
  }
  if (entry.kind == "import-task") {
    // An entry recorded but never confirmed has no task id: ImportSnapshot never answered.
    std::string task = how.value("task", std::string());
    if (task.empty() || !end_task(client, task, ctx))
      throw AlreadyGone("import task " + (task.empty() ? std::string("(never started)") : task) + " in " + region +
                        " has already ended, with no snapshot left");
    return true;
  }
  return false;
}

}  // namespace lcake::aws
