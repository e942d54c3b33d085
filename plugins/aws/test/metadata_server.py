#!/usr/bin/python3
"""Loopback stand-ins for the two credential endpoints the AWS CLI reads, written from AWS's docs:

* container credentials (ECS/EKS): GET <path> with `Authorization: <token>` when a token is
  configured -> {AccessKeyId, SecretAccessKey, Token, Expiration, RoleArn}; wrong token -> 403;
* STS AssumeRoleWithWebIdentity (moto 5.2 answers 500 to it unsigned once its auth checks are on):
  POST / form Action=AssumeRoleWithWebIdentity, Version=2011-06-15, RoleArn, RoleSessionName,
  WebIdentityToken -> Credentials XML; a signed request is refused (the call is unsigned in AWS),
  and the token must be the one the test wrote;
* /skewed: an endpoint an hour ahead, refusing signatures dated by our clock (RequestTimeTooSkewed);
* IMDSv2: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1..21600) -> a token;
  GET /latest/meta-data/iam/security-credentials/ with X-aws-ec2-metadata-token -> the role name;
  GET .../<role> -> {Code: Success, LastUpdated, Type: AWS-HMAC, AccessKeyId, SecretAccessKey,
  Token, Expiration}; a GET without a valid token -> 401 (IMDSv1 off, as AWS does with
  HttpTokens=required).

usage: metadata_server.py PORT CONTAINER_TOKEN EXPIRES_IN_SECONDS [WEB_IDENTITY_TOKEN]
Each credentials answer carries a fresh serial in its keys, so refreshes can be seen; every request
is printed to stdout as one JSON line."""
import datetime
import json
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, CONTAINER_TOKEN, EXPIRES_IN = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
WEB_TOKEN = sys.argv[4] if len(sys.argv) > 4 else ""
ROLE = "lcake-test-instance-role"
tokens = set()
serial = [0]


def creds(kind):
    serial[0] += 1
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=EXPIRES_IN)
    return {"AccessKeyId": f"ASIA{kind}{serial[0]:04d}", "SecretAccessKey": f"{kind}-secret-{serial[0]}",
            "Token": f"{kind}-session-{serial[0]}", "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

    def note(self):
        print(json.dumps({"method": self.command, "path": self.path,
                          "authorization": self.headers.get("Authorization"),
                          "imds_token": self.headers.get("X-aws-ec2-metadata-token")}), flush=True)

    def do_PUT(self):
        self.note()
        if self.path != "/latest/api/token":
            return self.reply(404, "not found", "text/plain")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "bad ttl", "text/plain")
        token = secrets.token_urlsafe(24)
        tokens.add(token)
        self.reply(200, token, "text/plain")

    def do_POST(self):
        self.note()
        if self.path.startswith("/skewed"):
            return self.skewed()
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode())
        get = lambda k: form.get(k, [""])[0]
        if get("Action") != "AssumeRoleWithWebIdentity" or get("Version") != "2011-06-15":
            return self.sts_error(400, "InvalidAction", "only AssumeRoleWithWebIdentity is served here")
        if self.headers.get("Authorization"):
            return self.sts_error(400, "InvalidParameterValue", "this call is made without a signature")
        if not get("RoleArn").startswith("arn:aws:iam::") or not get("RoleSessionName"):
            return self.sts_error(400, "ValidationError", "RoleArn and RoleSessionName are required")
        if get("WebIdentityToken") != WEB_TOKEN:
            return self.sts_error(400, "InvalidIdentityToken", "the token is not the one issued")
        c = creds("WEBI")
        self.reply(200, f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{c["AccessKeyId"]}</AccessKeyId>
<SecretAccessKey>{c["SecretAccessKey"]}</SecretAccessKey><SessionToken>{c["Token"]}</SessionToken>
<Expiration>{c["Expiration"]}</Expiration></Credentials>
<AssumedRoleUser><Arn>{get("RoleArn")}/{get("RoleSessionName")}</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>
</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>""", "text/xml")

    def skewed(self):
        """An endpoint whose clock is an hour ahead: a signature dated by our clock is refused the way S3
        refuses it (403 RequestTimeTooSkewed, the server's Date header); one within 5 minutes passes."""
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        server_now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        try:
            signed = datetime.datetime.strptime(self.headers.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
            signed = signed.replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return self.sts_error(400, "MissingAuthenticationToken", "no X-Amz-Date")
        if abs((server_now - signed).total_seconds()) > 300:
            data = ("<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and "
                    "the current time is too large.</Message></Error>").encode()
            self.send_response(403)
            self.send_header("Date", server_now.strftime("%a, %d %b %Y %H:%M:%S GMT"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        self.reply(200, "<Ok/>", "text/xml")

    def sts_error(self, status, code, message):
        self.reply(status, f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                           "</Error></ErrorResponse>", "text/xml")

    def do_GET(self):
        self.note()
        if self.path.startswith("/latest/"):
            if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
                return self.reply(401, "", "text/plain")
            if self.path == "/latest/meta-data/iam/security-credentials/":
                return self.reply(200, ROLE, "text/plain")
            if self.path == "/latest/meta-data/iam/security-credentials/" + ROLE:
                c = creds("IMDS")
                c.update(Code="Success", Type="AWS-HMAC", LastUpdated=c["Expiration"])
                return self.reply(200, c)
            return self.reply(404, "", "text/plain")
        if self.path.startswith("/container/"):
            if CONTAINER_TOKEN and self.headers.get("Authorization") != CONTAINER_TOKEN:
                return self.reply(403, {"code": "AccessDenied", "message": "bad authorization token"})
            c = creds("CONT")
            c["RoleArn"] = "arn:aws:iam::123456789012:role/lcake-task"
            return self.reply(200, c)
        self.reply(404, "", "text/plain")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
