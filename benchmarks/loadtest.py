"""Load test: python -m benchmarks.loadtest [--users 20] [--seconds 60] [--workers 2]

Starts gunicorn (gunicorn.conf.py, N workers) on 127.0.0.1 over the registry-scale synthetic
registry, then runs U simulated users for S seconds. Each user loops: open a random page
(GET), then make a random filter change on it exactly as the browser does (the shell callback,
then every callback of the page, over HTTP). Traffic goes to loopback only; the run is bounded
in time and stops by itself. Prints errors and the p50/p95 of one update; exit 1 on any error.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.request

from concurrent.futures import ThreadPoolExecutor

from benchmarks.__main__ import SCENARIOS, ensure_registry, gunicorn, percentile, replay_update
from dashboard.replay import Replayer, layout_props, page_plan


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scale", choices=["registry", "stress"], default="registry")
    args = p.parse_args(argv)

    root = ensure_registry(args.scale)
    with gunicorn(root, workers=args.workers) as url:
        os.environ["REGISTRY_DATA"] = str(root)
        from dashboard import data
        from dashboard.app import PAGES, create_app
        from dashboard import app as app_module
        create_app()   # registers the pages, so the plan below knows each page's callbacks
        deps = json.loads(urllib.request.urlopen(url + "/_dash-dependencies").read())
        shell_ids = set(layout_props(app_module.layout()))
        plans = {path: page_plan(deps, path, shell_ids) for path, _ in PAGES}
        snapshot_id = data.resolve("latest").snapshot_id

        deadline = time.time() + args.seconds
        times, errors, lock = [], [], threading.Lock()

        def user(seed: int):
            rng = random.Random(seed)
            replayer = Replayer(base_url=url)
            browser = ThreadPoolExecutor(max_workers=6)     # each user's browser: 6 connections
            while time.time() < deadline:
                path = rng.choice(list(plans))
                callbacks, sync, base = plans[path]
                try:
                    urllib.request.urlopen(url + path, timeout=60).read()
                    ms = replay_update(replayer, sync, callbacks, base, snapshot_id, rng.choice(SCENARIOS),
                                       pool=browser)
                    with lock:
                        times.append(ms)
                except Exception as e:      # every failure is counted and reported
                    with lock:
                        errors.append(f"{path}: {e}"[:300])

        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
    result = {"users": args.users, "workers": args.workers, "seconds": round(elapsed, 1), "updates": len(times),
              "errors": len(errors), "p50_ms": round(statistics.median(times), 1) if times else None,
              "p95_ms": round(percentile(times, 95), 1) if times else None}
    print(json.dumps(result))
    for e in errors[:10]:
        print("error:", e, file=sys.stderr)
    return 1 if errors or not times else 0


if __name__ == "__main__":
    sys.exit(main())
