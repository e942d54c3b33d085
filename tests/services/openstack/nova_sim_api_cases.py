"""API cases of test_nova_sim.py: versions, auth, microversions, flavors, key pairs, servers,
actions, errors and failure injection. Servers boot a blank disk (qemu runs, nothing boots)."""
import base64
import os
import socket
import subprocess
import tempfile
import time

from nova_sim_testlib import TOKEN_LIFETIME, Http, Shared, check, flavor_id, wait_for, wait_status

UUID0 = "00000000-0000-4000-8000-000000000000"


def api_cases(stack):
    c = Shared()  # shared between cases: tokens, images, servers
    token, info = stack.token()
    c["early_token"], c["early_at"] = token, time.time()
    api = lambda mv=None: Http(stack.compute_url, stack.fresh_token, mv)  # noqa: E731
    tmp = tempfile.mkdtemp(prefix="nova-sim-api-")
    blank = os.path.join(tmp, "blank.raw")
    with open(blank, "wb") as f:
        f.truncate(1 << 20)
    c["image"] = stack.upload_image(token, info, "blank", blank, "raw")
    c["bad_image"] = stack.upload_image(token, info, "raw-called-qcow2", blank, "qcow2")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp + "/key"], check=True)
    c["pub"] = open(tmp + "/key.pub").read().strip()
    c["tiny"] = flavor_id(Http(stack.compute_url, token), "m1.tiny")

    def versions():
        root = Http(stack.sim_root)
        st, body, _ = root("GET", "/")
        check(st == 200 and body["versions"][0]["id"] == "v2.1", "GET /: %s %s" % (st, body))
        v = body["versions"][0]
        check((v["min_version"], v["version"]) == ("2.1", "2.93"), "min/max microversion: %s" % v)
        st, _, h = root("GET", "/v2.1")
        check(st == 302 and h["Location"].endswith("/v2.1/"), "GET /v2.1: %s %s" % (st, h.get("Location")))
        st, body, _ = root("GET", "/v2.1/")
        check(st == 200 and body["version"]["version"] == "2.93", "GET /v2.1/: %s %s" % (st, body))

    def microversions():
        a = api()
        for mv, hdr, want in (("2.60", False, "2.60"), ("2.47", True, "2.47"), ("latest", False, "2.93"), (None, False, "2.1")):
            st, _, h = a("GET", "/flavors", mv=mv, nova_header=hdr)
            check(st == 200, "flavors @%s: %s" % (mv, st))
            check(h["OpenStack-API-Version"] == "compute " + want and h["X-OpenStack-Nova-API-Version"] == want,
                  "microversion %s echoed as %s / %s" % (mv, h["OpenStack-API-Version"], h["X-OpenStack-Nova-API-Version"]))
        st, body, _ = a("GET", "/flavors", mv="2.94")
        check(st == 406 and "maximum is 2.93" in body["computeFault"]["message"], "2.94: %s %s" % (st, body))
        st, _, _ = a("GET", "/flavors", mv="two")
        check(st == 400, "a malformed microversion gives 400, got %s" % st)

    def auth():
        a = Http(stack.compute_url)
        st, body, h = a("GET", "/servers")
        check(st == 401 and "Keystone uri=" in h.get("WWW-Authenticate", ""), "no token: %s %s" % (st, body))
        st, _, _ = a("GET", "/servers", token="not-a-token")
        check(st == 401, "bad token: %s" % st)
        check(api()("GET", "/servers")[0] == 200, "a valid token is accepted")

    def flavors():
        a = api("2.61")
        st, body, _ = a("GET", "/flavors")
        check(st == 200 and {f["name"] for f in body["flavors"]} >= {"m1.tiny", "ds512M"}, "flavor list: %s" % body)
        st, body, _ = a("GET", "/flavors/detail")
        check(st == 200 and all("ram" in f and "extra_specs" in f for f in body["flavors"]), "detail: %s" % body)
        st, body, _ = a("GET", "/flavors/" + flavor_id(a, "ds512M"))
        check(st == 200 and body["flavor"]["ram"] == 512 and body["flavor"]["disk"] == 5, "show: %s" % body)
        check(a("GET", "/flavors/nope")[0] == 404, "unknown flavor is 404")

    def keypairs():
        a = api("2.2")
        st, body, _ = a("POST", "/os-keypairs", {"keypair": {"name": "k1", "public_key": c["pub"]}})
        check(st == 201 and body["keypair"]["public_key"] == c["pub"] and "private_key" not in body["keypair"],
              "import: %s %s" % (st, body))
        fp = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", "/dev/stdin"], input=c["pub"], text=True,
                            capture_output=True).stdout.split()[1]
        check("MD5:" + body["keypair"]["fingerprint"] == fp, "fingerprint %s, ssh-keygen says %s" % (body["keypair"]["fingerprint"], fp))
        check(a("POST", "/os-keypairs", {"keypair": {"name": "k1", "public_key": c["pub"]}})[0] == 409, "duplicate is 409")
        st, body, _ = a("POST", "/os-keypairs", {"keypair": {"name": "k2", "public_key": "ssh-ed25519 bm90LWEta2V5"}})
        check(st == 400, "a broken public key is 400: %s %s" % (st, body))
        st, body, _ = a("POST", "/os-keypairs", {"keypair": {"name": "gen"}}, mv="2.91")
        check(st == 201 and body["keypair"]["private_key"].startswith("-----BEGIN"), "generate @2.91: %s" % st)
        st, body, _ = a("POST", "/os-keypairs", {"keypair": {"name": "gen2"}}, mv="2.92")
        check(st == 400, "generation is gone at 2.92: %s %s" % (st, body))
        st, body, _ = a("GET", "/os-keypairs/k1")
        check(st == 200 and body["keypair"]["name"] == "k1" and "user_id" in body["keypair"], "show: %s" % body)
        st, body, _ = a("GET", "/os-keypairs")
        check(sorted(k["keypair"]["name"] for k in body["keypairs"]) == ["gen", "k1"], "list: %s" % body)
        check(a("DELETE", "/os-keypairs/gen")[0] == 204, "delete @2.2 is 204")
        check(a("GET", "/os-keypairs/gen")[0] == 404, "deleted key pair is 404")
        a("POST", "/os-keypairs", {"keypair": {"name": "old", "public_key": c["pub"]}}, mv="2.1")
        check(a("DELETE", "/os-keypairs/old", mv="2.1")[0] == 202, "delete @2.1 is 202")

    def server_body(**kw):
        b = {"name": "s", "imageRef": c["image"], "flavorRef": c["tiny"], "networks": "auto"}
        b.update(kw)
        return {"server": b}

    def create_errors():
        a = api("2.52")
        cases = [
            ("no networks at 2.37+", {"server": {"name": "s", "imageRef": c["image"], "flavorRef": c["tiny"]}}, "2.52"),
            ("networks none below 2.37", server_body(networks="none"), "2.36"),
            ("unknown flavor", server_body(flavorRef="zzz"), "2.52"),
            ("unknown image", server_body(imageRef=UUID0), "2.52"),
            ("unknown key pair", server_body(key_name="nope"), "2.52"),
            ("user_data not base64", server_body(user_data="%%%"), "2.52"),
            ("unknown network", server_body(networks=[{"uuid": UUID0}]), "2.52"),
            ("unknown availability zone", server_body(availability_zone="elsewhere"), "2.52"),
            ("unknown property", server_body(flavour="1"), "2.52"),
        ]
        for what, body, mv in cases:
            st, resp, _ = a("POST", "/servers", body, mv=mv)
            check(st == 400 and "badRequest" in resp, "%s: want 400 badRequest, got %s %s" % (what, st, resp))
        st, resp, _ = a("POST", "/servers", raw=b"{not json")
        check(st == 400, "malformed JSON: %s" % st)
        st, resp, _ = a("POST", "/servers", raw=b"{}", ctype="text/plain")
        check(st == 415, "wrong content type: %s" % st)

    def server_lifecycle():
        a = api("2.52")
        ud = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
        st, body, h = a("POST", "/servers", server_body(key_name="k1", user_data=ud, config_drive=True,
                                                         metadata={"role": "builder"}, security_groups=[{"name": "default"}],
                                                         availability_zone="nova"))
        check(st == 202 and "adminPass" in body["server"] and h["Location"].endswith(body["server"]["id"]),
              "create: %s %s" % (st, body))
        sid = c["server"] = body["server"]["id"]
        s = a("GET", "/servers/" + sid)[1]["server"]
        check(s["status"] in ("BUILD", "ACTIVE"), "status after create: %s" % s["status"])
        s = wait_status(a, sid, ["ACTIVE"])
        addr = s["addresses"]["private"][0]
        check(addr["version"] == 4 and addr["OS-EXT-IPS:type"] == "fixed" and addr["addr"].startswith("127.0.0."),
              "addresses: %s" % s["addresses"])
        check(s["key_name"] == "k1" and s["metadata"] == {"role": "builder"} and s["image"]["id"] == c["image"],
              "show fields: %s" % s)
        check(s["OS-EXT-STS:vm_state"] == "active" and s["OS-EXT-STS:power_state"] == 1, "extended status: %s" % s)
        st, body, _ = a("GET", "/servers?name=^s$")
        check(st == 200 and sid in [x["id"] for x in body["servers"]], "list: %s" % body)
        st, body, _ = a("GET", "/servers/detail?status=ACTIVE")
        check(st == 200 and sid in [x["id"] for x in body["servers"]], "detail: %s" % body)
        st, body, _ = a("POST", "/servers/%s/action" % sid, {"os-getConsoleOutput": {"length": 50}})
        check(st == 200 and isinstance(body["output"], str), "console: %s %s" % (st, body))
        st, body, _ = a("POST", "/servers/%s/action" % sid, {"os-start": None})
        check(st == 409 and "conflictingRequest" in body, "os-start while ACTIVE: %s %s" % (st, body))
        check(a("POST", "/servers/%s/action" % sid, {"os-stop": None})[0] == 202, "os-stop is 202")
        check(a("POST", "/servers/%s/action" % sid, {"os-stop": None})[0] == 409, "a second os-stop is 409")
        s = wait_status(a, sid, ["SHUTOFF"], 60)
        check(s["OS-EXT-STS:power_state"] == 4, "SHUTOFF power state: %s" % s)
        check(a("POST", "/servers/%s/action" % sid, {"os-start": None})[0] == 202, "os-start is 202")
        wait_status(a, sid, ["ACTIVE"], 60)
        st, body, _ = a("POST", "/servers/%s/action" % sid, {"reboot": {"type": "SOFT"}})
        check(st == 501, "an action the simulator lacks is 501: %s %s" % (st, body))
        st, body, _ = a("POST", "/servers/%s/action" % sid, {"frobnicate": None})
        check(st == 400, "an unknown action is 400: %s %s" % (st, body))

    def glance_image(image_id):
        token, info = stack.token()
        return Http(stack.glance_url(info), token)("GET", "/v2/images/" + image_id)

    def create_image():
        sid = c["server"]
        a = api("2.45")
        st, body, h = a("POST", "/servers/%s/action" % sid, {"createImage": {"name": "snap", "metadata": {"lcake": "1"}}})
        check(st == 202 and "image_id" in body and "Location" not in h, "createImage @2.45: %s %s %s" % (st, body, dict(h)))
        image = wait_for("snapshot active", lambda: (lambda r: r[1] if r[1]["status"] == "active" else None)(glance_image(body["image_id"])))
        check(image["image_type"] == "snapshot" and image["lcake"] == "1" and image["disk_format"] == "qcow2"
              and image["container_format"] == "bare" and image["owner"] == stack.token()[1]["project"]["id"],
              "snapshot record: %s" % image)
        wait_status(a, sid, ["ACTIVE"], 60)
        st, body, h = a("POST", "/servers/%s/action" % sid, {"createImage": {"name": "snap-old"}}, mv="2.44")
        check(st == 202 and body is None and "/images/" in h.get("Location", ""), "createImage @2.44: %s %s" % (st, dict(h)))
        wait_status(a, sid, ["ACTIVE"], 120)

    def delete_server():
        a = api("2.52")
        sid = c["server"]
        check(a("DELETE", "/servers/" + sid)[0] == 204, "delete is 204")
        wait_for("server gone", lambda: a("GET", "/servers/" + sid)[0] == 404, 60)
        check(a("DELETE", "/servers/" + sid)[0] == 404, "deleting again is 404")

    def build_errors():
        a = api("2.52")
        st, body, _ = a("POST", "/servers", server_body(imageRef=c["bad_image"]))
        check(st == 202, "create with a mislabelled image: %s %s" % (st, body))
        s = wait_status(a, body["server"]["id"], ["ERROR"], 120)
        check(s["fault"]["code"] == 500 and "disk_format is qcow2 but its data is raw" in s["fault"]["message"],
              "fault: %s" % s.get("fault"))
        a("DELETE", "/servers/" + s["id"])

    def injection():
        sim = Http(stack.sim_root)
        a = api("2.52")
        st, _, _ = sim("POST", "/_sim/fail", {"op": "create", "mode": "error"})
        check(st == 200, "add rule: %s" % st)
        st, body, _ = a("POST", "/servers", server_body())
        s = wait_status(a, body["server"]["id"], ["ERROR"], 60)
        check("injected failure" in s["fault"]["message"], "injected ERROR: %s" % s.get("fault"))
        a("DELETE", "/servers/" + s["id"])
        sim("POST", "/_sim/fail", {"op": "show", "mode": "500", "count": 1})
        st, body, _ = a("GET", "/servers/" + s["id"])
        check(st == 500 and "computeFault" in body, "injected 500: %s %s" % (st, body))
        sim("POST", "/_sim/fail", {"op": "create", "mode": "slow", "seconds": 4})
        st, body, _ = a("POST", "/servers", server_body())
        sid = body["server"]["id"]
        time.sleep(2)
        check(a("GET", "/servers/" + sid)[1]["server"]["status"] == "BUILD", "slow build is still BUILD after 2 s")
        wait_status(a, sid, ["ACTIVE"], 120)
        a("DELETE", "/servers/" + sid)
        check(sim("DELETE", "/_sim/fail")[0] == 204, "clear rules")

    def delete_while_building():
        sim = Http(stack.sim_root)
        a = api("2.52")
        sim("POST", "/_sim/fail", {"op": "create", "mode": "slow", "seconds": 3})
        st, body, _ = a("POST", "/servers", server_body())
        sid = body["server"]["id"]
        check(a("DELETE", "/servers/" + sid)[0] == 204, "delete during BUILD is 204")
        wait_for("server gone", lambda: a("GET", "/servers/" + sid)[0] == 404, 60)
        time.sleep(4)  # past the slow build: it must notice the delete and start nothing
        check(sim("GET", "/_sim/servers")[1]["servers"] == [], "no servers left in the simulator")
        check(not os.listdir(os.path.join(stack.sim_dir, "servers")), "no server files left")
        left = subprocess.run(["pgrep", "-f", "qemu-system.*" + stack.sim_dir], capture_output=True, text=True).stdout
        check(not left.strip(), "no qemu processes left: %s" % left)

    def networking():
        """The Networking API simulator: networks, ports, floating IPs (create, associate, forward, delete)."""
        net = Http(stack.sim_root + "/networking/v2.0", stack.fresh_token)
        a = api("2.52")
        check(Http(stack.sim_root + "/networking/v2.0")("GET", "/floatingips")[0] == 401, "no token: 401")
        st, body, _ = net("GET", "/networks?name=public")
        check(st == 200 and len(body["networks"]) == 1 and body["networks"][0]["router:external"],
              "the external network: %s %s" % (st, body))
        public = body["networks"][0]["id"]
        private = net("GET", "/networks?name=private")[1]["networks"][0]["id"]
        st, body, _ = a("POST", "/servers", server_body(name="fip-server"))
        sid = body["server"]["id"]
        wait_status(a, sid, ["ACTIVE"], 120)
        ports = net("GET", "/ports?device_id=" + sid)[1]["ports"]
        check(len(ports) == 1 and ports[0]["device_id"] == sid, "one port per server: %s" % ports)
        for what, b, want in (
                ("an unknown attribute", {"floatingip": {"floating_network_id": public, "bogus": 1}}, 400),
                ("no floating_network_id", {"floatingip": {}}, 400),
                ("a network id that is no UUID", {"floatingip": {"floating_network_id": "public"}}, 400),
                ("an internal network", {"floatingip": {"floating_network_id": private}}, 400),
                ("an unknown network", {"floatingip": {"floating_network_id": UUID0}}, 404)):
            st, body, _ = net("POST", "/floatingips", b)
            check(st == want and "NeutronError" in body, "create with %s: %s %s" % (what, st, body))
        st, body, _ = net("POST", "/floatingips", {"floatingip": {"floating_network_id": public,
                                                                    "description": "api-case"}})
        check(st == 201 and body["floatingip"]["status"] == "DOWN" and body["floatingip"]["port_id"] is None,
              "create: %s %s" % (st, body))
        fip = body["floatingip"]
        check(net("GET", "/floatingips?description=api-case")[1]["floatingips"][0]["id"] == fip["id"],
              "listed by description")
        st, body, _ = net("PUT", "/floatingips/" + fip["id"], {"floatingip": {"port_id": ports[0]["id"]}})
        check(st == 200 and body["floatingip"]["status"] == "ACTIVE", "associate: %s %s" % (st, body))
        addrs = [x for n in a("GET", "/servers/" + sid)[1]["server"]["addresses"].values() for x in n]
        check({"floating", "fixed"} == {x["OS-EXT-IPS:type"] for x in addrs} and
              fip["floating_ip_address"] in [x["addr"] for x in addrs], "Nova lists the floating address: %s" % addrs)
        socket.create_connection((fip["floating_ip_address"], 22), timeout=10).close()
        wait_for("a forwarded connection", lambda: any(
            e.get("event") == "floating-connection" and e.get("floatingip") == fip["id"] for e in stack.log()), 10)
        st, body, _ = net("PUT", "/floatingips/" + fip["id"], {"floatingip": {"floating_network_id": public}})
        check(st == 400, "update of a read-only attribute: %s %s" % (st, body))
        check(net("DELETE", "/floatingips/" + fip["id"])[0] == 204, "delete is 204")
        check(net("DELETE", "/floatingips/" + fip["id"])[0] == 404, "deleting again is 404")
        check(Http(stack.sim_root)("GET", "/_sim/floatingips")[1]["floatingips"] == [], "none left")
        a("DELETE", "/servers/" + sid)
        wait_for("server gone", lambda: a("GET", "/servers/" + sid)[0] == 404, 60)

    def request_log():
        events = [e for e in stack.log() if e.get("kind") == "event"]
        boots = [e for e in events if e["event"] == "boot"]
        check(boots and all(e["image"] == c["image"] for e in boots), "boot events name the image: %s" % boots)
        text = open(os.path.join(stack.sim_dir, "requests.jsonl")).read()
        check("-----BEGIN" not in text and c["early_token"] not in text, "no private keys or tokens in the log")

    def expired_token():
        wait = c["early_at"] + TOKEN_LIFETIME + 2 - time.time()
        if wait > 0:
            time.sleep(wait)
        st, _, _ = Http(stack.compute_url, c["early_token"])("GET", "/servers")
        check(st == 401, "a token past its expiry is refused: %s" % st)

    return [("versions", versions), ("microversions", microversions), ("auth", auth), ("flavors", flavors),
            ("keypairs", keypairs), ("create errors", create_errors), ("server lifecycle", server_lifecycle),
            ("createImage", create_image), ("delete server", delete_server), ("build errors", build_errors),
            ("failure injection", injection), ("delete while building", delete_while_building),
            ("networking", networking),
            ("request log", request_log), ("expired token", expired_token)]
