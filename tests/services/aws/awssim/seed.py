"""The NoCloud seed an instance boots with: the key pair's public key and the instance's user data."""
import os
import subprocess


def user_data(original, keys):
    """A #cloud-config carrying `keys` under ssh_authorized_keys, merged into the caller's user data."""
    block = "".join(f"  - {k}\n" for k in keys)
    text = original.decode("utf-8", "replace") if original else ""
    if not keys:
        return text
    if not text.strip():
        return "#cloud-config\nssh_authorized_keys:\n" + block
    if text.startswith("#cloud-config"):
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.rstrip() == "ssh_authorized_keys:":
                return "".join(lines[:i + 1]) + block + "".join(lines[i + 1:])
        return text.rstrip("\n") + "\nssh_authorized_keys:\n" + block
    # Any other user data (a script, a MIME archive) travels as its own part, as cloud-init reads it.
    boundary = "aws-sim-user-data"
    return (f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n'
            f'--{boundary}\nContent-Type: text/cloud-config\n\n#cloud-config\nssh_authorized_keys:\n{block}\n'
            f'--{boundary}\nContent-Type: text/x-shellscript\n\n{text}\n--{boundary}--\n')


def meta_data(instance_id, hostname, keys):
    out = f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"
    if keys:
        out += "public-keys:\n" + "".join(f"  - {k}\n" for k in keys)
    return out


def make_seed(directory, instance_id, hostname, keys, original_user_data):
    """Writes DIR/seed.img, a vfat image labelled cidata (mkfs.vfat + mcopy: no mounts needed)."""
    ud, md = os.path.join(directory, "user-data"), os.path.join(directory, "meta-data")
    with open(ud, "w", encoding="utf-8") as f:
        f.write(user_data(original_user_data, keys))
    with open(md, "w", encoding="utf-8") as f:
        f.write(meta_data(instance_id, hostname, keys))
    img = os.path.join(directory, "seed.img")
    with open(img, "wb") as f:
        f.truncate(2 << 20)
    for argv in (["mkfs.vfat", "-n", "cidata", img], ["mcopy", "-i", img, ud, md, "::"]):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {r.stderr.strip()}")
    return img
