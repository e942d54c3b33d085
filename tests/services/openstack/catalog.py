#!/usr/bin/python3
"""Keystone set-up shared by the test-service scripts, with admin credentials from a KEY=VALUE file
(DIR/admin-env of keystone-glance.sh):

  catalog.py ADMIN_ENV service TYPE NAME URL [REGION]   the catalog's only TYPE service, 3 endpoints
  catalog.py ADMIN_ENV user NAME PASSWORD               a service user (project "service", roles
                                                         admin + service)
"""
import json
import sys
import urllib.error
import urllib.request


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k.replace("export ", "").strip()] = v.strip()
    return env


class Admin:
    def __init__(self, admin_env):
        env = read_env(admin_env)
        self.url = env["OS_AUTH_URL"].rstrip("/")
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": env["OS_USERNAME"], "password": env["OS_PASSWORD"],
            "domain": {"name": env.get("OS_USER_DOMAIN_NAME", "Default")}}}},
            "scope": {"project": {"name": env["OS_PROJECT_NAME"],
                                  "domain": {"name": env.get("OS_PROJECT_DOMAIN_NAME", "Default")}}}}}
        self.token = None
        _, headers = self.call("POST", "/auth/tokens", auth)
        self.token = headers["X-Subject-Token"]

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        req = urllib.request.Request(self.url + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            return (json.loads(data) if data else None), r.headers

    def one(self, kind, name):
        found = self.call("GET", "/%s?name=%s" % (kind, name))[0][kind]
        if not found:
            raise SystemExit("catalog.py: no %s named %s in Keystone" % (kind[:-1], name))
        return found[0]["id"]


def register_service(admin_env, service_type, name, url, region="RegionOne"):
    """Replaces every `service_type` service with one named `name` at `url` (all interfaces)."""
    k = Admin(admin_env)
    for svc in k.call("GET", "/services?type=" + service_type)[0]["services"]:
        for ep in k.call("GET", "/endpoints?service_id=" + svc["id"])[0]["endpoints"]:
            k.call("DELETE", "/endpoints/" + ep["id"])
        k.call("DELETE", "/services/" + svc["id"])
    svc = k.call("POST", "/services", {"service": {"name": name, "type": service_type, "enabled": True}})[0]
    for iface in ("public", "internal", "admin"):
        k.call("POST", "/endpoints", {"endpoint": {"service_id": svc["service"]["id"], "interface": iface,
                                                   "region_id": region, "url": url}})
    return k.url


def service_user(admin_env, name, password):
    """Creates the user, or resets its password if it exists (a second stack on the same Keystone)."""
    k = Admin(admin_env)
    found = k.call("GET", "/users?name=" + name)[0]["users"]
    if found:
        user_id = found[0]["id"]
        k.call("PATCH", "/users/" + user_id, {"user": {"password": password}})
    else:
        user_id = k.call("POST", "/users", {"user": {"name": name, "domain_id": "default",
                                                     "password": password}})[0]["user"]["id"]
    project = k.one("projects", "service")
    for role in ("admin", "service"):
        k.call("PUT", "/projects/%s/users/%s/roles/%s" % (project, user_id, k.one("roles", role)))


def main(argv):
    try:
        if len(argv) in (6, 7) and argv[2] == "service":
            register_service(argv[1], *argv[3:])
        elif len(argv) == 5 and argv[2] == "user":
            service_user(argv[1], argv[3], argv[4])
        else:
            sys.exit(__doc__)
    except urllib.error.HTTPError as e:
        sys.exit("catalog.py: Keystone answered %s %s: %s" % (e.code, e.reason, e.read()[:300]))


if __name__ == "__main__":
    main(sys.argv)
