#!/usr/bin/env python3
"""The aws uploader against one moto_server (behind the aws-sim simulator), same run:

  P6  a sparse 4 GiB disk (qcow2) holding 1 GiB of data uploaded as a first layer through the EBS
      direct APIs: bytes sent (the simulator's log of accepted PutSnapshotBlock calls, not lcake's
      own count) / the disk's non-zero bytes. Goal <= 1.01.
  P8  a child layer: a qcow2 overlay on that disk that writes 50 MiB of new bytes (two 25 MiB
      extents at 64 KiB-aligned offsets: one over data, one into a hole) and rewrites 16 MiB with
      the bytes already there, uploaded with P6's snapshot as ParentSnapshotId: bytes sent /
      bytes changed (goal <= 1.05), and its upload time vs P6's (the whole disk).
  P5  EBS throughput: lcake's upload of the P6 disk vs a boto3 reference client on the same
      server with the same number of workers putting the same blocks (StartSnapshot, the blocks
      with their SHA-256, CompleteSnapshot), alternated; and the S3 multipart upload of the
      import mode vs `aws s3 cp` of the same file with the same part size and concurrency.
      Goal >= 1.0x (ratio of medians of the throughputs); lcake's peak RSS <= 64 MiB.

lcake's side is lcake-bench-aws-upload: the plugin's own upload code (AwsUploader::upload in
mode ebs; upload_multipart of mode import), timed as a whole process, peak RSS from GNU time (benchlib.measure).
Run by hand, never by CTest (bench/README.md). Starts its own services
(tests/services/aws/aws-services.py) in a temp dir, deletes what each run made, and stops
them and deletes the dir at the end (--keep keeps the dir). Exit 1 when it could not run.
"""
import argparse
import hashlib
import json
import os
import random
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
GIB = 1024 * MIB
BLOCK = 512 * 1024
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
SERVICES = os.path.join(REPO, "tests/services/aws/aws-services.py")

# The reference client: boto3 (Debian python3-boto3) putting the blocks it is given.
REFERENCE = r'''
import base64, concurrent.futures, hashlib, json, os, sys, boto3, botocore.config
disk, workers, volume, blocks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.load(open(sys.argv[4]))
# (Debian's botocore predates AWS_ENDPOINT_URL: the endpoint is passed; one pooled connection per worker)
ebs = boto3.client("ebs", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                   config=botocore.config.Config(max_pool_connections=max(10, workers)))
sid = ebs.start_snapshot(VolumeSize=volume, Description="bench reference")["SnapshotId"]
def put(index):
    with open(disk, "rb") as f:
        f.seek(index * 524288)
        data = f.read(524288)
    ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=index, BlockData=data, DataLength=len(data),
                           Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                           ChecksumAlgorithm="SHA256")
with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    list(pool.map(put, blocks))
ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(blocks))
print(json.dumps({"snapshot_id": sid}))
'''



def random_nonzero(rng, n):
    """n random bytes, none of them zero (so every byte counts as data)."""
    data = rng.randbytes(n)
    return data.translate(bytes([255]) + bytes(range(1, 256)))


def block_events(log, snapshot):
    """Indices of the blocks the simulator accepted for `snapshot` (its request log)."""
    out = set()
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            if e.get("event") == "block-written" and e.get("snapshot") == snapshot:
                out.add(e["index"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2, help="P5: runs of each, alternated (default 2)")
    ap.add_argument("--workers", type=int, default=8, help="parallel requests, lcake and the peers (default 8)")
    ap.add_argument("--part-mib", type=int, default=16, help="S3 part size, lcake and aws s3 cp (default 16)")
    ap.add_argument("--s3-mib", type=int, default=1024, help="P5 S3: the file's size in MiB (default 1024)")
    ap.add_argument("--only", default="P6,P8,P5", help="P6,P8,P5 (P8 needs P6)")
    ap.add_argument("--uploader", default=None, help="lcake-bench-aws-upload (default build-bench/bin, then build/bin)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the disk's layout and bytes")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    only = set(a.only.upper().split(","))
    if "P8" in only:
        only.add("P6")

    uploader = find_bench_binary(REPO, "lcake-bench-aws-upload", a.uploader)
    if not uploader:
        say("ERROR: lcake-bench-aws-upload not found: cmake --build build --target lcake-bench-aws-upload")
        return 1
    for tool in ("/usr/bin/aws", "/usr/bin/qemu-img", "/usr/bin/qemu-io"):
        if not os.access(tool, os.X_OK):
            say("ERROR: %s is not installed (Debian awscli, qemu-utils)" % tool)
            return 1
    # The reference client: Debian's python3 with python3-boto3, else this python's boto3.
    ref_python = next((p for p in ("/usr/bin/python3", sys.executable)
                       if subprocess.run([p, "-c", "import boto3"], env=CLEAN_ENV,
                                         stderr=subprocess.DEVNULL).returncode == 0), None)
    if ref_python is None:
        say("ERROR: no python3 with boto3 for the reference client (Debian python3-boto3)")
        return 1

    tmp = tempfile.mkdtemp(prefix="lcake-aws-bench-")
    services = os.path.join(tmp, "services")
    started = False
    rows = []
    launch_env = CLEAN_ENV
    try:
        say("starting moto_server + aws-sim in", services)
        # The launcher finds moto_server as the tests do (MOTO_SERVER, PATH, pyenv's shim): the caller's env.
        launch_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        r = subprocess.run(["/usr/bin/python3", SERVICES, "start", "--dir", services], env=launch_env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            say("ERROR: the services did not start (%d): %s" % (r.returncode, r.stdout.strip()[-500:]))
            return 1
        started = True
        senv = read_env(os.path.join(services, "env"))
        log = senv["AWS_SIM_LOG"]
        keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")
        env = dict(CLEAN_ENV, HOME=tmp, **{k: senv[k] for k in keys})
        # The AWS CLI's S3 transfer with lcake's part size and concurrency.
        cli_config = os.path.join(tmp, "aws-config")
        with open(cli_config, "w") as f:
            f.write("[default]\ns3 =\n  max_concurrent_requests = %d\n  multipart_chunksize = %dMB\n"
                    "  multipart_threshold = %dMB\n" % (a.workers, a.part_mib, a.part_mib))
        env["AWS_CONFIG_FILE"] = cli_config

        # The bench's own checks and cleanup: awscli as the services' admin (the test user's
        # minimal policy has no CreateBucket or HeadObject).
        with open(os.path.join(services, "admin-credentials.json")) as f:
            admin = json.load(f)
        admin_env = dict(env, AWS_ACCESS_KEY_ID=admin["AccessKeyId"], AWS_SECRET_ACCESS_KEY=admin["SecretAccessKey"])

        def aws(*args):
            out = subprocess.run(["/usr/bin/aws", "--endpoint-url", senv["AWS_ENDPOINT_URL"], "--output", "json"]
                                 + list(args), env=admin_env, check=True, stdout=subprocess.PIPE, text=True).stdout
            return json.loads(out) if out.strip() else {}

        def lcake(*args):
            secs, rss, out = measure([uploader] + [str(x) for x in args], env)
            return secs, rss, json.loads(out.strip().splitlines()[-1])

        def drop_image(rec):
            aws("ec2", "deregister-image", "--image-id", rec["id"])
            aws("ec2", "delete-snapshot", "--snapshot-id", rec["snapshot_id"])

        # ---- the P6 disk: 4 GiB virtual, 1 GiB of non-zero bytes in 8 extents of 128 MiB at random
        # 64 KiB-aligned offsets (one per 512 MiB slot); raw (sparse) for the reference client, qcow2 for lcake
        rng = random.Random(a.seed)
        raw = os.path.join(tmp, "disk.raw")
        qcow = os.path.join(tmp, "disk.qcow2")
        extents = []
        with open(raw, "wb") as f:
            f.truncate(4 * GIB)
            for slot in range(8):
                off = slot * 512 * MIB + rng.randrange(0, (512 - 128) * MIB // 65536) * 65536
                extents.append((off, 128 * MIB))
                f.seek(off)
                for _ in range(128 // 16):
                    f.write(random_nonzero(rng, 16 * MIB))
        nonzero = sum(n for _, n in extents)
        say("P6 disk: 4 GiB virtual, %d MiB of non-zero bytes in %d extents" % (nonzero // MIB, len(extents)))
        subprocess.run(["/usr/bin/qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow], check=True)

        results = {"lcake": [], "boto3": [], "p6": []}  # lcake/boto3: P5's alternated runs only
        p6 = None
        if "P6" in only:
            secs, rss, rec = lcake("ebs", a.workers, qcow)
            sent = len(block_events(log, rec["snapshot_id"])) * BLOCK
            p6 = dict(rec, seconds=secs, rss=rss, sent=sent)
            results["p6"].append((secs, rss))
            say("P6 lcake: %.2f s, %d blocks accepted (%d MiB; lcake counted %d MiB), peak RSS %.1f MiB"
                % (secs, sent // BLOCK, sent // MIB, rec["bytes_sent"] // MIB, rss / MIB))
            ratio = sent / nonzero
            rows.append(("P6 first layer, 4 GiB sparse with %d MiB data: bytes sent / non-zero bytes" % (nonzero // MIB),
                         "%d MiB sent in %.2f s" % (sent // MIB, secs), "%d MiB non-zero" % (nonzero // MIB),
                         "%.4f" % ratio, "<= 1.01", "PASS" if ratio <= 1.01 else "MISS"))

        if "P8" in only:
            child = os.path.join(tmp, "child.qcow2")
            subprocess.run(["/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-b", qcow, "-F", "qcow2", child],
                           check=True)
            changes = []  # (offset, bytes, new?)
            data_off = extents[2][0] + rng.randrange(0, (128 - 25) * MIB // 65536) * 65536
            # into the middle of the largest hole between the extents (64 KiB-aligned)
            ends = [0] + [o + n for o, n in extents]
            starts = [o for o, _ in extents] + [4 * GIB]
            gap_start, gap_end = max(zip(ends, starts), key=lambda g: g[1] - g[0])
            hole_off = (gap_start + (gap_end - gap_start) // 2) // 65536 * 65536 + 3 * 65536
            same_off = extents[6][0] + 4 * MIB
            pattern = os.path.join(tmp, "pattern")
            cmds = []
            for i, off in enumerate((data_off, hole_off)):
                p = "%s.%d" % (pattern, i)
                with open(p, "wb") as f:
                    f.write(random_nonzero(rng, 25 * MIB))
                cmds += ["-c", "write -q -s %s %d %d" % (p, off, 25 * MIB)]
                changes.append((off, 25 * MIB))
            with open(raw, "rb") as f:  # the bytes already there: allocated in the overlay, unchanged
                f.seek(same_off)
                same = f.read(16 * MIB)
            with open(pattern + ".same", "wb") as f:
                f.write(same)
            cmds += ["-c", "write -q -s %s.same %d %d" % (pattern, same_off, 16 * MIB)]
            subprocess.run(["/usr/bin/qemu-io", "-f", "qcow2"] + cmds + [child], check=True)
            changed = sum(n for _, n in changes)
            secs, rss, rec = lcake("ebs", a.workers, child, p6["snapshot_id"], 4)
            sent = len(block_events(log, rec["snapshot_id"])) * BLOCK
            results_child = (secs, rss)
            say("P8 lcake: %.2f s, %d blocks accepted (%.1f MiB), peak RSS %.1f MiB"
                % (secs, sent // BLOCK, sent / MIB, rss / MIB))
            ratio = sent / changed
            rows.append(("P8 child layer, %d MiB changed (+16 MiB rewritten unchanged): bytes sent / bytes changed"
                         % (changed // MIB), "%.1f MiB sent" % (sent / MIB), "%d MiB changed" % (changed // MIB),
                         "%.4f" % ratio, "<= 1.05", "PASS" if ratio <= 1.05 else "MISS"))
            rows.append(("P8 child upload time vs the whole disk (P6)", "%.2f s" % secs, "%.2f s" % p6["seconds"],
                         "%.3fx" % (secs / p6["seconds"]), "-", "info"))
            results["lcake_child_rss"] = [results_child]
            drop_image(rec)
            os.remove(child)

        if "P5" in only:
            wanted = sorted(block_events(log, p6["snapshot_id"])) if p6 else None
            if wanted is None:  # P5 alone: an unmeasured lcake run names the blocks
                secs, rss, rec = lcake("ebs", a.workers, qcow)
                wanted = sorted(block_events(log, rec["snapshot_id"]))
                results["p6"].append((secs, rss))
                drop_image(rec)
            blocks_file = os.path.join(tmp, "blocks.json")
            with open(blocks_file, "w") as f:
                json.dump(wanted, f)
            ref = os.path.join(tmp, "reference.py")
            with open(ref, "w") as f:
                f.write(REFERENCE)
            volume = 4
            for i in range(a.runs):
                order = ["boto3", "lcake"] if i % 2 == 0 else ["lcake", "boto3"]
                for who in order:
                    if who == "lcake":
                        secs, rss, rec = lcake("ebs", a.workers, qcow)
                        got = block_events(log, rec["snapshot_id"])
                        drop_image(rec)
                    else:
                        secs, rss, out = measure([ref_python, ref, raw, str(a.workers), str(volume), blocks_file],
                                                 env)
                        sid = json.loads(out.strip().splitlines()[-1])["snapshot_id"]
                        got = block_events(log, sid)
                        aws("ec2", "delete-snapshot", "--snapshot-id", sid)
                    if got != set(wanted):
                        raise RuntimeError("%s's snapshot got %d blocks, not the %d expected" % (who, len(got), len(wanted)))
                    results[who].append((secs, rss))
                    say("P5 EBS run %d %-6s %7.2f s  %6.1f MiB/s  peak RSS %6.1f MiB"
                        % (i + 1, who, secs, len(wanted) * BLOCK / MIB / secs, rss / MIB))
            mb = len(wanted) * BLOCK / MIB
            med = {k: statistics.median(s for s, _ in results[k]) for k in ("lcake", "boto3")}
            ratio = med["boto3"] / med["lcake"]
            rows.append(("P5 EBS upload, %d MiB in %d blocks, %d workers (median of %d)"
                         % (mb, len(wanted), a.workers, a.runs),
                         "%.1f MiB/s (%.2f s)" % (mb / med["lcake"], med["lcake"]),
                         "boto3 %.1f MiB/s (%.2f s)" % (mb / med["boto3"], med["boto3"]),
                         "%.2fx" % ratio, ">= 1.0x", "PASS" if ratio >= 1.0 else "MISS"))
            if p6:
                os.remove(raw)  # the S3 file replaces it on disk
                drop_image(p6)
                p6 = None

            # ---- S3: the import mode's multipart upload vs aws s3 cp
            s3file = os.path.join(tmp, "s3.bin")
            with open(s3file, "wb") as f:
                for _ in range(a.s3_mib // 16):
                    f.write(rng.randbytes(16 * MIB))
            size = os.path.getsize(s3file)
            bucket = "lcake-bench"
            aws("s3api", "create-bucket", "--bucket", bucket)
            s3 = {"lcake": [], "aws s3 cp": []}
            for i in range(a.runs):
                order = ["lcake", "aws s3 cp"] if i % 2 == 0 else ["aws s3 cp", "lcake"]
                for who in order:
                    key = "bench-%s-%d" % ("lcake" if who == "lcake" else "cli", i)
                    if who == "lcake":
                        secs, rss, _ = lcake("s3", a.workers, a.part_mib, s3file, bucket, key)
                    else:
                        secs, rss, _ = measure(["/usr/bin/aws", "--endpoint-url", senv["AWS_ENDPOINT_URL"], "--only-show-errors",
                                                "s3", "cp", s3file, "s3://%s/%s" % (bucket, key)], env)
                    head = aws("s3api", "head-object", "--bucket", bucket, "--key", key)
                    if head.get("ContentLength") != size:
                        raise RuntimeError("%s's object holds %s bytes, not %d" % (who, head.get("ContentLength"), size))
                    aws("s3api", "delete-object", "--bucket", bucket, "--key", key)
                    s3[who].append((secs, rss))
                    say("P5 S3 run %d %-9s %7.2f s  %6.1f MiB/s  peak RSS %6.1f MiB"
                        % (i + 1, who, secs, size / MIB / secs, rss / MIB))
            aws("s3api", "delete-bucket", "--bucket", bucket)
            os.remove(s3file)
            med = {k: statistics.median(s for s, _ in v) for k, v in s3.items()}
            ratio = med["aws s3 cp"] / med["lcake"]
            rows.append(("P5 S3 multipart upload, %d MiB, %d MiB parts, %d workers (median of %d)"
                         % (size // MIB, a.part_mib, a.workers, a.runs),
                         "%.1f MiB/s (%.2f s)" % (size / MIB / med["lcake"], med["lcake"]),
                         "aws s3 cp %.1f MiB/s (%.2f s)" % (size / MIB / med["aws s3 cp"], med["aws s3 cp"]),
                         "%.2fx" % ratio, ">= 1.0x", "PASS" if ratio >= 1.0 else "MISS"))
            results["s3"] = s3["lcake"]
            results["peer_rss"] = s3["aws s3 cp"] + results["boto3"]

        rss_runs = [r for k in ("p6", "lcake", "lcake_child_rss", "s3") for _, r in results.get(k, [])]
        if rss_runs:
            peak = max(rss_runs)
            peers = [r for _, r in results.get("peer_rss", [])]
            rows.append(("lcake peak RSS (max over its %d runs)" % len(rss_runs), "%.1f MiB" % (peak / MIB),
                         "peers max %.1f MiB" % (max(peers) / MIB) if peers else "-", "", "<= 64 MiB",
                         "PASS" if peak <= 64 * MIB else "MISS"))
        if p6:
            drop_image(p6)
        say("")
        say("| bench | lcake | peer | ratio | goal | result |")
        say("|---|---|---|---|---|---|")
        for row in rows:
            say("| " + " | ".join(row) + " |")
        return 0
    except Exception as e:  # the bench could not run: say so, exit 1
        say("ERROR:", e)
        return 1
    finally:
        if started:
            subprocess.run(["/usr/bin/python3", SERVICES, "stop", "--dir", services], env=launch_env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if a.keep:
            say("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
