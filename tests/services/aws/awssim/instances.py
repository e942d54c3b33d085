"""Instances that really boot: RunInstances (moto first) rebuilds the AMI's root disk from the block
store, boots it under qemu-system-x86_64 (TCG, BIOS) with a NoCloud seed holding the key pair's
public key and the user data, and gives the instance its own loopback address 127.0.0.N whose
port 22 is the guest's sshd. The simulator shows that address and the instance's real state in
EC2's answers; TerminateInstances stops qemu; GetConsoleOutput returns the serial log."""
import base64
import datetime
import ipaddress
import os
import socket
import subprocess
import tempfile
import threading

from . import ec2xml
from .seed import make_seed

ADDRESS_FIELDS = ("privateIpAddress", "ipAddress", "publicIp")
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
CONSOLE_LIMIT = 64 * 1024


class Instance:
    def __init__(self, iid, region, image_id, address, key_name, user_data):
        self.id, self.region, self.image_id, self.address = iid, region, image_id, address
        self.key_name, self.user_data = key_name, user_data
        self.state = "pending"
        self.proc = None
        self.terminating = False


class Instances:
    def __init__(self, state_dir, store, images, moto, log, admin, qemu_memory, qemu_timeout_kill=10):
        self.dir = os.path.join(state_dir, "instances")
        os.makedirs(self.dir, exist_ok=True)
        self.store, self.images, self.moto, self.log, self.admin = store, images, moto, log, admin
        self.memory = qemu_memory
        self.kill_after = qemu_timeout_kill
        self.instances, self.keys = {}, {}
        self.lock = threading.Lock()

    # key pairs: the simulator needs the public half to put it into the seed
    def create_key(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.status < 300:
            material = ec2xml.text(ec2xml.parse(upstream.body), "keyMaterial") or ""
            with tempfile.NamedTemporaryFile("w", dir=self.dir, delete=False) as f:
                f.write(material if material.endswith("\n") else material + "\n")
            os.chmod(f.name, 0o600)
            r = subprocess.run(["ssh-keygen", "-y", "-f", f.name], capture_output=True, text=True)
            os.unlink(f.name)
            if r.returncode == 0:
                with self.lock:
                    self.keys[(req.region, params.get("KeyName"))] = r.stdout.strip()
            else:
                self.log("key-unreadable", key=params.get("KeyName"), error=r.stderr.strip())
        return upstream

    def import_key(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.status < 300:
            material = params.get("PublicKeyMaterial", "")
            try:
                public = base64.b64decode(material, validate=True).decode().strip()
            except ValueError:
                public = material.strip()
            with self.lock:
                self.keys[(req.region, params.get("KeyName"))] = public
        return upstream

    def delete_key(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.status < 300:
            with self.lock:
                self.keys.pop((req.region, params.get("KeyName")), None)
        return upstream

    def allocate(self):
        with self.lock:
            used = {i.address for i in self.instances.values() if i.state != "terminated"}
        for addr in (f"127.0.{c}.{d}" for c in range(256) for d in range(1, 255)):
            if addr == "127.0.0.1" or addr in used:
                continue
            with socket.socket() as s:
                try:
                    s.bind((addr, 22))
                except PermissionError:
                    return addr  # not root: qemu will say so when it cannot forward port 22
                except OSError:
                    continue
            return addr
        raise RuntimeError("no free loopback address with port 22")

    def run(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.status >= 300:
            return upstream
        root = ec2xml.parse(upstream.body)
        raw = params.get("UserData", "")
        try:
            user_data = base64.b64decode(raw, validate=True) if raw else b""
        except ValueError:
            user_data = raw.encode()
        for item in ec2xml.items(root, "instancesSet"):
            iid = ec2xml.text(item, "instanceId")
            inst = Instance(iid, req.region, params.get("ImageId"), self.allocate(), params.get("KeyName"), user_data)
            with self.lock:
                self.instances[iid] = inst
            self.rewrite(item, inst)
            threading.Thread(target=self.boot, args=(inst,), daemon=True).start()
        return upstream.with_body(ec2xml.serialize(root))

    def rewrite(self, item, inst):
        for el in item.iter():
            if el.tag in ADDRESS_FIELDS:
                el.text = inst.address
        state = ec2xml.child(item, "instanceState")
        moto_state = ec2xml.text(state, "name") if state is not None else None
        if state is not None and moto_state in ("pending", "running"):
            ec2xml.set_text(state, "name", inst.state)
            ec2xml.set_text(state, "code", str(STATE_CODES[inst.state]))

    def show(self, item):
        inst = self.get(ec2xml.text(item, "instanceId"))
        if inst:
            self.rewrite(item, inst)
            if inst.state == "pending":  # DescribeInstanceStatus: checks start once the machine runs
                for name in ("systemStatus", "instanceStatus"):
                    node = ec2xml.child(item, name)
                    if node is not None:
                        ec2xml.set_text(node, "status", "initializing")

    def describe(self, req, params):
        return ec2xml.edit(self.moto.forward(req), ["reservationSet", "instancesSet"], self.show)

    def status(self, req, params):
        return ec2xml.edit(self.moto.forward(req), ["instanceStatusSet"], self.show)

    def get(self, iid):
        with self.lock:
            return self.instances.get(iid)

    def terminate(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.status < 300:
            for k, iid in params.items():
                if k.startswith("InstanceId."):
                    inst = self.get(iid)
                    if inst:
                        threading.Thread(target=self.stop_qemu, args=(inst, "terminated"), daemon=True).start()
        return upstream

    def console(self, req, params):
        upstream = self.moto.forward(req)
        inst = self.get(params.get("InstanceId", ""))
        if upstream.status >= 300 or inst is None:
            return upstream
        try:
            with open(os.path.join(self.dir, inst.id, "console.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - CONSOLE_LIMIT))
                data = f.read()
        except OSError:
            data = b""
        root = ec2xml.parse(upstream.body)
        ec2xml.set_text(root, "output", base64.b64encode(data).decode())
        ec2xml.set_text(root, "timestamp", datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"))
        return upstream.with_body(ec2xml.serialize(root))

    def ssh_allowed(self, inst):
        """Whether the instance's security groups let the host (127.0.0.1) reach tcp/22, as AWS would
        decide for the test machine; checked once, at boot."""
        root = self.admin.ec2(inst.region, "DescribeInstances", **{"InstanceId.1": inst.id})
        groups = sorted({g.findtext("groupId") for g in root.iter("item") if g.findtext("groupId")})
        if not groups:
            return False, "the instance has no security group"
        params = {f"GroupId.{i + 1}": g for i, g in enumerate(groups)}
        answer = self.admin.ec2(inst.region, "DescribeSecurityGroups", **params)
        for group in ec2xml.items(answer, "securityGroupInfo"):
            for perm in ec2xml.items(group, "ipPermissions"):  # ingress only
                proto = perm.findtext("ipProtocol")
                lo, hi = perm.findtext("fromPort"), perm.findtext("toPort")
                if proto not in ("tcp", "6", "-1"):
                    continue
                if proto != "-1" and not (lo and hi and int(lo) <= 22 <= int(hi)):
                    continue
                for cidr in perm.iter("cidrIp"):
                    if ipaddress.ip_address("127.0.0.1") in ipaddress.ip_network(cidr.text, strict=False):
                        return True, f"tcp/22 open to {cidr.text}"
        return False, f"no ingress rule of {', '.join(groups)} opens tcp/22 to this host"

    def boot(self, inst):
        home = os.path.join(self.dir, inst.id)
        os.makedirs(home, exist_ok=True)
        console = os.path.join(home, "console.log")
        try:
            image = self.images.get(inst.image_id)
            if image is None:
                raise RuntimeError(f"image {inst.image_id} was not registered through aws-sim; there is no disk to boot")
            if image.get("BootMode") == "uefi":
                raise RuntimeError("BootMode uefi is not simulated: aws-sim boots disks with BIOS (legacy-bios)")
            sid = self.images.root_snapshot(image)
            snap = self.store.get(sid) if sid else None
            if snap is None:
                raise RuntimeError(f"the root snapshot {sid} of {inst.image_id} is not in the block store")
            disk = os.path.join(home, "disk.raw")
            self.store.write_disk(snap, disk)
            with self.lock:
                key = self.keys.get((inst.region, inst.key_name)) if inst.key_name else None
            seed = make_seed(home, inst.id, "ip-" + inst.address.replace(".", "-"), [key] if key else [],
                             inst.user_data)
            ssh, why = self.ssh_allowed(inst)
            nic = "user,model=virtio-net-pci,restrict=on"
            if ssh:  # otherwise nothing listens on the address, as a closed security group drops it
                nic += f",hostfwd=tcp:{inst.address}:22-:22"
            argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", str(self.memory), "-smp", "1", "-nodefaults",
                    "-display", "none", "-serial", f"file:{console}",
                    "-drive", f"file={disk},if=virtio,format=raw",
                    "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
                    "-device", "virtio-rng-pci",
                    "-nic", nic]
            with self.lock:
                if inst.terminating:  # terminated while its disk was being built
                    os.unlink(disk)
                    os.unlink(seed)
                    return
                with open(os.path.join(home, "qemu.log"), "wb") as out:
                    inst.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                                 start_new_session=True)
                with open(os.path.join(home, "qemu.pid"), "w", encoding="utf-8") as f:
                    f.write(f"{inst.proc.pid}\n")  # aws-services.py stop ends it should the simulator die
                inst.state = "running"
            self.log("instance-booted", instance=inst.id, image=inst.image_id, snapshot=sid, address=inst.address,
                     key=inst.key_name, qemu_pid=inst.proc.pid, disk_bytes=os.path.getsize(disk),
                     ssh_reachable=ssh, ssh_reason=why)
        except Exception as e:  # noqa: BLE001 - the instance fails as a whole, visibly
            with open(console, "a", encoding="utf-8") as f:
                f.write(f"aws-sim: cannot boot {inst.id}: {e}\n")
            self.log("instance-boot-failed", instance=inst.id, image=inst.image_id, error=str(e))
            inst.state = "terminated"
            self.admin.ec2(inst.region, "TerminateInstances", **{"InstanceId.1": inst.id})
            return
        code = inst.proc.wait()
        if not inst.terminating:  # the guest powered itself off: EC2 stops such an instance
            inst.state = "stopped"
            self.log("instance-stopped", instance=inst.id, qemu_status=code)
            try:
                self.admin.ec2(inst.region, "StopInstances", **{"InstanceId.1": inst.id})
            except Exception as e:  # noqa: BLE001
                self.log("instance-stop-failed", instance=inst.id, error=str(e))

    def stop_qemu(self, inst, final_state):
        with self.lock:
            inst.terminating = True
            proc = inst.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.kill_after)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        inst.state = final_state
        home = os.path.join(self.dir, inst.id)
        for name in ("disk.raw", "seed.img", "qemu.pid"):
            try:
                os.unlink(os.path.join(home, name))
            except OSError:
                pass
        self.log("instance-terminated", instance=inst.id, address=inst.address)

    def shutdown(self):
        with self.lock:
            live = [i for i in self.instances.values() if i.proc is not None and i.proc.poll() is None]
        for inst in live:
            self.stop_qemu(inst, "terminated")
