#!/usr/bin/python3
"""aws-sim keeps what RegisterImage and CopyImage were given (moto drops the block-device mapping),
refuses what AWS refuses, and passes everything else (S3 large bodies, SSM, launch permissions)
through to moto."""
import hashlib
import os
import time
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awstest  # noqa: E402
import ec2model  # noqa: E402
from awstest import BLOCK, ClientError, block, checksum, error_code  # noqa: E402


class Images(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.ec2, cls.ebs = cls.s.client("ec2"), cls.s.client("ebs")
        cls.raw = ec2model.Capture(cls.ec2)

    def snapshot(self, blocks=(0, 3), complete=True, ebs=None):
        ebs = ebs or self.ebs
        sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
        for i in blocks:
            ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=i, BlockData=block(i), DataLength=BLOCK,
                                   Checksum=checksum(block(i)), ChecksumAlgorithm="SHA256")
        if complete:
            ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(blocks))
        return sid

    def register(self, sid, name):
        return self.ec2.register_image(
            Name=name, RootDeviceName="/dev/xvda", Architecture="x86_64", BootMode="legacy-bios",
            VirtualizationType="hvm", EnaSupport=True,
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid, "VolumeType": "gp3",
                                                                    "DeleteOnTermination": True}}])["ImageId"]

    def names(self):
        return {i["Name"] for i in self.ec2.describe_images(Owners=["self"])["Images"]}

    def test_register_keeps_mapping(self):
        sid = self.snapshot()
        ami = self.register(sid, "keeps-mapping")
        img = self.ec2.describe_images(ImageIds=[ami])["Images"][0]
        ec2model.check_response("DescribeImages", self.raw.bodies["DescribeImages"])
        self.assertEqual(img["RootDeviceName"], "/dev/xvda")
        self.assertEqual(img["RootDeviceType"], "ebs")
        self.assertEqual(img["BootMode"], "legacy-bios")
        self.assertEqual(img["VirtualizationType"], "hvm")
        self.assertTrue(img["EnaSupport"])
        self.assertEqual(img["BlockDeviceMappings"], [{"DeviceName": "/dev/xvda", "Ebs": {
            "SnapshotId": sid, "VolumeSize": 1, "VolumeType": "gp3", "DeleteOnTermination": True}}])
        mine = self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        self.assertFalse([s for s in mine if ami in s.get("Description", "")],
                         "moto's invented snapshot for the AMI is shown")
        self.assertIn(sid, [s["SnapshotId"] for s in mine])
        with self.assertRaises(ClientError) as cm:
            self.ec2.delete_snapshot(SnapshotId=sid)
        self.assertEqual(error_code(cm.exception), "InvalidSnapshot.InUse")
        self.ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}]})
        self.assertTrue(self.ec2.describe_images(ImageIds=[ami])["Images"][0]["Public"])
        self.ec2.deregister_image(ImageId=ami)
        self.ec2.delete_snapshot(SnapshotId=sid)
        self.assertTrue(any(e["snapshot"] == sid for e in self.s.events("snapshot-deleted")))
        with self.assertRaises(ClientError) as cm:
            self.ebs.list_snapshot_blocks(SnapshotId=sid)
        self.assertEqual(error_code(cm.exception), "ResourceNotFoundException")

    def test_register_refuses_unknown_or_pending_snapshot(self):
        with self.assertRaises(ClientError) as cm:
            self.register("snap-0123456789abcdef0", "unknown-snap")
        self.assertEqual(error_code(cm.exception), "InvalidSnapshot.NotFound")
        pending = self.snapshot(complete=False)
        with self.assertRaises(ClientError) as cm:
            self.register(pending, "pending-snap")
        self.assertEqual(error_code(cm.exception), "IncorrectState")
        self.assertFalse({"unknown-snap", "pending-snap"} & self.names(), "a refused image was left registered")

    def test_copy_image_to_another_region(self):
        sid = self.snapshot(blocks=(1, 2))
        ami = self.register(sid, "to-copy")
        west = self.s.client("ec2", region="eu-west-1")
        copy = west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="copied")["ImageId"]
        img = west.describe_images(ImageIds=[copy])["Images"][0]
        copied_sid = img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        self.assertNotEqual(copied_sid, sid)
        self.assertEqual(img["RootDeviceName"], "/dev/xvda")
        self.assertEqual(west.describe_snapshots(SnapshotIds=[copied_sid])["Snapshots"][0]["State"], "completed")
        ebs_west = self.s.client("ebs", region="eu-west-1")
        with self.assertRaises(ClientError) as cm:  # the source snapshot lives in us-east-1 only
            ebs_west.list_snapshot_blocks(SnapshotId=sid)
        self.assertEqual(error_code(cm.exception), "ResourceNotFoundException")
        blocks = ebs_west.list_snapshot_blocks(SnapshotId=copied_sid)["Blocks"]
        self.assertEqual([b["BlockIndex"] for b in blocks], [1, 2])
        data = ebs_west.get_snapshot_block(SnapshotId=copied_sid, BlockIndex=2, BlockToken=blocks[1]["BlockToken"])
        self.assertEqual(data["BlockData"].read(), block(2))
        # the source may go; the copy keeps its data
        self.ec2.deregister_image(ImageId=ami)
        self.ec2.delete_snapshot(SnapshotId=sid)
        blocks = ebs_west.list_snapshot_blocks(SnapshotId=copied_sid)["Blocks"]
        data = ebs_west.get_snapshot_block(SnapshotId=copied_sid, BlockIndex=1, BlockToken=blocks[0]["BlockToken"])
        self.assertEqual(data["BlockData"].read(), block(1))

    def test_image_names_are_unique_per_region(self):
        sid = self.snapshot(blocks=(5,))
        ami = self.register(sid, "one-name")
        with self.assertRaises(ClientError) as cm:  # AWS: unique among the account's AMIs in a region
            self.register(sid, "one-name")
        self.assertEqual(error_code(cm.exception), "InvalidAMIName.Duplicate")
        self.assertIn(ami, str(cm.exception))
        self.assertEqual(sum(1 for i in self.ec2.describe_images(Owners=["self"])["Images"]
                             if i["Name"] == "one-name"), 1)
        # Another region may use the name once; a second copy under it there is refused.
        west = self.s.client("ec2", region="eu-west-1")
        copy = west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="one-name")["ImageId"]
        with self.assertRaises(ClientError) as cm:
            west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="one-name")
        self.assertEqual(error_code(cm.exception), "InvalidAMIName.Duplicate")
        # A deregistered image's name is free again.
        self.ec2.deregister_image(ImageId=ami)
        again = self.register(sid, "one-name")
        self.ec2.deregister_image(ImageId=again)
        west.deregister_image(ImageId=copy)

    def test_copy_image_encrypted(self):
        sid = self.snapshot(blocks=(4,))
        ami = self.register(sid, "to-encrypt")
        west = self.s.client("ec2", region="eu-west-1")
        with self.assertRaises(ClientError) as cm:  # a key without Encrypted
            west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="no", KmsKeyId="alias/x")
        self.assertEqual(error_code(cm.exception), "InvalidParameterDependency")
        key = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-4000-8000-000000000001"
        raw = ec2model.Capture(west)
        copy = west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="encrypted",
                               Encrypted=True, KmsKeyId=key)["ImageId"]
        img = west.describe_images(ImageIds=[copy])["Images"][0]
        ec2model.check_response("DescribeImages", raw.bodies["DescribeImages"])
        ebs = img["BlockDeviceMappings"][0]["Ebs"]
        self.assertTrue(ebs["Encrypted"])
        self.assertEqual(ebs["KmsKeyId"], key)
        snap = west.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
        ec2model.check_response("DescribeSnapshots", raw.bodies["DescribeSnapshots"])
        self.assertTrue(snap["Encrypted"])
        self.assertEqual(snap["KmsKeyId"], key)
        source = self.ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
        self.assertNotIn("KmsKeyId", source)
        self.assertFalse(self.ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["Encrypted"])

    def test_image_deprecation(self):
        ami = self.register(self.snapshot(blocks=(5,)), "to-deprecate")
        at = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(time.time() + 30 * 86400))
        self.assertTrue(self.ec2.enable_image_deprecation(ImageId=ami, DeprecateAt=at)["Return"])
        ec2model.check_response("EnableImageDeprecation", self.raw.bodies["EnableImageDeprecation"])
        img = self.ec2.describe_images(ImageIds=[ami])["Images"][0]
        ec2model.check_response("DescribeImages", self.raw.bodies["DescribeImages"])
        self.assertEqual(img["DeprecationTime"], at.replace(":00Z", ":00.000Z"))
        west = self.s.client("ec2", region="eu-west-1")
        copy = west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="not-deprecated")["ImageId"]
        self.assertNotIn("DeprecationTime", west.describe_images(ImageIds=[copy])["Images"][0])
        for bad in ("2001-01-01T00:00:00Z", "2099-01-01T00:00:00Z"):  # past; beyond 10 years
            with self.assertRaises(ClientError) as cm:
                self.ec2.enable_image_deprecation(ImageId=ami, DeprecateAt=bad)
            self.assertEqual(error_code(cm.exception), "InvalidParameterValue")
        with self.assertRaises(ClientError) as cm:
            self.ec2.enable_image_deprecation(ImageId="ami-0123456789abcdef0", DeprecateAt=at)
        self.assertEqual(error_code(cm.exception), "InvalidAMIID.NotFound")
        with self.assertRaises(ClientError) as cm:  # moto checks the policy first: lcake needs no Disable
            self.ec2.disable_image_deprecation(ImageId=ami)
        self.assertEqual(error_code(cm.exception), "AccessDenied")
        self.assertIn("DeprecationTime", self.ec2.describe_images(ImageIds=[ami])["Images"][0])


class InstancesWithoutADisk(unittest.TestCase):
    """Instances the simulator cannot boot end terminated, their console output saying why."""

    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.ec2, cls.ebs = cls.s.client("ec2"), cls.s.client("ebs")

    def console_after_termination(self, ami):
        iid = self.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        deadline = time.time() + 30
        while time.time() < deadline:
            state = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
            if state in ("shutting-down", "terminated"):
                break
            time.sleep(0.2)
        self.assertIn(state, ("shutting-down", "terminated"))
        return self.ec2.get_console_output(InstanceId=iid)["Output"]  # botocore decodes the base64

    def test_image_not_registered_through_the_simulator(self):
        ami = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        self.assertIn("was not registered through aws-sim", self.console_after_termination(ami))

    def test_uefi_image(self):
        sid = self.ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
        self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0)
        ami = self.ec2.register_image(Name="uefi", RootDeviceName="/dev/xvda", BootMode="uefi",
                                      BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}])
        self.assertIn("BootMode uefi is not simulated", self.console_after_termination(ami["ImageId"]))


class PassThrough(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES

    def test_s3_large_bodies_stream(self):
        s3 = self.s.client("s3")
        s3.create_bucket(Bucket="lcake-big")
        body = os.urandom(12 << 20)  # above the proxy's 8 MiB in-memory limit
        s3.put_object(Bucket="lcake-big", Key="big", Body=body)
        self.assertEqual(s3.head_object(Bucket="lcake-big", Key="big")["ContentLength"], len(body))
        got = s3.get_object(Bucket="lcake-big", Key="big")["Body"].read()
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(body).digest())
        up = s3.create_multipart_upload(Bucket="lcake-big", Key="mp")["UploadId"]
        part = s3.upload_part(Bucket="lcake-big", Key="mp", UploadId=up, PartNumber=1, Body=body[:9 << 20])
        parts = s3.list_parts(Bucket="lcake-big", Key="mp", UploadId=up)["Parts"]
        self.assertEqual([p["ETag"] for p in parts], [part["ETag"]])
        s3.abort_multipart_upload(Bucket="lcake-big", Key="mp", UploadId=up)
        s3.delete_object(Bucket="lcake-big", Key="big")

    def test_ssm_parameter(self):
        ssm = self.s.client("ssm")
        ssm.put_parameter(Name="/lcake/ami", Value="ami-123", Type="String")
        self.assertEqual(ssm.get_parameter(Name="/lcake/ami")["Parameter"]["Value"], "ami-123")
        ssm.delete_parameter(Name="/lcake/ami")

    def test_request_log(self):
        self.s.client("ec2").describe_regions()
        self.s.client("sts").get_caller_identity()
        self.s.client("ssm").put_parameter(Name="/lcake/logged", Value="v", Type="String", Overwrite=True)
        ops = [e.get("operation") for e in self.s.events("request")]
        for op in ("DescribeRegions", "GetCallerIdentity", "PutParameter"):
            self.assertIn(op, ops)


if __name__ == "__main__":
    awstest.main()
