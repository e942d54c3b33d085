"""The on-disk EBS block store: one directory per snapshot, one 512 KiB file per written block.

Layout (STATE/snapshots/SNAP_ID/): meta.json (volume size GiB, parent, status, ...) and
blocks/INDEX. A snapshot's view of the disk is its own blocks over its parent's view, so a child
started with ParentSnapshotId reads every block of the chain it has not overwritten.
"""
import base64
import hashlib
import json
import os
import shutil
import threading
import time

BLOCK_SIZE = 524288
BLOCKS_PER_GIB = (1 << 30) // BLOCK_SIZE


class Snapshot:
    def __init__(self, sid, region, volume_size, parent, description="", source="ebs"):
        self.id, self.region, self.volume_size, self.parent = sid, region, volume_size, parent
        self.description, self.source = description, source
        self.status = "pending"
        self.start_time = time.time()
        self.deleted = False
        self.checksums = {}  # own block index -> base64 SHA-256

    def meta(self):
        return {"SnapshotId": self.id, "Region": self.region, "VolumeSize": self.volume_size,
                "ParentSnapshotId": self.parent, "Status": self.status, "Description": self.description,
                "Source": self.source, "StartTime": self.start_time, "Deleted": self.deleted,
                "OwnBlocks": len(self.checksums)}


def block_token(owner, index):
    return base64.b64encode(f"{owner}:{index}".encode()).decode()


def parse_token(token):
    try:
        owner, _, index = base64.b64decode(token, validate=True).decode().partition(":")
        return owner, int(index)
    except (ValueError, UnicodeDecodeError):
        return None


class Store:
    def __init__(self, root):
        self.root = os.path.join(root, "snapshots")
        os.makedirs(self.root, exist_ok=True)
        self.snaps = {}
        self.lock = threading.RLock()

    def _dir(self, sid):
        return os.path.join(self.root, sid)

    def block_path(self, sid, index):
        return os.path.join(self._dir(sid), "blocks", str(index))

    def _save(self, snap):
        path = os.path.join(self._dir(snap.id), "meta.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(snap.meta(), f, indent=1)
        os.replace(path + ".tmp", path)

    def create(self, sid, region, volume_size, parent=None, description="", source="ebs"):
        with self.lock:
            snap = Snapshot(sid, region, volume_size, parent, description, source)
            os.makedirs(os.path.join(self._dir(sid), "blocks"), exist_ok=True)
            self.snaps[sid] = snap
            self._save(snap)
            return snap

    def get(self, sid):
        with self.lock:
            snap = self.snaps.get(sid)
            return snap if snap and not snap.deleted else None

    def put_block(self, snap, index, data, checksum):
        path = self.block_path(snap.id, index)
        tmp = f"{path}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        with self.lock:
            snap.checksums[index] = checksum

    def complete(self, snap):
        with self.lock:
            snap.status = "completed"
            self._save(snap)

    def chain(self, snap):
        """The snapshot and its ancestors, nearest first."""
        out = []
        with self.lock:
            while snap is not None:
                out.append(snap)
                snap = self.snaps.get(snap.parent) if snap.parent else None
        return out

    def view(self, snap):
        """{block index: owning snapshot} as the snapshot's disk shows it."""
        owners = {}
        for s in reversed(self.chain(snap)):
            with self.lock:
                indices = list(s.checksums)
            for i in indices:
                owners[i] = s
        return owners

    def read_block(self, owner, index):
        with open(self.block_path(owner.id, index), "rb") as f:
            return f.read()

    def checksum(self, owner, index):
        with self.lock:
            return owner.checksums[index]

    def delete(self, sid):
        """Hides the snapshot; its files go once no live snapshot's chain needs them."""
        with self.lock:
            snap = self.snaps.get(sid)
            if not snap or snap.deleted:
                return False
            snap.deleted = True
            self._save(snap)
            needed = set()
            for s in self.snaps.values():
                if not s.deleted:
                    needed.update(x.id for x in self.chain(s))
            for s in list(self.snaps.values()):
                if s.deleted and s.id not in needed and os.path.isdir(self._dir(s.id)):
                    shutil.rmtree(os.path.join(self._dir(s.id), "blocks"), ignore_errors=True)
            return True

    def write_disk(self, snap, path):
        """Rebuilds the snapshot's whole disk as a sparse raw file; returns its size in bytes."""
        size = snap.volume_size << 30
        with open(path, "wb") as out:
            out.truncate(size)
            for index, owner in sorted(self.view(snap).items()):
                out.seek(index * BLOCK_SIZE)
                out.write(self.read_block(owner, index))
        return size


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
