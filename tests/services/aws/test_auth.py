#!/usr/bin/python3
"""Through aws-sim, moto still checks every signature and the caller's policy, and answers exactly
as it does when called directly."""
import copy
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awstest  # noqa: E402
from awstest import ClientError, block, checksum, error_code  # noqa: E402
from awssim.client import error_of  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def failure(client, call):
    """(HTTP status, error code) of a call that must fail. moto answers auth failures of JSON services
    (EBS, SSM) with XML, which botocore cannot parse; the code then comes from the raw body."""
    bodies = []
    client.meta.events.register("after-call", lambda http_response, **_: bodies.append(http_response.content))
    try:
        call(client)
    except ClientError as e:
        code = error_code(e)
        if code.isdigit() and bodies:
            code = error_of(int(code), bodies[-1])[0]
        return e.response["ResponseMetadata"]["HTTPStatusCode"], code
    raise AssertionError("the call succeeded")


def policy_without(action):
    with open(os.path.join(HERE, "minimal-policy.json"), encoding="utf-8") as f:
        policy = json.load(f)
    out = copy.deepcopy(policy)
    for st in out["Statement"]:
        st["Action"] = [a for a in st["Action"] if a != action]
    return out


class Signatures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.moto = cls.s.env["MOTO_ENDPOINT_URL"]

    def both(self, service, call, **creds):
        """(sim's failure, moto's failure) for the same call with the same credentials."""
        via_sim = failure(self.s.client(service, **creds), call)
        direct = failure(self.s.client(service, endpoint=self.moto, **creds), call)
        return via_sim, direct

    def test_wrong_secret_fails_as_moto_fails(self):
        sid = self.s.client("ebs").start_snapshot(VolumeSize=1)["SnapshotId"]
        cases = {
            ("ec2", "DescribeImages"): lambda c: c.describe_images(Owners=["self"]),
            ("ec2", "RunInstances"): lambda c: c.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1),
            ("ebs", "StartSnapshot"): lambda c: c.start_snapshot(VolumeSize=1),
            ("ebs", "PutSnapshotBlock"): lambda c: c.put_snapshot_block(
                SnapshotId=sid, BlockIndex=0, BlockData=block(0), DataLength=524288, Checksum=checksum(block(0)),
                ChecksumAlgorithm="SHA256"),
            ("ebs", "ListSnapshotBlocks"): lambda c: c.list_snapshot_blocks(SnapshotId=sid),
            ("ebs", "CompleteSnapshot"): lambda c: c.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0),
            ("s3", "ListBuckets"): lambda c: c.list_buckets(),
            ("ssm", "PutParameter"): lambda c: c.put_parameter(Name="/lcake/x", Value="v", Type="String"),
        }
        for (service, op), call in cases.items():
            with self.subTest(op=op):
                via_sim, direct = self.both(service, call, aws_secret_access_key="not-the-secret")
                self.assertEqual(via_sim, direct)
                self.assertIn(via_sim[0], (401, 403))
                self.assertIn(via_sim[1], ("AuthFailure", "SignatureDoesNotMatch", "InvalidSignatureException"))
        self.assertEqual(self.s.client("ebs").list_snapshot_blocks(SnapshotId=sid)["Blocks"], [],
                         "a block sent with a wrong signature must not be stored")
        self.assertTrue(any(e["operation"] == "PutSnapshotBlock" for e in self.s.events("ebs-denied")))

    def test_unknown_access_key(self):
        via_sim, direct = self.both("ec2", lambda c: c.describe_images(Owners=["self"]),
                                    aws_access_key_id="AKIAIOSFODNN7UNKNOWN", aws_secret_access_key="x")
        self.assertEqual(via_sim, direct)
        self.assertEqual(via_sim[0], 401)

    def test_body_less_ebs_calls_verify(self):
        """moto's signature bug for EBS calls without a body is patched: direct calls succeed."""
        direct = self.s.client("ebs", endpoint=self.moto)
        sid = direct.start_snapshot(VolumeSize=1)["SnapshotId"]
        direct.list_snapshot_blocks(SnapshotId=sid)
        direct.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0)

    def test_query_with_slash_verifies(self):
        """moto's signature bug for a query value with '/' (ListObjectsV2 ?prefix=a/b) is patched."""
        for endpoint in (self.moto, None):
            s3 = self.s.client("s3", endpoint=endpoint)
            s3.create_bucket(Bucket="slash-query-test")
            s3.put_object(Bucket="slash-query-test", Key="dir/sub/file.raw", Body=b"x")
            listed = s3.list_objects_v2(Bucket="slash-query-test", Prefix="dir/sub/", MaxKeys=1)
            self.assertEqual([o["Key"] for o in listed["Contents"]], ["dir/sub/file.raw"])
            s3.delete_object(Bucket="slash-query-test", Key="dir/sub/file.raw")

    def test_minimal_policy_refuses_other_actions(self):
        via_sim, direct = self.both("ec2", lambda c: c.create_vpc(CidrBlock="10.0.0.0/16"))
        self.assertEqual(via_sim, direct)
        self.assertIn(via_sim[1], ("UnauthorizedOperation", "AccessDenied"))  # AWS: the first; moto: the second
        via_sim, direct = self.both("iam", lambda c: c.list_users())
        self.assertEqual(via_sim, direct)
        self.assertEqual(via_sim[1], "AccessDenied")

    def test_assume_role(self):
        sts = self.s.client("sts")
        me = sts.get_caller_identity()
        self.assertTrue(me["Arn"].endswith(":user/lcake-test"), me)
        c = sts.assume_role(RoleArn=self.s.env["AWS_TEST_ROLE_ARN"], RoleSessionName="lcake")["Credentials"]
        creds = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                     aws_session_token=c["SessionToken"])
        role_sts = self.s.client("sts", **creds)
        self.assertIn(":assumed-role/lcake-test-role/lcake", role_sts.get_caller_identity()["Arn"])
        ebs = self.s.client("ebs", **creds)
        sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
        ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0)
        self.s.client("ec2", **creds).describe_snapshots(SnapshotIds=[sid])


class MissingPermission(unittest.TestCase):
    """A second pair of services whose test user lacks ebs:PutSnapshotBlock."""

    @classmethod
    def setUpClass(cls):
        cls.s = awstest.Services(policy=policy_without("ebs:PutSnapshotBlock"))

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_put_snapshot_block_denied(self):
        ebs = self.s.client("ebs")
        sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
        def call(c):
            return c.put_snapshot_block(SnapshotId=sid, BlockIndex=0, BlockData=block(0), DataLength=524288,
                                        Checksum=checksum(block(0)), ChecksumAlgorithm="SHA256")
        via_sim = failure(ebs, call)
        direct = failure(self.s.client("ebs", endpoint=self.s.env["MOTO_ENDPOINT_URL"]), call)
        self.assertEqual(via_sim, direct)
        self.assertEqual(via_sim, (403, "AccessDenied"))
        self.assertEqual(ebs.list_snapshot_blocks(SnapshotId=sid)["Blocks"], [])
        ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0)  # the rest of the policy still works


if __name__ == "__main__":
    awstest.main()
