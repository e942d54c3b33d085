"""Boot cases of test_nova_sim.py (slow): a real bootable disk from Glance reaches SSH on its own
127.0.0.N:22 with the key pair of the config drive; os-stop; createImage gives an active Glance
image (checked with `openstack image show`); the snapshot boots with the provisioned file."""
import base64
import json
import os
import subprocess
import tempfile
import time

from nova_sim_testlib import CLEAN_ENV, Failure, Http, Shared, check, flavor_id, wait_for, wait_status


def ssh_once(key, addr, command, connect_timeout=15):
    try:
        return subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=%d" % connect_timeout,
                               "-o", "LogLevel=ERROR", "root@" + addr, command],
                              capture_output=True, text=True, timeout=connect_timeout + 60)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([], 255, "", "ssh timed out")


def ssh(key, addr, command, tries=4):
    """A command over SSH, retried on connection failures (exit 255): a TCG guest on a loaded
    machine can be slow to send its banner."""
    for _ in range(tries):
        r = ssh_once(key, addr, command)
        if r.returncode != 255:
            return r
    return r


def wait_ssh(key, addr, timeout=300):
    start = time.time()
    wait_for("SSH on %s:22" % addr, lambda: ssh_once(key, addr, "true", 5).returncode == 0, timeout, 1)
    return time.time() - start


def boot_cases(stack, disk):
    c = Shared()  # shared between cases: image, server, address, snapshot
    tmp = tempfile.mkdtemp(prefix="nova-sim-boot-")
    key = os.path.join(tmp, "key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    api = lambda: Http(stack.compute_url, stack.fresh_token, "2.52")  # noqa: E731

    def boot(image_id, name):
        a = api()
        ud = base64.b64encode(b"#!/bin/sh\necho user-data-for-" + name.encode() + b"\n").decode()
        st, body, _ = a("POST", "/servers", {"server": {"name": name, "imageRef": image_id, "flavorRef": flavor_id(a, "ds512M"),
                                                         "key_name": "boot-key", "networks": "auto", "user_data": ud,
                                                         "config_drive": True}})
        check(st == 202, "create: %s %s" % (st, body))
        s = wait_status(a, body["server"]["id"], ["ACTIVE", "ERROR"], 300)
        check(s["status"] == "ACTIVE", "server went %s: %s" % (s["status"], s.get("fault")))
        return s, s["addresses"]["private"][0]["addr"]

    def boot_to_ssh():
        token, info = stack.token()
        c["image"] = stack.upload_image(token, info, "bootable", disk, "qcow2")
        pub = open(key + ".pub").read().strip()
        st, body, _ = api()("POST", "/os-keypairs", {"keypair": {"name": "boot-key", "public_key": pub}})
        check(st == 201, "keypair: %s %s" % (st, body))
        s, addr = boot(c["image"], "builder")
        c["server"], c["addr"] = s["id"], addr
        took = wait_ssh(key, addr)
        r = ssh(key, addr, "cat /root/.ssh/authorized_keys; cat /var/lib/cloud/user_data 2>/dev/null || true")
        check(pub in r.stdout, "the key pair's key is in authorized_keys: %s" % r.stdout)
        print("     SSH on %s:22 %.1f s after ACTIVE" % (addr, took))
        boots = [e for e in stack.log() if e.get("event") == "boot" and e["server"] == s["id"]]
        check(boots and boots[0]["image"] == c["image"] and boots[0]["address"] == addr, "boot event: %s" % boots)

    def provision_stop_snapshot():
        r = ssh(key, c["addr"], "echo provisioned-by-test > /root/provisioned && sync && cat /root/provisioned")
        check(r.returncode == 0 and "provisioned-by-test" in r.stdout, "provisioning over SSH: %s" % r.stderr)
        a = api()
        check(a("POST", "/servers/%s/action" % c["server"], {"os-stop": None})[0] == 202, "os-stop")
        wait_status(a, c["server"], ["SHUTOFF"], 120)
        check(ssh_once(key, c["addr"], "true", 5).returncode != 0, "SSH is gone once SHUTOFF")
        st, body, _ = a("POST", "/servers/%s/action" % c["server"], {"createImage": {"name": "lcake-snap",
                                                                                     "metadata": {"lcake_layer": "test"}}}, )
        check(st == 202 and "image_id" in body, "createImage: %s %s" % (st, body))
        c["snap"] = body["image_id"]
        env = dict(CLEAN_ENV, OS_CLIENT_CONFIG_FILE=os.path.join(stack.ks_dir, "clouds.yaml"), OS_CLOUD="lcake-test")

        def shown():
            p = subprocess.run(["/usr/bin/openstack", "image", "show", c["snap"], "-f", "json"], env=env,
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise Failure("openstack image show: " + p.stderr.strip())
            img = json.loads(p.stdout)
            return img if img["status"] == "active" else None
        img = wait_for("snapshot active in Glance", shown, 300, 2)
        props = img.get("properties") or {}
        check(props.get("image_type") == "snapshot" and props.get("lcake_layer") == "test"
              and img["disk_format"] == "qcow2", "openstack image show: %s" % img)
        st, _, _ = a("DELETE", "/servers/" + c["server"])
        check(st == 204, "delete builder: %s" % st)
        wait_for("builder gone", lambda: a("GET", "/servers/" + c["server"])[0] == 404, 60)

    def boot_snapshot():
        s, addr = boot(c["snap"], "verifier")
        wait_ssh(key, addr)
        r = ssh(key, addr, "cat /root/provisioned")
        check(r.stdout.strip() == "provisioned-by-test", "the snapshot holds the provisioned file: %r %s" % (r.stdout, r.stderr))
        a = api()
        st, body, _ = a("POST", "/servers/%s/action" % s["id"], {"os-getConsoleOutput": {"length": 200}})
        check(st == 200 and "lcake-guest" in body["output"], "console output shows the guest's boot")
        check(a("DELETE", "/servers/" + s["id"])[0] == 204, "delete verifier")
        check(a("DELETE", "/os-keypairs/boot-key")[0] == 204, "delete key pair")
        wait_for("verifier gone", lambda: a("GET", "/servers/" + s["id"])[0] == 404, 60)

    return [("boot from Glance to SSH", boot_to_ssh), ("provision, os-stop, createImage", provision_stop_snapshot),
            ("boot the snapshot", boot_snapshot)]
