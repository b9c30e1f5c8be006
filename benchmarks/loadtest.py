"""Load test: python -m benchmarks.loadtest [--users 20] [--seconds 60] [--workers 2]

Starts gunicorn (gunicorn.conf.py, N workers) on 127.0.0.1 over the registry-scale synthetic
registry, then runs U simulated users for S seconds. Each user loops: open a random page
(GET), then make a random filter change on it exactly as the browser does (the shell callback,
then every callback of the page, over HTTP). Traffic goes to loopback only; the run is bounded
in time and stops by itself. Prints errors and the p50/p95 of one update; exit 1 on any error.

The gunicorn starter (`serve`), the worker lookup (`worker_pids`) and the user loop (`run_users`)
are shared with the fault run (benchmarks/faultrun.py).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.__main__ import ROOT, SCENARIOS, ensure_registry, free_port, percentile, replay_update
from dashboard.replay import Replayer, layout_props, page_plan


@dataclass
class Server:
    url: str
    proc: subprocess.Popen


@contextlib.contextmanager
def serve(root: Path, workers: int = 2, env: dict | None = None, log: Path | None = None, start_timeout: float = 120):
    """gunicorn (gunicorn.conf.py, `workers` processes) on 127.0.0.1 over the registry at root, with
    `env` added to this process's environment (REGISTRY_WARM=off unless env sets it) and its output
    in `log` (discarded without one). Yields a Server once /_dash-layout answers; stops it on exit
    (SIGTERM, then SIGKILL after 20 s)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = dict(os.environ, REGISTRY_DATA=str(root), PORT=str(port), HOST="127.0.0.1",
                    WEB_CONCURRENCY=str(workers), REGISTRY_WARM="off",
                    # no control socket: gunicorn's default path (~/.gunicorn/gunicorn.ctl) is one per user
                    GUNICORN_CMD_ARGS="--no-control-socket")
    full_env.update(env or {})
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:server"], cwd=ROOT,
                            env=full_env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    try:
        t0 = time.time()
        while True:
            try:
                urllib.request.urlopen(url + "/_dash-layout", timeout=2)
                break
            except urllib.error.HTTPError:      # an HTTP answer (401 with sign-in on): serving
                break
            except OSError:
                if proc.poll() is not None or time.time() - t0 > start_timeout:
                    raise RuntimeError("gunicorn did not start" + (f"; see {log}" if log else ""))
                time.sleep(0.2)
        yield Server(url, proc)
    finally:
        started = children(proc.pid)        # workers, and the cache warmer gunicorn.conf.py starts
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        for pid, start, _ in started:      # any left behind (the same process: same start time)
            if any(p == pid and s == start for p, s, _, _ in processes()):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if log:
            out.close()


def processes() -> list[tuple[int, int, int, bytes]]:
    """(pid, start time, parent pid, command line) of every process, read from /proc (Linux)."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue                     # ended meanwhile
        out.append((int(entry.name), int(stat[19]), int(stat[1]), cmdline))
    return out


def children(parent: int) -> list[tuple[int, int, bytes]]:
    """(pid, start time, command line) of the child processes of `parent`, oldest first."""
    return sorted((pid, start, cmd) for pid, start, ppid, cmd in processes() if ppid == parent)


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn workers of a master: its child processes running gunicorn (not the cache
    warmer it starts), oldest first."""
    return [pid for pid, _, cmd in children(master_pid) if b"gunicorn" in cmd]


def run_users(users: int, seconds: float, visit, grace: float = 90) -> float:
    """Run `users` simulated users, each calling visit(user_index, rng, pool) in a loop until
    `seconds` have passed; `pool` is the user's browser (6 connections). A user never starts a
    visit after the deadline; users still busy `grace` seconds after it are abandoned (daemon
    threads). Returns the elapsed seconds."""
    deadline = time.time() + seconds

    def user(i: int):
        rng = random.Random(i)
        with ThreadPoolExecutor(max_workers=6) as browser:      # each user's browser: 6 connections
            while time.time() < deadline:
                visit(i, rng, browser)

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline + grace - time.time()))
    return time.time() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scale", choices=["registry", "stress"], default="registry")
    args = p.parse_args(argv)

    root = ensure_registry(args.scale)
    with serve(root, workers=args.workers) as server:
        url = server.url
        os.environ["REGISTRY_DATA"] = str(root)
        from dashboard import data
        from dashboard.app import PAGES, create_app
        from dashboard import app as app_module
        create_app()   # registers the pages, so the plan below knows each page's callbacks
        deps = json.loads(urllib.request.urlopen(url + "/_dash-dependencies").read())
        shell_ids = set(layout_props(app_module.layout()))
        plans = {path: page_plan(deps, path, shell_ids) for path, _ in PAGES}
        snapshot_id = data.resolve("latest").snapshot_id
        times, errors, lock = [], [], threading.Lock()
        replayer = Replayer(base_url=url)

        def visit(_, rng, browser):
            path = rng.choice(list(plans))
            callbacks, sync, base = plans[path]
            try:
                urllib.request.urlopen(url + path, timeout=60).read()
                ms = replay_update(replayer, sync, callbacks, base, snapshot_id, rng.choice(SCENARIOS), pool=browser)
                with lock:
                    times.append(ms)
            except Exception as e:      # every failure is counted and reported
                with lock:
                    errors.append(f"{path}: {e}"[:300])

        elapsed = run_users(args.users, args.seconds, visit)
    result = {"users": args.users, "workers": args.workers, "seconds": round(elapsed, 1), "updates": len(times),
              "errors": len(errors), "p50_ms": round(statistics.median(times), 1) if times else None,
              "p95_ms": round(percentile(times, 95), 1) if times else None}
    print(json.dumps(result))
    for e in errors[:10]:
        print("error:", e, file=sys.stderr)
    return 1 if errors or not times else 0


if __name__ == "__main__":
    sys.exit(main())
