#!/usr/bin/python3
"""The simulator's SigV4 signer against AWS's published test suite (fast, needs no server)."""
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from awssim import sigv4  # noqa: E402

SUITE = os.environ.get("AWS_SIGV4_SUITE",
                       "/work/shared/data/aws-sig-v4-test-suite/aws-sig-v4-test-suite")
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = ("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRX"
         "mxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0K"
         "PkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA"
         "z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==")


def parse_req(text):
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "," + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    path, _, query = target.partition("?")
    return method, path, query, headers, body.encode()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def cases():
    for root, _dirs, files in os.walk(SUITE):
        for f in files:
            if f.endswith(".req"):
                yield os.path.join(root, f[:-4])


class SigV4Suite(unittest.TestCase):
    def test_suite(self):
        if not os.path.isdir(SUITE):
            self.skipTest(f"AWS SigV4 test suite not found at {SUITE}")
        n = 0
        inconsistent = []
        for base in sorted(cases()):
            name = os.path.basename(base)
            with self.subTest(case=name):
                method, path, query, headers, body = parse_req(read(base + ".req"))
                token = None
                if name == "post-sts-header-after":
                    headers = [h for h in headers if h[0].lower() != "x-amz-security-token"]
                amz_date = next(v for k, v in headers if k.lower() == "x-amz-date")
                authz, creq, sts = sigv4.sign(method, path, query, headers, hashlib.sha256(body).hexdigest(),
                                              "AKIDEXAMPLE", SECRET, "us-east-1", "service", amz_date,
                                              session_token=token)
                want_creq, want_sts, want_authz = (read(base + ext) for ext in (".creq", ".sts", ".authz"))
                self.assertEqual(creq, want_creq, "canonical request")
                # Two vectors of the 2019 suite carry a string-to-sign that is not the hash of their own
                # canonical request; for those only the canonical request can be checked.
                if want_sts.split("\n")[-1] != hashlib.sha256(want_creq.encode()).hexdigest():
                    inconsistent.append(name)
                    continue
                self.assertEqual(sts, want_sts, "string to sign")
                self.assertEqual(authz, want_authz.strip(), "authorization")
                n += 1
        self.assertGreater(n, 20)
        self.assertLessEqual(len(inconsistent), 2, inconsistent)

    def test_scope(self):
        self.assertEqual(sigv4.credential_scope(
            "AWS4-HMAC-SHA256 Credential=AKID/20261201/eu-west-1/ebs/aws4_request, SignedHeaders=host, Signature=x"),
            ("AKID", "eu-west-1", "ebs"))


if __name__ == "__main__":
    unittest.main()
