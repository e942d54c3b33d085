#!/usr/bin/python3
"""aws-sim's failure injection: rules from AWS_SIM_FAULTS and the admin endpoint answer chosen
requests with each service's own throttling / 5xx error shape, or not at all, as many times as asked,
and a faulted request never reaches moto."""
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awstest  # noqa: E402
from awstest import BLOCK, ClientError, block, checksum, error_code  # noqa: E402

# Given at start: the first two DescribeSecurityGroups answered 500 (checked in test_0_rules_from_environment).
START_RULES = [{"operation": "DescribeSecurityGroups", "service": "ec2", "kind": "error", "count": 2}]


def admin(method, body=None):
    req = urllib.request.Request(awstest.SERVICES.env["AWS_ENDPOINT_URL"] + "/_aws-sim/faults", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.ec2, cls.ebs, cls.s3, cls.ssm = (cls.client(n) for n in ("ec2", "ebs", "s3", "ssm"))

    @classmethod
    def client(cls, service, **config):
        """A client that tries each call once (botocore's own retries would hide the faults)."""
        env = cls.s.env
        return awstest.boto3.client(
            service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=awstest.Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}, **config))

    def tearDown(self):
        admin("DELETE")

    def status(self, exc):
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]

    def test_0_rules_from_environment(self):  # first: tearDown clears every rule
        for _ in range(2):
            with self.assertRaises(ClientError) as e:
                self.ec2.describe_security_groups()
            self.assertEqual(error_code(e.exception), "InternalError")
            self.assertEqual(self.status(e.exception), 500)
        self.ec2.describe_security_groups()  # the count is used up

    def test_ec2_throttle_count_then_through(self):
        admin("POST", {"operation": "CreateSecurityGroup", "kind": "throttle", "count": 2})
        for _ in range(2):
            with self.assertRaises(ClientError) as e:
                self.ec2.create_security_group(GroupName="fault-sg", Description="x")
            self.assertEqual(error_code(e.exception), "RequestLimitExceeded")
            self.assertEqual(self.status(e.exception), 503)
        # moto never saw the faulted calls: the group does not exist until the third call makes it
        names = [g["GroupName"] for g in self.ec2.describe_security_groups()["SecurityGroups"]]
        self.assertNotIn("fault-sg", names)
        gid = self.ec2.create_security_group(GroupName="fault-sg", Description="x")["GroupId"]
        self.ec2.delete_security_group(GroupId=gid)
        rules = admin("GET")["Faults"]
        self.assertEqual(rules[0]["hits"], 2)
        self.assertEqual(rules[0]["remaining"], 0)
        injected = [e for e in self.s.events("fault-injected") if e["operation"] == "CreateSecurityGroup"]
        self.assertEqual(len(injected), 2)

    def test_ebs_shapes_and_after(self):
        admin("POST", {"operation": "PutSnapshotBlock", "kind": "throttle", "after": 1, "count": 1})
        admin("POST", {"operation": "PutSnapshotBlock", "kind": "error", "count": 1})
        sid = self.ebs.start_snapshot(VolumeSize=1)["SnapshotId"]

        def put(i):
            self.ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=i, BlockData=block(i), DataLength=BLOCK,
                                        Checksum=checksum(block(i)), ChecksumAlgorithm="SHA256")
        # the first block passes rule 1 (after: 1) and rule 2 takes it; the next one rule 1 takes
        with self.assertRaises(ClientError) as e:
            put(0)
        self.assertEqual(error_code(e.exception), "InternalServerException")
        self.assertEqual(self.status(e.exception), 500)
        with self.assertRaises(ClientError) as e:
            put(1)
        self.assertEqual(error_code(e.exception), "RequestThrottledException")
        self.assertEqual(self.status(e.exception), 400)
        put(1)
        put(2)
        written = {e["index"] for e in self.s.events("block-written") if e["snapshot"] == sid}
        self.assertEqual(written, {1, 2})
        self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=2)
        self.ec2.delete_snapshot(SnapshotId=sid)

    def test_s3_and_ssm_shapes(self):
        self.s3.create_bucket(Bucket="fault-bucket")
        admin("POST", [{"operation": "PutObject", "kind": "throttle"},
                       {"operation": "UploadPart", "kind": "unavailable"},
                       {"operation": "PutParameter", "service": "ssm", "kind": "throttle"}])
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket="fault-bucket", Key="k", Body=b"data")
        self.assertEqual(error_code(e.exception), "SlowDown")
        self.assertEqual(self.status(e.exception), 503)
        self.assertEqual(self.s3.list_objects_v2(Bucket="fault-bucket").get("KeyCount"), 0)
        up = self.s3.create_multipart_upload(Bucket="fault-bucket", Key="m")["UploadId"]
        with self.assertRaises(ClientError) as e:
            self.s3.upload_part(Bucket="fault-bucket", Key="m", UploadId=up, PartNumber=1, Body=b"x" * 1024)
        self.assertEqual(error_code(e.exception), "ServiceUnavailable")
        self.s3.abort_multipart_upload(Bucket="fault-bucket", Key="m", UploadId=up)
        with self.assertRaises(ClientError) as e:
            self.ssm.put_parameter(Name="/fault/x", Value="v", Type="String")
        self.assertEqual(error_code(e.exception), "ThrottlingException")
        self.ssm.put_parameter(Name="/fault/x", Value="v", Type="String")

    def test_hang_until_timeout_or_cleared(self):
        admin("POST", {"operation": "DescribeImages", "kind": "hang", "seconds": 30, "count": 2})
        slow = self.client("ec2", read_timeout=1, connect_timeout=2)
        t = time.time()
        with self.assertRaises(awstest.botocore.exceptions.ReadTimeoutError):
            slow.describe_images(Owners=["self"])
        self.assertLess(time.time() - t, 10)
        admin("DELETE")  # releases the held request; the rule is gone
        slow.describe_images(Owners=["self"])

    def test_bad_rules_refused(self):
        for bad in ({"kind": "throttle"}, {"operation": "X", "kind": "explode"}, {"operation": "X", "colour": 1}):
            with self.assertRaises(urllib.error.HTTPError) as e:
                admin("POST", bad)
            self.assertEqual(e.exception.code, 400)
        self.assertEqual(admin("GET")["Faults"], [])


if __name__ == "__main__":
    os.environ["AWS_SIM_FAULTS"] = json.dumps(START_RULES)
    try:
        awstest.main()
    finally:
        os.environ.pop("AWS_SIM_FAULTS", None)
