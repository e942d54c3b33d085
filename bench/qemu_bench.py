#!/usr/bin/env python3
"""Benchmarks of lcake's qemu target against named peers, measured in the same run.

  P1  no-op rebuild of the example pipeline vs its cold build   goal: no-op <= 1 s and >= 100x faster
  P2  one layer built by lcake vs the floor (bench/floor-layer.sh: same qemu boot, same
      provisioner commands over OpenSSH, same shutdown and qemu-img check)  goal: lcake <= 1.10x floor
  P3  a child overlay's allocated size vs the bytes its provisioner wrote  goal: <= 1.10 x written + 1 MiB

Run by hand from anywhere (never part of CTest): see bench/README.md. Everything goes to a temp dir
(fresh --state-dir per cold build); it is deleted at the end, and every qemu this script's children
start is stopped by them (lcake's own cleanup, floor-layer.sh's trap).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024


def say(*parts):
    print(*parts, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_s(x):
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


class Bench:
    def __init__(self, args):
        self.args = args
        self.lcake = args.lcake
        self.guest = args.guest_dir
        self.tmp = tempfile.mkdtemp(prefix="lcake-bench.")
        self.summary = []  # (bench, measured, peer, ratio, goal, verdict)

    # ---- running lcake -------------------------------------------------------------------------
    def lcake_run(self, state, extra, what, log_level=None):
        """Runs lcake with --json; returns (wall seconds, events, start epoch). Fails loudly."""
        cmd = [self.lcake, "build", "--target", "qemu", "--state-dir", state, "--json",
               "--var", "GUEST_DIR=" + self.guest] + extra + self.args.lcake_arg
        if log_level:
            cmd += ["--log-level", log_level]
        start_epoch = time.time()
        t = time.monotonic()
        p = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t
        events = []
        for line in (p.stdout + "\n" + p.stderr).splitlines():  # the event stream's stream changed once
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
        if p.returncode != 0:
            errors = [e.get("message", "") for e in events if e.get("level") == "error"]
            log = os.path.join(self.tmp, "failed-lcake.log")
            with open(log, "w") as f:
                f.write(" ".join(cmd) + "\n" + p.stdout + p.stderr)
            raise RuntimeError(f"{what}: lcake exited {p.returncode}: {'; '.join(errors)[:400] or p.stderr[-400:]}"
                               f" (full output: {log}; rerun with --keep to keep it)")
        return wall, events, start_epoch

    @staticmethod
    def count(events, name):
        return sum(1 for e in events if e.get("event") == name)

    # ---- P1 ------------------------------------------------------------------------------------
    def p1(self):
        say("\n== P1: no-op rebuild vs cold build of the example pipeline (lcake --target qemu)")
        colds, state = [], None
        for i in range(self.args.cold_runs):
            state = os.path.join(self.tmp, f"p1-state-{i}")
            wall, ev, _ = self.lcake_run(state, [], "P1 cold build")
            built, verified = self.count(ev, "build_done"), self.count(ev, "verify_done")
            say(f"  cold {i + 1}/{self.args.cold_runs}: {fmt_s(wall)} ({built} layers built, {verified} verified)")
            if built == 0:
                raise RuntimeError("P1: the cold build built nothing: is the state dir really fresh?")
            colds.append(wall)
        layers = None
        noops = []
        for i in range(self.args.noop_runs):
            wall, ev, _ = self.lcake_run(state, [], "P1 no-op rebuild")
            busy = [e["event"] for e in ev if e.get("event") in ("build_start", "verify_start", "upload_start")]
            if busy:
                raise RuntimeError(f"P1: the no-op rebuild was not all cache hits: {sorted(set(busy))}")
            layers = self.count(ev, "cached")
            noops.append(wall)
        say(f"  no-op x{len(noops)} ({layers} layers cached): " + ", ".join(f"{x:.3f}" for x in noops) + " s")
        noop, cold = median(noops), median(colds)
        ratio = cold / noop
        ok = noop <= 1.0 and ratio >= 100
        say(f"  median no-op {noop:.3f} s, median cold {fmt_s(cold)}: no-op is {ratio:.0f}x faster")
        self.summary.append(("P1 no-op rebuild", f"{noop:.3f} s", f"cold {fmt_s(cold)}", f"{ratio:.0f}x faster",
                             "<= 1 s and >= 100x", "PASS" if ok else "MISS"))
        self.p1_state = state

    # ---- P2 ------------------------------------------------------------------------------------
    def floor_steps(self, layer_name, run_id):
        """The layer's provisioners from the bundled pipeline, as floor-layer.sh steps."""
        path = os.path.join(REPO, "configs", "pipelines", "stack.json")
        with open(path) as f:
            pipeline = json.load(f)
        values = {k: v.get("default", "") for k, v in pipeline["variables"].items()}
        values["GUEST_DIR"] = self.guest

        def interp(s):
            s = s.replace("${variant}", "tiny-dropbear").replace("${layer}", layer_name)
            return re.sub(r"\$\{var\.([A-Za-z0-9_]+)\}", lambda m: values[m.group(1)], s)

        steps, env_index = [], None
        for i, p in enumerate(pipeline["layers"][layer_name]["provisioners"]):
            if p["type"] == "file":
                src = os.path.normpath(os.path.join(os.path.dirname(path), interp(p["source"])))
                if not os.path.isfile(src):
                    raise RuntimeError(f"P2: {src}: the floor uploads single files only")
                steps += ["--file", src, interp(p["destination"])]
            elif p["type"] == "env":
                env_index = i if env_index is None else env_index
                steps += sum((["--env", f"{k}={interp(v)}"] for k, v in p["vars"].items()), [])
                steps += ["--env", f"BENCH_RUN={run_id}"]
            elif p["type"] == "shell" and "inline" in p:
                steps += ["--run", "\n".join(interp(c) for c in p["inline"])]
            else:
                raise RuntimeError(f"P2: provisioner {i} of {layer_name}: the floor does not do {p['type']}")
        if env_index is None:
            raise RuntimeError(f"P2: layer {layer_name} has no env provisioner to vary its key with")
        return steps, env_index

    @staticmethod
    def iso_epoch(s):
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()

    def lcake_phases(self, events, start):
        """Seconds from lcake's start to each phase of the layer build, from its --json log."""
        marks = {}
        for e in events:
            if e.get("scope") != "tiny-dropbear/" + self.args.layer:
                continue
            msg, t = e.get("message", ""), self.iso_epoch(e["time"]) - start
            if msg.startswith("qemu pid"):
                marks.setdefault("qemu_started", t)
            elif msg.startswith("ssh: connected"):
                marks.setdefault("ssh_up", t)
            elif msg.startswith("shutting down"):
                marks.setdefault("provisioned", t)
            elif e.get("event") == "build_done":
                marks.setdefault("checked", t)
        return marks

    def free_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def run_floor(self, parent, run_id, n):
        meta = parent["metadata"]
        steps, _ = self.floor_steps(self.args.layer, run_id)
        env = dict(os.environ, PARENT=parent["id"], KERNEL=meta.get("kernel") or "",
                   INITRD=meta.get("initrd") or "", APPEND=meta.get("append") or "", HOST_KEY=meta["host_key"], PORT=str(self.free_port()),
                   MEMORY=str(self.args.memory))
        work = os.path.join(self.tmp, f"floor-{n}")
        start = time.time()
        t = time.monotonic()
        p = subprocess.run(["sh", os.path.join(REPO, "bench", "floor-layer.sh"), work] + steps, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t
        if p.returncode != 0:
            raise RuntimeError(f"P2: floor-layer.sh exited {p.returncode}: {p.stderr.strip()[-400:]}")
        marks = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "phase":
                marks[parts[1]] = float(parts[2]) - start
        shutil.rmtree(work, ignore_errors=True)
        return wall, marks

    def p2(self):
        layer = self.args.layer
        say(f"\n== P2: one layer (tiny-dropbear/{layer}) built by lcake vs the floor (bench/floor-layer.sh)")
        state = getattr(self, "p1_state", None) or os.path.join(self.tmp, "p2-state")
        manifest = os.path.join(self.tmp, "p2-prep.json")
        # Make sure the parent is built (untimed), and learn its artifact from the manifest.
        self.lcake_run(state, ["--only", "tiny-dropbear/base", "--manifest", manifest], "P2 parent build")
        with open(manifest) as f:
            parent_name = self.parent_of(layer)
            parent = json.load(f)["variants"]["tiny-dropbear"]["layers"][parent_name]["build"]["artifact"]
        _, env_index = self.floor_steps(layer, 0)
        lc, fl, lc_marks, fl_marks = [], [], [], []
        nonce = int(time.time())
        for i in range(self.args.layer_runs):
            run_id = f"{nonce}-{i}"
            order = ("lcake", "floor") if i % 2 == 0 else ("floor", "lcake")
            for who in order:
                if who == "lcake":
                    # A new value in the layer's env provisioner: a new layer key, so exactly this
                    # layer rebuilds and its parent is a cache hit (--force would rebuild the parent too).
                    extra = ["--only", f"tiny-dropbear/{layer}",
                             "--set", f"/pipeline/layers/{layer}/provisioners/{env_index}/vars/BENCH_RUN={run_id}"]
                    wall, ev, start = self.lcake_run(state, extra, "P2 lcake layer build", log_level="debug")
                    if self.count(ev, "build_done") != 1:
                        raise RuntimeError(f"P2: lcake built {self.count(ev, 'build_done')} layers, not 1")
                    lc.append(wall)
                    lc_marks.append(self.lcake_phases(ev, start))
                else:
                    wall, marks = self.run_floor(parent, run_id, i)
                    fl.append(wall)
                    fl_marks.append(marks)
                say(f"  run {i + 1}/{self.args.layer_runs} {who:5}: {fmt_s(wall)}")
        ratio = median(lc) / median(fl)
        ok = ratio <= 1.10
        # Each lcake run next to its floor run: less sensitive to the machine's load drifting.
        paired = median([a / b for a, b in zip(lc, fl)])
        say(f"  median lcake {fmt_s(median(lc))}, median floor {fmt_s(median(fl))}: ratio {ratio:.2f} "
            f"(median of the {len(lc)} paired ratios: {paired:.2f})")
        self.print_phases(lc, lc_marks, fl, fl_marks)
        self.summary.append((f"P2 layer {layer}", fmt_s(median(lc)), f"floor {fmt_s(median(fl))}",
                             f"{ratio:.2f}x (paired {paired:.2f}x)", "<= 1.10x", "PASS" if ok else "MISS"))

    def parent_of(self, layer):
        with open(os.path.join(REPO, "configs", "pipelines", "stack.json")) as f:
            return json.load(f)["layers"][layer]["from"]

    @staticmethod
    def print_phases(lc, lc_marks, fl, fl_marks):
        """Median time spent in each phase, lcake vs floor: where lcake's time goes."""
        phases = [("start -> qemu started", None, "qemu_started"),
                  ("qemu started -> SSH up", "qemu_started", "ssh_up"),
                  ("SSH up -> provisioned", "ssh_up", "provisioned"),
                  ("provisioned -> shut down + checked", "provisioned", "checked"),
                  ("checked -> process exit", "checked", None)]

        def durations(walls, marks_list, a, b):
            out = []
            for wall, m in zip(walls, marks_list):
                ta = 0.0 if a is None else m.get(a)
                tb = wall if b is None else m.get(b)
                if ta is not None and tb is not None:
                    out.append(tb - ta)
            return out

        say(f"  {'phase (median)':38} {'lcake':>8} {'floor':>8} {'diff':>8}")
        for label, a, b in phases:
            x, y = median(durations(lc, lc_marks, a, b)), median(durations(fl, fl_marks, a, b))
            say(f"  {label:38} {x:8.2f} {y:8.2f} {x - y:+8.2f}")
        x = median(durations(fl, fl_marks, "provisioned", "qemu_exited"))
        y = median(durations(fl, fl_marks, "qemu_exited", "checked"))
        z = median(durations(fl, fl_marks, "qemu_started", "banner"))
        w = median(durations(fl, fl_marks, "banner", "ssh_up"))
        say(f"  (floor: qemu started -> SSH banner {z:.2f} s, banner -> logged in {w:.2f} s; "
            f"poweroff -> qemu exit {x:.2f} s, qemu-img check + info {y:.2f} s)")

    # ---- P3 ------------------------------------------------------------------------------------
    def p3(self):
        say("\n== P3: child overlay size vs bytes written by its provisioner (bench/overlay-size.json)")
        state = os.path.join(self.tmp, "p3-state")
        pipeline = os.path.join(REPO, "bench", "overlay-size.json")
        for mib in [0] + self.args.sizes:
            manifest = os.path.join(self.tmp, f"p3-{mib}.json")
            wall, ev, _ = self.lcake_run(state, ["--pipeline", pipeline, "--var", f"MIB={mib}",
                                                 "--manifest", manifest], "P3 write layer")
            with open(manifest) as f:
                disk = json.load(f)["variants"]["tiny-dropbear"]["layers"]["write"]["build"]["artifact"]["id"]
            info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", disk], check=True,
                                             stdout=subprocess.PIPE, text=True).stdout)
            actual = info["actual-size"]
            du = int(subprocess.run(["du", "--block-size=1", disk], check=True, stdout=subprocess.PIPE,
                                    text=True).stdout.split()[0])
            written = mib * MIB
            if mib == 0:
                say(f"  0 MiB written: overlay {actual / MIB:.2f} MiB (the layer's own overhead: logs, keys, "
                    f"fs metadata), built in {fmt_s(wall)}")
                continue
            limit = 1.10 * written + MIB
            ratio = actual / written
            ok = actual <= limit
            say(f"  {mib} MiB written: overlay actual-size {actual / MIB:.2f} MiB (du {du / MIB:.2f} MiB), "
                f"{ratio:.3f}x written; limit {limit / MIB:.2f} MiB; built in {fmt_s(wall)}")
            self.summary.append((f"P3 overlay, {mib} MiB written", f"{actual / MIB:.2f} MiB",
                                 f"written {mib} MiB", f"{ratio:.3f}x (+{(actual - written) / MIB:.2f} MiB)", "<= 1.10x + 1 MiB",
                                 "PASS" if ok else "MISS"))

    # ---- summary -------------------------------------------------------------------------------
    def print_summary(self):
        head = ("bench", "lcake", "peer", "ratio", "goal", "result")
        rows = [head] + self.summary
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        say("\n== Summary")
        for n, r in enumerate(rows):
            say("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
            if n == 0:
                say("  " + "  ".join("-" * w for w in widths))


def default_lcake():
    for d in ("build-bench", "build"):
        p = os.path.join(REPO, d, "bin", "lcake")
        if os.access(p, os.X_OK):
            return p
    return shutil.which("lcake") or "lcake"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lcake", default=default_lcake(), help="lcake binary (default: build-bench/ or build/)")
    ap.add_argument("--guest-dir", default=os.environ.get("LCAKE_GUEST_DIR", "/var/cache/lcake/guest"),
                    help="dir with dropbear/ and openssh/ from scripts/build-guest.sh")
    ap.add_argument("--only", default="P1,P2,P3", help="comma-separated benches to run")
    ap.add_argument("--cold-runs", type=int, default=2, help="P1 cold builds (fresh state dir each)")
    ap.add_argument("--noop-runs", type=int, default=5, help="P1 no-op rebuilds")
    ap.add_argument("--layer-runs", type=int, default=5, help="P2 runs of lcake and of the floor each")
    ap.add_argument("--layer", default="newinstall", help="P2 layer of the bundled pipeline")
    ap.add_argument("--memory", type=int, default=256, help="P2 floor guest MiB (keep = the target's memory)")
    ap.add_argument("--sizes", default="8,64", help="P3 MiB to write, comma-separated")
    ap.add_argument("--lcake-arg", action="append", default=[],
                    help="extra argument for every lcake run (repeatable; use --lcake-arg=--set ...)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (state dirs, logs)")
    args = ap.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    benches = {b.strip().upper() for b in args.only.split(",")}
    args.guest_dir = os.path.abspath(args.guest_dir)
    for flavour in ("dropbear", "openssh"):
        if not os.path.isfile(os.path.join(args.guest_dir, flavour, "base.qcow2")):
            sys.exit(f"qemu_bench: no {flavour}/base.qcow2 in {args.guest_dir}: run "
                     f"scripts/build-guest.sh {args.guest_dir}/{flavour} --sshd {flavour} or pass --guest-dir")

    b = Bench(args)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True).stdout.strip()
    say(f"lcake qemu benchmarks, {datetime.datetime.now().isoformat(timespec='seconds')}, "
        f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, commit {commit or '?'}")
    say(f"lcake: {args.lcake}; guest: {args.guest_dir}; temp: {b.tmp}")
    t0 = time.monotonic()
    failed = False
    try:
        for name, fn in (("P1", b.p1), ("P2", b.p2), ("P3", b.p3)):
            if name not in benches:
                continue
            try:
                fn()
            except RuntimeError as e:
                failed = True
                say(f"  ERROR: {e}")
                b.summary.append((name, "-", "-", "-", "-", "ERROR"))
    except KeyboardInterrupt:
        failed = True
        say("\ninterrupted")
    finally:
        b.print_summary()
        say(f"\ntotal {time.monotonic() - t0:.0f} s, load at the end {os.getloadavg()[0]:.2f}")
        if args.keep:
            say(f"kept {b.tmp}")
        else:
            shutil.rmtree(b.tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
