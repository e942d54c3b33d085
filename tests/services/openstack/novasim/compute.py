"""Servers, key pairs and flavors of the Nova simulator, and each server's life: build (download the
Glance image, overlay, config drive, qemu), stop/start, snapshot to Glance, delete."""
import base64
import datetime
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

from .glance import Glance, GlanceError
from .machine import Machine, disk_format, make_config_drive

GiB = 1 << 30

# A few small flavors, named like devstack's; UUID ids, as the definition's flavor list requires.
FLAVORS = [
    {"id": "5f6f3b1e-0d5c-4a51-9d0e-6a1c7e0b2a01", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1},
    {"id": "5f6f3b1e-0d5c-4a51-9d0e-6a1c7e0b2a02", "name": "ds512M", "ram": 512, "vcpus": 1, "disk": 5},
    {"id": "5f6f3b1e-0d5c-4a51-9d0e-6a1c7e0b2a03", "name": "ds1G", "ram": 1024, "vcpus": 1, "disk": 10},
    {"id": "5f6f3b1e-0d5c-4a51-9d0e-6a1c7e0b2a04", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
]
FLAVOR_IDS = {f["name"]: f["id"] for f in FLAVORS}
NETWORK = {"name": "private", "id": "4c2f3b52-6a41-4d8e-9a77-2b0f3d6e1c10"}
AVAILABILITY_ZONE = "nova"
HOST = "nova-sim"


class ApiError(Exception):
    KINDS = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 405: "badMethod", 409: "conflictingRequest",
             415: "badMediaType", 500: "computeFault", 501: "notImplemented"}

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message

    def body(self):
        return {self.KINDS.get(self.code, "computeFault"): {"code": self.code, "message": self.message}}


def now_iso():
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def last_segment(ref):
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def find_flavor(ref):
    ref = last_segment(ref)
    return next((f for f in FLAVORS if f["id"] == ref), None)


def key_blob(public_key):
    """The decoded key blob of an OpenSSH public key line, or None if it is not one."""
    parts = public_key.strip().split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None
    n = int.from_bytes(blob[:4], "big") if len(blob) > 4 else 0
    return blob if blob[4:4 + n].decode(errors="replace") == parts[0] else None


def fingerprint(blob):
    h = hashlib.md5(blob).hexdigest()
    return ":".join(h[i:i + 2] for i in range(0, 32, 2))


class Server:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.lock = threading.RLock()  # re-entered when a build aborts for a delete
        self.status, self.vm_state, self.task_state, self.power_state = "BUILD", "building", "scheduling", 0
        self.created = self.updated = now_iso()
        self.launched_at = None
        self.fault = None
        self.address = None
        self.floating = []  # floating addresses associated by the networking simulator
        self.machine = None
        self.deleted = False

    def set(self, status=None, vm_state=None, task_state="keep", power_state=None):
        if status:
            self.status = status
        if vm_state:
            self.vm_state = vm_state
        if task_state != "keep":
            self.task_state = task_state
        if power_state is not None:
            self.power_state = power_state
        self.updated = now_iso()


class Compute:
    def __init__(self, state_dir, addresses, faults, events, glance_url=None, clean_shutdown=10.0,
                 boot_check=1.5):
        self.dir = state_dir
        self.addresses, self.faults, self.events = addresses, faults, events
        self.glance_url = glance_url
        self.clean_shutdown, self.boot_check = clean_shutdown, boot_check
        self.servers = {}
        self.keypairs = {}  # (user_id, name) -> record
        self.lock = threading.Lock()
        self.image_locks = {}
        self.on_release = []  # callbacks(server) when a server's address goes (the networking side)
        os.makedirs(os.path.join(state_dir, "images"), exist_ok=True)
        os.makedirs(os.path.join(state_dir, "servers"), exist_ok=True)

    # ------------------------------------------------------------------ helpers
    def glance(self, auth):
        url = self.glance_url or auth.endpoint("image")
        if not url:
            raise ApiError(500, "No image service in the Keystone catalog.")
        return Glance(url, auth.token)

    def server(self, auth, server_id):
        s = self.servers.get(server_id)
        if s is None or s.project_id != auth.project_id or s.deleted and s.task_state is None:
            raise ApiError(404, "Instance %s could not be found." % server_id)
        return s

    def _async(self, fn, *args):
        threading.Thread(target=fn, args=args, daemon=True).start()

    def _slow(self, op):
        rule = self.faults.take(op, "slow")
        if rule:
            time.sleep(float(rule.get("seconds", 30)))

    def _fail(self, s, message, code=500):
        with s.lock:
            s.fault = {"code": code, "created": now_iso(), "message": message}
            s.set("ERROR", "error", None)
        self.events("fault", server=s.id, message=message)

    # ------------------------------------------------------------------ key pairs
    def keypair_create(self, auth, kp, mv):
        name = kp["name"]
        allowed = "@." if mv >= (2, 92) else ""
        if any(not (c.isalnum() or c in " _-" + allowed) for c in name):
            raise ApiError(400, "Keypair data is invalid: Keypair name contains unsafe characters")
        key = (auth.user_id, name)
        private = None
        public = kp.get("public_key")
        if public is None:
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C",
                                "Generated-by-Nova", "-f", tmp + "/k"], check=True)
                private = open(tmp + "/k").read()
                public = open(tmp + "/k.pub").read().strip()
        blob = key_blob(public)
        if blob is None:
            raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint")
        with self.lock:
            if key in self.keypairs:
                raise ApiError(409, "Key pair '%s' already exists." % name)
            rec = {"name": name, "public_key": public, "fingerprint": fingerprint(blob),
                   "type": kp.get("type", "ssh"), "user_id": auth.user_id, "created_at": now_iso(),
                   "id": len(self.keypairs) + 1}
            self.keypairs[key] = rec
        return rec, private

    def keypair(self, auth, name):
        rec = self.keypairs.get((auth.user_id, name))
        if rec is None:
            raise ApiError(404, "Keypair %s not found for user %s" % (name, auth.user_id))
        return rec

    def keypair_delete(self, auth, name):
        self.keypair(auth, name)
        with self.lock:
            del self.keypairs[(auth.user_id, name)]

    def keypair_list(self, auth):
        return [r for (u, _), r in sorted(self.keypairs.items()) if u == auth.user_id]

    # ------------------------------------------------------------------ create
    def create(self, auth, body, mv):
        b = body["server"]
        flavor = find_flavor(b["flavorRef"])
        if flavor is None:
            raise ApiError(400, "Flavor %s could not be found." % last_segment(b["flavorRef"]))
        image_id = last_segment(b.get("imageRef", ""))
        if not image_id:
            raise ApiError(400, "Block Device Mapping is Invalid: Boot sequence for the instance and image/block "
                                "device mapping combination is not valid.")
        try:
            image = self.glance(auth).image(image_id)
        except GlanceError as e:
            if e.status == 404:
                raise ApiError(400, "Image %s could not be found." % image_id)
            raise ApiError(500, str(e))
        if image.get("status") != "active":
            raise ApiError(400, "Image %s is not active." % image_id)
        size = max(image.get("size") or 0, image.get("virtual_size") or 0)
        if flavor["disk"] and size > flavor["disk"] * GiB:
            raise ApiError(400, "Flavor's disk is too small for requested image. Flavor disk is %d bytes, "
                                "image is %d bytes." % (flavor["disk"] * GiB, size))
        if (image.get("min_disk") or 0) > flavor["disk"] or (image.get("min_ram") or 0) > flavor["ram"]:
            raise ApiError(400, "Flavor's disk or memory is too small for requested image.")
        keypair = self.keypairs.get((auth.user_id, b["key_name"])) if b.get("key_name") else None
        if b.get("key_name") and keypair is None:
            raise ApiError(400, "Invalid key_name provided.")
        networks = b.get("networks", "auto" if mv < (2, 37) else None)
        if networks == "none":
            nets = []
        elif networks == "auto" or networks is None:
            nets = [NETWORK["name"]]
        else:
            for n in networks:
                if n.get("port"):
                    raise ApiError(400, "Port %s could not be found." % n["port"])
                if n.get("uuid") not in (None, NETWORK["id"]):
                    raise ApiError(400, "Network %s could not be found." % n["uuid"])
            nets = [NETWORK["name"]] if networks else []
        sgs = [g.get("name") for g in b.get("security_groups", [{"name": "default"}])]
        for g in sgs:
            if g != "default":
                raise ApiError(400, "Security group %s not found for project %s." % (g, auth.project_id))
        if b.get("availability_zone", AVAILABILITY_ZONE) != AVAILABILITY_ZONE:
            raise ApiError(400, "The requested availability zone is not available")
        user_data = None
        if "user_data" in b:
            try:
                user_data = base64.b64decode(b["user_data"], validate=True)
            except ValueError:
                raise ApiError(400, "User data needs to be valid base 64.")
        if int(b.get("min_count", 1)) != 1 or int(b.get("max_count", 1)) != 1:
            raise ApiError(400, "The simulator boots one server per request (min_count/max_count 1).")
        s = Server(id=str(uuid.uuid4()), name=b["name"], project_id=auth.project_id, user_id=auth.user_id,
                   image_id=image_id, image_format=image.get("disk_format"), flavor=flavor,
                   key_name=b.get("key_name"), public_key=keypair["public_key"] if keypair else None,
                   metadata=dict(b.get("metadata", {})), user_data=user_data, networks=nets,
                   security_groups=sgs, description=b.get("description"), tags=list(b.get("tags", [])),
                   admin_pass=b.get("adminPass") or secrets.token_urlsafe(9))
        with self.lock:
            self.servers[s.id] = s
        self.events("create", server=s.id, image=image_id, flavor=flavor["id"], key_name=s.key_name,
                    networks=nets)
        self._async(self._build, s, auth)
        return s

    def _image_file(self, auth, image_id):
        path = os.path.join(self.dir, "images", image_id)
        with self.lock:
            lock = self.image_locks.setdefault(image_id, threading.Lock())
        with lock:
            if not os.path.exists(path):
                self.glance(auth).download(image_id, path)
        return path

    def _build(self, s, auth):
        try:
            self._slow("create")
            if self.faults.take("create", "error"):
                raise RuntimeError("injected failure (simulator fault rule for 'create')")
            with s.lock:
                if s.deleted:
                    return self._release(s)
                s.set(task_state="block_device_mapping")
            base = self._image_file(auth, s.image_id)
            found = disk_format(base)
            if s.image_format in ("qcow2", "raw") and found != s.image_format:
                raise RuntimeError("Image %s is unacceptable: its disk_format is %s but its data is %s"
                                   % (s.image_id, s.image_format, found))
            with s.lock:
                if s.deleted:
                    return self._release(s)
                s.set(task_state="networking")
                s.address = self.addresses.take() if s.networks else None
                s.set(task_state="spawning")
            workdir = os.path.join(self.dir, "servers", s.id)
            os.makedirs(workdir, exist_ok=True)
            m = Machine(workdir, s.address, s.flavor["ram"], s.flavor["vcpus"], bool(s.networks))
            m.create_disk(base, found, s.flavor["disk"] * GiB if s.flavor["disk"] else None)
            self._write_config_drive(s, m)
            with s.lock:
                if s.deleted:
                    return self._release(s)
                s.machine = m
                m.start()
            self.events("boot", server=s.id, image=s.image_id, address=s.address, pid=m.proc.pid)
            time.sleep(self.boot_check)
            if not m.running():
                raise RuntimeError("qemu exited: %s" % m.failure())
            with s.lock:
                if s.deleted:
                    return self._release(s)
                s.launched_at = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")
                s.set("ACTIVE", "active", None, 1)
            self._async(self._watch, s, m)
        except Exception as e:  # any build failure is the server's fault record, as in Nova
            if s.machine:
                s.machine.kill()
            self._fail(s, "Build of instance %s aborted: %s" % (s.id, e))

    def _write_config_drive(self, s, m):
        meta = {"uuid": s.id, "name": s.name, "hostname": s.name, "launch_index": 0,
                "availability_zone": AVAILABILITY_ZONE, "project_id": s.project_id, "meta": s.metadata,
                "devices": [], "public_keys": {}, "keys": []}
        if s.public_key:
            meta["public_keys"] = {s.key_name: s.public_key}
            meta["keys"] = [{"name": s.key_name, "type": "ssh", "data": s.public_key}]
        make_config_drive(m.config_drive, meta, s.user_data)

    def _watch(self, s, m):
        """A guest that powers itself off becomes SHUTOFF (Nova's power-state sync)."""
        m.proc.wait()
        with s.lock:
            if s.machine is m and not s.deleted and s.task_state is None and s.vm_state == "active":
                s.set("SHUTOFF", "stopped", None, 4)
                self.events("guest-poweroff", server=s.id, qemu_exit=m.proc.returncode)  # -N: signal N

    # ------------------------------------------------------------------ actions
    def _check(self, s, action, vm_states):
        if s.task_state is not None:
            raise ApiError(409, "Cannot '%s' instance %s while it is in task_state %s" % (action, s.id, s.task_state))
        if s.vm_state not in vm_states:
            raise ApiError(409, "Cannot '%s' instance %s while it is in vm_state %s" % (action, s.id, s.vm_state))

    def stop(self, s):
        with s.lock:
            self._check(s, "stop", ("active", "error"))
            s.set(task_state="powering-off")
        self._async(self._stop, s)

    def _stop(self, s):
        self._slow("stop")
        if self.faults.take("stop", "error"):
            return self._fail(s, "injected failure (simulator fault rule for 'stop')")
        if s.machine:
            s.machine.stop(self.clean_shutdown)
        with s.lock:
            s.set("SHUTOFF", "stopped", None, 4)
        self.events("stopped", server=s.id)

    def start(self, s):
        with s.lock:
            self._check(s, "start", ("stopped",))
            s.set(task_state="powering-on")
        self._async(self._start, s)

    def _start(self, s):
        self._slow("start")
        try:
            if self.faults.take("start", "error"):
                raise RuntimeError("injected failure (simulator fault rule for 'start')")
            if s.machine is None:
                raise RuntimeError("the server has no disk (it never built)")
            s.machine.start()
            time.sleep(self.boot_check)
            if not s.machine.running():
                raise RuntimeError("qemu exited: %s" % s.machine.failure())
        except Exception as e:
            return self._fail(s, "Failed to start instance %s: %s" % (s.id, e))
        with s.lock:
            s.set("ACTIVE", "active", None, 1)
        self.events("boot", server=s.id, image=s.image_id, address=s.address, pid=s.machine.proc.pid)
        self._async(self._watch, s, s.machine)

    def create_image(self, s, auth, name, metadata):
        with s.lock:
            self._check(s, "createImage", ("active", "stopped"))
            s.set(task_state="image_snapshot")
        record = {"name": name, "container_format": "bare", "disk_format": "qcow2", "visibility": "private",
                  "min_disk": s.flavor["disk"], "image_type": "snapshot", "instance_uuid": s.id,
                  "base_image_ref": s.image_id, "user_id": s.user_id}
        record.update(metadata)
        try:
            image = self.glance(auth).create(record)
        except Exception as e:
            with s.lock:
                s.set(task_state=None)
            code = 400 if isinstance(e, GlanceError) and e.status in (400, 409) else 500
            raise ApiError(code, "Could not create the snapshot image: %s" % e)
        self.events("snapshot", server=s.id, image=image["id"], name=name)
        self._async(self._snapshot, s, auth, image["id"])
        return image["id"]

    def _snapshot(self, s, auth, image_id):
        glance = self.glance(auth)
        tmp = os.path.join(self.dir, "servers", s.id + "-snapshot-" + image_id + ".qcow2")
        try:
            self._slow("createImage")
            with s.lock:
                s.set(task_state="image_pending_upload")
            if self.faults.take("createImage", "error"):
                raise RuntimeError("injected failure (simulator fault rule for 'createImage')")
            s.machine.snapshot_to(tmp)
            with s.lock:
                s.set(task_state="image_uploading")
            glance.upload(image_id, tmp)
            self.events("snapshot-uploaded", server=s.id, image=image_id, bytes=os.path.getsize(tmp))
        except Exception as e:  # Nova deletes the half-made image and leaves the server as it was
            self.events("snapshot-failed", server=s.id, image=image_id, message=str(e))
            try:
                glance.delete(image_id)
            except Exception:
                pass
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
            with s.lock:
                s.set(task_state=None)

    def console(self, s, length):
        if s.machine is None or not os.path.exists(s.machine.console):
            raise ApiError(409, "Instance %s is not ready" % s.id)
        with open(s.machine.console, errors="replace") as f:
            lines = f.read().splitlines(True)
        if length is not None and int(length) >= 0:
            lines = lines[-int(length):] if int(length) else []
        return "".join(lines)

    def delete(self, s):
        with s.lock:
            s.deleted = True
            s.set(task_state="deleting")
        self._async(self._delete, s)

    def _release(self, s):
        """Stops the guest, frees its address and files (idempotent: build and delete may race)."""
        with s.lock:
            m, s.machine = s.machine, None
            addr, s.address = s.address, None
        for callback in self.on_release:
            callback(s)
        if m:
            m.remove()
        shutil.rmtree(os.path.join(self.dir, "servers", s.id), ignore_errors=True)
        if addr:
            self.addresses.give_back(addr)

    def _delete(self, s):
        self._slow("delete")
        self._release(s)
        with self.lock:
            self.servers.pop(s.id, None)
        self.events("deleted", server=s.id)

    def shutdown(self):
        for s in list(self.servers.values()):
            if s.machine:
                s.machine.kill()
            if s.address:
                self.addresses.give_back(s.address)
