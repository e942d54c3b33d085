#!/usr/bin/python3
"""aws-sim's ImportSnapshot: tasks read S3 through moto, write the block store and a moto snapshot;
requests and answers match botocore's EC2 model."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awstest  # noqa: E402
from awstest import BLOCK, ClientError, error_code  # noqa: E402
import ec2model  # noqa: E402
from botocore.serialize import create_serializer  # noqa: E402
import botocore.session  # noqa: E402
from awssim.importsnap import Task  # noqa: E402

MIB = 1 << 20


def sample_disk():
    data = bytearray(3 * MIB + 100)
    data[0:16] = b"MBR-ish boot blk"
    data[int(1.2 * MIB):int(1.2 * MIB) + 5] = b"hello"
    data[-100:] = b"t" * 100
    return bytes(data)


class ImportSnapshot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.ec2 = cls.s.client("ec2")
        cls.ebs = cls.s.client("ebs")
        cls.s3 = cls.s.client("s3")
        cls.raw = cls.ec2model_capture = ec2model.Capture(cls.ec2)
        cls.s3.create_bucket(Bucket="lcake-import")
        cls.disk = sample_disk()
        cls.s3.put_object(Bucket="lcake-import", Key="disk.raw", Body=cls.disk)

    def wait(self, task_id, timeout=60):
        states = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"][0]
            ec2model.check_response("DescribeImportSnapshotTasks", self.raw.bodies["DescribeImportSnapshotTasks"])
            d = t["SnapshotTaskDetail"]
            states.append((d["Status"], d.get("StatusMessage")))
            if d["Status"] in ("completed", "deleted"):
                return t, states
            time.sleep(0.1)
        self.fail(f"import {task_id} did not finish: {states[-3:]}")

    def blocks_of(self, sid):
        out = {}
        for b in self.ebs.list_snapshot_blocks(SnapshotId=sid)["Blocks"]:
            out[b["BlockIndex"]] = self.ebs.get_snapshot_block(
                SnapshotId=sid, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])["BlockData"].read()
        return out

    def expected_blocks(self, data):
        padded = data + bytes(-len(data) % BLOCK)
        return {i // BLOCK: padded[i:i + BLOCK] for i in range(0, len(padded), BLOCK) if padded[i:i + BLOCK].strip(b"\0")}

    def test_raw_from_user_bucket(self):
        r = self.ec2.import_snapshot(Description="lcake raw", DiskContainer={
            "Format": "RAW", "UserBucket": {"S3Bucket": "lcake-import", "S3Key": "disk.raw"}},
            TagSpecifications=[{"ResourceType": "import-snapshot-task", "Tags": [{"Key": "k", "Value": "v"}]}])
        ec2model.check_response("ImportSnapshot", self.raw.bodies["ImportSnapshot"])
        self.assertTrue(r["ImportTaskId"].startswith("import-snap-"))
        self.assertEqual(r["SnapshotTaskDetail"]["Status"], "active")
        self.assertEqual(r["Tags"], [{"Key": "k", "Value": "v"}])
        task, states = self.wait(r["ImportTaskId"])
        d = task["SnapshotTaskDetail"]
        self.assertEqual(d["Status"], "completed", d)
        self.assertIn("active", [status for status, _ in states])  # seen while it ran, before completed
        self.assertEqual(d["DiskImageSize"], float(len(self.disk)))
        self.assertEqual(d["UserBucket"], {"S3Bucket": "lcake-import", "S3Key": "disk.raw"})
        sid = d["SnapshotId"]
        snap = self.ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
        self.assertEqual(snap["State"], "completed")
        self.assertEqual(snap["VolumeSize"], 1)
        self.assertIn(r["ImportTaskId"], snap["Description"])
        got = self.blocks_of(sid)
        self.assertEqual(sorted(got), [0, 2, 6])
        self.assertEqual(got, self.expected_blocks(self.disk))

    def converted_import(self, fmt, qemu_fmt, options=()):
        with tempfile.TemporaryDirectory() as d:
            raw, out = os.path.join(d, "d.raw"), os.path.join(d, "d." + fmt.lower())
            with open(raw, "wb") as f:
                f.write(self.disk)
            subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", qemu_fmt, *options, raw, out], check=True)
            self.s3.upload_file(out, "lcake-import", "disk." + fmt.lower())
        url = f"s3://lcake-import/disk.{fmt.lower()}"
        r = self.ec2.import_snapshot(DiskContainer={"Format": fmt, "Url": url})
        task, _ = self.wait(r["ImportTaskId"])
        d = task["SnapshotTaskDetail"]
        self.assertEqual(d["Status"], "completed", d)
        self.assertEqual(d["Url"], url)
        got = self.blocks_of(d["SnapshotId"])
        want = self.expected_blocks(self.disk)
        for i, data in want.items():  # a VHD's size is rounded up to its geometry: only more zeros
            self.assertEqual(got.get(i), data, i)
        self.assertEqual(set(got), set(want))

    def test_vhd_from_url(self):
        self.converted_import("VHD", "vpc")

    def test_stream_optimized_vmdk(self):
        self.converted_import("VMDK", "vmdk", ["-o", "subformat=streamOptimized"])

    def test_wrong_format_is_deleted_with_message(self):
        with tempfile.TemporaryDirectory() as d:
            q = os.path.join(d, "d.qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, "64M"], check=True)
            self.s3.upload_file(q, "lcake-import", "disk.qcow2")
        r = self.ec2.import_snapshot(DiskContainer={"Format": "RAW", "UserBucket": {
            "S3Bucket": "lcake-import", "S3Key": "disk.qcow2"}})
        task, _ = self.wait(r["ImportTaskId"])
        d = task["SnapshotTaskDetail"]
        self.assertEqual(d["Status"], "deleted")
        self.assertTrue(d["StatusMessage"].startswith("ClientError: Disk validation failed"), d)
        self.assertNotIn("SnapshotId", d)

    def test_missing_object(self):
        r = self.ec2.import_snapshot(DiskContainer={"Format": "RAW", "UserBucket": {
            "S3Bucket": "lcake-import", "S3Key": "nothing-here"}})
        task, _ = self.wait(r["ImportTaskId"])
        d = task["SnapshotTaskDetail"]
        self.assertEqual(d["Status"], "deleted")
        self.assertIn("NoSuchKey", d["StatusMessage"])

    def test_cancel(self):
        r = self.ec2.import_snapshot(DiskContainer={"Format": "RAW", "UserBucket": {
            "S3Bucket": "lcake-import", "S3Key": "disk.raw"}})
        c = self.ec2.cancel_import_task(ImportTaskId=r["ImportTaskId"], CancelReason="test")
        ec2model.check_response("CancelImportTask", self.raw.bodies["CancelImportTask"])
        self.assertEqual((c["PreviousState"], c["State"]), ("active", "deleting"))
        task, _ = self.wait(r["ImportTaskId"])
        self.assertEqual(task["SnapshotTaskDetail"]["Status"], "deleted")
        with self.assertRaises(ClientError) as cm:
            self.ec2.cancel_import_task(ImportTaskId=r["ImportTaskId"])
        self.assertEqual(error_code(cm.exception), "IncorrectState")

    def test_bad_requests(self):
        with self.assertRaises(ClientError) as cm:
            self.ec2.import_snapshot(DiskContainer={"Format": "QCOW2", "Url": "s3://lcake-import/disk.raw"})
        self.assertEqual(error_code(cm.exception), "InvalidParameter")
        with self.assertRaises(ClientError) as cm:
            self.ec2.describe_import_snapshot_tasks(ImportTaskIds=["import-snap-0000000000000000f"])
        self.assertEqual(error_code(cm.exception), "InvalidConversionTaskId.Malformed")
        with self.assertRaises(ClientError) as cm:
            self.ec2.import_snapshot(DryRun=True, DiskContainer={"Format": "RAW", "Url": "s3://lcake-import/disk.raw"})
        self.assertEqual(error_code(cm.exception), "DryRunOperation")

    def test_wrong_secret(self):
        bad = self.s.client("ec2", aws_secret_access_key="wrong-secret")
        with self.assertRaises(ClientError) as cm:
            bad.import_snapshot(DiskContainer={"Format": "RAW", "Url": "s3://lcake-import/disk.raw"})
        self.assertEqual(error_code(cm.exception), "AuthFailure")

    def test_model_check_catches_misnamed_members(self):
        bad = (b'<ImportSnapshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
               b'<importTaskId>x</importTaskId><snapshotTaskDetail><Status>active</Status></snapshotTaskDetail>'
               b'</ImportSnapshotResponse>')
        with self.assertRaisesRegex(AssertionError, "<Status> is not a member of SnapshotTaskDetail"):
            ec2model.check_response("ImportSnapshot", bad)
        bad = bad.replace(b"<Status>active</Status>", b"<diskImageSize>big</diskImageSize>")
        with self.assertRaises(ValueError):
            ec2model.check_response("ImportSnapshot", bad)

    def test_request_names_follow_the_model(self):
        """The parameter names the simulator reads are the ones botocore's EC2 serializer writes."""
        model = botocore.session.get_session().get_service_model("ec2").operation_model("ImportSnapshot")
        body = create_serializer("ec2").serialize_to_request({
            "Description": "d", "DiskContainer": {"Description": "dd", "Format": "VMDK",
                                                  "UserBucket": {"S3Bucket": "b", "S3Key": "k"}},
            "TagSpecifications": [{"ResourceType": "import-snapshot-task", "Tags": [{"Key": "a", "Value": "1"}]}]},
            model)["body"]
        task = Task("import-snap-1", "us-east-1", body)
        self.assertEqual((task.format, task.bucket, task.key, task.description, task.disk_description),
                         ("VMDK", "b", "k", "d", "dd"))
        self.assertEqual(task.tags, [{"key": "a", "value": "1"}])


if __name__ == "__main__":
    awstest.main()
