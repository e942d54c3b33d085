#!/usr/bin/python3
"""A forwarding proxy on 127.0.0.1 that injects HTTP errors, for the Glance retry and failure tests.

glance-fault-proxy.py UPSTREAM_URL PORT_FILE LOG_FILE
Forwards every request to UPSTREAM_URL. POST /_fault {"method": "PUT", "path": "/file",
"status": 503, "count": 2} makes the next 2 matching requests (method equal, path containing
"path") answer that status instead; DELETE /_fault clears. LOG_FILE gets one line per request:
"METHOD PATH STATUS injected|forwarded".
"""
import http.client
import http.server
import json
import sys
import threading
import urllib.parse

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
faults = []
lock = threading.Lock()
log = open(sys.argv[3], "a", buffering=1)


def read_body(handler):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    n = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(n) if n else b""


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = read_body(self)
        if self.path.startswith("/_fault"):
            with lock:
                if self.command == "POST":
                    faults.append(json.loads(body))
                else:
                    faults.clear()
            return self.answer(204)
        with lock:
            hit = next((f for f in faults if f.get("method", self.command) == self.command
                        and f.get("path", "") in self.path and f.get("count", 1) > 0), None)
            if hit:
                hit["count"] = hit.get("count", 1) - 1
        if hit:
            log.write(f"{self.command} {self.path} {hit['status']} injected\n")
            msg = json.dumps({"message": f"injected {hit['status']}", "code": hit["status"]}).encode()
            return self.answer(hit["status"], msg)
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=300)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "transfer-encoding", "connection", "content-length")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST", "PATCH") else None,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        log.write(f"{self.command} {self.path} {resp.status} forwarded\n")
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
