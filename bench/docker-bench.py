#!/usr/bin/env python3
"""Benchmarks of lcake's docker target against `docker build` on the same engine, same run.

  D1  one layer (newinstall) rebuilt after its input changed: lcake vs `docker build` of the
      equivalent Dockerfile, both against the same podman socket   goal: lcake <= 1.0x
  D2  no-op rebuild of the whole example pipeline (2 variants x 3 layers, everything cached)
                                                                     goal: < 1 s

Run by hand (never part of CTest): see bench/README.md, section "docker-bench.py". It starts its
own podman service and docker-registry in a temp dir (tests/services/), imports the busybox base
image, and stops both and deletes the dir at the end, also on errors and Ctrl-C.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = os.path.join(REPO, "tests", "services")
VARIANT = "tiny-dropbear"
STACK_ROOT = "/opt/lsst/software/stack"  # the stack pipeline's default, used by the Dockerfile

# The Dockerfile equivalent of the `newinstall` layer of configs/pipelines/stack.json: the same
# parent image, the same file copied to the same place, the same commands, the same labels.
DOCKERFILE = """FROM {parent}
COPY newinstall.sh {root}/newinstall.sh
RUN cd {root} && STACK_ROOT={root} sh ./newinstall.sh
LABEL org.lcake.layer=newinstall org.lcake.variant={variant} org.lcake.target=bench
"""

# The uploader- and verifier-free target: lcake does exactly what `docker build` does.
BUILD_ONLY_TARGET = {
    "name": "docker-build-only", "pipeline": "stack",
    "description": "docker-bench.py: the docker builder alone, for a like-for-like comparison with docker build",
    "builder": {"plugin": "docker", "settings": {"network": "none", "pull": "missing"}},
}


def say(*parts):
    print(*parts, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_lcake():
    for d in ("build-bench", "build"):
        p = os.path.join(REPO, d, "bin", "lcake")
        if os.access(p, os.X_OK):
            return p
    return shutil.which("lcake") or os.path.join(REPO, "build", "bin", "lcake")


def check(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout.strip()


def timed(cmd, **kw):
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return dt, p


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="lcake-docker-bench.")
        self.svc = os.path.join(self.tmp, "services")
        self.project = os.path.join(self.tmp, "project")
        self.state = os.path.join(self.tmp, "state")
        self.port = free_port()
        self.registry = f"127.0.0.1:{self.port}"
        self.docker_host = None
        self.env = dict(os.environ)
        self.results = {}

    # ---- services and project ------------------------------------------------------------------
    def start(self):
        self.docker_host = check(["sh", os.path.join(SERVICES, "podman-service.sh"), "start", self.svc, str(self.port)])
        check(["sh", os.path.join(SERVICES, "registry.sh"), "start", self.svc, str(self.port)])
        for v in ("tiny-dropbear", "tiny-openssh"):
            check(["sh", os.path.join(SERVICES, "import-busybox.sh"), self.svc, f"localhost/lcake-busybox:{v}"])
        docker_config = os.path.join(self.tmp, "docker-config")
        os.makedirs(docker_config)
        with open(os.path.join(docker_config, "config.json"), "w") as f:
            f.write('{"auths": {}}')
        self.env.update({"DOCKER_HOST": self.docker_host, "DOCKER_CONFIG": docker_config,
                         "XDG_CONFIG_HOME": os.path.join(self.tmp, "xdg"), "DOCKER_BUILDKIT": "0"})
        shutil.copytree(os.path.join(REPO, "configs"), os.path.join(self.project, "configs"))
        shutil.copytree(os.path.join(REPO, "examples", "stack"), os.path.join(self.project, "examples", "stack"))
        with open(os.path.join(self.project, "configs", "targets", "docker-build-only.json"), "w") as f:
            json.dump(BUILD_ONLY_TARGET, f, indent=2)
        self.script = os.path.join(self.project, "examples", "stack", "files", "newinstall.sh")
        with open(self.script) as f:
            self.script_text = f.read()

    def stop(self):
        for cmd in (["registry.sh", "stop", self.svc], ["podman-service.sh", "stop", self.svc]):
            subprocess.run(["sh", os.path.join(SERVICES, cmd[0])] + cmd[1:],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            say(f"kept {self.tmp}")

    def lcake(self, target, extra):
        cmd = [self.args.lcake, "build", "--config-dir", os.path.join(self.project, "configs"),
               "--target", target, "--state-dir", self.state] + extra
        if target == "docker":
            cmd += ["--set", f"/target/uploader/settings/registry={self.registry}"]
        return timed(cmd, cwd=self.project, env=self.env)

    def artifact_id(self, target, layer, stage="build"):
        arts = json.loads(check([self.args.lcake, "artifacts", "--json", "--state-dir", self.state], env=self.env))
        found = [a for a in arts if a["target"] == target and a["variant"] == VARIANT
                 and a["layer"] == layer and a["stage"] == stage]
        return found[-1]["artifact"]["id"]

    def change_input(self, marker):
        """A never-seen newinstall.sh: the layer's key (and docker's COPY cache) miss."""
        with open(self.script, "w") as f:
            f.write(self.script_text + f"\n# docker-bench run {marker}\n")

    # ---- the peer: docker build ----------------------------------------------------------------
    def docker_build(self, parent, tag):
        ctx = os.path.join(self.tmp, "context")
        os.makedirs(ctx, exist_ok=True)
        shutil.copy(self.script, os.path.join(ctx, "newinstall.sh"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(DOCKERFILE.format(parent=parent, root=STACK_ROOT, variant=VARIANT))
        if self.peer == "docker":
            return timed(["docker", "build", "-q", "-t", tag, ctx], env=self.env)
        # No docker CLI: what its legacy builder does, POST /build with a tar context.
        t = time.monotonic()
        tar = subprocess.run(["tar", "-C", ctx, "-cf", "-", "."], stdout=subprocess.PIPE, check=True).stdout
        sock = self.docker_host[len("unix://"):]
        p = subprocess.run(["curl", "-fsS", "--unix-socket", sock, "-X", "POST", "-H", "Content-Type: application/x-tar",
                            "--data-binary", "@-", f"http://d/v1.41/build?t={tag}&q=1"],
                           input=tar, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dt = time.monotonic() - t
        if p.returncode != 0 or b'"error' in p.stdout:
            raise RuntimeError(f"POST /build failed: {p.stderr.decode()} {p.stdout.decode()[-2000:]}")
        return dt, p

    def docker_push(self, tag):
        return timed(["docker", "push", "-q", tag], env=self.env)

    # ---- the benches ---------------------------------------------------------------------------
    def d2_noop(self):
        say("D2: cold build of the example pipeline (both variants), then no-op rebuilds")
        cold, _ = self.lcake("docker", [])
        say(f"  cold: {cold:.1f} s")
        times = []
        for i in range(self.args.noop_runs):
            dt, p = self.lcake("docker", [])
            if "building" in p.stderr or "pushing" in p.stderr or "verifying" in p.stderr:
                raise RuntimeError("a no-op run did work:\n" + p.stderr[-2000:])
            times.append(dt)
            say(f"  no-op {i + 1}: {dt:.3f} s")
        med = statistics.median(times)
        self.results["D2"] = {"cold_s": cold, "noop_s": times, "noop_median_s": med,
                              "verdict": "PASS" if med < 1.0 else "MISS"}

    def d1_layer(self):
        runs = self.args.layer_runs
        say(f"D1: layer newinstall rebuilt after an input change, {runs} runs each, interleaved; peer: "
            + ("docker CLI `docker build` (legacy builder, DOCKER_BUILDKIT=0)" if self.peer == "docker"
               else "POST /build with a tar context (curl; no docker CLI)"))
        only = ["--only", f"{VARIANT}/newinstall"]
        # Parents cached in both targets; docker builds FROM lcake's own base image.
        self.lcake("docker-build-only", ["--only", f"{VARIANT}/base"])
        parent = self.artifact_id("docker-build-only", "base")
        rows = {"lcake_build": [], "docker_build": [], "lcake_full": [], "docker_build_push": []}
        repo = f"{self.registry}/bench/newinstall"

        def lcake_build(i):
            dt, p = self.lcake("docker-build-only", only)
            if f"{VARIANT}/newinstall: building" not in p.stderr or f"{VARIANT}/base: cached" not in p.stderr:
                raise RuntimeError("lcake did not rebuild exactly newinstall:\n" + p.stderr[-2000:])
            return dt

        def docker_build(i):
            return self.docker_build(parent, f"bench/newinstall:{i}")[0]

        def lcake_full(i):
            return self.lcake("docker", only)[0]

        def docker_build_push(i):
            tag = f"{repo}:{i}"
            return self.docker_build(parent, tag)[0] + self.docker_push(tag)[0]

        # Strictly alternating (ABAB…): each measured run follows one of the other tool's, after
        # one unmeasured warm-up run of each (the first of a kind pays for cold page caches).
        pairs = [(lcake_build, docker_build)]
        if self.args.full and self.peer == "docker":
            pairs.append((lcake_full, docker_build_push))
        for ours, theirs in pairs:
            for fn in (ours, theirs):
                self.change_input(f"warm-up-{fn.__name__}")
                fn("warm-up")
            for i in range(runs):
                for fn in (ours, theirs):
                    self.change_input(f"{i}-{fn.__name__}")  # a new input for every build
                    rows[fn.__name__].append(fn(i))
                say(f"  {ours.__name__} {rows[ours.__name__][-1]:.2f} s, {theirs.__name__} {rows[theirs.__name__][-1]:.2f} s")
        med = {k: statistics.median(v) for k, v in rows.items() if v}
        ratio = med["lcake_build"] / med["docker_build"]
        paired = statistics.median(a / b for a, b in zip(rows["lcake_build"], rows["docker_build"]))
        self.results["D1"] = {"peer": self.peer, "runs": rows, "median_s": med, "ratio": ratio,
                              "paired_ratio_median": paired, "verdict": "PASS" if ratio <= 1.0 else "MISS"}
        if "lcake_full" in med and "docker_build_push" in med:
            self.results["D1"]["full_ratio"] = med["lcake_full"] / med["docker_build_push"]

    def report(self):
        say("")
        say(f"{'bench':<34} {'lcake':>10} {'peer':>10} {'ratio':>8}  goal        result")
        if "D1" in self.results:
            d1 = self.results["D1"]
            m = d1["median_s"]
            say(f"{'D1 layer, build only':<34} {m['lcake_build']:>8.2f} s {m['docker_build']:>8.2f} s "
                f"{d1['ratio']:>7.2f}x  <= 1.0x      {d1['verdict']}  (paired median {d1['paired_ratio_median']:.2f}x)")
            if "full_ratio" in d1:
                say(f"{'D1 layer, build+push (+publish)':<34} {m['lcake_full']:>8.2f} s {m['docker_build_push']:>8.2f} s "
                    f"{d1['full_ratio']:>7.2f}x  (info)")
        if "D2" in self.results:
            d2 = self.results["D2"]
            say(f"{'D2 no-op rebuild, 6 layers':<34} {d2['noop_median_s']:>8.3f} s {'':>10} {'':>8}  < 1 s       "
                f"{d2['verdict']}  (cold {d2['cold_s']:.1f} s)")
        load = os.getloadavg()
        self.results["loadavg"] = load
        say(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; lcake {self.args.lcake}")
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump(self.results, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lcake", default=default_lcake(), help="lcake binary (default: build-bench/ or build/)")
    ap.add_argument("--only", default="D1,D2", help="comma-separated benches to run")
    ap.add_argument("--layer-runs", type=int, default=5, help="D1 runs of lcake and of docker build each")
    ap.add_argument("--noop-runs", type=int, default=5, help="D2 no-op rebuilds")
    ap.add_argument("--no-full", dest="full", action="store_false",
                    help="D1: skip the build+push rows (lcake's full docker target vs docker build + push)")
    ap.add_argument("--peer", choices=["auto", "docker", "curl"], default="auto",
                    help="D1 peer: the docker CLI, or POST /build through curl (auto: docker if on PATH)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    args.lcake = os.path.abspath(args.lcake)  # lcake runs in the temp project dir
    b = Bench(args)
    b.peer = args.peer if args.peer != "auto" else ("docker" if shutil.which("docker") else "curl")
    only = args.only.split(",")
    try:
        b.start()
        if "D2" in only:
            b.d2_noop()
        if "D1" in only:
            b.d1_layer()
        b.report()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        say(f"ERROR: {e}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        b.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
