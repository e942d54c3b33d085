"""ImportSnapshot, DescribeImportSnapshotTasks and CancelImportTask, which moto does not implement.

A task reads the S3 object through moto's S3 (signed, as the VM Import service role would), checks
the disk format with qemu-img, writes the disk's non-zero 512 KiB blocks to the block store and
creates the snapshot's record in moto (EBS StartSnapshot + CompleteSnapshot); it passes through
active (pending, downloading, converting) to completed, or to deleted with a StatusMessage.
"""
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

from . import ec2xml
from .client import error_of
from .ec2xml import indexed
from .store import BLOCK_SIZE, sha256_b64

FORMATS = {"RAW": "raw", "VHD": "vpc", "VMDK": "vmdk"}
ZERO = bytes(BLOCK_SIZE)


class Cancelled(Exception):
    pass


class ClientError(Exception):
    pass


class Task:
    def __init__(self, tid, region, params):
        self.id, self.region = tid, region
        self.description = params.get("Description")
        self.format = params.get("DiskContainer.Format", "").upper()
        self.url = params.get("DiskContainer.Url")
        self.bucket = params.get("DiskContainer.UserBucket.S3Bucket")
        self.key = params.get("DiskContainer.UserBucket.S3Key")
        self.disk_description = params.get("DiskContainer.Description")
        self.tags = []
        for spec in indexed(params, "TagSpecification"):
            tags = {}
            for k, v in spec.items():
                n, _, field = k.partition(".")[2].partition(".")
                if k.startswith("Tag."):
                    tags.setdefault(n, {})[field] = v
            self.tags += [{"key": t.get("Key"), "value": t.get("Value", "")} for _, t in sorted(tags.items())]
        self.status, self.message, self.progress = "active", "pending", "0"
        self.snapshot_id = self.size = None
        self.cancel = threading.Event()

    def detail(self):
        d = {"description": self.disk_description, "diskImageSize": self.size, "format": self.format or None,
             "progress": self.progress if self.status == "active" else None, "snapshotId": self.snapshot_id,
             "status": self.status, "statusMessage": self.message, "url": self.url, "encrypted": False}
        if self.bucket:
            d["userBucket"] = {"s3Bucket": self.bucket, "s3Key": self.key}
        return d

    def members(self):
        return {"description": self.description, "importTaskId": self.id,
                "snapshotTaskDetail": self.detail(), "tagSet": self.tags or None}


class Imports:
    def __init__(self, state_dir, store, moto, log, admin, step_seconds):
        self.dir = os.path.join(state_dir, "imports")
        os.makedirs(self.dir, exist_ok=True)
        self.store, self.moto, self.log, self.admin, self.step = store, moto, log, admin, step_seconds
        self.tasks = {}
        self.lock = threading.Lock()

    def authorized(self, req):
        """Forwards to moto, which checks signature and policy before answering 500 (unimplemented)."""
        upstream = self.moto.forward(req)
        return upstream if upstream.auth_failed else None

    def start(self, req, params):
        denied = self.authorized(req)
        if denied:
            return denied
        if params.get("DryRun", "").lower() == "true":
            return ec2xml.error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
        fmt = params.get("DiskContainer.Format", "").upper()
        if fmt not in FORMATS:
            return ec2xml.error("InvalidParameter",
                                f"DiskContainer.Format must be one of {', '.join(FORMATS)}, got {fmt or 'nothing'!r}")
        url = params.get("DiskContainer.Url")
        bucket = params.get("DiskContainer.UserBucket.S3Bucket")
        if bool(url) == bool(bucket):
            return ec2xml.error("InvalidParameter", "give exactly one of DiskContainer.Url and DiskContainer.UserBucket")
        if bucket and not params.get("DiskContainer.UserBucket.S3Key"):
            return ec2xml.error("InvalidParameter", "DiskContainer.UserBucket.S3Key is required")
        if url and not url.startswith("s3://"):
            return ec2xml.error("InvalidParameter", f"DiskContainer.Url must be an s3:// URL here, got {url!r}")
        task = Task("import-snap-" + secrets.token_hex(9)[:17], req.region, params)
        with self.lock:
            self.tasks[task.id] = task
        self.log("import-started", task=task.id, region=req.region, format=fmt,
                 source=url or f"s3://{bucket}/{task.key}")
        threading.Thread(target=self.run, args=(task,), daemon=True).start()
        return ec2xml.response("ImportSnapshot", task.members())

    def describe(self, req, params):
        denied = self.authorized(req)
        if denied:
            return denied
        ids = [v for k, v in sorted(params.items()) if k.startswith("ImportTaskId.")]
        with self.lock:
            missing = [i for i in ids if i not in self.tasks]
            tasks = [self.tasks[i] for i in ids if i in self.tasks] if ids else \
                [t for t in self.tasks.values() if t.region == req.region]
        if missing:
            return ec2xml.error("InvalidConversionTaskId.Malformed",
                                f"The import task id '{missing[0]}' does not exist.")
        for f in indexed(params, "Filter"):
            values = [v for k, v in f.items() if k.startswith("Value.")]
            if f.get("Name") == "task-state":
                tasks = [t for t in tasks if t.status in values]
        try:
            start, limit = int(params.get("NextToken") or 0), int(params.get("MaxResults") or 1000)
        except ValueError:
            return ec2xml.error("InvalidParameterValue", "NextToken or MaxResults is not one this service accepts")
        page = tasks[start:start + limit]
        nxt = str(start + limit) if start + limit < len(tasks) else None
        return ec2xml.response("DescribeImportSnapshotTasks",
                               {"importSnapshotTaskSet": [t.members() for t in page], "nextToken": nxt})

    def cancel(self, req, params):
        denied = self.authorized(req)
        if denied:
            return denied
        with self.lock:
            task = self.tasks.get(params.get("ImportTaskId", ""))
        if task is None:
            return ec2xml.error("InvalidConversionTaskId", f"The import task id '{params.get('ImportTaskId')}' does not exist.")
        if task.status != "active":
            return ec2xml.error("IncorrectState", f"The import task {task.id} is {task.status}; it cannot be cancelled.")
        task.cancel.set()
        task.status, task.message = "deleting", "Cancelling: " + params.get("CancelReason", "cancelled by the user")
        self.log("import-cancelled", task=task.id)
        return ec2xml.response("CancelImportTask", {"importTaskId": task.id, "previousState": "active",
                                                    "state": "deleting"})

    def stage(self, task, message, progress):
        if task.cancel.is_set():
            raise Cancelled()
        task.message, task.progress = message, str(progress)
        time.sleep(self.step)
        if task.cancel.is_set():
            raise Cancelled()

    def run(self, task):
        work = tempfile.mkdtemp(dir=self.dir, prefix=task.id + ".")
        try:
            self.stage(task, "pending", 0)
            bucket, key = task.bucket, task.key
            if task.url:
                u = urllib.parse.urlsplit(task.url)
                bucket, key = u.netloc, u.path.lstrip("/")
            self.stage(task, "downloading", 10)
            src = os.path.join(work, "source")
            task.size = float(self.download(task.region, bucket, key, src))
            self.stage(task, "validating", 30)
            raw = self.to_raw(task, src, work)
            self.stage(task, "converting", 50)
            self.write_snapshot(task, raw)
            task.status, task.message, task.progress = "completed", None, None
            self.log("import-completed", task=task.id, snapshot=task.snapshot_id)
        except Cancelled:
            task.status, task.message = "deleted", task.message.replace("Cancelling", "Cancelled")
        except ClientError as e:
            task.status, task.message = "deleted", f"ClientError: {e}"
            self.log("import-failed", task=task.id, message=task.message)
        except Exception as e:  # noqa: BLE001 - reported in the task, as AWS does
            task.status, task.message = "deleted", f"ServerError: {e}"
            self.log("import-failed", task=task.id, message=task.message)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def download(self, region, bucket, key, dest):
        path = "/" + urllib.parse.quote(bucket) + "/" + urllib.parse.quote(key)
        offset, chunk = 0, 8 << 20
        with open(dest, "wb") as out:
            while True:
                status, headers, data = self.admin.request(
                    "GET", "s3", region, path, headers={"Range": f"bytes={offset}-{offset + chunk - 1}"},
                    raise_errors=False)
                if status == 416 and offset > 0:
                    break
                if status >= 300:
                    code, msg = error_of(status, data)
                    raise ClientError(f"cannot read s3://{bucket}/{key}: {code} {msg}".strip())
                out.write(data)
                offset += len(data)
                total = headers.get("content-range", "").rpartition("/")[2]
                if status == 200 or not data or (total.isdigit() and offset >= int(total)):
                    break
        return offset

    def to_raw(self, task, src, work):
        fmt = FORMATS[task.format]
        probe = subprocess.run(["qemu-img", "info", "--output=json", src], capture_output=True, text=True)
        found = json.loads(probe.stdout).get("format") if probe.returncode == 0 else None
        if found != fmt:
            raise ClientError(f"Disk validation failed [the image is {found or 'unreadable'}, not {task.format}]")
        if os.path.getsize(src) == 0:
            raise ClientError("Disk validation failed [the image is empty]")
        if fmt == "raw":
            return src
        raw = os.path.join(work, "disk.raw")
        conv = subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", src, raw], capture_output=True, text=True)
        if conv.returncode != 0:
            raise ClientError(f"Disk validation failed [{conv.stderr.strip().splitlines()[-1:]}]")
        return raw

    def write_snapshot(self, task, raw):
        size = os.path.getsize(raw)
        gib = max(1, -(-size // (1 << 30)))
        doc = json.loads(self.admin.ebs("POST", task.region, "/snapshots", doc={
            "VolumeSize": gib, "Description": f"Created by AWS-VMImport service for {task.id}"})[1])
        sid = doc["SnapshotId"]
        snap = self.store.create(sid, task.region, gib, description=doc.get("Description", ""), source="import")
        try:
            blocks = self.copy_blocks(task, snap, raw)
        except BaseException:
            self.store.delete(sid)  # nothing half-created: neither the blocks nor moto's record stay
            self.admin.ec2(task.region, "DeleteSnapshot", SnapshotId=sid)
            raise
        self.admin.ebs("POST", task.region, f"/snapshots/completion/{sid}", headers={"x-amz-ChangedBlocksCount": "0"})
        self.store.complete(snap)
        task.snapshot_id = sid
        self.log("import-snapshot-written", task=task.id, snapshot=sid, blocks=blocks, volume_size=gib)

    def copy_blocks(self, task, snap, raw):
        blocks = 0
        with open(raw, "rb") as f:
            index = 0
            while True:
                if task.cancel.is_set():
                    raise Cancelled()
                data = f.read(BLOCK_SIZE)
                if not data:
                    break
                data = data.ljust(BLOCK_SIZE, b"\0")
                if data != ZERO:
                    self.store.put_block(snap, index, data, sha256_b64(data))
                    blocks += 1
                index += 1
        return blocks
