"""A SIMULATOR of the part of the OpenStack Networking API (Neutron v2.0) that lcake uses for floating
IPs: networks (a tenant network "private" and an external network "public"), the ports of the
simulated servers (one per server, read-only) and floating IPs (list, create, show, update port_id,
delete). Not Neutron. A floating IP is a loopback address of its own (127.0.0.M, from the same pool
as the servers'); while it is associated with a server's port, TCP connections to 127.0.0.M:22 are
forwarded to the server's own 127.0.0.N:22, so SSH through the floating address really reaches the
guest, and every forwarded connection is an event in the request log ("floating-connection").

No official OpenAPI definition of the Networking API is among /work/shared/data/openstack-openapi
(compute, identity and image only), so request bodies are checked against the schemas below, written
from the Networking API reference (api-ref "Floating IPs": create needs floating_network_id; update
takes port_id, fixed_ip_address, description, qos_policy_id; unknown attributes are refused with 400
"Unrecognized attribute(s)", as Neutron does)."""
import datetime
import socket
import threading
import urllib.parse
import uuid

import jsonschema

from .compute import NETWORK, ApiError

PUBLIC = {"name": "public", "id": "9d3b6e2a-51f4-4c8a-b0d7-7e6a1c2f4b20"}
PUBLIC_SUBNET = "b8e1a3c5-2f6d-4e71-9a0b-3c4d5e6f7a81"

_UUID_OR_NULL = {"type": ["string", "null"], "format": "uuid"}
CREATE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["floatingip"],
    "properties": {"floatingip": {
        "type": "object", "required": ["floating_network_id"],
        "properties": {
            "floating_network_id": {"type": "string", "format": "uuid"},
            "port_id": _UUID_OR_NULL, "fixed_ip_address": {"type": ["string", "null"]},
            "floating_ip_address": {"type": "string"}, "subnet_id": _UUID_OR_NULL,
            "tenant_id": {"type": "string"}, "project_id": {"type": "string"},
            "description": {"type": "string", "maxLength": 255}, "dns_domain": {"type": "string"},
            "dns_name": {"type": "string"}, "qos_policy_id": _UUID_OR_NULL, "distributed": {"type": "boolean"}}}}}
UPDATE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["floatingip"],
    "properties": {"floatingip": {
        "type": "object",
        "properties": {"port_id": _UUID_OR_NULL, "fixed_ip_address": {"type": ["string", "null"]},
                       "description": {"type": "string", "maxLength": 255}, "qos_policy_id": _UUID_OR_NULL}}}}
_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("uuid", raises=ValueError)
def _uuid(v):
    return not isinstance(v, str) or bool(uuid.UUID(v))


class NeutronError(ApiError):
    TYPES = {400: "HTTPBadRequest", 404: "NotFound", 405: "HTTPMethodNotAllowed", 409: "Conflict"}

    def __init__(self, code, message, kind=None):
        super().__init__(code, message)
        self.kind = kind or self.TYPES.get(code, "NeutronError")

    def body(self):
        return {"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}}


def now_iso():
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def port_id(server_id):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "nova-sim-port:" + server_id))


class Forwarder:
    """Listens on ADDRESS:22 and pipes each connection to the server's fixed address."""

    def __init__(self, address, target, events, fip_id):
        self.address, self.target, self.events, self.fip_id = address, target, events, fip_id
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 22))
        self.sock.listen(16)
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.open:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.target, 22), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.events("floating-connection", floatingip=self.fip_id, address=self.address, target=self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.open = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Networking:
    def __init__(self, compute, addresses, events):
        self.compute, self.addresses, self.events = compute, addresses, events
        self.fips = {}  # id -> record (+ "_forwarder")
        self.lock = threading.RLock()
        compute.on_release.append(self.server_gone)

    # ------------------------------------------------------------------ routing
    def handle(self, method, path, query, body, auth):
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        parts = [p for p in path.split("/") if p]
        if parts == ["networks"] and method == "GET":
            return 200, {"networks": self._filter([self._network(n) for n in (NETWORK, PUBLIC)], q)}
        if len(parts) == 2 and parts[0] == "networks" and method == "GET":
            found = [self._network(n) for n in (NETWORK, PUBLIC) if n["id"] == parts[1]]
            if not found:
                raise NeutronError(404, "Network %s could not be found." % parts[1], "NetworkNotFound")
            return 200, {"network": found[0]}
        if parts == ["ports"] and method == "GET":
            return 200, {"ports": self._filter(self._ports(auth), q)}
        if parts == ["floatingips"]:
            if method == "GET":
                with self.lock:
                    mine = [self._view(f) for f in self.fips.values() if f["project_id"] == auth.project_id]
                return 200, {"floatingips": self._filter(mine, q)}
            if method == "POST":
                self._check(CREATE_SCHEMA, body)
                return 201, {"floatingip": self.create(auth, body["floatingip"])}
        if len(parts) == 2 and parts[0] == "floatingips":
            fip = self._get(auth, parts[1])
            if method == "GET":
                return 200, {"floatingip": self._view(fip)}
            if method == "PUT":
                self._check(UPDATE_SCHEMA, body)
                return 200, {"floatingip": self.update(auth, fip, body["floatingip"])}
            if method == "DELETE":
                self.delete(fip)
                return 204, None
        if parts and parts[0] in ("networks", "ports", "floatingips"):
            raise NeutronError(405, "The method %s is not allowed for this resource." % method)
        raise NeutronError(404, "The resource could not be found.")

    @staticmethod
    def _check(schema, body):
        if not isinstance(body, dict):
            raise NeutronError(400, "Body contains invalid data")
        inner = body.get("floatingip")
        if isinstance(inner, dict):
            allowed = schema["properties"]["floatingip"]["properties"]
            unknown = sorted(k for k in inner if k not in allowed)
            if unknown:
                raise NeutronError(400, "Unrecognized attribute(s) '%s'" % ", ".join(unknown))
        try:
            jsonschema.validate(body, schema, format_checker=_FORMATS)
        except jsonschema.ValidationError as e:
            raise NeutronError(400, "Invalid input for %s. Reason: %s." %
                               ("/".join(str(p) for p in e.absolute_path) or "body", e.message))

    @staticmethod
    def _filter(items, q):
        for k, v in q.items():
            if k in ("fields", "limit", "marker", "sort_key", "sort_dir"):
                continue
            items = [i for i in items if str(i.get(k)).lower() == v.lower()]
        return items

    @staticmethod
    def _network(n):
        external = n is PUBLIC
        return {"id": n["id"], "name": n["name"], "status": "ACTIVE", "admin_state_up": True, "shared": external,
                "router:external": external, "subnets": [PUBLIC_SUBNET] if external else [],
                "tenant_id": "", "project_id": "", "mtu": 1500, "description": ""}

    def _ports(self, auth):
        out = []
        for s in list(self.compute.servers.values()):
            if s.project_id != auth.project_id or not s.address or s.deleted:
                continue
            out.append({"id": port_id(s.id), "network_id": NETWORK["id"], "device_id": s.id,
                        "device_owner": "compute:nova", "status": "ACTIVE", "admin_state_up": True,
                        "mac_address": "52:54:00:12:34:56", "name": "", "project_id": s.project_id,
                        "tenant_id": s.project_id,
                        "fixed_ips": [{"subnet_id": "", "ip_address": s.address}]})
        return out

    # ------------------------------------------------------------------ floating IPs
    def _get(self, auth, fid):
        with self.lock:
            f = self.fips.get(fid)
        if f is None or f["project_id"] != auth.project_id:
            raise NeutronError(404, "Floating IP %s could not be found" % fid, "FloatingIPNotFound")
        return f

    @staticmethod
    def _view(f):
        return {k: v for k, v in f.items() if not k.startswith("_")}

    def _server_of_port(self, auth, pid):
        for s in list(self.compute.servers.values()):
            if port_id(s.id) == pid and s.project_id == auth.project_id and s.address and not s.deleted:
                return s
        raise NeutronError(404, "Port %s could not be found." % pid, "PortNotFound")

    def create(self, auth, b):
        if b["floating_network_id"] != PUBLIC["id"]:
            if b["floating_network_id"] == NETWORK["id"]:
                raise NeutronError(400, "Bad floatingip request: Network %s is not a valid external network."
                                   % NETWORK["id"], "BadRequest")
            raise NeutronError(404, "Network %s could not be found." % b["floating_network_id"], "NetworkNotFound")
        try:
            address = self.addresses.take()
        except RuntimeError:
            raise NeutronError(409, "No more IP addresses available on network %s." % PUBLIC["id"],
                               "IpAddressGenerationFailure")
        f = {"id": str(uuid.uuid4()), "floating_ip_address": address, "floating_network_id": PUBLIC["id"],
             "port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN",
             "project_id": auth.project_id, "tenant_id": auth.project_id, "description": b.get("description", ""),
             "tags": [], "created_at": now_iso(), "updated_at": now_iso(), "revision_number": 0,
             "port_details": None, "_server": None, "_forwarder": None}
        with self.lock:
            self.fips[f["id"]] = f
        self.events("floatingip-create", floatingip=f["id"], address=address)
        if b.get("port_id"):
            self.update(auth, f, {"port_id": b["port_id"]})
        return self._view(f)

    def update(self, auth, f, b):
        if "port_id" in b:
            with self.lock:
                self._disassociate(f)
                if b["port_id"]:
                    s = self._server_of_port(auth, b["port_id"])
                    f["_forwarder"] = Forwarder(f["floating_ip_address"], s.address, self.events, f["id"])
                    f.update(port_id=b["port_id"], fixed_ip_address=s.address, status="ACTIVE", _server=s,
                             router_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "nova-sim-router")))
                    s.floating = [f["floating_ip_address"]]
                    self.events("floatingip-associate", floatingip=f["id"], server=s.id,
                                address=f["floating_ip_address"], fixed=s.address)
        if "description" in b:
            f["description"] = b["description"]
        f["updated_at"] = now_iso()
        f["revision_number"] += 1
        return self._view(f)

    def _disassociate(self, f):
        fw, s = f.get("_forwarder"), f.get("_server")
        if fw:
            fw.close()
        if s is not None:
            s.floating = []
        f.update(port_id=None, fixed_ip_address=None, status="DOWN", router_id=None, _server=None, _forwarder=None)

    def delete(self, f):
        with self.lock:
            self._disassociate(f)
            self.fips.pop(f["id"], None)
        self.addresses.give_back(f["floating_ip_address"])
        self.events("floatingip-delete", floatingip=f["id"], address=f["floating_ip_address"])

    def server_gone(self, s):
        """A deleted server's port goes, and with it any association (the floating IP stays allocated)."""
        with self.lock:
            for f in self.fips.values():
                if f.get("_server") is s:
                    self._disassociate(f)

    def list_all(self):
        with self.lock:
            return [self._view(f) for f in self.fips.values()]

    def shutdown(self):
        with self.lock:
            for f in self.fips.values():
                if f.get("_forwarder"):
                    f["_forwarder"].close()
                self.addresses.give_back(f["floating_ip_address"])
