#!/usr/bin/python3
"""Signs the requests described in a JSON file with botocore's SigV4Auth (S3SigV4Auth for s3) and
prints the Authorization headers as a JSON list. Used by sigv4_test.cc."""
import json
import sys
from urllib.parse import quote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(case):
    creds = Credentials(case["access_key"], case["secret_key"])
    cls = S3SigV4Auth if case["service"] == "s3" else SigV4Auth
    auth = cls(creds, case["service"], case["region"])
    query = "&".join(quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~") for k, v in case["query"])
    url = "https://svc.example.com" + case["path"] + ("?" + query if query else "")
    req = AWSRequest(method=case["method"], url=url, data=bytes.fromhex(case["body_hex"]))
    for name, value in case["headers"]:
        req.headers[name] = value
    req.context["timestamp"] = case["date"]
    # add_auth() would overwrite X-Amz-Date with the clock; sign the way it does, with the case's date.
    auth._modify_request_before_signing = lambda r: None
    req.context["payload_signing_enabled"] = True
    canonical = auth.canonical_request(req)
    string_to_sign = auth.string_to_sign(req, canonical)
    signature = auth.signature(string_to_sign, req)
    headers = auth.signed_headers(auth.headers_to_sign(req))
    scope = auth.scope(req)
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={headers}, Signature={signature}"


def main():
    cases = json.load(open(sys.argv[1]))
    json.dump([sign(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
