#!/usr/bin/python3
"""(slow) An AMI whose root snapshot was uploaded through EBS direct (a base snapshot and a child)
boots under qemu when run, and its sshd answers on the instance's own address 127.0.0.N:22.

The disk: AWS_SIM_BOOT_DISK (raw or qcow2, a whole BIOS-bootable disk), else the build tree's test
guest (tests/guest/test_guest.py: scripts/build-guest.sh --reuse). Skips (77) when not root (port 22
on 127.0.0.N, building the guest)."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awstest  # noqa: E402
import ec2model  # noqa: E402
from awstest import BLOCK, ClientError, checksum, error_code  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="aws-boot-test.")


def boot_disk():
    """The bootable disk as raw in WORK (-U: another test's qemu may have the guest open)."""
    raw = os.path.join(WORK, "disk.raw")
    source = os.environ.get("AWS_SIM_BOOT_DISK")
    if not source:
        sys.path.insert(0, os.path.join(HERE, "..", "..", "guest"))
        import test_guest  # noqa: E402
        source = os.path.join(test_guest.guest_dir(awstest.skip), "base.qcow2")
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", source, raw], check=True)
    return raw


def nonzero_blocks(path):
    with open(path, "rb") as f:
        index = 0
        while True:
            data = f.read(BLOCK)
            if not data:
                return
            if data.strip(b"\0"):
                yield index, data.ljust(BLOCK, b"\0")
            index += 1


class Boot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = awstest.SERVICES
        cls.ec2, cls.ebs = cls.s.client("ec2"), cls.s.client("ebs")
        cls.raw = ec2model.Capture(cls.ec2)

    def upload(self, path):
        """Two layers: the base holds every other non-zero block, the child the rest."""
        gib = -(-os.path.getsize(path) // (1 << 30))
        blocks = list(nonzero_blocks(path))
        parent = None
        for layer in (blocks[0::2], blocks[1::2]):
            kw = {"ParentSnapshotId": parent} if parent else {}
            sid = self.ebs.start_snapshot(VolumeSize=gib, Description="boot test", **kw)["SnapshotId"]
            for index, data in layer:
                self.ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=index, BlockData=data, DataLength=BLOCK,
                                            Checksum=checksum(data), ChecksumAlgorithm="SHA256")
            self.ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(layer))
            parent = sid
        return parent

    def test_boot_to_ssh(self):
        disk = DISK
        sid = self.upload(disk)
        image = self.ec2.register_image(
            Name="lcake-boot-test", RootDeviceName="/dev/xvda", Architecture="x86_64", BootMode="legacy-bios",
            VirtualizationType="hvm", EnaSupport=True,
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid, "DeleteOnTermination": True}}])
        ami = image["ImageId"]
        shown = self.ec2.describe_images(ImageIds=[ami])["Images"][0]
        self.assertEqual(shown["RootDeviceName"], "/dev/xvda")
        self.assertEqual(shown["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"], sid)
        key = os.path.join(WORK, "key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        with open(key + ".pub", "rb") as f:
            self.ec2.import_key_pair(KeyName="boot-test", PublicKeyMaterial=f.read())
        sg = self.ec2.create_security_group(GroupName="boot-test-ssh", Description="ssh from the host")["GroupId"]
        self.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
        closed = self.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName="boot-test")["Instances"][0]
        run = self.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName="boot-test", SecurityGroupIds=[sg],
                                     InstanceType="t3.micro", UserData="#cloud-config\n# from the boot test\n")
        ec2model.check_response("RunInstances", self.raw.bodies["RunInstances"])
        inst = run["Instances"][0]
        iid, addr = inst["InstanceId"], inst["PublicIpAddress"]
        self.assertTrue(addr.startswith("127.") and addr != "127.0.0.1", addr)
        self.assertEqual(inst["PrivateIpAddress"], addr)
        try:
            deadline = time.time() + 60
            while True:
                state = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
                if state["State"]["Name"] == "running":
                    break
                self.assertLess(time.time(), deadline, "instance never reached running")
                time.sleep(0.5)
            self.assertEqual(state["PublicIpAddress"], addr)
            ec2model.check_response("DescribeInstances", self.raw.bodies["DescribeInstances"])
            booted = [e for e in self.s.events("instance-booted") if e["instance"] == iid]
            self.assertEqual(len(booted), 1)
            self.assertEqual(booted[0]["snapshot"], sid)
            self.assertTrue(booted[0]["ssh_reachable"], booted[0])
            out = self.ssh(key, addr, "echo hi-from-$(hostname); cat /root/.ssh/authorized_keys")
            self.assertIn("hi-from-ip-" + addr.replace(".", "-"), out)  # the seed's meta-data was read
            # the instance in the default group (no ingress rule) is not reachable on port 22
            deadline = time.time() + 60
            while not (shut := [e for e in self.s.events("instance-booted") if e["instance"] == closed["InstanceId"]]):
                self.assertLess(time.time(), deadline, "the second instance never booted")
                time.sleep(0.5)
            self.assertFalse(shut[0]["ssh_reachable"], shut[0])
            with self.assertRaises(OSError):
                socket.create_connection((closed["PublicIpAddress"], 22), timeout=2).close()
            with open(key + ".pub", encoding="utf-8") as f:
                self.assertIn(f.read().split()[1], out)
            console = self.ec2.get_console_output(InstanceId=iid)
            ec2model.check_response("GetConsoleOutput", self.raw.bodies["GetConsoleOutput"])
            self.assertIn("lcake-guest", console.get("Output", ""))
            with self.assertRaises(ClientError) as cm:
                self.ec2.delete_snapshot(SnapshotId=sid)
            self.assertEqual(error_code(cm.exception), "InvalidSnapshot.InUse")
        finally:
            self.ec2.terminate_instances(InstanceIds=[iid, closed["InstanceId"]])
        pid = booted[0]["qemu_pid"]
        deadline = time.time() + 30
        while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
            time.sleep(0.2)
        self.assertFalse(os.path.exists(f"/proc/{pid}"), "qemu still runs after TerminateInstances")
        self.ec2.deregister_image(ImageId=ami)
        self.ec2.delete_snapshot(SnapshotId=sid)

    def ssh(self, key, addr, command, timeout=300):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = subprocess.run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                "-o", "ConnectTimeout=3", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                                f"root@{addr}", command], capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                return r.stdout
            last = r.stderr.strip()
            time.sleep(1)
        self.fail(f"no SSH on {addr}:22 within {timeout}s: {last}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        awstest.skip("the boot test needs root (qemu forwards port 22 of 127.0.0.N)")
    for tool in ("qemu-system-x86_64", "qemu-img", "ssh", "mkfs.vfat", "mcopy"):
        if not shutil.which(tool):
            awstest.skip(f"{tool} not installed (scripts/setup-deps.sh)")
    try:
        DISK = boot_disk()
        awstest.main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
