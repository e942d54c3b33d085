#!/usr/bin/python3
"""nova-sim: a SIMULATOR of OpenStack Nova (Compute API v2.1, microversions 2.1-2.93) for lcake's
tests. Not Nova: it serves the subset lcake uses (versions, flavors, os-keypairs, servers with
os-stop/os-start/createImage/os-getConsoleOutput), validates tokens with a real Keystone, checks
request bodies against the official Compute API definition, and really boots each server: the image
is downloaded from the real Glance and run under qemu-system-x86_64 (TCG) with a config drive, with
SSH on its own 127.0.0.N:22. createImage uploads the server's disk to Glance. See README.md."""
import argparse
import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from catalog import register_service  # noqa: E402
from novasim.api import Simulator, serve  # noqa: E402
from novasim.compute import Compute  # noqa: E402
from novasim.faults import Faults  # noqa: E402
from novasim.keystone import Keystone  # noqa: E402
from novasim.machine import Addresses  # noqa: E402
from novasim.neutron import Networking  # noqa: E402

DEFAULT_SPEC = "/work/shared/data/openstack-openapi/compute-v2.96.yaml"


def usage_error(message):
    print("nova-sim: " + message, file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", required=True, help="images, server disks, request log (requests.jsonl)")
    ap.add_argument("--port", type=int, default=0, help="listen on 127.0.0.1:PORT (0: a free one)")
    ap.add_argument("--keystone-url", help="Keystone v3 URL (default: OS_AUTH_URL of --admin-env)")
    ap.add_argument("--admin-env", help="KEY=VALUE file with admin OS_* settings: register in the catalog")
    ap.add_argument("--region", default="RegionOne")
    ap.add_argument("--glance-url", help="Glance URL (default: the image endpoint of each user's catalog)")
    ap.add_argument("--openapi", default=os.environ.get("LCAKE_COMPUTE_OPENAPI", DEFAULT_SPEC),
                    help="Compute API definition to validate request bodies with ('' to skip)")
    ap.add_argument("--addresses", default="10-99", help="guest addresses 127.0.0.N for N in FIRST-LAST")
    ap.add_argument("--address-locks", default="/tmp/lcake-loopback-addresses",
                    help="lock directory shared by everything that hands out 127.0.0.N")
    ap.add_argument("--clean-shutdown", type=float, default=float(os.environ.get("NOVA_SIM_CLEAN_SHUTDOWN", 10.0)),
                    help="os-stop: seconds between the ACPI power button and a hard stop; also NOVA_SIM_CLEAN_SHUTDOWN")
    ap.add_argument("--fail", default=os.environ.get("NOVA_SIM_FAIL", ""),
                    help="JSON list of failure rules (see novasim/faults.py); also NOVA_SIM_FAIL")
    ap.add_argument("--no-networking", dest="networking", action="store_false",
                    help="do not serve the Networking API simulator (floating IPs) below /networking")
    a = ap.parse_args()

    os.makedirs(a.state_dir, exist_ok=True)
    state = os.path.abspath(a.state_dir)
    spec = None
    if a.openapi:
        if not os.path.isfile(a.openapi):
            usage_error("the Compute API definition %s is missing; give --openapi PATH "
                        "(or --openapi '' to skip request validation)" % a.openapi)
        from openapi_check import Spec
        spec = Spec(a.openapi)
    faults = Faults()
    try:
        for rule in json.loads(a.fail) if a.fail else []:
            faults.add(rule)
    except ValueError as e:
        usage_error("--fail/NOVA_SIM_FAIL: %s" % e)
    try:
        first, last = (int(x) for x in a.addresses.split("-"))
        assert 2 <= first <= last <= 254
    except (ValueError, AssertionError):
        usage_error("--addresses wants FIRST-LAST within 2-254, got %r" % a.addresses)

    sock_probe = socket.socket()
    sock_probe.bind(("127.0.0.1", a.port))
    port = sock_probe.getsockname()[1]
    sock_probe.close()
    url = "http://127.0.0.1:%d" % port
    keystone_url = a.keystone_url
    if a.admin_env:
        keystone_url = register_service(a.admin_env, "compute", "nova", url + "/v2.1", a.region)
        if a.networking:
            register_service(a.admin_env, "network", "neutron-sim", url + "/networking", a.region)
    if not keystone_url:
        usage_error("give --keystone-url or --admin-env")

    sim = None
    compute = Compute(state, Addresses(a.address_locks, first, last), faults,
                      lambda event, **f: sim.event(event, **f), a.glance_url, a.clean_shutdown)
    networking = Networking(compute, compute.addresses, lambda event, **f: sim.event(event, **f)) \
        if a.networking else None
    sim = Simulator(compute, Keystone(keystone_url), faults, os.path.join(state, "requests.jsonl"), spec, url,
                    networking)
    httpd = serve(sim, port)

    def stop(*_):
        if networking:
            networking.shutdown()
        compute.shutdown()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(os.path.join(state, "url.tmp"), "w") as f:
        f.write(url + "/v2.1\n")
    os.replace(os.path.join(state, "url.tmp"), os.path.join(state, "url"))
    print("nova-sim (a simulator) on %s/v2.1, Keystone %s, state in %s" % (url, keystone_url, state), flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
