"""Failure injection: chosen requests answered with throttling, 5xx or no answer at all.

Rules come from the admin endpoint (unsigned HTTP on the simulator's own port, see README.md):

    POST   /_aws-sim/faults   {"operation": "PutSnapshotBlock", "kind": "throttle", "count": 3, ...}
    GET    /_aws-sim/faults   the rules with their remaining counts and hits
    DELETE /_aws-sim/faults   removes every rule (and releases requests held by "hang")

or from the environment at start: AWS_SIM_FAULTS = a JSON list of rules. A rule matches a request
by `operation` (PutSnapshotBlock, RunInstances, UploadPart, ...; "*" for any) and optionally
`service` (ebs, ec2, s3, ssm, sts) and `path_contains`; it skips the first `after` matching requests
and then answers `count` of them (null or -1: every one). A faulted request never reaches moto, so
nothing it asked for happens. Kinds, each in the service's own error shape:

    throttle     ec2 503 RequestLimitExceeded · s3 503 SlowDown · ebs 400 RequestThrottledException
                 · ssm/sts 400 ThrottlingException/Throttling
    error        500: ec2/s3/sts InternalError · ebs InternalServerException · ssm InternalServerError
    unavailable  503 ServiceUnavailable (ec2 Unavailable)
    hang         no answer for `seconds` (default 3600; DELETE releases it), then the connection closes
"""
import json
import threading
import uuid
import xml.etree.ElementTree as ET

from . import ec2xml
from .http import Response, json_response

KINDS = ("throttle", "error", "unavailable", "hang")
PATH = "/_aws-sim/faults"


class FaultError(ValueError):
    pass


class Rule:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise FaultError("a fault rule is a JSON object")
        unknown = set(spec) - {"operation", "service", "path_contains", "kind", "count", "after", "seconds", "status"}
        if unknown:
            raise FaultError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        self.id = "fault-" + uuid.uuid4().hex[:8]
        self.operation = spec.get("operation")
        if not isinstance(self.operation, str) or not self.operation:
            raise FaultError("a fault rule needs \"operation\" (an action name, or \"*\")")
        self.service = spec.get("service")
        self.path_contains = spec.get("path_contains")
        self.kind = spec.get("kind", "error")
        if self.kind not in KINDS:
            raise FaultError(f"fault kind {self.kind!r} is not one of {', '.join(KINDS)}")
        count = spec.get("count", 1)
        self.remaining = None if count is None or count == -1 else int(count)
        self.skip = int(spec.get("after", 0))
        self.seconds = float(spec.get("seconds", 3600))
        self.status = spec.get("status")
        self.hits = 0
        self.released = threading.Event()

    def matches(self, service, operation, path):
        if self.operation != "*" and self.operation != operation:
            return False
        if self.service and self.service != service:
            return False
        return not self.path_contains or self.path_contains in (path or "")

    def describe(self):
        return {"id": self.id, "operation": self.operation, "service": self.service, "kind": self.kind,
                "remaining": -1 if self.remaining is None else self.remaining, "after": self.skip,
                "hits": self.hits, "path_contains": self.path_contains}


def s3_error(code, message, status):
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = code
    ET.SubElement(root, "Message").text = message
    ET.SubElement(root, "RequestId").text = uuid.uuid4().hex
    return Response(status, [("Content-Type", "application/xml")],
                    b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root))


def sts_error(code, message, status):
    root = ET.Element("ErrorResponse", xmlns="https://sts.amazonaws.com/doc/2011-06-15/")
    err = ET.SubElement(root, "Error")
    ET.SubElement(err, "Type").text = "Receiver" if status >= 500 else "Sender"
    ET.SubElement(err, "Code").text = code
    ET.SubElement(err, "Message").text = message
    ET.SubElement(root, "RequestId").text = str(uuid.uuid4())
    return Response(status, [("Content-Type", "text/xml")], ET.tostring(root))


def json_error(kind, message, status, json11):
    if json11:  # SSM's JSON 1.1: the type in the body
        return json_response(status, {"__type": kind, "message": message})
    return json_response(status, {"Message": message}, [("x-amzn-ErrorType", kind)])


ANSWERS = {
    # kind -> service -> (code, status)
    "throttle": {"ec2": ("RequestLimitExceeded", 503), "s3": ("SlowDown", 503),
                 "ebs": ("RequestThrottledException", 400), "ssm": ("ThrottlingException", 400),
                 "sts": ("Throttling", 400)},
    "error": {"ec2": ("InternalError", 500), "s3": ("InternalError", 500), "ebs": ("InternalServerException", 500),
              "ssm": ("InternalServerError", 500), "sts": ("InternalFailure", 500)},
    "unavailable": {"ec2": ("Unavailable", 503), "s3": ("ServiceUnavailable", 503),
                    "ebs": ("ServiceUnavailableException", 503), "ssm": ("ServiceUnavailable", 503),
                    "sts": ("ServiceUnavailable", 503)},
}


def answer(rule, service):
    code, status = ANSWERS[rule.kind].get(service, ANSWERS[rule.kind]["ec2"])
    status = int(rule.status or status)
    message = f"aws-sim injected {rule.kind} ({rule.id})"
    if service == "s3":
        return s3_error(code, message, status)
    if service == "ebs":
        return json_error(code, message, status, json11=False)
    if service == "ssm":
        return json_error(code, message, status, json11=True)
    if service in ("sts", "iam"):
        return sts_error(code, message, status)
    return ec2xml.error(code, message, status)


class Faults:
    def __init__(self, log, initial=None):
        self.log = log
        self.rules = []
        self.lock = threading.Lock()
        for spec in initial or []:
            self.rules.append(Rule(spec))

    @staticmethod
    def from_env(log, text):
        try:
            specs = json.loads(text) if text else []
        except ValueError as e:
            raise FaultError(f"AWS_SIM_FAULTS is not JSON: {e}") from None
        if isinstance(specs, dict):
            specs = [specs]
        return Faults(log, specs)

    def pick(self, service, operation, path):
        """The rule that faults this request (its count taken), or None."""
        with self.lock:
            for rule in self.rules:
                if not rule.matches(service, operation, path) or rule.remaining == 0:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                return rule
        return None

    def admin(self, method, body):
        """The answer to a request to PATH."""
        try:
            if method == "POST":
                doc = json.loads(body or b"{}")
                rules = [Rule(s) for s in (doc if isinstance(doc, list) else [doc])]
                with self.lock:
                    self.rules.extend(rules)
                for r in rules:
                    self.log("fault-added", **r.describe())
                return json_response(201, {"Faults": [r.describe() for r in rules]})
            if method == "GET":
                with self.lock:
                    return json_response(200, {"Faults": [r.describe() for r in self.rules]})
            if method == "DELETE":
                with self.lock:
                    rules, self.rules = self.rules, []
                for r in rules:
                    r.released.set()
                self.log("faults-cleared", count=len(rules))
                return json_response(200, {"Removed": len(rules)})
        except (ValueError, TypeError) as e:
            return json_response(400, {"Message": f"bad fault rule: {e}"})
        return json_response(405, {"Message": f"{method} is not allowed on {PATH}"})
