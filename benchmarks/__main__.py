"""Benchmark every page at registry and stress scale: python -m benchmarks [--scale registry|stress|all]
(with --browser: the time a person feels in Chromium, benchmarks/browser.py)

For each page it replays realistic filter changes (and page-option changes) through the real
HTTP callback endpoint, /_dash-update-component, with the JSON the browser posts (built from
/_dash-dependencies), through the Flask test client. One "update" is what the browser does when a
control changes: the shell callback that turns it into filter state, then every callback of the
page and the banner at once (the browser posts them concurrently, at most 6 per host). Its time
is the wall time until the last of them has answered.

The floor is the time DuckDB alone takes for the SQL those callbacks ran (recorded at the data
seam, re-executed and fetched as Arrow). Prints a table and writes benchmarks/results.json.
Timing never fails anything: targets are printed beside the numbers. p50/p95 are over --reps
passes (default 3: 30 updates per page) with the result cache emptied before each pass, so every
update is computed from scratch (with one pass, p95 of 10 updates would be their maximum);
"cached" repeats the same changes, served from the cache, reps - 1 times.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dashboard.replay import Replayer, layout_props, page_plan, update_values

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "cache"
SCALES = {"registry": 600, "stress": 100_000}
TARGET_P95_MS = {"registry": 100, "stress": 500}

# realistic filter changes a sponsor or a committee member makes, in order
SCENARIOS = [
    {},
    {"bclc": ["C"]},
    {"bclc": ["B"], "child_pugh": ["A"]},
    {"site": ["S01", "S02"]},
    {"site": ["S03"], "bclc": ["B", "C"]},
    {"sex": ["F"], "etiology": ["HBV"]},
    {"ecog": ["0", "1"], "age": [50, 75]},
    {"enrolled": ["2023-07-01", "2024-06-30"]},
    {"etiology": ["HCV", "unknown"]},
    {},
]
WARMUP = [{"child_pugh": ["C"]}]      # a filter the measured scenarios do not use


def ensure_registry(scale: str) -> Path:
    """Generate (once, cached in benchmarks/cache/) the registry of this scale."""
    root = CACHE / scale
    if not (root / "snapshots").is_dir() or not any((root / "snapshots").iterdir()):
        from dashboard.generate import generate_registry
        print(f"generating the {scale} registry ({SCALES[scale]:,} patients) into {root} ...", file=sys.stderr)
        generate_registry(root, n_patients=SCALES[scale], last_cut_only=scale == "stress", progress=True)
    return root


# --- one update, as the browser makes it ---------------------------------------------------------
def run_page(replayer, deps, page_path, shell_ids, snapshot_id, reps, scenarios=None):
    callbacks, sync, base_values = page_plan(deps, page_path, shell_ids)
    times = []
    for _ in range(reps):
        for scenario in scenarios or SCENARIOS:
            times.append(replay_update(replayer, sync, callbacks, base_values, snapshot_id, scenario))
    return times, callbacks, base_values


def replay_update(replayer, sync, callbacks, base_values, snapshot_id, scenario, pool=None) -> float:
    """One filter change as the browser sends it: the shell callback and the page's callbacks
    all at once, in one wave (on `pool`: one browser's connections). Returns the wall time in ms."""
    sync_values, values = update_values(base_values, snapshot_id, scenario)
    jobs = [(sync, sync_values)] + [(dep, values) for dep in callbacks]
    t0 = time.perf_counter()
    list((pool or POOL).map(lambda job: replayer.post(*job), jobs))
    return 1000 * (time.perf_counter() - t0)


# the browser's concurrent requests to one host (HTTP/1.1: 6 connections)
POOL = ThreadPoolExecutor(max_workers=6, thread_name_prefix="browser")


def empty_result_cache() -> None:
    """Remove every stored result (views, exports, counts) of the benchmark's cache folder, which
    this process and a benchmarked gunicorn share: the next pass computes everything again. The
    folder itself stays (the servers' stores write into it)."""
    from dashboard import cache
    cache.store().clear()


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))]


def floor_ms(recorded) -> float:
    """DuckDB alone: re-run each recorded query (variables bound, result fetched as Arrow)."""
    from dashboard import data
    total = 0.0
    for sql, snapshot, filters, scope, params, variables in recorded:
        schema = data.ensure_schema(snapshot)
        cur = data.cursor()
        data._bind(cur, filters, scope, variables)
        cur.execute(f"use {data.DATABASE}.{data._ident(schema)}")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # the Arrow copy warning: we time the same fetch for every query
            cur.execute(sql, params or []).to_arrow_table()
        total += 1000 * (time.perf_counter() - t0)
    return total


def cold_start(root: Path) -> float:
    """Seconds from `python app.py` to the first page served (data already generated)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data", str(root)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, REGISTRY_WARM="off"))
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=1)
                return time.perf_counter() - t0
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError("the dashboard did not start")
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(root: Path, workers: int = 2, **env):
    """gunicorn (gunicorn.conf.py, `workers` processes) on 127.0.0.1 over the registry at root;
    yields its base URL and stops it on exit. No background cache warming."""
    from benchmarks.loadtest import serve        # imported here: loadtest imports this module
    with serve(root, workers, env=env) as server:
        yield server.url


def bench_scale(scale: str, reps: int, only=None, server: str = "test-client") -> tuple[list[dict], float]:
    root = ensure_registry(scale)
    os.environ["REGISTRY_DATA"] = str(root)
    import tempfile
    os.environ["REGISTRY_CACHE"] = tempfile.mkdtemp(prefix="bench-cache-")     # start with nothing cached
    if server == "gunicorn":
        with gunicorn(root) as url:
            return bench_over_http(scale, reps, only, url), None
    from dashboard import data
    from dashboard.app import PAGES, create_app
    app = create_app()
    client = app.server.test_client()
    client.get("/")
    deps = client.get("/_dash-dependencies").get_json()
    snapshot = data.resolve("latest")
    from dashboard import app as app_module
    shell_ids = set(layout_props(app_module.layout()))
    rows = []
    recorded: list = []
    original = data._run              # where every query of data.execute and data.value runs

    def recording(sql, snapshot, filters, scope, params, variables, fetch):
        recorded.append((sql, snapshot, filters, scope, params, variables))
        return original(sql, snapshot, filters, scope, params, variables, fetch)

    for path, label in PAGES:
        if only and path not in only and label not in only:
            continue
        data._run = recording
        try:
            replay = Replayer(client, deps)
            run_page(replay, deps, path, shell_ids, snapshot.snapshot_id, 1, WARMUP)   # schemas, imports
            recorded.clear()
            # `reps` passes with every result computed (the result cache emptied before each), then
            # reps - 1 passes served from the cache; the floor from the first pass's queries
            cold, callbacks, n_queries, n_first = [], None, None, None
            for _ in range(max(reps, 1)):
                empty_result_cache()
                times, callbacks, _ = run_page(replay, deps, path, shell_ids, snapshot.snapshot_id, 1)
                cold += times
                if n_queries is None:
                    n_queries, n_first = len(recorded), len(times)
            warm, _, _ = run_page(replay, deps, path, shell_ids, snapshot.snapshot_id, max(reps - 1, 1))
        finally:
            data._run = original
        floor = floor_ms(recorded[:n_queries]) / n_first
        p50, p95 = statistics.median(cold), percentile(cold, 95)
        rows.append({"scale": scale, "patients": SCALES[scale], "page": label, "p50_ms": round(p50, 1),
                     "p95_ms": round(p95, 1), "floor_ms": round(floor, 1),
                     "ratio": round(p50 / floor, 1) if floor > 0 else None, "callbacks": len(callbacks),
                     "cached_p50_ms": round(statistics.median(warm), 1),
                     "cached_p95_ms": round(percentile(warm, 95), 1)})
        print(f"{scale:9} {SCALES[scale]:>7,} {label:17} callbacks={len(callbacks):2} p50={p50:8.1f} ms "
              f"p95={p95:8.1f} ms floor={floor:7.1f} ms cached p95={rows[-1]['cached_p95_ms']:7.1f} ms "
              f"(target p95 < {TARGET_P95_MS[scale]} ms)", file=sys.stderr)
    return rows, cold_start(root) if scale == "registry" else None


def bench_over_http(scale: str, reps: int, only, url: str) -> list[dict]:
    """The same replay against a live server (the deployment: gunicorn, 2 workers x 4 threads):
    the page's callbacks spread over the workers as the browser's requests do. No floor here."""
    from dashboard import data
    from dashboard import app as app_module
    from dashboard.app import PAGES, create_app
    create_app()                     # registers the pages, so the plan knows each page's callbacks
    deps = json.loads(urllib.request.urlopen(url + "/_dash-dependencies").read())
    shell_ids = set(layout_props(app_module.layout()))
    snapshot_id = data.resolve("latest").snapshot_id
    replay = Replayer(base_url=url, deps=deps)
    rows = []
    for path, label in PAGES:
        if only and path not in only and label not in only:
            continue
        run_page(replay, deps, path, shell_ids, snapshot_id, 1, WARMUP)     # each worker's schema
        run_page(replay, deps, path, shell_ids, snapshot_id, 1, WARMUP * 4)
        cold = []
        for _ in range(max(reps, 1)):
            empty_result_cache()             # the server's cache folder: every result computed again
            times, callbacks, _ = run_page(replay, deps, path, shell_ids, snapshot_id, 1)
            cold += times
        warm, _, _ = run_page(replay, deps, path, shell_ids, snapshot_id, max(reps - 1, 1))
        p50, p95 = statistics.median(cold), percentile(cold, 95)
        rows.append({"scale": scale, "patients": SCALES[scale], "page": label, "server": "gunicorn 2x4",
                     "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "floor_ms": None, "ratio": None,
                     "callbacks": len(callbacks), "cached_p50_ms": round(statistics.median(warm), 1),
                     "cached_p95_ms": round(percentile(warm, 95), 1)})
        print(f"{scale:9} {SCALES[scale]:>7,} {label:17} gunicorn p50={p50:8.1f} ms p95={p95:8.1f} ms "
              f"cached p95={rows[-1]['cached_p95_ms']:7.1f} ms (target p95 < {TARGET_P95_MS[scale]} ms)",
              file=sys.stderr)
    return rows


def keep_other_keys(path: Path, result: dict) -> dict:
    """`result` with the keys of the results file it does not set (the browser benchmark's)."""
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return result
    return {**current, **result} if isinstance(current, dict) else result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["registry", "stress", "all"], default="registry")
    parser.add_argument("--reps", type=int, default=3, help="passes over the scenarios per page, computed (cache emptied before each) and then cached (reps - 1)")
    parser.add_argument("--output", default=str(HERE / "results.json"))
    parser.add_argument("--page", action="append", help="only this page (label or path), repeatable")
    parser.add_argument("--server", choices=["test-client", "gunicorn"], default="test-client",
                        help="replay through the Flask test client in this process (default; gives the DuckDB "
                             "floor) or over HTTP against gunicorn with 2 workers (the deployment)")
    parser.add_argument("--browser", action="store_true",
                        help="drive headless Chromium through every page against the real app instead "
                             "(benchmarks/browser.py); writes the \"browser\" key of --output")
    parser.add_argument("--quiet", action="store_true", help="--browser: no progress bar")
    parser.add_argument("--patients", type=int, help="--browser: this many patients instead of the scale's "
                                                     "(a smoke run)")
    parser.add_argument("--markdown", action="store_true", help="--browser: also print the table as Markdown")
    parser.add_argument("--settle-ms", type=float, default=None,
                        help="--browser: a settled page must stay quiet this long to count (default 300; "
                             "not part of the time)")
    parser.add_argument("--pages", help="--browser: only these pages (labels or paths, comma-separated)")
    parser.add_argument("--trace", action="store_true",
                        help="--browser: one action with Chromium's performance trace: print where the main "
                             "thread's time went and write the trace (benchmarks/traces/) for DevTools")
    parser.add_argument("--action", default="dropdown", help="--trace: the action (open, shared link, dropdown, "
                                                               "slider, chip, page option, data cut, back, clear all)")
    parser.add_argument("--cached", action="store_true", help="--trace: keep the result cache (default: emptied "
                                                              "before the traced action)")
    parser.add_argument("--trace-output", help="--trace: the trace file (default benchmarks/traces/PAGE-ACTION.json)")
    args = parser.parse_args(argv)
    if args.pages:
        args.page = (args.page or []) + [p.strip() for p in args.pages.split(",") if p.strip()]
    scales = ["registry", "stress"] if args.scale == "all" else [args.scale]
    if args.browser and args.trace:
        from benchmarks import browser
        browser.trace_main((args.page or ["/response"])[0], args.action, scales[0], args.patients, args.cached,
                           args.trace_output, args.quiet,
                           args.settle_ms if args.settle_ms is not None else browser.QUIET_MS)
        return 0
    if args.browser:
        from benchmarks import browser
        for scale in scales:
            browser.main(scale, args.reps, args.quiet, Path(args.output), args.patients, args.page, args.markdown,
                         args.settle_ms if args.settle_ms is not None else browser.QUIET_MS)
        return 0
    runs, cold = [], None
    for scale in scales:
        # each scale in its own process: a fresh DuckDB connection and an honest peak memory
        if len(scales) > 1:
            pages = [x for p in (args.page or []) for x in ("--page", p)]
            out = subprocess.run([sys.executable, "-m", "benchmarks", "--scale", scale, "--reps", str(args.reps),
                                  "--server", args.server,
                                  "--output", str(CACHE / f"results-{scale}.json"), *pages], cwd=ROOT, check=True)
            part = json.loads((CACHE / f"results-{scale}.json").read_text())
            runs += part["runs"]
            cold = part["cold_start_s"] if part.get("cold_start_s") is not None else cold
            continue
        rows, cold_s = bench_scale(scale, args.reps, args.page, args.server)
        runs += rows
        cold = cold_s if cold_s is not None else cold
    # this process, or with --server gunicorn the largest worker (descendants, once stopped)
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    if len(scales) > 1:
        peak = max(json.loads((CACHE / f"results-{s}.json").read_text())["peak_rss_mb"] for s in scales)
    result = {"runs": runs, "cold_start_s": round(cold, 2) if cold is not None else None,
              "peak_rss_mb": round(peak, 1)}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(keep_other_keys(Path(args.output), result), indent=2) + "\n")
    print(f"\n{'scale':9} {'patients':>8} {'page':17} {'p50 ms':>8} {'p95 ms':>8} {'floor ms':>9} {'ratio':>6}"
          f" {'cached p50':>10} {'cached p95':>10}")
    for r in runs:
        print(f"{r['scale']:9} {r['patients']:>8,} {r['page']:17} {r['p50_ms']:>8} {r['p95_ms']:>8} "
              f"{r['floor_ms'] if r['floor_ms'] is not None else '-':>9} "
              f"{r['ratio'] if r['ratio'] is not None else '-':>6} "
              f"{r['cached_p50_ms']:>10} {r['cached_p95_ms']:>10}")
    print("p50/p95: wall time of an update, the page's callbacks posted concurrently as the browser does, "
          "every result computed (nothing cached); cached: the same "
          "changes again, served from the result cache. Targets: p95 < 100 ms (registry), < 500 ms (stress); cold start < 3 s.")
    print(f"cold start: {result['cold_start_s']} s   peak RSS: {result['peak_rss_mb']} MB   -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
