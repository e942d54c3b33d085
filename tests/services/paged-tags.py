#!/usr/bin/env python3
"""A registry simulator for tag-list pagination (OCI distribution spec, "Listing Tags").

Debian 12's docker-registry (distribution 2.8) answers /v2/<name>/tags/list with every tag at
once; registries such as Harbor, GHCR or distribution 3 page it. This simulator sits in front of
a real registry and pages that one endpoint the way the spec says: at most `n` tags per answer
(its own page size when the client gives none), sorted, starting after `last`, with a
`Link: <...?n=N&last=TAG>; rel="next"` header while more follow. Everything else it refuses.

usage: paged-tags.py PORT UPSTREAM_HOST:PORT PAGE_SIZE PIDFILE   (listens on 127.0.0.1:PORT)
"""
import http.server
import json
import os
import re
import sys
import urllib.parse
import urllib.request

PORT, UPSTREAM, PAGE, PIDFILE = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
LOG = []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        m = re.fullmatch(r"/v2/(.+)/tags/list", url.path)
        if not m:
            self.send_error(404, "only tags/list is simulated")
            return
        q = urllib.parse.parse_qs(url.query)
        with urllib.request.urlopen(f"http://{UPSTREAM}/v2/{m.group(1)}/tags/list") as r:
            body = json.load(r)
        tags = sorted(body.get("tags") or [])
        n = int(q["n"][0]) if "n" in q else PAGE
        if "last" in q:
            tags = [t for t in tags if t > q["last"][0]]
        page, more = tags[:n], len(tags) > n
        out = json.dumps({"name": m.group(1), "tags": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if more:
            nxt = f"/v2/{m.group(1)}/tags/list?" + urllib.parse.urlencode({"n": n, "last": page[-1]})
            self.send_header("Link", f'<{nxt}>; rel="next"')
        self.end_headers()
        self.wfile.write(out)


server = http.server.HTTPServer(("127.0.0.1", PORT), Handler)
with open(PIDFILE, "w") as f:
    f.write(str(os.getpid()))
server.serve_forever()
