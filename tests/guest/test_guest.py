"""The test guest of this build tree, for the Python test services' boot tests.

guest_dir(flavour) runs scripts/build-guest.sh --sshd FLAVOUR --reuse into
$LCAKE_BINARY_DIR/tests/guest/FLAVOUR (the directory every test binary shares; build-guest.sh
locks it while it builds) and returns it. Its base.qcow2 is a whole BIOS-bootable disk that reads
its SSH keys from a NoCloud seed or an OpenStack config drive. skip_fn(reason) is called (and must
not return) when the guest cannot be built here: not root, or no LCAKE_BINARY_DIR."""
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def guest_dir(skip_fn, flavour="dropbear"):
    binary = os.environ.get("LCAKE_BINARY_DIR")
    if not binary:
        skip_fn("LCAKE_BINARY_DIR is not set (run the test through ctest)")
    if os.geteuid() != 0:
        skip_fn("building the test guest needs root")
    out = os.path.join(binary, "tests", "guest", flavour)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".log", "w") as log:
        p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "build-guest.sh"), out, "--sshd", flavour, "--reuse"],
                           stdout=log, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError("scripts/build-guest.sh failed; see " + out + ".log")
    return out
