#!/usr/bin/python3
"""neutron-stub.py PORT: a stand-in for Neutron that answers every collection with an empty list, so
that real Nova (nova-fake.sh) can run servers with networks "none". Not a network service."""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "":
            return self.reply(200, {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
                {"rel": "self", "href": "http://127.0.0.1:%d/v2.0/" % self.server.server_port}]}]})
        m = re.fullmatch(r"/v2\.0/([a-z-]+?)(?:\.json)?", path)
        if m:
            return self.reply(200, {m.group(1).replace("-", "_"): []})
        self.reply(404, {"NeutronError": {"type": "NotFound", "message": "%s not found" % path, "detail": ""}})

    def do_DELETE(self):
        self.reply(204)

    def log_message(self, fmt, *args):
        sys.stderr.write("neutron-stub: " + fmt % args + "\n")


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Stub).serve_forever()
