#!/usr/bin/python3
"""aws-sim's EBS direct layer enforces AWS's documented rules that moto ignores."""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awstest  # noqa: E402
from awstest import BLOCK, ClientError, block, checksum, error_code  # noqa: E402

EBS_MODEL = awstest.model("ebs", "2019-11-02")


def put(ebs, sid, index, data, **over):
    args = dict(SnapshotId=sid, BlockIndex=index, BlockData=data, DataLength=len(data), Checksum=checksum(data),
                ChecksumAlgorithm="SHA256")
    args.update(over)
    return ebs.put_snapshot_block(**args)


class EbsFidelity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.ebs = cls.s.client("ebs")
        cls.ec2 = cls.s.client("ec2")

    def start(self, **kw):
        kw.setdefault("VolumeSize", 1)
        return self.ebs.start_snapshot(**kw)

    def assertRejected(self, fn, code="ValidationException", reason=None):
        with self.assertRaises(ClientError) as cm:
            fn()
        err = cm.exception.response
        self.assertEqual(error_code(cm.exception), code, err)
        shape = EBS_MODEL["shapes"][code]
        self.assertLessEqual(set(k for k in err if k not in ("Error", "ResponseMetadata")), set(shape["members"]))
        if reason:
            self.assertEqual(err.get("Reason"), reason)
            self.assertIn(reason, EBS_MODEL["shapes"][shape["members"]["Reason"]["shape"]]["enum"])
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], shape["error"]["httpStatusCode"])
        return err

    def test_start_reports_aws_block_size_and_pending(self):
        snap = self.start(Description="fidelity")
        self.assertEqual(snap["BlockSize"], 524288)
        self.assertEqual(snap["Status"], "pending")
        shown = self.ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
        self.assertEqual(shown["State"], "pending")
        self.ebs.complete_snapshot(SnapshotId=snap["SnapshotId"], ChangedBlocksCount=0)
        shown = self.ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
        self.assertEqual(shown["State"], "completed")

    def test_block_must_be_512_kib(self):
        sid = self.start()["SnapshotId"]
        self.assertRejected(lambda: put(self.ebs, sid, 0, b"x" * 4096), reason="INVALID_BLOCK")
        self.assertRejected(lambda: put(self.ebs, sid, 0, b"x" * (BLOCK + 512)), reason="INVALID_BLOCK")
        put(self.ebs, sid, 0, block(1))

    def test_data_length_must_match(self):
        sid = self.start()["SnapshotId"]
        self.assertRejected(lambda: put(self.ebs, sid, 0, block(1), DataLength=BLOCK - 1), reason="INVALID_BLOCK")

    def test_checksum_verified(self):
        sid = self.start()["SnapshotId"]
        self.assertRejected(lambda: put(self.ebs, sid, 0, block(1), Checksum=checksum(block(2))), reason="INVALID_BLOCK")
        self.assertRejected(lambda: put(self.ebs, sid, 0, block(1), Checksum="not base64!"))
        self.assertRejected(lambda: put(self.ebs, sid, 0, block(1), ChecksumAlgorithm="MD5"))
        self.assertRejected(lambda: put(self.ebs, sid, 0, block(1), Progress=101))
        answer = put(self.ebs, sid, 0, block(1))
        self.assertEqual(answer["Checksum"], checksum(block(1)))
        self.assertEqual(answer["ChecksumAlgorithm"], "SHA256")
        written = [e for e in self.s.events("block-written") if e["snapshot"] == sid]
        self.assertEqual([(e["index"], e["checksum"]) for e in written], [(0, checksum(block(1)))])

    def test_index_within_volume(self):
        sid = self.start(VolumeSize=1)["SnapshotId"]
        put(self.ebs, sid, 2047, block(1))
        self.assertRejected(lambda: put(self.ebs, sid, 2048, block(1)), reason="INVALID_BLOCK")

    def test_no_writes_after_complete_and_changed_blocks_count(self):
        sid = self.start()["SnapshotId"]
        put(self.ebs, sid, 0, block(1))
        put(self.ebs, sid, 7, block(2))
        put(self.ebs, sid, 7, block(3))  # rewriting a block counts once
        self.assertRejected(lambda: self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=3))
        self.assertEqual(self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=2)["Status"], "completed")
        self.assertRejected(lambda: put(self.ebs, sid, 1, block(4)))
        self.assertRejected(lambda: self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=2))

    def test_linear_snapshot_checksum(self):
        import base64
        import hashlib
        sid = self.start()["SnapshotId"]
        for i in (5, 2):
            put(self.ebs, sid, i, block(i))
        good = base64.b64encode(hashlib.sha256(b"".join(
            base64.b64decode(checksum(block(i))) for i in (2, 5))).digest()).decode()
        self.assertRejected(lambda: self.ebs.complete_snapshot(
            SnapshotId=sid, ChangedBlocksCount=2, Checksum=checksum(b"wrong"), ChecksumAlgorithm="SHA256",
            ChecksumAggregationMethod="LINEAR"))
        self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=2, Checksum=good, ChecksumAlgorithm="SHA256",
                                   ChecksumAggregationMethod="LINEAR")

    def test_child_inherits_parent_blocks(self):
        parent = self.start()["SnapshotId"]
        for i in (0, 1, 2):
            put(self.ebs, parent, i, block(("p", i)))
        self.assertRejected(lambda: self.start(ParentSnapshotId=parent), reason="INVALID_SNAPSHOT_ID")  # pending
        self.ebs.complete_snapshot(SnapshotId=parent, ChangedBlocksCount=3)
        child = self.start(ParentSnapshotId=parent)
        self.assertEqual(child["ParentSnapshotId"], parent)
        child = child["SnapshotId"]
        put(self.ebs, child, 1, block(("c", 1)))
        put(self.ebs, child, 5, block(("c", 5)))
        self.ebs.complete_snapshot(SnapshotId=child, ChangedBlocksCount=2)
        blocks = self.ebs.list_snapshot_blocks(SnapshotId=child)["Blocks"]
        self.assertEqual([b["BlockIndex"] for b in blocks], [0, 1, 2, 5])
        want = {0: block(("p", 0)), 1: block(("c", 1)), 2: block(("p", 2)), 5: block(("c", 5))}
        for b in blocks:
            got = self.ebs.get_snapshot_block(SnapshotId=child, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])
            data = got["BlockData"].read()
            self.assertEqual(data, want[b["BlockIndex"]], b["BlockIndex"])
            self.assertEqual(got["Checksum"], checksum(data))
            self.assertEqual(got["DataLength"], BLOCK)
        # the parent is unchanged
        pblocks = self.ebs.list_snapshot_blocks(SnapshotId=parent)["Blocks"]
        got = self.ebs.get_snapshot_block(SnapshotId=parent, BlockIndex=1, BlockToken=pblocks[1]["BlockToken"])
        self.assertEqual(got["BlockData"].read(), block(("p", 1)))
        # a token of another block is refused
        self.assertRejected(lambda: self.ebs.get_snapshot_block(
            SnapshotId=child, BlockIndex=1, BlockToken=pblocks[1]["BlockToken"]), reason="INVALID_BLOCK_TOKEN")
        changed = self.ebs.list_changed_blocks(FirstSnapshotId=parent, SecondSnapshotId=child)["ChangedBlocks"]
        self.assertEqual([c["BlockIndex"] for c in changed], [1, 5])
        self.assertIn("FirstBlockToken", changed[0])
        self.assertNotIn("FirstBlockToken", changed[1])
        alone = self.ebs.list_changed_blocks(SecondSnapshotId=child)["ChangedBlocks"]
        self.assertEqual([c["BlockIndex"] for c in alone], [0, 1, 2, 5])
        other = self.start()["SnapshotId"]
        self.ebs.complete_snapshot(SnapshotId=other, ChangedBlocksCount=0)
        self.assertRejected(lambda: self.ebs.list_changed_blocks(FirstSnapshotId=other, SecondSnapshotId=child),
                            reason="UNRELATED_SNAPSHOTS")

    def test_unknown_parent_and_smaller_child(self):
        self.assertRejected(lambda: self.start(ParentSnapshotId="snap-0123456789abcdef0"), "ResourceNotFoundException",
                            "SNAPSHOT_NOT_FOUND")
        parent = self.start(VolumeSize=2)["SnapshotId"]
        self.ebs.complete_snapshot(SnapshotId=parent, ChangedBlocksCount=0)
        self.assertRejected(lambda: self.start(VolumeSize=1, ParentSnapshotId=parent), reason="INVALID_VOLUME_SIZE")

    def test_list_sorted_and_paginated(self):
        sid = self.start()["SnapshotId"]
        indices = list(range(0, 2 * 105, 2))
        random.Random(7).shuffle(indices)
        for i in indices:
            put(self.ebs, sid, i, block(i))
        self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(indices))
        first = self.ebs.list_snapshot_blocks(SnapshotId=sid, MaxResults=100)
        self.assertEqual(len(first["Blocks"]), 100)
        self.assertIn("NextToken", first)
        second = self.ebs.list_snapshot_blocks(SnapshotId=sid, MaxResults=100, NextToken=first["NextToken"])
        self.assertNotIn("NextToken", second)
        listed = [b["BlockIndex"] for b in first["Blocks"] + second["Blocks"]]
        self.assertEqual(listed, sorted(indices))
        start = self.ebs.list_snapshot_blocks(SnapshotId=sid, StartingBlockIndex=150)["Blocks"]
        self.assertEqual([b["BlockIndex"] for b in start], [i for i in sorted(indices) if i >= 150])
        self.assertRejected(lambda: self.ebs.list_snapshot_blocks(SnapshotId=sid, NextToken="garbage"),
                            reason="INVALID_PAGE_TOKEN")

    def test_client_token_is_idempotent(self):
        a = self.start(ClientToken="tok-1", Description="same")
        b = self.start(ClientToken="tok-1", Description="same")
        self.assertEqual(a["SnapshotId"], b["SnapshotId"])
        self.assertRejected(lambda: self.start(ClientToken="tok-1", Description="other"), "ConflictException")

    def test_unknown_snapshot(self):
        self.assertRejected(lambda: self.ebs.list_snapshot_blocks(SnapshotId="snap-0123456789abcdef1"),
                            "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND")


if __name__ == "__main__":
    awstest.main()
