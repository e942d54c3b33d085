"""One server's virtual machine: a qcow2 overlay on the Glance image, a config drive, and
qemu-system-x86_64 under TCG (KVM hangs on this machine) with SSH on its own 127.0.0.N:22."""
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd[0], (p.stderr or p.stdout).strip()[-300:]))
    return p.stdout


def disk_format(path):
    """What qemu-img sees in a file ("qcow2", "raw", ...)."""
    return json.loads(run("qemu-img", "info", "--output=json", path))["format"]


def make_config_drive(path, meta_data, user_data):
    """A vfat config drive labelled config-2 with openstack/latest/{meta_data,network_data,
    vendor_data}.json and user_data, written with mtools (no mounting)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {"meta_data.json": json.dumps(meta_data).encode(),
                 "network_data.json": json.dumps({"links": [], "networks": [], "services": []}).encode(),
                 "vendor_data.json": b"{}", "vendor_data2.json": b"{}"}
        if user_data is not None:
            files["user_data"] = user_data
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        if os.path.exists(path):
            os.unlink(path)
        run("mkfs.vfat", "-C", "-n", "config-2", path, "4096")
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        for d in ("::openstack", "::openstack/latest"):
            subprocess.run(["mmd", "-i", path, d], check=True, env=env, capture_output=True)
        for name in files:
            subprocess.run(["mcopy", "-i", path, os.path.join(tmp, name), "::openstack/latest/" + name],
                           check=True, env=env, capture_output=True)


class Addresses:
    """Hands out 127.0.0.N. A lock file per address (flock) keeps simulators in other test
    processes from taking the same one; port 22 must also be free there."""

    def __init__(self, lock_dir, first, last):
        self.lock_dir, self.first, self.last = lock_dir, first, last
        os.makedirs(lock_dir, exist_ok=True)
        self.held = {}

    def take(self):
        for n in range(self.first, self.last + 1):
            addr = "127.0.0.%d" % n
            if addr in self.held:
                continue
            f = open(os.path.join(self.lock_dir, addr + ".lock"), "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            s = socket.socket()
            try:
                s.bind((addr, 22))
            except OSError:
                f.close()
                continue
            finally:
                s.close()
            self.held[addr] = f
            return addr
        raise RuntimeError("no free address in 127.0.0.%d-%d" % (self.first, self.last))

    def give_back(self, addr):
        f = self.held.pop(addr, None)
        if f:
            f.close()


class Machine:
    def __init__(self, workdir, address, ram_mb, vcpus, networked=True):
        self.dir = workdir
        self.address, self.ram_mb, self.vcpus, self.networked = address, ram_mb, vcpus, networked
        self.disk = os.path.join(workdir, "disk.qcow2")
        self.config_drive = os.path.join(workdir, "config-drive.img")
        self.console = os.path.join(workdir, "console.log")
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.proc = None

    def create_disk(self, base, base_format, size_bytes):
        args = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", base_format, self.disk]
        if size_bytes:
            args.append(str(size_bytes))
        run(*args)

    def start(self):
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        nic = ("user,model=virtio-net-pci,restrict=on,hostfwd=tcp:%s:22-:22" % self.address
               if self.networked else "none")
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-nodefaults", "-no-user-config",
               "-m", str(self.ram_mb), "-smp", str(self.vcpus), "-display", "none", "-vga", "none",
               "-chardev", "file,id=console,path=%s,append=on" % self.console, "-serial", "chardev:console",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-drive", "file=%s,if=virtio,format=qcow2,cache=writeback" % self.disk,
               "-drive", "file=%s,if=virtio,format=raw,readonly=on" % self.config_drive,
               "-device", "virtio-rng-pci", "-nic", nic]
        with open(os.path.join(self.dir, "qemu.log"), "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        with open(os.path.join(self.dir, "qemu.pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def failure(self):
        """Why qemu exited (its last log lines)."""
        try:
            with open(os.path.join(self.dir, "qemu.log"), errors="replace") as f:
                return " ".join(f.read().strip().splitlines()[-3:]) or "qemu exited"
        except OSError:
            return "qemu exited"

    def qmp(self, command, timeout=10):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        try:
            s.connect(self.qmp_path)
            f = s.makefile("rw")
            f.readline()  # greeting
            for cmd in ({"execute": "qmp_capabilities"}, {"execute": command}):
                f.write(json.dumps(cmd) + "\n")
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        return None
                    msg = json.loads(line)
                    if "return" in msg or "error" in msg:
                        break
            return msg
        finally:
            s.close()

    def stop(self, clean_timeout):
        """ACPI power button, then (after clean_timeout s) quit: what libvirt's power_off does."""
        if not self.running():
            return
        try:
            self.qmp("system_powerdown")
        except OSError:
            pass
        deadline = time.time() + clean_timeout
        while self.running() and time.time() < deadline:
            time.sleep(0.2)
        if self.running():
            try:
                self.qmp("quit")  # qemu flushes its caches before exiting
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def snapshot_to(self, dest):
        """A standalone qcow2 of the disk. A running guest is paused meanwhile: QMP 'stop' drains
        and flushes the block layer, so the copy is consistent (libvirt's cold-snapshot path)."""
        paused = False
        if self.running():
            self.qmp("stop")
            paused = True
        try:
            run(*(["qemu-img", "convert", "-O", "qcow2"] + (["-U"] if paused else []) + [self.disk, dest]))
        finally:
            if paused and self.running():
                self.qmp("cont")

    def remove(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
