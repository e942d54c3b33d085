"""Checks OpenStack API requests and responses against an official OpenAPI definition
(/work/shared/data/openstack-openapi/*.yaml, generated from the services' code).

The generated definitions mark microversions with `x-openstack` {min-ver, max-ver} on schemas,
properties and headers, and pick alternatives with `x-openstack.discriminator` ("microversion" or
"action"). A schema is first specialised for one microversion (and action), then checked with
Debian's python3-jsonschema. Overlapping undiscriminated oneOf alternatives (common in the
generated files) are treated as anyOf.
"""
import re
import uuid

import jsonschema
import yaml


def parse_version(v):
    major, minor = str(v).split(".")
    return (int(major), int(minor))


def _in_range(xo, mv):
    if not isinstance(xo, dict) or mv is None:
        return True
    lo, hi = xo.get("min-ver"), xo.get("max-ver")
    return (lo is None or parse_version(lo) <= mv) and (hi is None or mv <= parse_version(hi))


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("uuid", raises=ValueError)
def _uuid(v):
    return not isinstance(v, str) or bool(uuid.UUID(v))


@_FORMATS.checks("date-time")
def _date_time(v):
    return not isinstance(v, str) or re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", v) is not None


@_FORMATS.checks("ipv4")
def _ipv4(v):
    return not isinstance(v, str) or re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", v) is not None


@_FORMATS.checks("uri")
def _uri(v):
    return not isinstance(v, str) or re.match(r"^[a-z][a-z0-9+.-]*://", v) is not None


# Known defects of the generated Compute definition, where it contradicts Nova's documented
# responses (api-ref) and would reject every real Nova. Applied to response schemas only.
NULL_WHEN_UNSET = {  # Nova renders these as null until set (api-ref: "null" / "or null")
    "OS-EXT-STS:task_state", "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "description", "key_name"}
EMPTY_WHEN_UNSET = {"accessIPv4", "accessIPv6"}  # "" when no access address is set


def apply_errata(schema):
    if isinstance(schema, list):
        return [apply_errata(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: apply_errata(v) for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        props = {}
        for name, p in schema["properties"].items():
            p = apply_errata(p)
            if name == "name" and isinstance(p, dict) and p.get("format") == "uuid":
                p = {k: v for k, v in p.items() if k != "format"}  # server list: "name" is not a UUID
            if name in NULL_WHEN_UNSET and p is not False:
                p = {"anyOf": [p, {"type": "null"}]}
            if name in EMPTY_WHEN_UNSET and p is not False:
                p = {"anyOf": [p, {"const": ""}]}
            props[name] = p
        out["properties"] = props
    return out


class Spec:
    def __init__(self, path, errata=True):
        self.errata = errata
        with open(path) as f:
            self.doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.routes = []
        for template, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template.rstrip("/"))) + "/?$"
            self.routes.append((template.count("{"), re.compile(rx), template, item))
        self.routes.sort(key=lambda r: r[0])  # literal segments win over {id}

    def operation(self, method, path):
        path = path.split("?")[0]
        for _, rx, template, item in self.routes:
            if rx.match(path) and method.lower() in item:
                return template, item[method.lower()]
        return None, None

    def _deref(self, s):
        while isinstance(s, dict) and "$ref" in s:
            node = self.doc
            for part in s["$ref"].lstrip("#/").split("/"):
                node = node[part]
            s = node
        return s

    def specialise(self, s, mv, action=None, depth=0):
        """A plain JSON schema for microversion mv (tuple) and, for server actions, action name."""
        s = self._deref(s)
        if depth > 40 or not isinstance(s, dict):
            return s
        if "oneOf" in s:
            alts = [self._deref(a) for a in s["oneOf"]]
            disc = (s.get("x-openstack") or {}).get("discriminator")
            if disc == "action" or (action and all("action-name" in (a.get("x-openstack") or {}) for a in alts)):
                alts = [a for a in alts if (a.get("x-openstack") or {}).get("action-name") == action]
            if disc == "microversion" or any("min-ver" in (a.get("x-openstack") or {}) for a in alts):
                alts = [a for a in alts if _in_range(a.get("x-openstack"), mv)]
            if not alts:
                return False  # nothing is allowed for this microversion/action
            rest = {k: v for k, v in s.items() if k not in ("oneOf", "x-openstack")}
            alts = [self.specialise(a, mv, action, depth + 1) for a in alts]
            if len(alts) == 1:
                if not rest:
                    return alts[0]
                return {**{k: self.specialise(v, mv, action, depth + 1) if k != "type" else v
                           for k, v in rest.items()}, "allOf": [alts[0]]}
            return {**rest, "anyOf": alts}
        out = {}
        for k, v in s.items():
            if k in ("description", "summary", "x-openstack", "readOnly"):
                continue
            if k == "properties":
                out[k] = {name: (self.specialise(p, mv, None, depth + 1)
                                 if _in_range(self._deref(p).get("x-openstack") if isinstance(self._deref(p), dict) else None, mv)
                                 else False)
                          for name, p in v.items()}
            elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
                out[k] = self.specialise(v, mv, None, depth + 1)
            elif k == "patternProperties":
                out[k] = {pat: self.specialise(p, mv, None, depth + 1) for pat, p in v.items()}
            elif k in ("allOf", "anyOf"):
                out[k] = [self.specialise(p, mv, action, depth + 1) for p in v]
            elif k == "exclusiveMinimum" and isinstance(v, bool):
                if v and "minimum" in s:
                    out["exclusiveMinimum"] = s["minimum"]
            elif k == "minimum" and s.get("exclusiveMinimum") is True:
                continue
            else:
                out[k] = v
        return out

    def errors(self, schema, instance):
        v = jsonschema.Draft202012Validator(schema, format_checker=_FORMATS)
        return ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "(body)", e.message)
                for e in sorted(v.iter_errors(instance), key=lambda e: list(map(str, e.path)))]

    @staticmethod
    def action_of(body):
        return next(iter(body)) if isinstance(body, dict) and len(body) == 1 else None

    def request_schema(self, method, path, mv, body):
        template, op = self.operation(method, path)
        if op is None:
            return None, None
        content = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
        if not content:
            return template, None
        return template, self.specialise(content["schema"], mv, self.action_of(body))

    def check_request(self, method, path, mv, body):
        """Problems with a request body (list of strings; empty when it conforms)."""
        template, schema = self.request_schema(method, path, mv, body)
        if template is None:
            return ["%s %s: no such operation in the API definition" % (method, path)]
        if schema is None:
            return [] if body is None else ["%s %s: the API defines no request body" % (method, template)]
        return self.errors(schema, body)

    @staticmethod
    def _normal_codes(*texts):
        codes = set()
        for t in texts:
            m = re.search(r"Normal [Rr]esponse [Cc]odes?:\s*([0-9, ]+)", t or "")
            if m:
                codes |= {c.strip() for c in m.group(1).split(",") if c.strip()}
        return codes

    def check_response(self, method, path, mv, status, body, headers=None, request_body=None):
        """Problems with a response (success status, body schema, microversioned headers)."""
        template, op = self.operation(method, path)
        if op is None:
            return ["%s %s: no such operation in the API definition" % (method, path)]
        if status >= 300:
            return []  # error bodies are not described by the generated definitions
        action = self.action_of(request_body) if template.endswith("/action") else None
        responses = op.get("responses", {})
        texts = [op.get("description")]
        if action:
            req = self._deref(((op.get("requestBody") or {}).get("content") or {})
                              .get("application/json", {}).get("schema"))
            for alt in (req or {}).get("oneOf", []):
                alt = self._deref(alt)
                if (alt.get("x-openstack") or {}).get("action-name") == action:
                    texts.append(alt.get("description"))
                    texts += [self._deref(a).get("description") for a in alt.get("oneOf", [])]
        normal = self._normal_codes(*texts)
        listed = {c for c in responses if c.startswith("2")}
        allowed = (normal if action else normal | listed) or listed
        problems = []
        if str(status) not in allowed:
            problems.append("%s %s%s: status %d, the definition allows %s" % (
                method, template, " (%s)" % action if action else "", status, sorted(allowed)))
        schemas = []
        # A status named only in "Normal response codes" shares the body of the listed one(s).
        for code in (sorted(listed) if action or str(status) not in responses else [str(status)]):
            c = ((responses.get(code) or {}).get("content") or {}).get("application/json")
            sch = self.specialise(c["schema"], mv, action) if c else False
            if sch is not False:
                schemas.append(apply_errata(sch) if self.errata else sch)
        for code, r in responses.items():
            for name, h in ((r or {}).get("headers") or {}).items():
                present = any(k.lower() == name.lower() for k in (headers or {}))
                if present and not _in_range(h.get("x-openstack"), mv):
                    problems.append("%s %s: header %s not allowed at microversion %d.%d" % ((method, template, name) + mv))
        if body is None or body == b"" or body == "":
            return problems
        if not schemas:
            return problems + ["%s %s: a body was returned but the definition has none for %d" % (method, template, status)]
        errs = [self.errors(s, body) for s in schemas]
        if all(errs):
            problems += errs[0]
        return problems
