#!/usr/bin/python3
"""Tests of the Nova simulator (nova-sim.py) against real Keystone + Glance.

  test_nova_sim.py [--api] [--boot]     (default: both; exit 77 = skipped)

--api   every implemented call, errors, microversions, failure injection; servers boot a blank disk.
--boot  (slow) a real bootable disk from Glance reaches SSH on 127.0.0.N:22 with the key pair from
        the config drive; os-stop; createImage gives an active Glance image (`openstack image
        show`); a server booted from that snapshot has the provisioned file.
Every request and response the simulator logged is then checked against the Compute API
definition (compute-v2.96.yaml). The boot disk: $LCAKE_TEST_BOOT_DISK (a whole BIOS-bootable qcow2
that reads config drives), else the build tree's test guest (tests/guest/test_guest.py).
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nova_sim_testlib import Failure, Stack, check  # noqa: E402

SPEC_PATH = os.environ.get("LCAKE_COMPUTE_OPENAPI", "/work/shared/data/openstack-openapi/compute-v2.96.yaml")


def skip(why):
    print("SKIPPED: " + why)
    sys.exit(77)


def prerequisites():
    if os.geteuid() != 0:
        skip("guests listen on 127.0.0.N:22, which needs root")
    for tool in ("keystone-manage", "glance-api", "uwsgi", "qemu-system-x86_64", "qemu-img", "mkfs.vfat",
                 "mcopy", "jq", "curl", "sqlite3"):
        if shutil.which(tool) is None:
            skip("%s is not installed (scripts/setup-deps.sh installs keystone, glance-api, uwsgi, qemu, ...)" % tool)
    try:
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as e:
        skip("%s: install python3-jsonschema python3-yaml" % e)
    if not os.path.exists(SPEC_PATH):
        skip("the Compute API definition %s is missing (set LCAKE_COMPUTE_OPENAPI)" % SPEC_PATH)


def check_networking_exchange(e):
    """A logged exchange of the Networking simulator: no official definition is at hand, so successful
    floating IP bodies are checked with novasim.neutron's schemas (from the API reference), and errors
    must be in Neutron's {"NeutronError": {type, message, detail}} shape."""
    from novasim import neutron
    import jsonschema
    where = "%s %s -> %d" % (e["method"], e["path"], e["status"])
    out = []
    if e["path"].rstrip("/").endswith("/floatingips") and e["method"] == "POST" and e["status"] == 201:
        schema = neutron.CREATE_SCHEMA
    elif "/floatingips/" in e["path"] and e["method"] == "PUT" and e["status"] == 200:
        schema = neutron.UPDATE_SCHEMA
    else:
        schema = None
    if schema is not None:
        try:
            jsonschema.validate(e["request"], schema)
        except jsonschema.ValidationError as err:
            out.append("%s: request: %s" % (where, err.message))
        answer = (e["response"] or {}).get("floatingip") or {}
        for key in ("id", "floating_ip_address", "floating_network_id", "port_id", "status", "project_id"):
            if key not in answer:
                out.append("%s: response: no %s" % (where, key))
    if e["status"] >= 400 and e["status"] != 401:
        err = (e["response"] or {}).get("NeutronError")
        if not isinstance(err, dict) or not {"type", "message", "detail"} <= set(err):
            out.append("%s: error body not in Neutron's {NeutronError: {type, message, detail}} shape: %s"
                       % (where, e["response"]))
    return out


def check_log_against_spec(stack):
    """Every logged request/response of the simulator against the Compute API definition."""
    from openapi_check import Spec, parse_version
    spec = Spec(SPEC_PATH)
    problems, checked = [], 0
    for e in stack.log():
        if e.get("kind") != "request" or e["path"].startswith("/_sim/") or e["path"] == "/":
            continue
        if e["path"].startswith("/networking"):
            problems += check_networking_exchange(e)
            checked += 1
            continue
        mv = parse_version(e["microversion"]) if e["microversion"] else (2, 1)
        where = "%s %s @%s -> %d" % (e["method"], e["path"], e["microversion"], e["status"])
        if e["method"] in ("POST", "PUT") and e["status"] < 400 and e["request"] is not None:
            problems += ["%s: request: %s" % (where, p) for p in spec.check_request(e["method"], e["path"], mv, e["request"])]
        problems += ["%s: response: %s" % (where, p) for p in spec.check_response(
            e["method"], e["path"], mv, e["status"], e["response"], e["headers"], e["request"])]
        if e["status"] >= 400 and e["status"] != 401:
            body = e["response"] or {}
            ok = len(body) == 1 and next(iter(body.values())).get("code") == e["status"]
            if not ok:
                problems.append("%s: error body not in Nova's {kind: {code, message}} shape: %s" % (where, body))
        checked += 1
    check(checked > 0, "the request log is empty")
    if problems:
        raise Failure("%d conformance problems:\n  " % len(problems) + "\n  ".join(problems[:40]))
    print("conformance: %d logged exchanges match %s" % (checked, os.path.basename(SPEC_PATH)))


def run_cases(cases):
    failed = []
    for name, fn in cases:
        t = time.time()
        try:
            fn()
            print("ok   %-40s %.1f s" % (name, time.time() - t), flush=True)
        except Failure as e:
            print("FAIL %-40s %s" % (name, e), flush=True)
            failed.append(name)
        except Exception as e:  # a bug in the case or the stack: this case fails, the others still run
            print("FAIL %-40s %s: %s" % (name, type(e).__name__, e), flush=True)
            failed.append(name)
    return failed


def main():
    args = set(sys.argv[1:]) or {"--api", "--boot"}
    if args - {"--api", "--boot", "--keep"}:
        print(__doc__)
        sys.exit(2)
    prerequisites()
    boot_disk = None
    if "--boot" in args:
        boot_disk = os.environ.get("LCAKE_TEST_BOOT_DISK")
        if not boot_disk:
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "guest"))
            import test_guest
            boot_disk = os.path.join(test_guest.guest_dir(skip), "base.qcow2")
    stack = Stack()
    ok = False
    try:
        stack.start()
        failed = []
        if "--api" in args:
            from nova_sim_api_cases import api_cases
            failed += run_cases(api_cases(stack))
        if "--boot" in args:
            from nova_sim_boot_cases import boot_cases
            failed += run_cases(boot_cases(stack, boot_disk))
        failed += run_cases([("conformance of the request log", lambda: check_log_against_spec(stack))])
        ok = not failed
        print("%s: %s" % ("PASSED" if ok else "FAILED", ", ".join(failed) if failed else "all cases"))
    finally:
        stack.stop(keep="--keep" in args or not ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
