"""Shared fixture of the AWS service tests: one aws-services.py start per test file, Debian's boto3.

Run a test file with /usr/bin/python3 (PYTHONPATH cleared); it exits 77 (skipped) when moto_server
or python3-boto3 is missing, printing a SKIPPED line that says what to install.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
BLOCK = 524288


def skip(message):
    print(f"SKIPPED: {message}")
    sys.exit(SKIP)


try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:
    skip("python3-boto3 / python3-botocore not installed (apt-get install python3-boto3)")

ClientError = ClientError  # re-exported for the tests


class Services:
    def __init__(self, policy=None, region="us-east-1"):
        self.dir = tempfile.mkdtemp(prefix="aws-services.")
        argv = [sys.executable, os.path.join(HERE, "aws-services.py"), "start", "--dir", self.dir, "--region", region]
        if policy:
            path = os.path.join(self.dir, "policy.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(policy, f)
            argv += ["--policy", path]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        if r.returncode == SKIP:
            skip(r.stderr.strip().replace("SKIPPED: ", ""))
        if r.returncode != 0:
            raise RuntimeError(f"aws-services.py start failed ({r.returncode}): {r.stderr.strip()}")
        with open(os.path.join(self.dir, "env.json"), encoding="utf-8") as f:
            self.env = json.load(f)

    def stop(self, keep=False):
        """Stops the services; their directory (logs, block store) stays only when keep is true."""
        subprocess.run([sys.executable, os.path.join(HERE, "aws-services.py"), "stop", "--dir", self.dir], check=False)
        if keep:
            print(f"aws-services state kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, service, region=None, endpoint=None, **creds):
        kw = dict(aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        kw.update(creds)
        return boto3.client(service, endpoint_url=endpoint or self.env["AWS_ENDPOINT_URL"],
                            region_name=region or self.env["AWS_REGION"],
                            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}), **kw)

    def events(self, event=None):
        with open(self.env["AWS_SIM_LOG"], encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        return [e for e in lines if event is None or e["event"] == event]


def checksum(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def block(seed):
    """A 512 KiB block whose content depends on seed."""
    return hashlib.sha256(str(seed).encode()).digest() * (BLOCK // 32)


def error_code(exc):
    return exc.response["Error"]["Code"]


def model(service, version):
    path = os.path.join(os.path.dirname(botocore.__file__), "data", service, version, "service-2.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


SERVICES = None


def main(**start):
    """unittest.main with the services started once for the whole file (Services(**start))."""
    global SERVICES
    warnings.simplefilter("ignore", ResourceWarning)  # botocore leaves pooled sockets to the GC
    SERVICES = Services(**start)
    ok = False
    try:
        ok = unittest.main(module="__main__", exit=False, verbosity=2).result.wasSuccessful()
    finally:
        SERVICES.stop(keep=not ok)
    sys.exit(0 if ok else 1)
