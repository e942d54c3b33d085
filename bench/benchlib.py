"""What the Python benchmarks share: output, env files, and measuring one child process."""
import os
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


def measure(argv, env):
    """(seconds, peak RSS bytes, stdout) of one child, via fork + wait4 on its pid.

    Its stderr is kept aside and quoted (the last 2000 characters) when it exits non-zero."""
    r, w = os.pipe()
    errf = tempfile.TemporaryFile()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(errf.fileno(), 2)
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    secs = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        errf.seek(0)
        raise RuntimeError("%s exited %d: %s" % (argv[0], code, errf.read().decode(errors="replace")[-2000:]))
    return secs, usage.ru_maxrss * 1024, b"".join(chunks).decode()


def find_bench_binary(repo, name, given=None):
    """The bench helper `name`: `given` (--uploader), else REPO/build-bench/bin, else REPO/build/bin;
    None when none of them is executable."""
    for cand in [given] if given else [os.path.join(repo, d, "bin", name) for d in ("build-bench", "build")]:
        if cand and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return None
