"""The simulator's HTTP side: routing, microversions, Keystone auth, request validation against the
Compute API definition, JSON answers in Nova's shapes, the request log, and the /_sim control API."""
import json
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import views
from .compute import ApiError, find_flavor
from .neutron import NeutronError
from .views import MAX_VERSION, MIN_VERSION, vstr

ACTIONS = {"os-stop": "stop", "os-start": "start", "createImage": "createImage",
           "os-getConsoleOutput": "console"}


def parse_microversion(headers):
    raw = None
    for h in headers.get_all("OpenStack-API-Version") or []:
        for item in h.split(","):
            parts = item.strip().split()
            if len(parts) == 2 and parts[0].lower() == "compute":
                raw = parts[1]
    if raw is None:
        raw = headers.get("X-OpenStack-Nova-API-Version")
    if raw is None:
        return MIN_VERSION
    if raw.strip().lower() == "latest":
        return MAX_VERSION
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", raw)
    if not m:
        raise ApiError(400, "API Version String %s is of invalid format. Must be of format MajorNum.MinorNum." % raw)
    v = (int(m.group(1)), int(m.group(2)))
    if not MIN_VERSION <= v <= MAX_VERSION:
        raise VersionNotAcceptable(v)
    return v


class VersionNotAcceptable(ApiError):
    def __init__(self, v):
        super().__init__(406, "Version %s is not supported by the API. Minimum is %s and maximum is %s."
                         % (vstr(v), vstr(MIN_VERSION), vstr(MAX_VERSION)))


class Unauthorized(Exception):
    pass


class Reply:
    def __init__(self, status, body=None, headers=None):
        self.status, self.body, self.headers = status, body, headers or {}


def redact(body):
    """The log must not hold secrets: passwords, private keys and user data are blanked."""
    if isinstance(body, dict):
        return {k: ("<redacted>" if k in ("adminPass", "private_key", "user_data", "password") and isinstance(v, str)
                    else redact(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [redact(x) for x in body]
    return body


class Simulator:
    def __init__(self, compute, keystone, faults, log_path, spec=None, public_url=None, networking=None):
        self.compute, self.keystone, self.faults, self.spec = compute, keystone, faults, spec
        self.networking = networking  # novasim.neutron.Networking, served below /networking
        self.public_url = public_url
        self.log_path = log_path
        self._log_lock = threading.Lock()

    def log(self, entry):
        entry = dict(entry, ts=time.time())
        with self._log_lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def event(self, event_name, **fields):
        self.log(dict(kind="event", event=event_name, **fields))

    # --------------------------------------------------------------- routing
    def route(self, method, path):
        """(operation name, handler, path arguments) for an API path below /v2.1."""
        table = [
            ("GET", r"/flavors", "flavor-list", self.flavor_list),
            ("GET", r"/flavors/detail", "flavor-detail", self.flavor_detail),
            ("GET", r"/flavors/([^/]+)", "flavor-show", self.flavor_show),
            ("GET", r"/flavors/([^/]+)/os-extra_specs", "flavor-extra-specs", self.flavor_extra_specs),
            ("GET", r"/os-keypairs", "keypair-list", self.keypair_list),
            ("POST", r"/os-keypairs", "keypair-create", self.keypair_create),
            ("GET", r"/os-keypairs/([^/]+)", "keypair-show", self.keypair_show),
            ("DELETE", r"/os-keypairs/([^/]+)", "keypair-delete", self.keypair_delete),
            ("GET", r"/servers", "list", self.server_list),
            ("POST", r"/servers", "create", self.server_create),
            ("GET", r"/servers/detail", "list", self.server_detail),
            ("GET", r"/servers/([^/]+)", "show", self.server_show),
            ("DELETE", r"/servers/([^/]+)", "delete", self.server_delete),
            ("POST", r"/servers/([^/]+)/action", "action", self.server_action),
        ]
        known_path = False
        for m, rx, op, fn in table:
            match = re.fullmatch(rx, path.rstrip("/") or "/")
            if match:
                known_path = True
                if m == method:
                    return op, fn, [urllib.parse.unquote(g) for g in match.groups()]
        if known_path:
            raise ApiError(405, "Method %s not allowed here." % method)
        raise ApiError(404, "The resource could not be found.")

    def handle(self, method, path, query, headers, body):
        """Answers one request; returns (Reply, operation name, microversion or None)."""
        base = self.public_url
        if path == "/" and method == "GET":
            return Reply(200, {"versions": [views.version(base)]}), "versions", None
        if path == "/v2.1" and method == "GET":
            return Reply(302, None, {"Location": base + "/v2.1/"}), "versions", None
        if path == "/v2.1/" and method == "GET":
            return Reply(200, views.version_detail(base)), "version", None
        if path.startswith("/_sim/"):
            return self.control(method, path, body), "sim-control", None
        if path.startswith("/networking/v2.0/") and self.networking is not None:
            return self.networking_call(method, path[len("/networking/v2.0"):], query, headers, body)
        if path in ("/networking", "/networking/") and self.networking is not None and method == "GET":
            return Reply(200, {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
                {"rel": "self", "href": base + "/networking/v2.0/"}]}]}), "network-versions", None
        if not path.startswith("/v2.1/"):
            raise ApiError(404, "The resource could not be found.")
        mv = parse_microversion(headers)
        op, fn, args = self.route(method, path[len("/v2.1"):])
        action = None
        if op == "action":
            action = next(iter(body)) if isinstance(body, dict) and len(body) == 1 else None
            op = ACTIONS.get(action, "action")
        token = headers.get("X-Auth-Token")
        auth = self.keystone.validate(token) if token else None
        if auth is None or auth.project_id is None:
            raise Unauthorized()
        if self.faults.take(op, "500"):
            raise ApiError(500, "Unexpected API Error (injected by a simulator fault rule for '%s')." % op)
        if op == "action":
            known = self.spec and self.spec.request_schema(method, path, mv, body)[1] not in (None, False)
            if known:
                raise ApiError(501, "The simulator does not implement the '%s' action." % action)
            raise ApiError(400, "There is no such action: %s" % action)
        if method in ("POST", "PUT") and self.spec is not None:
            problems = self.spec.check_request(method, path, mv, body)
            if problems:
                raise ApiError(400, "Invalid input for field/attribute %s" % problems[0])
        reply = fn(auth, mv, query, body, *args)
        return reply, op, mv

    def networking_call(self, method, path, query, headers, body):
        """The Networking API simulator (novasim/neutron.py): Keystone tokens as for Compute."""
        token = headers.get("X-Auth-Token")
        auth = self.keystone.validate(token) if token else None
        if auth is None or auth.project_id is None:
            raise Unauthorized()
        op = "network-" + method.lower() + "-" + path.strip("/").split("/")[0]
        if self.faults.take(op, "500"):
            raise NeutronError(500, "Request Failed: internal server error (injected by a simulator fault rule "
                                    "for '%s')." % op)
        status, answer = self.networking.handle(method, path, query, body, auth)
        return Reply(status, answer), op, None

    # --------------------------------------------------------------- control API
    def control(self, method, path, body):
        if path == "/_sim/fail" and method == "POST":
            rules = body if isinstance(body, list) else [body]
            try:
                for r in rules:
                    self.faults.add(r)
            except ValueError as e:
                raise ApiError(400, str(e))
            return Reply(200, {"rules": self.faults.rules()})
        if path == "/_sim/fail" and method == "GET":
            return Reply(200, {"rules": self.faults.rules()})
        if path == "/_sim/fail" and method == "DELETE":
            self.faults.clear()
            return Reply(204)
        if path == "/_sim/servers" and method == "GET":
            return Reply(200, {"servers": [
                {"id": s.id, "status": s.status, "task_state": s.task_state, "image": s.image_id,
                 "address": s.address, "pid": s.machine.proc.pid if s.machine and s.machine.running() else None}
                for s in list(self.compute.servers.values())]})
        if path == "/_sim/floatingips" and method == "GET" and self.networking is not None:
            return Reply(200, {"floatingips": self.networking.list_all()})
        raise ApiError(404, "No such simulator control endpoint: %s %s" % (method, path))

    # --------------------------------------------------------------- flavors
    def flavor_list(self, auth, mv, query, body):
        return Reply(200, views.flavors(self.public_url, mv, False))

    def flavor_detail(self, auth, mv, query, body):
        return Reply(200, views.flavors(self.public_url, mv, True))

    def flavor_show(self, auth, mv, query, body, fid):
        f = find_flavor(fid)
        if f is None:
            raise ApiError(404, "Flavor %s could not be found." % fid)
        return Reply(200, {"flavor": views.flavor(self.public_url, f, mv, True)})

    def flavor_extra_specs(self, auth, mv, query, body, fid):
        self.flavor_show(auth, mv, query, body, fid)
        return Reply(200, {"extra_specs": {}})

    # --------------------------------------------------------------- key pairs
    def keypair_list(self, auth, mv, query, body):
        return Reply(200, {"keypairs": [{"keypair": views.keypair(r, mv)} for r in self.compute.keypair_list(auth)]})

    def keypair_create(self, auth, mv, query, body):
        rec, private = self.compute.keypair_create(auth, body["keypair"], mv)
        return Reply(201 if mv >= (2, 2) else 200, {"keypair": dict(views.keypair(rec, mv, private), user_id=rec["user_id"])})

    def keypair_show(self, auth, mv, query, body, name):
        return Reply(200, {"keypair": views.keypair(self.compute.keypair(auth, name), mv, full=True)})

    def keypair_delete(self, auth, mv, query, body, name):
        self.compute.keypair_delete(auth, name)
        return Reply(204 if mv >= (2, 2) else 202)

    # --------------------------------------------------------------- servers
    def _filtered(self, auth, query):
        out = [s for s in list(self.compute.servers.values()) if s.project_id == auth.project_id]
        out.sort(key=lambda s: s.created, reverse=True)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        if "name" in q:
            out = [s for s in out if re.search(q["name"], s.name)]
        if "status" in q:
            out = [s for s in out if s.status == q["status"].upper()]
        if "image" in q:
            out = [s for s in out if s.image_id == q["image"].rstrip("/").rsplit("/", 1)[-1]]
        if "marker" in q:
            ids = [s.id for s in out]
            if q["marker"] not in ids:
                raise ApiError(400, "marker [%s] not found" % q["marker"])
            out = out[ids.index(q["marker"]) + 1:]
        if "limit" in q:
            out = out[:int(q["limit"])]
        return out

    def server_list(self, auth, mv, query, body):
        return Reply(200, {"servers": [views.server_brief(self.public_url, s) for s in self._filtered(auth, query)]})

    def server_detail(self, auth, mv, query, body):
        return Reply(200, {"servers": [views.server(self.public_url, s, mv, show=False)
                                       for s in self._filtered(auth, query)]})

    def server_show(self, auth, mv, query, body, sid):
        return Reply(200, {"server": views.server(self.public_url, self.compute.server(auth, sid), mv)})

    def server_create(self, auth, mv, query, body):
        s = self.compute.create(auth, body, mv)
        out = dict(views.server_brief(self.public_url, s), **{
            "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": g} for g in s.security_groups],
            "adminPass": s.admin_pass})
        del out["name"]
        return Reply(202, {"server": out}, {"Location": out["links"][0]["href"]})

    def server_delete(self, auth, mv, query, body, sid):
        self.compute.delete(self.compute.server(auth, sid))
        return Reply(204)

    def server_action(self, auth, mv, query, body, sid):
        s = self.compute.server(auth, sid)
        name, arg = next(iter(body.items()))
        if name == "os-stop":
            self.compute.stop(s)
            return Reply(202)
        if name == "os-start":
            self.compute.start(s)
            return Reply(202)
        if name == "createImage":
            image_id = self.compute.create_image(s, auth, arg["name"], arg.get("metadata", {}))
            if mv >= (2, 45):
                return Reply(202, {"image_id": image_id})
            glance = self.compute.glance(auth).url.geturl().rstrip("/")
            return Reply(202, None, {"Location": "%s/images/%s" % (glance, image_id)})
        if name == "os-getConsoleOutput":
            return Reply(200, {"output": self.compute.console(s, (arg or {}).get("length"))})
        raise ApiError(501, "The simulator does not implement the '%s' action." % name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None  # set by serve()

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _serve(self):
        sim = self.sim
        started = time.time()
        url = urllib.parse.urlsplit(self.path)
        raw = self._read_body()
        body, op, mv = None, None, None
        request_id = "req-" + str(uuid.uuid4())
        try:
            if raw:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise ApiError(415, "Unsupported Content-Type")
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "Malformed request body")
            reply, op, mv = sim.handle(self.command, url.path, url.query, self.headers, body)
        except Unauthorized:
            reply = Reply(401, {"error": {"code": 401, "title": "Unauthorized",
                                          "message": "The request you have made requires authentication."}},
                          {"WWW-Authenticate": 'Keystone uri="%s"' % sim.keystone.auth_url})
        except ApiError as e:
            reply = Reply(e.code, e.body())
        except Exception as e:  # a simulator bug must still answer like Nova, and be visible in the log
            reply = Reply(500, {"computeFault": {"code": 500, "message": "Unexpected API Error: %r" % e}})
        if mv is None and url.path.startswith("/v2.1/"):
            try:
                mv = parse_microversion(self.headers)
            except ApiError:
                mv = None
        # logged before the answer is sent: a client that has its answer finds the request in the log
        sim.log({"kind": "request", "method": self.command, "path": url.path, "query": url.query,
                 "op": op, "microversion": vstr(mv) if mv else None, "status": reply.status,
                 "request": redact(body), "response": redact(reply.body),
                 "headers": {k: v for k, v in reply.headers.items()}, "request_id": request_id,
                 "seconds": round(time.time() - started, 3)})
        data = json.dumps(reply.body).encode() if reply.body is not None else b""
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)),
                   "x-openstack-request-id": request_id, "x-compute-request-id": request_id}
        if mv is not None:
            headers.update({"OpenStack-API-Version": "compute " + vstr(mv),
                            "X-OpenStack-Nova-API-Version": vstr(mv),
                            "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"})
        headers.update(reply.headers)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, fmt, *args):
        pass  # the JSON-lines request log replaces the access log


def serve(sim, port):
    Handler.sim = sim
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    return httpd
