#!/usr/bin/python3
"""Starts and stops the AWS test services: moto_server (signature checks on) behind the aws-sim proxy.

  aws-services.py start --dir D [--policy FILE] [--region R] [--faults JSON]   # writes D/env, D/env.json
  aws-services.py stop --dir D
Exit codes: 0 started/stopped, 77 moto_server is not installed (tests skip), 1 failure, 2 bad usage.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from awssim.client import Client, Credentials  # noqa: E402

ACCOUNT = "123456789012"
IAM_VERSION = "2010-05-08"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SKIP = 77


def moto_python():
    """The interpreter moto_server runs under (a pyenv shim or a script's shebang), or None."""
    exe = os.environ.get("MOTO_SERVER") or shutil.which("moto_server") or "/root/.pyenv/shims/moto_server"
    if not os.path.exists(exe):
        return None
    with open(exe, "rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    if first.startswith("#!") and "python" in first:
        return first[2:].split()[0]
    env = clean_env()
    try:
        real = subprocess.run(["pyenv", "which", "moto_server"], capture_output=True, text=True, env=env,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pyenv = os.path.join(os.path.dirname(os.path.dirname(exe)), "bin", "pyenv")
        try:
            real = subprocess.run([pyenv, "which", "moto_server"], capture_output=True, text=True, env=env,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    return moto_python_of(real)


def moto_python_of(script):
    with open(script, "rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    return first[2:].split()[0] if first.startswith("#!") else None


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
           and not k.startswith("AWS_")}
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, log, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s; see {log}")


def iam(client, action, **params):
    return client.query("iam", "us-east-1", action, params, IAM_VERSION)


def create_user(client, name, policy):
    iam(client, "CreateUser", UserName=name)
    iam(client, "PutUserPolicy", UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam(client, "CreateAccessKey", UserName=name).find(".//AccessKey")
    return Credentials(key.findtext("AccessKeyId"), key.findtext("SecretAccessKey"))


def spawn(argv, env, log_path):
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def start(args):
    py = moto_python()
    if not py:
        print("SKIPPED: moto_server not found: the AWS tests need moto with its server extra (not in Debian); "
              "install it where it is available, or set MOTO_SERVER to its moto_server", file=sys.stderr)
        return SKIP
    try:
        with open(args.policy, encoding="utf-8") as f:
            policy = json.load(f)
    except (OSError, ValueError) as e:
        print(f"aws-services: --policy {args.policy}: cannot read a JSON policy document: {e}", file=sys.stderr)
        return 2
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "moto.pid")):
        print(f"aws-services: {d} already has running services; stop them first", file=sys.stderr)
        return 2
    moto_port, sim_port = free_port(), free_port()
    moto_log = os.path.join(d, "moto.log")
    # The first three calls (the admin user, its policy, its key) go unchecked; all later ones are checked.
    moto = spawn([py, os.path.join(HERE, "moto_signed_server.py"), "-H", "127.0.0.1", "-p", str(moto_port)],
                 clean_env(INITIAL_NO_AUTH_ACTION_COUNT="3", MOTO_ENABLE_AMI_VALIDATION="true"), moto_log)
    write(os.path.join(d, "moto.pid"), f"{moto.pid}\n")
    try:
        wait_port(moto_port, moto, "moto_server", moto_log)
        endpoint = f"http://127.0.0.1:{moto_port}"
        anon = Client(endpoint, Credentials("AKIAIOSFODNN7EXAMPLE", "unchecked"))
        admin = create_user(anon, "aws-sim-admin", ADMIN_POLICY)
        signed = Client(endpoint, admin)
        user = create_user(signed, "lcake-test", policy)
        user_arn = f"arn:aws:iam::{ACCOUNT}:user/lcake-test"
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}]}
        iam(signed, "CreateRole", RoleName="lcake-test-role", AssumeRolePolicyDocument=json.dumps(trust))
        iam(signed, "PutRolePolicy", RoleName="lcake-test-role", PolicyName="lcake-test-role-policy",
            PolicyDocument=json.dumps(policy))
        admin_file = os.path.join(d, "admin-credentials.json")
        fd = os.open(admin_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"AccessKeyId": admin.access_key, "SecretAccessKey": admin.secret_key}, f)
        sim_log = os.path.join(d, "aws-sim.log")
        sim = spawn([sys.executable, os.path.join(HERE, "aws-sim.py"), "--port", str(sim_port),
                     "--moto", endpoint, "--state", os.path.join(d, "sim"), "--admin-credentials", admin_file,
                     "--faults", args.faults],
                    clean_env(), sim_log)
        write(os.path.join(d, "aws-sim.pid"), f"{sim.pid}\n")
        wait_port(sim_port, sim, "aws-sim", sim_log)
    except Exception as e:  # noqa: BLE001 - anything here means the services are unusable; undo them
        print(f"aws-services: start failed: {e}", file=sys.stderr)
        stop(args)
        return 1
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{sim_port}",
        "AWS_ACCESS_KEY_ID": user.access_key,
        "AWS_SECRET_ACCESS_KEY": user.secret_key,
        "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region,
        "AWS_TEST_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/lcake-test-role",
        "AWS_TEST_ACCOUNT_ID": ACCOUNT,
        "MOTO_ENDPOINT_URL": endpoint,
        "AWS_SIM_LOG": os.path.join(d, "sim", "requests.jsonl"),
        "AWS_SIM_STATE": os.path.join(d, "sim"),
        "MOTO_PID": str(moto.pid),
        "AWS_SIM_PID": str(sim.pid),
    }
    write(os.path.join(d, "env"), "".join(f"{k}={v}\n" for k, v in env.items()))
    write(os.path.join(d, "env.json"), json.dumps(env, indent=1) + "\n")
    print(env["AWS_ENDPOINT_URL"])
    return 0


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def stop_pid(pid_file):
    try:
        with open(pid_file, encoding="utf-8") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.1)
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass
            os.kill(pid, 0)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.unlink(pid_file)


def stop(args):
    d = os.path.abspath(args.dir)
    stop_pid(os.path.join(d, "aws-sim.pid"))  # first: it stops the instances it booted
    instances = os.path.join(d, "sim", "instances")
    if os.path.isdir(instances):  # qemu processes a killed simulator left behind
        for iid in os.listdir(instances):
            stop_pid(os.path.join(instances, iid, "qemu.pid"))
    stop_pid(os.path.join(d, "moto.pid"))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["start", "stop"])
    p.add_argument("--dir", required=True, help="state directory (logs, block store, env file)")
    p.add_argument("--policy", default=os.path.join(HERE, "minimal-policy.json"),
                   help="IAM policy document for the test user and role (default: minimal-policy.json)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--faults", default=os.environ.get("AWS_SIM_FAULTS", ""),
                   help="failure-injection rules aws-sim starts with, a JSON list (default: $AWS_SIM_FAULTS; "
                        "see awssim/faults.py)")
    args = p.parse_args()
    return start(args) if args.command == "start" else stop(args)


if __name__ == "__main__":
    sys.exit(main())
