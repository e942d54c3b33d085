"""What the Python benchmarks share: output, env files, and measuring one child process."""
import os
import subprocess
import tempfile
import time


def say(*parts):
    print(*parts, flush=True)


def read_env(path):
    """KEY=VALUE lines of a file (the services' env files), comments skipped."""
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


TIME = "/usr/bin/time"  # GNU time (Debian `time`)


def measure(argv, env):
    """(seconds, peak RSS bytes, stdout) of one child.

    The peak RSS is GNU time's (its wait4 on the child it forks), not ours: a child forked from
    this Python process carries Python's high-water RSS through execve into its ru_maxrss (Linux
    folds the old address space's peak into it), so wait4 on our own fork reports
    max(our RSS, the child's). time is a small process, so its child's peak is the child's own.
    Its stderr is kept aside and quoted (the last 2000 characters) when it exits non-zero."""
    if not os.access(TIME, os.X_OK):
        raise RuntimeError("%s is not installed (Debian package `time`): it measures peak RSS" % TIME)
    errf = tempfile.TemporaryFile()
    with tempfile.NamedTemporaryFile(mode="r", prefix="rss-") as rss:
        t0 = time.monotonic()
        p = subprocess.run([TIME, "-f", "%M", "-o", rss.name, "--"] + list(argv), env=env,
                           stdout=subprocess.PIPE, stderr=errf)
        secs = time.monotonic() - t0
        if p.returncode != 0:
            errf.seek(0)
            raise RuntimeError("%s exited %d: %s" % (argv[0], p.returncode, errf.read().decode(errors="replace")[-2000:]))
        # time -o writes "Command exited with non-zero status" first on failure; the last line is %M (KiB)
        kib = int(rss.read().strip().splitlines()[-1])
    return secs, kib * 1024, p.stdout.decode()


def find_bench_binary(repo, name, given=None):
    """The bench helper `name`: `given` (--uploader), else REPO/build-bench/bin, else REPO/build/bin;
    None when none of them is executable."""
    for cand in [given] if given else [os.path.join(repo, d, "bin", name) for d in ("build-bench", "build")]:
        if cand and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return None
