"""Helpers of test_nova_sim.py: a JSON HTTP client, the Keystone + Glance + simulator stack, waits."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN_LIFETIME = 40  # Keystone [token] expiration for the run: the expiry case waits it out
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Shared(dict):
    """What the cases of one run hand on to later ones. A value an earlier case should have left
    but did not (it failed) fails the later case cleanly instead of with a KeyError."""

    def __missing__(self, key):
        raise Failure("needs %r from an earlier case, which failed" % key)


class Http:
    """Minimal JSON client; returns (status, body, headers)."""

    def __init__(self, base, token=None, mv=None):
        """token: a string, or a callable giving a current one (tokens live TOKEN_LIFETIME s)."""
        self.base, self.token, self.mv = base.rstrip("/"), token, mv

    def __call__(self, method, path, body=None, mv="default", token="default", raw=None, ctype="application/json",
                 nova_header=False):
        headers = {"Accept": "application/json"}
        token = self.token if token == "default" else token
        token = token() if callable(token) else token
        mv = self.mv if mv == "default" else mv
        if token:
            headers["X-Auth-Token"] = token
        if mv:
            headers["X-OpenStack-Nova-API-Version" if nova_header else "OpenStack-API-Version"] = \
                mv if nova_header else "compute " + mv
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = ctype
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        try:
            r = opener.open(req, timeout=120)
        except urllib.error.HTTPError as e:
            r = e
        payload = r.read()
        return r.status if hasattr(r, "status") else r.code, (json.loads(payload) if payload else None), r.headers


class Stack:
    """Keystone + Glance (keystone-glance.sh) and the simulator (nova-sim.sh), stopped at exit."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="nova-sim-test-")
        self.ks_dir, self.sim_dir = os.path.join(self.tmp, "ks"), os.path.join(self.tmp, "sim")
        self.started = []

    def start(self):
        t = time.time()
        self._run(HERE + "/keystone-glance.sh", "start", self.ks_dir, "--token-expiration", str(TOKEN_LIFETIME))
        self.started.append((HERE + "/keystone-glance.sh", self.ks_dir))
        self.env = self.read_env(os.path.join(self.ks_dir, "env"))
        self._run(HERE + "/nova-sim.sh", "start", self.sim_dir, self.ks_dir, "--clean-shutdown", "3")
        self.started.append((HERE + "/nova-sim.sh", self.sim_dir))
        self.compute_url = open(os.path.join(self.sim_dir, "url")).read().strip()
        self.sim_root = self.compute_url[: -len("/v2.1")]
        print("stack up in %.1f s: compute %s" % (time.time() - t, self.compute_url), flush=True)

    def _run(self, *cmd):
        p = subprocess.run(cmd, env=CLEAN_ENV, capture_output=True, text=True)
        if p.returncode != 0:
            raise Failure("%s failed: %s" % (" ".join(cmd), (p.stderr or p.stdout).strip()))

    def stop(self, keep):
        for script, d in reversed(self.started):
            subprocess.run([script, "stop", d], env=CLEAN_ENV)
        if keep:
            print("state kept in " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @staticmethod
    def read_env(path):
        return dict(line.strip().split("=", 1) for line in open(path) if "=" in line)

    def fresh_token(self):
        """The demo user's token, renewed when half its life is gone."""
        if getattr(self, "_cached", None) is None or time.time() - self._cached[1] > TOKEN_LIFETIME / 2:
            self._cached = (self.token()[0], time.time())
        return self._cached[0]

    def token(self, user_env=None):
        e = user_env or self.env
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": e["OS_USERNAME"], "password": e["OS_PASSWORD"], "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": e["OS_PROJECT_NAME"], "domain": {"name": "Default"}}}}}
        req = urllib.request.Request(e["OS_AUTH_URL"] + "/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            info = json.load(r)["token"]
            return r.headers["X-Subject-Token"], info

    def glance_url(self, info):
        for svc in info["catalog"]:
            if svc["type"] == "image":
                return next(ep["url"] for ep in svc["endpoints"] if ep["interface"] == "public")
        raise Failure("no image service in the catalog")

    def upload_image(self, token, info, name, path, disk_format):
        g = Http(self.glance_url(info), token)
        st, img, _ = g("POST", "/v2/images", {"name": name, "disk_format": disk_format, "container_format": "bare"})
        check(st == 201, "glance image create: %s %s" % (st, img))
        with open(path, "rb") as f:
            st, body, _ = g("PUT", "/v2/images/%s/file" % img["id"], raw=f.read(), ctype="application/octet-stream")
        check(st == 204, "glance upload: %s %s" % (st, body))
        return img["id"]

    def log(self):
        with open(os.path.join(self.sim_dir, "requests.jsonl")) as f:
            return [json.loads(line) for line in f]


def wait_for(what, fn, timeout=180, every=0.5):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            raise Failure("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(every)


def wait_status(api, sid, statuses, timeout=180):
    def poll():
        st, body, _ = api("GET", "/servers/" + sid)
        check(st == 200, "server show %s: %s %s" % (sid, st, body))
        s = body["server"]
        return s if s["status"] in statuses and s["OS-EXT-STS:task_state"] is None else None
    return wait_for("server %s to reach %s" % (sid, statuses), poll, timeout)


def flavor_id(api, name):
    """A flavor's id from its name, as a client finds it."""
    st, body, _ = api("GET", "/flavors")
    check(st == 200, "flavor list: %s" % st)
    ids = [f["id"] for f in body["flavors"] if f["name"] == name]
    check(len(ids) == 1, "flavor %s: %s" % (name, body))
    return ids[0]
