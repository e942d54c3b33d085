"""JSON renderings of the simulator's resources, per microversion (Nova's view builders)."""
import hashlib

from .compute import AVAILABILITY_ZONE, FLAVORS, HOST

MIN_VERSION, MAX_VERSION = (2, 1), (2, 93)
VERSION_UPDATED = "2013-07-23T11:33:21Z"


def vstr(v):
    return "%d.%d" % v


def version(base):
    return {"id": "v2.1", "status": "CURRENT", "version": vstr(MAX_VERSION), "min_version": vstr(MIN_VERSION),
            "updated": VERSION_UPDATED, "links": [{"rel": "self", "href": base + "/v2.1/"}]}


def version_detail(base):
    v = version(base)
    v["links"].append({"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"})
    v["media-types"] = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return {"version": v}


def links(base, kind, rid):
    return [{"rel": "self", "href": "%s/v2.1/%s/%s" % (base, kind, rid)},
            {"rel": "bookmark", "href": "%s/%s/%s" % (base, kind, rid)}]


def flavor(base, f, mv, detail):
    out = {"id": f["id"], "name": f["name"], "links": links(base, "flavors", f["id"])}
    if detail:
        out.update({"ram": f["ram"], "disk": f["disk"], "vcpus": f["vcpus"], "swap": 0,
                    "OS-FLV-EXT-DATA:ephemeral": 0, "rxtx_factor": 1.0, "os-flavor-access:is_public": True})
        if mv >= (2, 61):
            out["extra_specs"] = {}
    return out


def flavors(base, mv, detail):
    return {"flavors": [flavor(base, f, mv, detail) for f in FLAVORS]}


def keypair(rec, mv, private_key=None, full=False):
    out = {"name": rec["name"], "public_key": rec["public_key"], "fingerprint": rec["fingerprint"]}
    if mv >= (2, 2):
        out["type"] = rec["type"]
    if full:
        out.update({"user_id": rec["user_id"], "created_at": rec["created_at"], "deleted": False,
                    "deleted_at": None, "updated_at": None, "id": rec["id"]})
    if private_key is not None:
        out["private_key"] = private_key
    return out


def server_brief(base, s):
    return {"id": s.id, "name": s.name, "links": links(base, "servers", s.id)}


def server(base, s, mv, show=True):
    with s.lock:
        out = server_brief(base, s)
        addresses = {}
        if s.address and s.status != "BUILD":
            addresses = {n: [{"addr": a, "version": 4, "OS-EXT-IPS:type": t,
                              "OS-EXT-IPS-MAC:mac_addr": "52:54:00:12:34:56"}
                             for a, t in [(s.address, "fixed")] + [(f, "floating") for f in s.floating]]
                         for n in s.networks}
        f = s.flavor
        if mv >= (2, 47):
            fl = {"vcpus": f["vcpus"], "ram": f["ram"], "disk": f["disk"], "ephemeral": 0, "swap": 0,
                  "original_name": f["name"], "extra_specs": {}}
        else:
            fl = {"id": f["id"], "links": [{"rel": "bookmark", "href": "%s/flavors/%s" % (base, f["id"])}]}
        out.update({
            "status": s.status, "tenant_id": s.project_id, "user_id": s.user_id, "metadata": s.metadata,
            "hostId": hashlib.sha224((s.project_id + HOST).encode()).hexdigest(),
            "image": {"id": s.image_id, "links": [{"rel": "bookmark", "href": "%s/images/%s" % (base, s.image_id)}]},
            "flavor": fl, "created": s.created, "updated": s.updated, "addresses": addresses,
            "accessIPv4": "", "accessIPv6": "", "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": AVAILABILITY_ZONE if s.status != "BUILD" else "",
            "config_drive": "True", "key_name": s.key_name,
            "OS-SRV-USG:launched_at": s.launched_at, "OS-SRV-USG:terminated_at": None,
            "OS-EXT-STS:task_state": s.task_state, "OS-EXT-STS:vm_state": s.vm_state,
            "OS-EXT-STS:power_state": s.power_state, "os-extended-volumes:volumes_attached": [],
            "security_groups": [{"name": g} for g in s.security_groups],
        })
        if s.status in ("BUILD", "ACTIVE"):
            out["progress"] = 0
        if s.fault:
            out["fault"] = dict(s.fault)
        if mv >= (2, 9):
            out["locked"] = False
        if mv >= (2, 19):
            out["description"] = s.description
        if mv >= (2, 26):
            out["tags"] = list(s.tags)
        if mv >= (2, 63):
            out["trusted_image_certificates"] = None
        if mv >= (2, 71) and show:
            out["server_groups"] = []
        if mv >= (2, 73):
            out["locked_reason"] = None
        return out
