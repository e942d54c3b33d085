"""The aws-sim front proxy: every request goes to moto unchanged; EBS direct calls, ImportSnapshot
and the EC2 calls about images and instances get AWS's behaviour on top (see README.md)."""
import http.server
import json
import os
import time
import traceback
import urllib.parse

from . import ec2xml, sigv4
from .client import Client, Credentials
from .ebs import Ebs, operation_name as ebs_operation
from .faults import PATH as FAULTS_PATH, Faults, answer as fault_answer
from .http import HOP_BY_HOP, Moto, Request
from .images import Images
from .importsnap import Imports
from .instances import Instances
from .reqlog import Log
from .store import Store

SMALL_BODY = 8 << 20  # bodies of other services above this are streamed through, not held


class Sim:
    def __init__(self, moto_url, state_dir, admin_creds, import_step, qemu_memory, faults=""):
        os.makedirs(state_dir, exist_ok=True)
        self.moto = Moto(moto_url)
        self.log = Log(os.path.join(state_dir, "requests.jsonl"))
        self.faults = Faults.from_env(self.log, faults)
        admin = Client(moto_url, admin_creds)
        self.store = Store(state_dir)
        self.ebs = Ebs(self.store, self.moto, self.log, admin)
        self.images = Images(state_dir, self.store, self.moto, self.log, admin)
        self.imports = Imports(state_dir, self.store, self.moto, self.log, admin, import_step)
        self.instances = Instances(state_dir, self.store, self.images, self.moto, self.log, admin, qemu_memory)
        i, m, n = self.images, self.imports, self.instances
        self.ec2 = {
            "RegisterImage": i.register, "CopyImage": i.copy, "DeregisterImage": i.deregister,
            "DescribeImages": i.describe, "DeleteSnapshot": i.delete_snapshot,
            "DescribeSnapshots": i.describe_snapshots,
            "EnableImageDeprecation": i.deprecation, "DisableImageDeprecation": i.deprecation,
            "ImportSnapshot": m.start, "DescribeImportSnapshotTasks": m.describe, "CancelImportTask": m.cancel,
            "RunInstances": n.run, "DescribeInstances": n.describe, "DescribeInstanceStatus": n.status,
            "TerminateInstances": n.terminate, "GetConsoleOutput": n.console,
            "CreateKeyPair": n.create_key, "ImportKeyPair": n.import_key, "DeleteKeyPair": n.delete_key,
        }

    def handle(self, req):
        """The answer for req, or None to stream it through to moto untouched."""
        if req.service == "ebs":
            return self.ebs.handle(req)
        if req.service == "ec2":
            params = req.form()
            req.operation = params.get("Action")
            handler = self.ec2.get(req.operation)
            if handler:
                try:
                    return handler(req, params)
                except ec2xml.ET.ParseError as e:
                    return ec2xml.error("InternalError", f"aws-sim could not read moto's answer: {e}", 500)
            return None
        # for the log only: JSON protocols name the operation in X-Amz-Target, Query ones in Action
        target = req.h.get("x-amz-target")
        req.operation = target.rsplit(".", 1)[-1] if target else \
            (req.form().get("Action") if req.service in ("sts", "iam") else None)
        return None


def s3_operation(req):
    """The S3 operation of a path-style request (for fault rules and the log)."""
    q = req.query_params()
    parts = req.path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    m = req.method
    if not has_key:
        if m == "GET":
            return "ListObjectsV2" if q.get("list-type") == "2" else ("ListMultipartUploads" if "uploads" in q
                                                                       else "ListObjects")
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket",
                "POST": "DeleteObjects"}.get(m)
    if "uploadId" in q:
        return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                "GET": "ListParts"}.get(m)
    if m == "POST" and "uploads" in q:
        return "CreateMultipartUpload"
    return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(m)


def operation_of(req):
    """The operation a request asks for, as the API names it (None when unknown)."""
    if req.service == "ebs":
        return ebs_operation(req.method, req.path)
    if req.service == "s3":
        return s3_operation(req)
    target = req.h.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if req.body is not None or req.query:
        return req.form().get("Action")
    return None


def identify(req):
    scope = sigv4.credential_scope(req.h.get("authorization")) or \
        sigv4.credential_scope("Credential=" + urllib.parse.unquote(req.query_params().get("X-Amz-Credential", "")))
    if scope:
        req.access_key, req.region, req.service = scope


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None

    def log_message(self, fmt, *args):  # the JSON log replaces the stderr access log
        pass

    def read_body(self, length):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        req = Request(self.command, self.path, list(self.headers.items()), None)
        req.operation = None
        identify(req)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if req.service is None and req.path == FAULTS_PATH:  # the admin endpoint: unsigned, ours only
            resp = self.sim.faults.admin(self.command, self.read_body(length))
            self.reply(resp.status, resp.headers, resp.body)
            return
        started = time.time()
        if req.service is not None and self.fault(req, length, chunked, started):
            return
        if req.service in ("ebs", "ec2") or chunked or length <= SMALL_BODY:
            if req.body is None:
                req.body = self.read_body(length)
            try:
                resp = self.sim.handle(req)
                if resp is None:
                    resp = self.sim.moto.forward(req)
            except Exception as e:  # noqa: BLE001 - a simulator bug must reach the client as an answer
                self.sim.log("sim-error", service=req.service, operation=req.operation, path=req.path,
                             error=f"{type(e).__name__}: {e}", trace=traceback.format_exc())
                resp = ec2xml.error("InternalError", f"aws-sim failed: {type(e).__name__}: {e}", 500)
            self.log_answered(req, req.operation, resp.status, started)
            self.reply(resp.status, resp.headers, resp.body)
        else:
            conn, upstream = self.sim.moto.stream(req, self.rfile, length)
            try:
                self.log_answered(req, req.operation, upstream.status, started)
                self.relay(upstream)
            finally:
                conn.close()

    def log_answered(self, req, operation, status, started, **extra):
        """Logs before the answer is sent: a client that has its answer finds the request in the log."""
        self.sim.log("request", service=req.service, region=req.region, operation=operation, method=req.method,
                     path=req.path, status=status, seconds=round(time.time() - started, 3), **extra)

    def fault(self, req, length, chunked, started):
        """Answers req from a matching fault rule (True), or leaves it alone (False)."""
        small = req.service in ("ebs", "ec2") or chunked or length <= SMALL_BODY
        if small:
            req.body = self.read_body(length)
        operation = operation_of(req)
        rule = self.sim.faults.pick(req.service, operation, req.path)
        if rule is None:
            return False
        if not small:  # a streamed body is read and dropped: moto never sees the request
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
        self.sim.log("fault-injected", rule=rule.id, kind=rule.kind, service=req.service, region=req.region,
                     operation=operation, path=req.path)
        if rule.kind == "hang":
            rule.released.wait(rule.seconds)
            self.close_connection = True
            self.log_answered(req, operation, None, started, fault=rule.id)
        else:
            resp = fault_answer(rule, req.service)
            self.log_answered(req, operation, resp.status, started, fault=rule.id)
            self.reply(resp.status, resp.headers, resp.body)
        return True

    def reply(self, status, headers, body):
        self.send_response(status)
        length = str(len(body))
        for k, v in headers:
            if k.lower() == "content-length" and self.command == "HEAD":
                length = v  # a HEAD answer announces the size of the body it leaves out
            elif k.lower() not in HOP_BY_HOP and k.lower() not in ("content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def relay(self, upstream):
        self.send_response(upstream.status)
        for k, v in upstream.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date"):
                self.send_header(k, v)
        if upstream.getheader("Content-Length") is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        while True:
            chunk = upstream.read(1 << 20)
            if not chunk:
                break
            self.wfile.write(chunk)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def serve(port, moto_url, state_dir, admin_file, import_step, qemu_memory, faults=""):
    with open(admin_file, encoding="utf-8") as f:
        a = json.load(f)
    sim = Sim(moto_url, state_dir, Credentials(a["AccessKeyId"], a["SecretAccessKey"]), import_step, qemu_memory,
              faults)
    Handler.sim = sim
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return sim, server
