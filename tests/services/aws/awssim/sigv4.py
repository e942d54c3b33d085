"""AWS Signature Version 4 signing (stdlib only), used by the simulator for its own calls to moto."""
import hashlib
import hmac
import re
import urllib.parse

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def canonical_path(raw_path, service):
    """The URI as sent; S3 uses it as is, every other service normalised and encoded once more."""
    if service == "s3":
        return raw_path or "/"
    segs = []
    for seg in raw_path.split("/"):
        if seg == "..":
            if segs:
                segs.pop()
        elif seg not in ("", "."):
            segs.append(seg)
    path = "/" + "/".join(segs)
    if raw_path.endswith("/") and path != "/":
        path += "/"
    return _quote(path, safe="/-_.~")


def canonical_query(query):
    """query: the raw query string (already percent-encoded as sent)."""
    pairs = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        k = _quote(urllib.parse.unquote(k))
        v = _quote(urllib.parse.unquote(v))
        pairs.append((k, v))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _trim(value):
    return re.sub(r"\s+", " ", value.strip())


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def sign(method, raw_path, query, headers, payload_hash, access_key, secret, region, service,
         amz_date, session_token=None):
    """Returns the Authorization header for the request; headers: list of (name, value), which
    must already contain host and x-amz-date (and x-amz-content-sha256 where the service wants it)."""
    merged = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(_trim(value))
    if session_token:
        merged.setdefault("x-amz-security-token", [session_token])
    names = sorted(merged)
    creq = "\n".join([
        method.upper(),
        canonical_path(raw_path, service),
        canonical_query(query),
        "".join(f"{n}:{','.join(merged[n])}\n" for n in names),
        ";".join(names),
        payload_hash,
    ])
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={sig}"), creq, sts


_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


def credential_scope(authorization):
    """(access key, region, service) from an Authorization header, or None."""
    m = _SCOPE.search(authorization or "")
    return (m.group(1), m.group(3), m.group(4)) if m else None
