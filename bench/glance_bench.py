#!/usr/bin/env python3
"""Upload of one disk image to the real Glance: lcake vs `openstack image create --file`.

  G1  the same file (default 1 GiB of random bytes, raw) uploaded to the same Glance by
      lcake's openstack uploader (lcake-bench-glance-upload: the plugin's own upload(), which
      streams it, hashes it with sha512 and checks Glance's size and os_hash_value) and by
      python3-openstackclient's `openstack image create --file`, alternated (lcake first, then
      the CLI first, ...). Goals: lcake's throughput >= 1.0x the CLI's (ratio of medians) and
      lcake's peak RSS <= 64 MiB (the image is streamed, never held in memory).

Run by hand, never by CTest (bench/README.md). Starts Keystone + Glance with
tests/services/openstack/keystone-glance.sh in a temp dir (or uses --services DIR, a running
one), deletes every image it made after each run, and stops what it started at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import find_bench_binary, measure, read_env, say  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="MiB of random bytes (default 1024)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each, alternated (default 3)")
    ap.add_argument("--uploader", default=None, help="lcake-bench-glance-upload (default build-bench/bin, then build/bin)")
    ap.add_argument("--services", default=None, help="a running keystone-glance.sh DIR to use")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()

    uploader = find_bench_binary(REPO, "lcake-bench-glance-upload", a.uploader)
    if not uploader:
        say("ERROR: lcake-bench-glance-upload not found: cmake --build build --target lcake-bench-glance-upload")
        return 1
    for tool in ("/usr/bin/openstack", "/usr/bin/keystone-manage", "/usr/bin/glance-api", "/usr/bin/qemu-img"):
        if not os.access(tool, os.X_OK):
            say("ERROR: %s is not installed (see tests/services/openstack/README.md)" % tool)
            return 1

    tmp = tempfile.mkdtemp(prefix="lcake-glance-bench-")
    services = a.services or os.path.join(tmp, "services")
    script = os.path.join(REPO, "tests/services/openstack/keystone-glance.sh")
    started = False
    try:
        if not a.services:
            say("starting Keystone + Glance in", services)
            subprocess.run(["bash", script, "start", services], check=True, env=CLEAN_ENV,
                           stdout=subprocess.DEVNULL)
            started = True
        demo = read_env(os.path.join(services, "env"))
        cli_env = dict(CLEAN_ENV, HOME=services, **demo)
        lcake_env = dict(CLEAN_ENV, HOME=services, OS_CLIENT_CONFIG_FILE=os.path.join(services, "clouds.yaml"))

        disk = os.path.join(tmp, "disk.raw")
        say("writing %d MiB of random bytes to %s" % (a.size, disk))
        with open("/dev/urandom", "rb") as src, open(disk, "wb") as dst:
            for _ in range(a.size):
                dst.write(src.read(MIB))
        size = os.path.getsize(disk)

        def delete(image_id):
            subprocess.run(["/usr/bin/openstack", "image", "delete", image_id], env=cli_env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def run_lcake(i):
            secs, rss, out = measure([uploader, "lcake-test", disk, "raw"], lcake_env)
            rec = json.loads(out.strip().splitlines()[-1])
            if rec["bytes"] != size:
                raise RuntimeError("lcake's image holds %s bytes, not %d" % (rec["bytes"], size))
            delete(rec["id"])
            return secs, rss

        def run_cli(i):
            name = "lcake-bench-cli-%d-%d" % (os.getpid(), i)
            secs, rss, out = measure(["/usr/bin/openstack", "image", "create", "--disk-format", "raw",
                                      "--container-format", "bare", "--file", disk, name,
                                      "-f", "value", "-c", "id"], cli_env)
            delete(out.strip())
            return secs, rss

        results = {"lcake": [], "cli": []}
        for i in range(a.runs):
            order = [("lcake", run_lcake), ("cli", run_cli)]
            if i % 2:
                order.reverse()
            for who, fn in order:
                secs, rss = fn(i)
                results[who].append((secs, rss))
                say("run %d %-5s %7.2f s  %7.1f MiB/s  peak RSS %6.1f MiB" % (i + 1, who, secs, size / MIB / secs,
                                                                              rss / MIB))

        med = {k: statistics.median(s for s, _ in v) for k, v in results.items()}
        thr = {k: size / MIB / med[k] for k in med}
        ratio = thr["lcake"] / thr["cli"]
        rss = max(r for _, r in results["lcake"])
        cli_rss = max(r for _, r in results["cli"])
        say("")
        say("| bench | lcake | peer (openstack image create --file) | ratio | goal | result |")
        say("|---|---|---|---|---|---|")
        say("| G1 upload %d MiB, throughput (median of %d) | %.1f MiB/s (%.2f s) | %.1f MiB/s (%.2f s) | %.2fx | >= 1.0x | %s |"
            % (a.size, a.runs, thr["lcake"], med["lcake"], thr["cli"], med["cli"], ratio,
               "PASS" if ratio >= 1.0 else "MISS"))
        say("| G1 peak RSS (max of %d) | %.1f MiB | %.1f MiB | | <= 64 MiB | %s |"
            % (a.runs, rss / MIB, cli_rss / MIB, "PASS" if rss <= 64 * MIB else "MISS"))
        return 0
    except Exception as e:  # the bench could not run: say so, exit 1
        say("ERROR:", e)
        return 1
    finally:
        if started:
            subprocess.run(["bash", script, "stop", services], env=CLEAN_ENV)
        if a.keep:
            say("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
