"""Keystone v3 token validation for the simulator (what keystonemiddleware does for real Nova)."""
import datetime
import json
import threading
import time
import urllib.error
import urllib.request


class TokenInfo:
    def __init__(self, body, token):
        t = body["token"]
        self.token = token
        self.user_id = t["user"]["id"]
        self.user_name = t["user"]["name"]
        project = t.get("project") or {}
        self.project_id = project.get("id")
        self.project_name = project.get("name")
        self.roles = [r["name"] for r in t.get("roles", [])]
        self.expires = _epoch(t["expires_at"])
        self.catalog = t.get("catalog", [])

    def endpoint(self, service_type, interface="public", region=None):
        for svc in self.catalog:
            if svc.get("type") != service_type:
                continue
            for ep in svc.get("endpoints", []):
                if ep.get("interface") == interface and (region is None or ep.get("region_id") == region):
                    return ep["url"].rstrip("/")
        return None


def _epoch(iso):
    iso = iso.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(iso).timestamp()


class Keystone:
    """Validates tokens with GET /v3/auth/tokens (the token validating itself, which Keystone's
    default policy allows), caching answers until the token expires or for at most 60 s."""

    def __init__(self, auth_url):
        self.auth_url = auth_url.rstrip("/")
        self._cache = {}
        self._lock = threading.Lock()

    def validate(self, token):
        now = time.time()
        with self._lock:
            hit = self._cache.get(token)
            if hit and hit[1] > now:
                return hit[0] if hit[0].expires > now else None
        req = urllib.request.Request(self.auth_url + "/auth/tokens",
                                     headers={"X-Auth-Token": token, "X-Subject-Token": token,
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                info = TokenInfo(json.load(r), token)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403, 404):
                return None
            raise
        with self._lock:
            self._cache[token] = (info, min(info.expires, now + 60))
        return info if info.expires > now else None
