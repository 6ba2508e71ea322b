#!/usr/bin/env python3
"""Side-by-side benchmark: moto's Step Functions emulation vs flowgate (issue 7).

Measures, on this machine, the nearest peer doing the same work as flowgate's loadgen
scenario 3 (`alibaba-e2e`): a STANDARD state machine of three Pass states, started
asynchronously (StartExecution) and polled (DescribeExecution) until SUCCEEDED, end to end
per execution, at fixed concurrency for a fixed duration. Optionally runs flowgate's own
scenario 3 with the same duration and concurrency afterwards (never at the same time, so
the two never share the 2 cores) and prints the ratio flowgate/moto.

    python3 bench/moto_side_by_side.py --setup              # once: venv + pinned moto
    python3 bench/moto_side_by_side.py                       # moto only
    python3 bench/moto_side_by_side.py --flowgate            # moto, then flowgate, ratio

Notes:
* moto only *executes* state machines when its config `stepfunctions.execute_state_machine`
  is true (moto 5.x; default false returns static data). Under `moto_server` that config is
  set with `POST /moto-api/config`; the script sets it and then checks, before timing, that
  an execution's history really went through states a, b and c.
* moto has no long-poll on DescribeExecution (flowgate has `WaitTimeSeconds`), so the moto
  client polls with a small sleep (`--poll-interval`, default 5 ms); polls are counted.
* Only loopback traffic; every loop is bounded by a duration or a count.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "moto-venv")
VENV_PY = os.path.join(VENV, "bin", "python")
MOTO_SERVER = os.path.join(VENV, "bin", "moto_server")
REQUIREMENTS = os.path.join(ROOT, "bench", "requirements-moto.txt")
MOTO_SPEC = "moto[server,stepfunctions]==5.2.5"
LOADGEN = os.path.join(ROOT, "target", "release", "examples", "loadgen")
FLOWGATE = os.path.join(ROOT, "target", "release", "flowgate")
BASELINE = os.path.join(ROOT, "target", "release", "examples", "baseline_server")

# Same flow as loadgen's PASS3 (three Pass states a -> b -> c), in ASL.
ASL = json.dumps(
    {
        "Comment": "flowgate loadgen scenario 3 equivalent",
        "StartAt": "a",
        "States": {
            "a": {"Type": "Pass", "Next": "b"},
            "b": {"Type": "Pass", "Next": "c"},
            "c": {"Type": "Pass", "End": True},
        },
    }
)
ROLE = "arn:aws:iam::123456789012:role/bench"
REGION = "us-east-1"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setup", action="store_true",
                   help=f"create {os.path.relpath(VENV, ROOT)} and install {MOTO_SPEC} + boto3 "
                        "(pinned from bench/requirements-moto.txt if present)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    p.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    p.add_argument("--poll-interval", type=float, default=0.005,
                   help="sleep between DescribeExecution polls, seconds (default 0.005)")
    p.add_argument("--max-polls", type=int, default=2000,
                   help="polls per execution before it counts as an error (default 2000)")
    p.add_argument("--warmup", type=int, default=20,
                   help="executions run (untimed) before measuring (default 20)")
    p.add_argument("--flowgate", action="store_true",
                   help="also run flowgate's loadgen scenario alibaba-e2e and print the ratio")
    p.add_argument("--flowgate-concurrency", type=int, default=None,
                   help="concurrency for the flowgate run (default: same as --concurrency)")
    p.add_argument("--no-build", action="store_true",
                   help="with --flowgate, fail instead of running cargo build when binaries are missing")
    return p.parse_args()


# ---------------------------------------------------------------- venv / re-exec

def setup_venv():
    if not os.path.exists(VENV_PY):
        print(f"creating venv {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [VENV_PY, "-m", "pip", "install", "--quiet"]
    if os.path.exists(REQUIREMENTS):
        subprocess.run(pip + ["-r", REQUIREMENTS], check=True)
    else:
        subprocess.run(pip + [MOTO_SPEC, "boto3"], check=True)
        frozen = subprocess.run([VENV_PY, "-m", "pip", "freeze"], check=True,
                                capture_output=True, text=True).stdout
        with open(REQUIREMENTS, "w") as f:
            f.write(f"# pip freeze of target/moto-venv after `pip install '{MOTO_SPEC}' boto3`\n")
            f.write("# (Python %d.%d); used by bench/moto_side_by_side.py --setup\n"
                    % sys.version_info[:2])
            f.write(frozen)
        print(f"wrote {REQUIREMENTS}", flush=True)


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def reexec_in_venv():
    """Runs this script under the venv's python (boto3 and moto live there)."""
    if in_venv():
        return
    if not os.path.exists(VENV_PY) or not os.path.exists(MOTO_SERVER):
        sys.exit(f"no moto venv at {VENV}: run `python3 {os.path.relpath(__file__, ROOT)} --setup` first")
    args = [a for a in sys.argv[1:] if a != "--setup"]
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + args)


# ---------------------------------------------------------------- moto server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    """(cpu seconds user+system, RSS MiB) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        return cpu, rss
    except (OSError, StopIteration, IndexError, ValueError):
        return 0.0, 0.0


class Moto:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(ROOT, "target", "tmp", f"moto-server-{self.port}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "w")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION=REGION)
        self.started = time.monotonic()
        self.proc = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/config", timeout=2) as r:
                    if 200 <= r.status < 300:  # moto answers 201
                        break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"moto_server exited ({self.proc.returncode}); see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"moto_server not ready in 30 s; see {self.log_path}")
            time.sleep(0.05)
        self.startup = time.monotonic() - self.started

    def enable_execution(self):
        body = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
        req = urllib.request.Request(f"{self.url}/moto-api/config", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
        # moto 5.2.5's GET /moto-api/config echoes only batch and lambda, so the switch is
        # verified by check_real_execution (the history must go through a, b and c).

    def stat(self):
        return proc_stat(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # moto_server exits 0 on SIGTERM
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        if self.proc.returncode == 0:
            os.remove(self.log_path)  # kept only when moto did not exit cleanly
        return self.proc.returncode


# ---------------------------------------------------------------- moto benchmark

def client(url, concurrency):
    import boto3
    from botocore.config import Config

    cfg = Config(inject_host_prefix=False, retries={"total_max_attempts": 1},
                 max_pool_connections=max(10, concurrency), connect_timeout=10, read_timeout=30)
    return boto3.session.Session().client(
        "stepfunctions", endpoint_url=url, region_name=REGION, config=cfg,
        aws_access_key_id="testing", aws_secret_access_key="testing")


def one_execution(sfn, arn, name, i, poll_interval, max_polls):
    """Start one execution and poll until it ends. Returns (ok, polls, status)."""
    ex = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps({"i": i}))
    polls = 0
    while polls < max_polls:
        polls += 1
        d = sfn.describe_execution(executionArn=ex["executionArn"])
        status = d["status"]
        if status == "SUCCEEDED":
            return json.loads(d.get("output", "null")) == {"i": i}, polls, status
        if status != "RUNNING":
            return False, polls, status
        time.sleep(poll_interval)
    return False, polls, "TIMEOUT"


def check_real_execution(sfn, arn, a):
    ok, polls, status = one_execution(sfn, arn, "check", -1, a.poll_interval, a.max_polls)
    ex_arn = arn.replace(":stateMachine:", ":execution:") + ":check"
    events = sfn.get_execution_history(executionArn=ex_arn)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events
               if "stateEnteredEventDetails" in e]
    if not ok or entered != ["a", "b", "c"]:
        raise SystemExit(f"moto did not really execute the flow: status {status}, "
                         f"states entered {entered} (execute_state_machine off?)")
    return polls


def pct(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(int(len(sorted_values) * p), len(sorted_values) - 1)]


def bench_moto(a):
    import moto
    import boto3

    moto_version, boto3_version = moto.__version__, boto3.__version__
    m = Moto()
    try:
        m.enable_execution()
        setup = client(m.url, 1)
        arn = setup.create_state_machine(name="bench_std", definition=ASL, roleArn=ROLE,
                                         type="STANDARD")["stateMachineArn"]
        check_polls = check_real_execution(setup, arn, a)
        for w in range(a.warmup):
            one_execution(setup, arn, f"warm{w}", w, a.poll_interval, a.max_polls)


        # boto3 clients are built before the clock starts (building one costs ~0.1 s of CPU).
        clients = [client(m.url, 1) for _ in range(a.concurrency)]

        def worker(w):
            sfn = clients[w]
            i = w * 1_000_000_000
            my_lat, my_done, my_err, my_polls = [], [], 0, 0
            while time.monotonic() < deadline:
                t = time.monotonic()
                try:
                    ok, polls, status = one_execution(sfn, arn, f"e{i}", i, a.poll_interval,
                                                      a.max_polls)
                except Exception as e:  # counted, not fatal
                    ok, polls, status = False, 0, type(e).__name__
                end = time.monotonic()
                i += 1
                my_polls += polls
                if ok:
                    my_lat.append(end - t)
                    my_done.append(end - start)
                else:
                    my_err += 1
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1
            with lock:
                lat.extend(my_lat)
                done_at.extend(my_done)
                errors[0] += my_err
                polls_total[0] += my_polls

        lock = threading.Lock()
        lat, done_at, errors, polls_total, statuses = [], [], [0], [0], {}
        cpu0, rss0 = m.stat()
        start = time.monotonic()
        deadline = start + a.duration
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        cpu1, rss1 = m.stat()
    finally:
        rc = m.stop()

    lat.sort()
    n = len(lat)
    q = a.duration / 4
    first = sum(1 for d in done_at if d < q) / q
    last = sum(1 for d in done_at if a.duration - q <= d < a.duration) / q
    return {
        "moto": moto_version, "boto3": boto3_version, "startup_s": m.startup,
        "executions": n, "errors": errors[0], "error_statuses": statuses,
        "rate": n / elapsed, "elapsed": elapsed,
        "p50_ms": pct(lat, 0.50) * 1000, "p99_ms": pct(lat, 0.99) * 1000,
        "max_ms": (lat[-1] * 1000) if lat else 0.0,
        "mean_ms": statistics.fmean(lat) * 1000 if lat else 0.0,
        "polls_per_exec": polls_total[0] / max(1, n + errors[0]), "check_polls": check_polls,
        "rate_first_quarter": first, "rate_last_quarter": last,
        "server_cpu_s": cpu1 - cpu0, "rss_mib": rss1, "rss_before_mib": rss0,
        "exit_code": rc,
    }


# ---------------------------------------------------------------- flowgate

def ensure_flowgate(a):
    missing = [p for p in (LOADGEN, FLOWGATE, BASELINE) if not os.path.exists(p)]
    if not missing:
        return
    if a.no_build:
        sys.exit(f"missing {missing}; build with cargo build --release --bin flowgate "
                 "--example loadgen --example baseline_server")
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    print("building flowgate release binaries ...", flush=True)
    subprocess.run([cargo, "build", "--release", "--bin", "flowgate", "--example", "loadgen",
                    "--example", "baseline_server"], cwd=ROOT, check=True)


LINE = re.compile(r"^(3 alibaba.*?)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
                  r"(?:\s+\d+%)?\s*$")


def bench_flowgate(a):
    ensure_flowgate(a)
    c = a.flowgate_concurrency or a.concurrency
    cmd = [LOADGEN, "--scenario", "alibaba-e2e", "--duration", f"{a.duration:g}",
           "--concurrency", str(c), "--flowgate", FLOWGATE, "--baseline", BASELINE]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True,
                         timeout=a.duration + 120).stdout
    for line in out.splitlines():
        mt = LINE.match(line)
        if mt:
            return {"concurrency": c, "requests": int(mt[2]), "errors": int(mt[3]),
                    "rate": float(mt[4]), "p50_ms": float(mt[5]), "p99_ms": float(mt[6]),
                    "max_ms": float(mt[7]), "output": out}
    sys.exit(f"could not find the scenario 3 line in loadgen output:\n{out}")


# ---------------------------------------------------------------- main

def main():
    a = parse_args()
    if a.setup:
        setup_venv()
    reexec_in_venv()

    r = bench_moto(a)
    print(f"\nmoto {r['moto']} (moto_server, execute_state_machine=true), boto3 {r['boto3']}, "
          f"Python {sys.version.split()[0]}; start-up {r['startup_s'] * 1000:.0f} ms")
    print(f"concurrency {a.concurrency}, {a.duration:g} s, poll interval "
          f"{a.poll_interval * 1000:g} ms, {a.warmup} warm-up executions")
    hdr = f"{'':<44} {'executions':>10} {'errors':>6} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(hdr)
    print(f"{'moto: StartExecution + DescribeExecution poll':<44} {r['executions']:>10} "
          f"{r['errors']:>6} {r['rate']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
          f"{r['max_ms']:>8.1f}")
    if r["error_statuses"]:
        print(f"  error kinds: {r['error_statuses']}")
    print(f"  DescribeExecution calls per execution {r['polls_per_exec']:.2f}; per s in the first "
          f"quarter {r['rate_first_quarter']:.1f}, last quarter {r['rate_last_quarter']:.1f}")
    print(f"  moto_server CPU {r['server_cpu_s']:.1f} s over {r['elapsed']:.1f} s "
          f"({r['server_cpu_s'] / max(1, r['executions']) * 1000:.1f} ms per execution); "
          f"RSS {r['rss_before_mib']:.0f} -> {r['rss_mib']:.0f} MiB; exit code {r['exit_code']}")

    if a.flowgate:
        f = bench_flowgate(a)
        print(f"{'flowgate: loadgen alibaba-e2e (concurrency ' + str(f['concurrency']) + ')':<44} "
              f"{f['requests']:>10} {f['errors']:>6} {f['rate']:>9.1f} {f['p50_ms']:>8.2f} "
              f"{f['p99_ms']:>8.2f} {f['max_ms']:>8.1f}")
        if r["rate"] > 0:
            print(f"\nratio flowgate/moto: {f['rate'] / r['rate']:.0f}x executions per second; "
                  f"p50 latency moto/flowgate {r['p50_ms'] / max(f['p50_ms'], 1e-9):.0f}x")


if __name__ == "__main__":
    main()
