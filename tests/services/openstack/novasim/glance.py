"""The few Glance v2 calls Nova makes: read image records, download data, create/upload/delete
snapshot images. Always with the requesting user's token, as Nova does."""
import http.client
import json
import os
import urllib.parse


class GlanceError(Exception):
    def __init__(self, status, message):
        super().__init__("Glance answered %s: %s" % (status, message))
        self.status = status


class Glance:
    def __init__(self, url, token):
        self.url = urllib.parse.urlsplit(url.rstrip("/"))
        self.base = self.url.path
        self.token = token

    def _conn(self, timeout=600):
        return http.client.HTTPConnection(self.url.hostname, self.url.port or 80, timeout=timeout)

    def _call(self, method, path, body=None, ctype="application/json", expect=(200,)):
        c = self._conn()
        try:
            headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = ctype
                body = json.dumps(body).encode()
            c.request(method, self.base + path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            if r.status not in expect:
                raise GlanceError(r.status, data.decode(errors="replace")[:300])
            return json.loads(data) if data else None
        finally:
            c.close()

    def image(self, image_id):
        return self._call("GET", "/v2/images/" + urllib.parse.quote(image_id))

    def create(self, record):
        return self._call("POST", "/v2/images", record, expect=(201,))

    def delete(self, image_id):
        self._call("DELETE", "/v2/images/" + image_id, expect=(204, 404))

    def download(self, image_id, dest):
        c = self._conn()
        try:
            c.request("GET", self.base + "/v2/images/%s/file" % image_id, headers={"X-Auth-Token": self.token})
            r = c.getresponse()
            if r.status != 200:
                raise GlanceError(r.status, r.read().decode(errors="replace")[:300])
            with open(dest + ".part", "wb") as f:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
            os.replace(dest + ".part", dest)
        finally:
            c.close()

    def upload(self, image_id, path):
        c = self._conn()
        try:
            size = os.path.getsize(path)
            c.putrequest("PUT", self.base + "/v2/images/%s/file" % image_id)
            c.putheader("X-Auth-Token", self.token)
            c.putheader("Content-Type", "application/octet-stream")
            c.putheader("Content-Length", str(size))
            c.endheaders()
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    c.send(chunk)
            r = c.getresponse()
            data = r.read()
            if r.status != 204:
                raise GlanceError(r.status, data.decode(errors="replace")[:300])
        finally:
            c.close()
