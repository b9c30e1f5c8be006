"""Warm the result cache for a data cut: python -m dashboard warm [--snapshot latest]

At a new data cut the first people to look are the steering committee, and they start from the
unfiltered pages. This computes every page's default view (no filter, default page options)
exactly as the browser asks for it (dashboard/replay.py posts the browser's callback JSON through
the Flask test client), so the results land in the shared result cache (dashboard/cache.py)
under the keys the browser's requests read. It changes nothing else and is safe to run at any
time, on any host that shares $REGISTRY_CACHE; `python app.py` and gunicorn start it in a
separate process after start-up (REGISTRY_WARM=off disables that).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def warm(snapshot: str = "latest", pages=None, progress: bool = False, app=None) -> dict[str, float]:
    """Compute and cache each page's unfiltered default view; returns seconds per page. `app`:
    the process's Dash app if it has one (Dash registers callbacks with the first app created)."""
    from dashboard import cache, data
    from dashboard.app import PAGES
    from dashboard.replay import Session, update_values
    if not cache.enabled():
        return {}
    from dashboard.access import User
    resolved = data.resolve(snapshot)
    # the committee's views (every site, patient level): what the first people to look at a cut see
    session = Session(app, user=User("cache-warmer", "committee"))
    timings = {}
    todo = [(path, label) for path, label in PAGES if not pages or path in pages or label in pages]
    for i, (path, label) in enumerate(todo, start=1):
        t0 = time.perf_counter()
        callbacks, sync, base = session.plan(path)
        sync_values, values = update_values(base, resolved.snapshot_id, {})
        session.replayer.post(sync, sync_values)
        for dep in callbacks:
            session.replayer.post(dep, values)
        timings[label] = time.perf_counter() - t0
        if progress:
            print(f"[{i}/{len(todo)}] {label}: {timings[label]:.1f} s", file=sys.stderr, flush=True)
    return timings


def start_in_background(data_dir: str | None = None) -> subprocess.Popen | None:
    """Run the warmer in its own process (its memory is freed when it ends), unless
    REGISTRY_WARM=off or the result cache is off."""
    if os.environ.get("REGISTRY_WARM") == "off" or os.environ.get("REGISTRY_CACHE") == "off":
        return None
    env = dict(os.environ)
    if data_dir:
        env["REGISTRY_DATA"] = str(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "warm", "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # reaped when it ends (else a zombie for the life of the server); gunicorn's master may reap it first
    threading.Thread(target=proc.wait, name="warm-reaper", daemon=True).start()
    return proc
