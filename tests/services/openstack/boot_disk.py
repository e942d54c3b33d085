"""The bootable disk for the simulator's boot test: $LCAKE_TEST_BOOT_DISK if set, else one made by
make-test-disk.sh from a guest built by scripts/build-guest.sh (once per build tree)."""
import fcntl
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def find_or_make(skip_fn):
    disk = os.environ.get("LCAKE_TEST_BOOT_DISK")
    if disk:
        if not os.path.isfile(disk):
            skip_fn("LCAKE_TEST_BOOT_DISK=%s does not exist" % disk)
        return disk
    base = os.environ.get("LCAKE_BINARY_DIR")
    work = os.path.join(base, "tests", "guest-nova-sim") if base else "/tmp/lcake-nova-sim-guest"
    os.makedirs(work, exist_ok=True)
    guest, disk = os.path.join(work, "dropbear"), os.path.join(work, "boot-disk.qcow2")
    with open(os.path.join(work, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if not os.path.exists(os.path.join(guest, "base.qcow2")):
            if os.geteuid() != 0:
                skip_fn("building the test guest needs root (or set LCAKE_TEST_BOOT_DISK)")
            p = subprocess.run([os.path.join(ROOT, "scripts", "build-guest.sh"), guest, "--sshd", "dropbear"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("scripts/build-guest.sh failed: " + p.stderr.strip()[-500:])
        if not os.path.exists(disk) or os.path.getmtime(disk) < os.path.getmtime(os.path.join(guest, "base.qcow2")):
            p = subprocess.run([os.path.join(HERE, "make-test-disk.sh"), guest, disk], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("make-test-disk.sh failed: " + p.stderr.strip())
    return disk
