"""Request/response values the proxy passes around, and forwarding them to moto unchanged."""
import http.client
import json
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


class Request:
    def __init__(self, method, target, headers, body):
        self.method, self.target, self.headers, self.body = method, target, headers, body
        self.path, _, self.query = target.partition("?")
        self.h = {}
        for k, v in headers:
            self.h[k.lower()] = v
        self.service = self.region = self.access_key = None

    def query_params(self):
        return dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))

    def form(self):
        """Query-protocol parameters (EC2): the URL's and the form body's."""
        params = self.query_params()
        if self.body and "x-www-form-urlencoded" in self.h.get("content-type", "x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return params


class Response:
    def __init__(self, status, headers=None, body=b""):
        self.status, self.headers, self.body = status, list(headers or []), body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def with_body(self, body, content_type=None):
        hdrs = [(k, v) for k, v in self.headers if k.lower() not in ("content-length", "content-type")
                or (k.lower() == "content-type" and content_type is None)]
        if content_type:
            hdrs.append(("Content-Type", content_type))
        return Response(self.status, hdrs, body)

    @property
    def auth_failed(self):
        return self.status in (401, 403)


def json_response(status, doc, headers=None):
    return Response(status, [("Content-Type", "application/json")] + list(headers or []),
                    json.dumps(doc).encode())


class Moto:
    """Forwards requests byte for byte (Host included, so signatures still verify) to moto."""

    def __init__(self, endpoint):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port

    def _send(self, req, body, length):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        conn.putrequest(req.method, req.target, skip_host=True, skip_accept_encoding=True)
        for k, v in req.headers:
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                conn.putheader(k, v)
        if length is not None:
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                conn.send(body)
            else:
                remaining = length
                while remaining:
                    chunk = body.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise ConnectionError("client closed the request body early")
                    conn.send(chunk)
                    remaining -= len(chunk)
        return conn, conn.getresponse()

    def forward(self, req):
        body = req.body or b""
        # Content-Length goes on exactly when the caller sent one (it may be a signed header) or a body.
        conn, resp = self._send(req, body, len(body) if (body or "content-length" in req.h) else None)
        try:
            data = resp.read()
            return Response(resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], data)
        finally:
            conn.close()

    def stream(self, req, rfile, length):
        """Forwards a body read from rfile; returns (conn, http.client response) for the caller to relay."""
        return self._send(req, rfile, length)
