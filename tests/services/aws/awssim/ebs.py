"""EBS direct APIs with AWS's documented rules that moto does not enforce.

Every request is forwarded to moto first, so moto still checks the signature and the caller's
policy (its 401/403 is returned as is); the answer then comes from the block store.
"""
import base64
import hashlib
import json
import re
import threading
import time

from .http import Response, json_response
from .store import BLOCK_SIZE, BLOCKS_PER_GIB, block_token, parse_token, sha256_b64

MAX_VOLUME_GIB = 65536
ROUTES = [
    ("POST", re.compile(r"^/snapshots/?$"), "start"),
    ("POST", re.compile(r"^/snapshots/completion/([^/]+)$"), "complete"),
    ("PUT", re.compile(r"^/snapshots/([^/]+)/blocks/([^/]+)$"), "put"),
    ("GET", re.compile(r"^/snapshots/([^/]+)/blocks/([^/]+)$"), "get"),
    ("GET", re.compile(r"^/snapshots/([^/]+)/blocks$"), "list"),
    ("GET", re.compile(r"^/snapshots/([^/]+)/changedblocks$"), "changed"),
]
OPERATIONS = {"start": "StartSnapshot", "complete": "CompleteSnapshot", "put": "PutSnapshotBlock",
              "get": "GetSnapshotBlock", "list": "ListSnapshotBlocks", "changed": "ListChangedBlocks"}
SNAP_ID = re.compile(r"^snap-[0-9a-f]+$")


def operation_name(method, path):
    """The EBS direct operation a request is, or None."""
    for m, pattern, name in ROUTES:
        if m == method and pattern.match(path):
            return OPERATIONS[name]
    return None


class EbsError(Exception):
    STATUS = {"ValidationException": 400, "ResourceNotFoundException": 404, "ConflictException": 409}

    def __init__(self, kind, message, reason=None):
        super().__init__(message)
        self.kind, self.message, self.reason = kind, message, reason

    def response(self):
        doc = {"Message": self.message}
        if self.reason:
            doc["Reason"] = self.reason
        return json_response(self.STATUS[self.kind], doc, [("x-amzn-ErrorType", self.kind)])


def invalid(message, reason="INVALID_PARAMETER_VALUE"):
    return EbsError("ValidationException", message, reason)


def int_param(value, name, lo=None, hi=None):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be an integer, got {value!r}") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise invalid(f"{name} must be between {lo} and {hi}, got {n}")
    return n


class Ebs:
    def __init__(self, store, moto, log, admin):
        self.store, self.moto, self.log, self.admin = store, moto, log, admin
        self.tokens = {}  # ClientToken -> (request fingerprint, StartSnapshot answer)
        self.lock = threading.Lock()

    def handle(self, req):
        for method, pattern, name in ROUTES:
            m = pattern.match(req.path)
            if m and req.method == method:
                break
        else:
            return None
        req.operation = OPERATIONS[name]
        upstream = self.moto.forward(req)
        if upstream.auth_failed:
            self.log("ebs-denied", operation=req.operation, status=upstream.status, path=req.path)
            return upstream
        try:
            return getattr(self, name)(req, upstream, *m.groups())
        except EbsError as e:
            self.log("ebs-rejected", operation=req.operation, path=req.path, error=e.kind, reason=e.reason, message=e.message)
            return e.response()

    def snapshot(self, sid, region):
        if not SNAP_ID.match(sid):
            raise invalid(f"invalid snapshot id {sid!r}", "INVALID_SNAPSHOT_ID")
        snap = self.store.get(sid)
        if snap is None or snap.region != region:
            raise EbsError("ResourceNotFoundException", f"snapshot {sid} does not exist in {region}",
                           "SNAPSHOT_NOT_FOUND")
        return snap

    def start(self, req, upstream):
        try:
            params = json.loads(req.body or b"{}")
        except ValueError:
            raise invalid("request body is not JSON") from None
        if "VolumeSize" not in params:
            raise invalid("VolumeSize is required")
        size = int_param(params["VolumeSize"], "VolumeSize", 1, MAX_VOLUME_GIB)
        if "Timeout" in params:
            int_param(params["Timeout"], "Timeout", 10, 4320)
        if len(params.get("Description", "")) > 255:
            raise invalid("Description is longer than 255 characters")
        parent_id = params.get("ParentSnapshotId")
        token = params.get("ClientToken")
        fingerprint = json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True)
        moto_doc = json.loads(upstream.body) if upstream.status < 300 else None
        try:
            if token is not None:
                with self.lock:
                    seen = self.tokens.get(token)
                if seen:
                    if seen[0] != fingerprint:
                        raise EbsError("ConflictException", f"ClientToken {token} was used with other parameters")
                    self.drop_moto_snapshot(moto_doc, req.region)
                    return json_response(201, seen[1])
            if parent_id is not None:
                parent = self.snapshot(parent_id, req.region)
                if parent.status != "completed":
                    raise invalid(f"parent snapshot {parent_id} is not completed", "INVALID_SNAPSHOT_ID")
                if size < parent.volume_size:
                    raise invalid(f"VolumeSize {size} is smaller than the parent's {parent.volume_size} GiB",
                                  "INVALID_VOLUME_SIZE")
        except EbsError:
            self.drop_moto_snapshot(moto_doc, req.region)
            raise
        if moto_doc is None:
            return upstream
        sid = moto_doc["SnapshotId"]
        self.store.create(sid, req.region, size, parent_id, params.get("Description", ""))
        doc = dict(moto_doc, BlockSize=BLOCK_SIZE, Status="pending", VolumeSize=size)
        if parent_id:
            doc["ParentSnapshotId"] = parent_id
        if token is not None:
            with self.lock:
                self.tokens[token] = (fingerprint, doc)
        self.log("snapshot-started", snapshot=sid, region=req.region, volume_size=size, parent=parent_id)
        return json_response(201, doc)

    def drop_moto_snapshot(self, moto_doc, region):
        """moto created a snapshot for a request AWS refuses (or answers from its idempotency record)."""
        if moto_doc and "SnapshotId" in moto_doc:
            try:
                self.admin.ec2(region, "DeleteSnapshot", SnapshotId=moto_doc["SnapshotId"])
            except Exception:  # noqa: BLE001 - best effort; moto keeps a stray snapshot record only
                pass

    def put(self, req, upstream, sid, index):
        snap = self.snapshot(sid, req.region)
        idx = int_param(index, "BlockIndex", 0)
        if snap.status != "pending":
            raise invalid(f"snapshot {sid} is {snap.status}; blocks can be written only while it is pending",
                          "INVALID_SNAPSHOT_ID")
        if idx >= snap.volume_size * BLOCKS_PER_GIB:
            raise invalid(f"BlockIndex {idx} is beyond the {snap.volume_size} GiB volume "
                          f"(last block {snap.volume_size * BLOCKS_PER_GIB - 1})", "INVALID_BLOCK")
        data = req.body or b""
        length = req.h.get("x-amz-data-length")
        if length is None:
            raise invalid("x-amz-Data-Length is required")
        if int_param(length, "DataLength") != len(data):
            raise invalid(f"x-amz-Data-Length {length} does not match the {len(data)} bytes sent", "INVALID_BLOCK")
        if len(data) != BLOCK_SIZE:
            raise invalid(f"block data is {len(data)} bytes; every block must be exactly {BLOCK_SIZE}",
                          "INVALID_BLOCK")
        if req.h.get("x-amz-progress") is not None:
            int_param(req.h["x-amz-progress"], "Progress", 0, 100)
        algorithm = req.h.get("x-amz-checksum-algorithm")
        if algorithm != "SHA256":
            raise invalid(f"x-amz-Checksum-Algorithm must be SHA256, got {algorithm!r}")
        checksum = req.h.get("x-amz-checksum", "")
        if checksum != sha256_b64(data):
            raise invalid("x-amz-Checksum is not the base64 SHA-256 of the block data", "INVALID_BLOCK")
        self.store.put_block(snap, idx, data, checksum)
        self.log("block-written", snapshot=sid, index=idx, checksum=checksum,
                 progress=req.h.get("x-amz-progress"))
        return json_response(201, {}, [("x-amz-Checksum", checksum), ("x-amz-Checksum-Algorithm", "SHA256")])

    def complete(self, req, upstream, sid):
        snap = self.snapshot(sid, req.region)
        if snap.status != "pending":
            raise invalid(f"snapshot {sid} is already {snap.status}", "INVALID_SNAPSHOT_ID")
        if "x-amz-changedblockscount" not in req.h:
            raise invalid("x-amz-ChangedBlocksCount is required")
        count = int_param(req.h["x-amz-changedblockscount"], "ChangedBlocksCount", 0)
        written = sorted(snap.checksums)
        if count != len(written):
            raise invalid(f"ChangedBlocksCount is {count} but {len(written)} blocks were written to {sid}")
        if "x-amz-checksum" in req.h:
            if req.h.get("x-amz-checksum-algorithm") != "SHA256" or \
                    req.h.get("x-amz-checksum-aggregation-method") != "LINEAR":
                raise invalid("a snapshot checksum needs x-amz-Checksum-Algorithm SHA256 and "
                              "x-amz-Checksum-Aggregation-Method LINEAR")
            digest = hashlib.sha256(b"".join(base64.b64decode(snap.checksums[i]) for i in written)).digest()
            if req.h["x-amz-checksum"] != base64.b64encode(digest).decode():
                raise invalid("x-amz-Checksum is not the LINEAR SHA-256 aggregate of the written blocks' checksums")
        self.store.complete(snap)
        self.log("snapshot-completed", snapshot=sid, changed_blocks=count)
        return json_response(202, {"Status": "completed"})

    def page(self, req):
        q = req.query_params()
        max_results = int_param(q.get("maxResults", 10000), "MaxResults", 100, 10000)
        start = int_param(q.get("startingBlockIndex", 0), "StartingBlockIndex", 0)
        if q.get("pageToken"):
            try:
                start = max(start, int(base64.b64decode(q["pageToken"], validate=True).decode()))
            except ValueError:
                raise invalid("NextToken is not one this service issued", "INVALID_PAGE_TOKEN") from None
        return start, max_results

    @staticmethod
    def paged(doc, key, items, start, max_results):
        items = [it for it in items if it["BlockIndex"] >= start]
        if len(items) > max_results:
            doc["NextToken"] = base64.b64encode(str(items[max_results]["BlockIndex"]).encode()).decode()
            items = items[:max_results]
        doc[key] = items
        return doc

    def header(self, snap):
        return {"ExpiryTime": time.time() + 3600, "VolumeSize": snap.volume_size, "BlockSize": BLOCK_SIZE}

    def list(self, req, upstream, sid):
        snap = self.snapshot(sid, req.region)
        start, max_results = self.page(req)
        view = self.store.view(snap)
        items = [{"BlockIndex": i, "BlockToken": block_token(view[i].id, i)} for i in sorted(view)]
        return json_response(200, self.paged(self.header(snap), "Blocks", items, start, max_results))

    def changed(self, req, upstream, sid):
        second = self.snapshot(sid, req.region)
        start, max_results = self.page(req)
        first_id = req.query_params().get("firstSnapshotId")
        second_view = self.store.view(second)
        if first_id:
            first = self.snapshot(first_id, req.region)
            if not self.related(first, second):
                raise invalid(f"{first_id} and {sid} are not of the same volume lineage", "UNRELATED_SNAPSHOTS")
            first_view = self.store.view(first)
        else:
            first_view = {}
        items = []
        for i in sorted(set(first_view) | set(second_view)):
            a, b = first_view.get(i), second_view.get(i)
            if a is b:
                continue
            item = {"BlockIndex": i}
            if a is not None:
                item["FirstBlockToken"] = block_token(a.id, i)
            if b is not None:
                item["SecondBlockToken"] = block_token(b.id, i)
            items.append(item)
        return json_response(200, self.paged(self.header(second), "ChangedBlocks", items, start, max_results))

    def related(self, a, b):
        return bool({s.id for s in self.store.chain(a)} & {s.id for s in self.store.chain(b)})

    def get(self, req, upstream, sid, index):
        snap = self.snapshot(sid, req.region)
        idx = int_param(index, "BlockIndex", 0)
        token = req.query_params().get("blockToken")
        if not token:
            raise invalid("BlockToken is required", "INVALID_BLOCK_TOKEN")
        owner = self.store.view(snap).get(idx)
        parsed = parse_token(token)
        if owner is None or parsed != (owner.id, idx):
            raise invalid(f"BlockToken does not name block {idx} of {sid}", "INVALID_BLOCK_TOKEN")
        data = self.store.read_block(owner, idx)
        return Response(200, [("Content-Type", "application/octet-stream"), ("x-amz-Data-Length", str(len(data))),
                              ("x-amz-Checksum", self.store.checksum(owner, idx)),
                              ("x-amz-Checksum-Algorithm", "SHA256")], data)
