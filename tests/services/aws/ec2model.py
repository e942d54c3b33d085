"""Checks EC2 Query-protocol XML against botocore's EC2 model: every element a member of its shape
(by locationName), lists made of their member elements, scalars of the member's type."""
import datetime
import xml.etree.ElementTree as ET

import awstest

MODEL = awstest.model("ec2", "2016-11-15")


def local(tag):
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def check_response(operation, body):
    """Raises AssertionError naming the first element that does not fit the operation's output shape."""
    root = ET.fromstring(body)
    if local(root.tag) != f"{operation}Response":
        raise AssertionError(f"root element is <{local(root.tag)}>, expected <{operation}Response>")
    out = MODEL["operations"][operation]["output"]["shape"]
    check(out, root, operation, extra={"requestId"})
    return root


def check(shape_name, el, path, extra=()):
    shape = MODEL["shapes"][shape_name]
    kind = shape["type"]
    if kind == "structure":
        members = {m.get("locationName", name): m["shape"] for name, m in shape["members"].items()}
        seen = set()
        for child in el:
            tag = local(child.tag)
            if tag in extra:
                continue
            if tag not in members:
                raise AssertionError(f"{path}: <{tag}> is not a member of {shape_name} ({sorted(members)})")
            if tag in seen:
                raise AssertionError(f"{path}: <{tag}> appears twice")
            seen.add(tag)
            check(members[tag], child, f"{path}/{tag}")
        for req in shape.get("required", []):
            loc = shape["members"][req].get("locationName", req)
            if loc not in seen:
                raise AssertionError(f"{path}: required <{loc}> missing")
    elif kind == "list":
        item = shape["member"].get("locationName", "member")
        for i, child in enumerate(el):
            if local(child.tag) != item:
                raise AssertionError(f"{path}: list element <{local(child.tag)}>, expected <{item}>")
            check(shape["member"]["shape"], child, f"{path}/{item}[{i}]")
    else:
        if len(el):
            raise AssertionError(f"{path}: scalar {shape_name} has child elements")
        text = el.text or ""
        if kind == "string" and "enum" in shape and text not in shape["enum"]:
            raise AssertionError(f"{path}: {text!r} not in {shape_name} {shape['enum']}")
        if kind in ("integer", "long"):
            int(text)
        elif kind in ("double", "float"):
            float(text)
        elif kind == "boolean" and text not in ("true", "false"):
            raise AssertionError(f"{path}: boolean {text!r}")
        elif kind == "timestamp":
            datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Capture:
    """Keeps the raw body of each answer a boto3 client receives (event after-call)."""

    def __init__(self, client):
        self.bodies = {}
        client.meta.events.register("after-call.ec2", self._hook)

    def _hook(self, http_response, model, **_):
        self.bodies[model.name] = http_response.content
