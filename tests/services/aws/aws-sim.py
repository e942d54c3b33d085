#!/usr/bin/python3
"""aws-sim: the front proxy lcake's AWS tests use as AWS_ENDPOINT_URL (normally started by
aws-services.py). It forwards everything to moto and adds AWS's EBS direct rules, ImportSnapshot and
instances that really boot; see README.md."""
import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from awssim.server import serve  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    p.add_argument("--moto", required=True, help="moto_server's URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--state", required=True, help="directory for the block store, instances and requests.jsonl")
    p.add_argument("--admin-credentials", required=True,
                   help="JSON file with AccessKeyId/SecretAccessKey of an Allow-* IAM user, for the simulator's own calls")
    p.add_argument("--import-step-seconds", type=float, default=float(os.environ.get("AWS_SIM_IMPORT_STEP", "0.3")),
                   help="time an import task spends in each active stage (default 0.3)")
    p.add_argument("--qemu-memory", type=int, default=int(os.environ.get("AWS_SIM_QEMU_MEMORY", "256")),
                   help="MiB of memory per booted instance (default 256)")
    p.add_argument("--faults", default=os.environ.get("AWS_SIM_FAULTS", ""),
                   help="JSON list of failure-injection rules to start with (see awssim/faults.py; "
                        "more at run time: POST /_aws-sim/faults)")
    a = p.parse_args()
    sim, server = serve(a.port, a.moto, a.state, a.admin_credentials, a.import_step_seconds, a.qemu_memory,
                        a.faults)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        sim.instances.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
