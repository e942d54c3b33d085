#!/usr/bin/env python3
"""token-server.py DIR PORT SERVICE: a registry token service for tests (the
Docker/distribution token authentication spec, as Docker Hub, GHCR, Harbor and
GitLab serve it), listening on 127.0.0.1:PORT/token.

On first start it makes an ES256 key and a self-signed certificate for it,
DIR/token.key and DIR/token.crt: the registry's auth.token.rootcertbundle.
Tokens are JWTs signed with that key, the certificate in their x5c header,
issuer "lcake-test-token-server", audience SERVICE.

Who gets what (DIR/token-users, read on every request, one entry a line):
  user:password        Basic auth to GET /token gets every requested action
  refresh:TOKEN        an identity token: POST /token grant_type=refresh_token
Anyone else gets "pull" only; a wrong password is 401. Token lifetime: the
first line "expires:SECONDS" in token-users (default 300). Every request is
logged to DIR/token-requests.log as one JSON line {method, user, scope,
granted} -- never a password or token.
"""
import base64
import datetime
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "lcake-test-token-server"
directory, port, service = sys.argv[1], int(sys.argv[2]), sys.argv[3]
key_path, crt_path = os.path.join(directory, "token.key"), os.path.join(directory, "token.crt")
log_lock = threading.Lock()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_make_key():
    if os.path.exists(key_path) and os.path.exists(crt_path):
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        with open(crt_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        return key, cert
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


KEY, CERT = load_or_make_key()
X5C = base64.b64encode(CERT.public_bytes(serialization.Encoding.DER)).decode()


def read_users():
    users, refresh, expires = {}, set(), 300
    try:
        with open(os.path.join(directory, "token-users")) as f:
            for line in f.read().splitlines():
                name, _, value = line.partition(":")
                if name == "expires":
                    expires = int(value)
                elif name == "refresh":
                    refresh.add(value)
                elif name:
                    users[name] = value
    except FileNotFoundError:
        pass
    return users, refresh, expires


def sign(subject, access, expires):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "ES256", "x5c": [X5C]}
    claims = {"iss": ISSUER, "sub": subject, "aud": service, "exp": now + expires, "nbf": now - 10,
              "iat": now, "jti": uuid.uuid4().hex, "access": access}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    r, s = decode_dss_signature(KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def parse_scopes(scopes):
    out = []
    for scope in scopes:
        for one in scope.split(" "):
            parts = one.split(":")
            if len(parts) >= 3:
                out.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
    return out


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def grant(self, method, user, scopes, full, expires):
        access = parse_scopes(scopes)
        if not full:
            for a in access:
                a["actions"] = [x for x in a["actions"] if x == "pull"]
        with log_lock, open(os.path.join(directory, "token-requests.log"), "a") as f:
            f.write(json.dumps({"method": method, "user": user, "scope": " ".join(scopes), "granted": access}) + "\n")
        token = sign(user or "", access, expires)
        self.answer(200, {"token": token, "access_token": token, "expires_in": expires,
                          "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()})

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/token":
            return self.answer(404, {"error": "not found"})
        query = parse_qs(url.query)
        users, _, expires = read_users()
        user, full = None, False
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if users.get(name) != password:
                with log_lock, open(os.path.join(directory, "token-requests.log"), "a") as f:
                    f.write(json.dumps({"method": "GET", "user": name, "refused": True}) + "\n")
                return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            user, full = name, True
        self.grant("GET", user, query.get("scope", []), full, expires)

    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/token":
            return self.answer(404, {"error": "not found"})
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode())
        _, refresh, expires = read_users()
        if form.get("grant_type", [""])[0] != "refresh_token" or form.get("refresh_token", [""])[0] not in refresh:
            return self.answer(401, {"error": "invalid_grant"})
        self.grant("POST", "<identity token>", form.get("scope", []), True, expires)


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
