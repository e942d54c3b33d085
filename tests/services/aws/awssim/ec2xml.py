"""EC2 Query-protocol XML: building responses and errors, and editing moto's answers."""
import uuid
import xml.etree.ElementTree as ET

from .http import Response

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def _fill(el, value):
    if isinstance(value, dict):
        for k, v in value.items():
            if v is not None:
                _fill(ET.SubElement(el, k), v)
    elif isinstance(value, list):
        for v in value:
            _fill(ET.SubElement(el, "item"), v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)


def response(action, members):
    """<ActionResponse> with requestId and members ({locationName: value}; lists become <item>s)."""
    root = ET.Element(f"{action}Response", xmlns=NS)
    ET.SubElement(root, "requestId").text = str(uuid.uuid4())
    _fill(root, members)
    return Response(200, [("Content-Type", "text/xml;charset=UTF-8")],
                    b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root))


def error(code, message, status=400):
    root = ET.Element("Response")
    err = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(err, "Code").text = code
    ET.SubElement(err, "Message").text = message
    ET.SubElement(root, "RequestID").text = str(uuid.uuid4())
    return Response(status, [("Content-Type", "text/xml;charset=UTF-8")],
                    b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root))


def parse(body):
    """moto's answer with namespace-free tags (so edits need no prefixes); serialize() puts the
    document's default namespace back as moto sent it."""
    root = ET.fromstring(body)
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else None
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    if ns:
        root.set("xmlns", ns)
    return root


def serialize(root):
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


def child(el, name):
    return el.find(name)


def text(el, name):
    c = el.find(name)
    return c.text if c is not None else None


def set_text(el, name, value):
    c = el.find(name)
    if c is None:
        c = ET.SubElement(el, name)
    c.text = value
    return c


def items(el, path):
    """<item>s under a chain of set elements, e.g. items(root, 'reservationSet')."""
    node = el.find(path)
    return [] if node is None else [c for c in node if c.tag == "item"]


def indexed(params, prefix):
    """Query-protocol lists: Prefix.1, Prefix.2, ... -> [dict of the rest of each name]."""
    out = {}
    for k, v in params.items():
        if k.startswith(prefix + "."):
            n, _, rest = k[len(prefix) + 1:].partition(".")
            if n.isdigit():
                out.setdefault(int(n), {})[rest] = v
    return [out[n] for n in sorted(out)]


def edit(upstream, paths, fn):
    """moto's answer with fn(item) applied to each <item> found along paths (nested set names);
    an item for which fn returns False is dropped. Errors pass unchanged."""
    if upstream.status >= 300:
        return upstream
    root = parse(upstream.body)
    nodes = [root]
    for depth, path in enumerate(paths):
        sets = [s for s in (node.find(path) for node in nodes) if s is not None]
        nodes = [it for s in sets for it in s if it.tag == "item"]
        if depth == len(paths) - 1:
            for s in sets:
                for it in [c for c in s if c.tag == "item"]:
                    if fn(it) is False:
                        s.remove(it)
    return upstream.with_body(serialize(root))
