"""A minimal signed AWS client for the launcher's and the simulator's own calls to moto."""
import datetime
import hashlib
import http.client
import json
import urllib.parse
import xml.etree.ElementTree as ET

from . import sigv4


class AwsError(Exception):
    def __init__(self, status, code, message, body=b""):
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status, self.code, self.message, self.body = status, code, message, body


class Credentials:
    def __init__(self, access_key, secret_key, session_token=None):
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token


def strip_ns(root):
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def error_of(status, body):
    """(code, message) out of an XML or JSON error body."""
    try:
        doc = json.loads(body)
        return doc.get("__type") or doc.get("code") or doc.get("Code") or "Error", doc.get("message") or doc.get("Message", "")
    except ValueError:
        pass
    try:
        root = strip_ns(ET.fromstring(body))
        return root.findtext(".//Code") or "Error", root.findtext(".//Message") or ""
    except ET.ParseError:
        return f"HTTP{status}", body[:200].decode("utf-8", "replace")


class Client:
    """Signs and sends one request at a time to an endpoint such as http://127.0.0.1:PORT."""

    def __init__(self, endpoint, creds, timeout=60):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.creds, self.timeout = creds, timeout

    def request(self, method, service, region, path="/", query="", body=b"", headers=None, raise_errors=True):
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        payload = hashlib.sha256(body).hexdigest()
        hdrs = [("Host", f"{self.host}:{self.port}"), ("X-Amz-Date", amz_date),
                ("X-Amz-Content-SHA256", payload)] + list((headers or {}).items())
        if self.creds.session_token:
            hdrs.append(("X-Amz-Security-Token", self.creds.session_token))
        authz, _, _ = sigv4.sign(method, path, query, hdrs, payload, self.creds.access_key,
                                 self.creds.secret_key, region, service, amz_date)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest(method, path + ("?" + query if query else ""), skip_host=True,
                            skip_accept_encoding=True)
            for k, v in hdrs + [("Authorization", authz), ("Content-Length", str(len(body)))]:
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if raise_errors and resp.status >= 300:
            raise AwsError(resp.status, *error_of(resp.status, data), body=data)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def query(self, service, region, action, params, version):
        """A Query-protocol call (IAM, STS, EC2); returns the namespace-free XML root."""
        form = urllib.parse.urlencode([("Action", action), ("Version", version)] + list(params.items()))
        _, _, data = self.request("POST", service, region, body=form.encode(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        return strip_ns(ET.fromstring(data))

    def ec2(self, region, action, **params):
        return self.query("ec2", region, action, params, "2016-11-15")

    def ebs(self, method, region, path, query="", doc=None, body=b"", headers=None):
        if doc is not None:
            body = json.dumps(doc).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        _, hdrs, data = self.request(method, "ebs", region, path, query, body, headers)
        return hdrs, data
