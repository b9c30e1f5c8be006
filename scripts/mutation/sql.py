"""Scripted SQL mutation testing of queries/*_all.sql and queries/cohort.sql.

    python -m scripts.mutation.sql [--queries cohort,patient_endpoints_all] [--tests tests/test_views.py ...]
                                   [--timeout 240] [--output scripts/mutation/results-sql.json] [--list]

For each view, every mutant of scripts/mutation/sqlmut.py is written into a scratch copy of the
repository (the working tree is never touched), the tests that read the view run against it
(`-x -q -p no:randomly -m "not browser"`), and the mutant is recorded as

  killed    a test failed
  survived  every test passed: the tests would not notice this change of the SQL
  timeout   the run took longer than --timeout (counted as detected, as mutmut does)
  invalid   the mutated view does not build (DuckDB parser/binder error): not a behaviour, not counted

Kill rate = (killed + timeout) / (killed + timeout + survived). A progress line per mutant, then a
table per view, and a JSON report with every mutant's diff.

Speed: a parent process imports pytest, the dashboard and the test modules once; each mutant
runs in a process forked from it (as mutmut 3 does), with the dashboard's lru_caches cleared so
the mutated file is read. --no-fork runs `python -m pytest` in a fresh process instead.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.mutation.sqlmut import mutants

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VIEWS = sorted(p.stem for p in (ROOT / "queries").glob("*_all.sql")) + ["cohort"]

# The non-browser test files that read each view (directly or through a view built on it),
# the hand-worked view tests first: with -x a kill usually stops in the first file.
# Found by grep of the view names in dashboard/exports and tests/, checked by a canary mutant
# (the view emptied) that every set must kill.
PAGE = {
    "enrollment": ["tests/test_enrollment_page.py"],
    "survival": ["tests/test_survival_page.py"],
    "response": ["tests/test_response_page.py"],
    "safety": ["tests/test_safety_page.py"],
    "downstaging": ["tests/test_downstaging_page.py"],
}
# the hand-worked mutant tests (a few seconds each) run for every view, right after test_views
HAND = ["tests/test_mutants_views.py", "tests/test_mutants_sql_survivors.py"]
TESTS_BY_VIEW = {
    # every page reads cohort; the enrollment page's tests count it by site and filter, the other
    # pages' files are left out to keep a surviving mutant's run near a minute
    "cohort": ["tests/test_views.py", *HAND, "tests/test_data.py", *PAGE["enrollment"]],
    "cohort_all": ["tests/test_views.py", *HAND, "tests/test_data.py", *PAGE["enrollment"]],
    "patient_endpoints_all": ["tests/test_views.py", *HAND, *PAGE["survival"]],
    "tumour_burden_all": ["tests/test_views.py", *HAND, *PAGE["response"]],
    "best_response_all": ["tests/test_views.py", *HAND, *PAGE["response"], *PAGE["downstaging"]],
    "response_consistency_all": ["tests/test_views.py", *HAND, *PAGE["response"]],
    "spider_points_all": ["tests/test_views.py", *HAND, *PAGE["response"]],
    "swimmer_events_all": ["tests/test_views.py", *HAND, *PAGE["response"]],
    "downsizing_all": ["tests/test_views.py", *HAND, *PAGE["downstaging"]],
    "staging_outcomes_all": ["tests/test_views.py", *HAND, *PAGE["downstaging"]],
    "ae_episodes_all": ["tests/test_views.py", *HAND, *PAGE["safety"]],
    "ae_worst_grade_all": ["tests/test_views.py", *HAND, *PAGE["safety"]],
}
PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-m", "not browser", "-p", "no:cacheprovider",
               "--tb=short", "-W", "ignore"]
INVALID = re.compile(r"(Parser|Binder|Catalog) (Error|Exception)|(Parser|Binder|Catalog)Exception")
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)
COPY_IGNORE = shutil.ignore_patterns(".git", "mutants", "__pycache__", "*.pyc", "cache", "snapshots",
                                     "test-artifacts", "node_modules", ".cache")


def default_tests(view: str) -> list[str]:
    tests = TESTS_BY_VIEW.get(view)
    if tests is None:
        raise SystemExit(f"no test mapping for view {view!r}: pass --tests")
    return [t for t in dict.fromkeys(tests) if (ROOT / t).exists()]


def scratch_copy(src: Path) -> Path:
    """A copy of the repository (no .git, caches or data) to mutate."""
    dest = Path(tempfile.mkdtemp(prefix="sql-mutation-")) / "repo"
    shutil.copytree(src, dest, ignore=COPY_IGNORE)
    return dest


class Forker:
    """A parent that imported pytest, the dashboard and the test modules once; each run forks."""

    def __init__(self, repo: Path, test_files: list[str], preload=None):
        self.repo = repo
        os.chdir(repo)
        sys.path.insert(0, str(repo))
        for m in [m for m in sys.modules if m == "dashboard" or m.startswith("dashboard.")]:
            del sys.modules[m]                          # import the copy's dashboard, not another
        if preload:
            preload()
        import pytest
        self.pytest = pytest
        with open(os.devnull, "w") as null:
            saved = os.dup(1), os.dup(2)
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            try:
                pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *test_files])
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)

    def run(self, args: list[str], log: Path, timeout: float, env: dict | None = None) -> tuple[int | None, float]:
        t0 = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:                                    # the child: fresh caches, output to the log
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.setpgid(0, 0)
                os.environ.update(env or {})
                _clear_dashboard_caches()
                rc = self.pytest.main(args)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(int(rc))
            except BaseException:
                os._exit(99)
        deadline = t0 + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), time.monotonic() - t0
            if time.monotonic() > deadline:
                _kill_group(pid)
                os.waitpid(pid, 0)
                return None, time.monotonic() - t0
            time.sleep(0.1)


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def _clear_dashboard_caches() -> None:
    """Every lru_cache of the dashboard's modules (view_files holds the SQL text)."""
    for name, mod in list(sys.modules.items()):
        if name == "dashboard" or name.startswith("dashboard."):
            for obj in list(vars(mod).values()):
                if callable(getattr(obj, "cache_clear", None)):
                    obj.cache_clear()


def run_subprocess(repo: Path, args: list[str], log: Path, timeout: float) -> tuple[int | None, float]:
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=repo, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout), time.monotonic() - t0
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            return None, time.monotonic() - t0


def canary(sql: str) -> str:
    """The view emptied, its first and last lines kept (tests/test_views.py checks them): the
    `final` CTE renamed and a `final` that reads none of its rows added after it."""
    body, tail = sql.rsplit("select * from final", 1)
    body = re.sub(r"\bfinal as \(", "final_full as (", body.rstrip(), count=1)
    return body + ",\n\nfinal as (select * from final_full where false)\n\nselect * from final" + tail


def classify(rc: int | None, output: str) -> tuple[str, str | None]:
    if rc is None:
        return "timeout", None
    if rc == 0:
        return "survived", None
    if rc == 1:
        failed = FAILED.findall(output)
        if INVALID.search(output):
            return "invalid", failed[0] if failed else None
        return "killed", failed[0] if failed else None
    return "error", f"pytest exit code {rc}"


def summarize(results: list[dict]) -> dict:
    views = {}
    for r in results:
        if r.get("canary"):
            continue
        v = views.setdefault(r["view"], {"mutants": 0, "killed": 0, "survived": 0, "timeout": 0,
                                         "invalid": 0, "error": 0})
        v["mutants"] += 1
        v[r["status"]] += 1
    total = {k: sum(v[k] for v in views.values()) for k in ("mutants", "killed", "survived", "timeout",
                                                             "invalid", "error")}
    for v in [*views.values(), total]:
        detected = v["killed"] + v["timeout"]
        counted = detected + v["survived"]
        v["kill_rate"] = round(detected / counted, 4) if counted else None
    return {"views": views, "total": total}


def table(summary: dict) -> str:
    rows = [("view", "mutants", "killed", "timeout", "survived", "invalid", "error", "kill rate")]
    for name, v in [*sorted(summary["views"].items()), ("TOTAL", summary["total"])]:
        rate = "-" if v["kill_rate"] is None else f"{100 * v['kill_rate']:.1f}%"
        rows.append((name, v["mutants"], v["killed"], v["timeout"], v["survived"], v["invalid"], v["error"], rate))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths))) for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.mutation.sql", description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", help="comma-separated view names (default: every *_all view and cohort)")
    ap.add_argument("--tests", nargs="+", help="test files or node ids to run for every view (default: the mapping)")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the repository to copy and mutate (default: this one)")
    ap.add_argument("--timeout", type=float, default=420.0, help="seconds per mutant (default 420)")
    ap.add_argument("--only", help="comma-separated mutant ids (view:index) to run")
    ap.add_argument("--every", type=int, default=1,
                    help="a deterministic sample: per view, every N-th mutant in SHA-256 order of its diff")
    ap.add_argument("--tests-from", type=Path, help="a checkout whose tests/ replaces the copy's (the 'after' run)")
    ap.add_argument("--extra-tests", nargs="+", default=[], help="test files run after the mapping's, for every view")
    ap.add_argument("--output", type=Path, default=ROOT / "scripts" / "mutation" / "results-sql.json")
    ap.add_argument("--merge-with", type=Path,
                    help="an earlier report: its mutants not run now are carried into this report as they were")
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    ap.add_argument("--no-fork", action="store_true", help="a fresh `python -m pytest` per mutant")
    ap.add_argument("--no-canary", action="store_true", help="skip the check that the tests read each view")
    args = ap.parse_args(argv)

    repo_src = args.repo.resolve()
    args.output = args.output.resolve()                 # the forked runner works inside the scratch copy
    args.merge_with = args.merge_with.resolve() if args.merge_with else None
    views = args.queries.split(",") if args.queries else DEFAULT_VIEWS
    only = set(args.only.split(",")) if args.only else None
    plan = []
    for view in views:
        path = repo_src / "queries" / f"{view}.sql"
        if not path.exists():
            raise SystemExit(f"no such view: {path}")
        original = path.read_text()
        tests = (args.tests or default_tests(view)) + [t for t in args.extra_tests if t not in (args.tests or [])]
        listed = list(enumerate(mutants(original)))
        if args.every > 1:
            listed = sorted(listed, key=lambda im: hashlib.sha256(f"{view}\n{im[1].diff()}".encode()).hexdigest())
            listed = sorted(listed[::args.every])
        for i, mu in listed:
            mid = f"{view}:{i}"
            if only is None or mid in only:
                plan.append((view, mid, mu, tests))
    if args.list:
        for view, mid, mu, _ in plan:
            print(f"{mid}  {mu.operator}  line {mu.line}\n{mu.diff()}\n")
        print(f"{len(plan)} mutants")
        return 0

    repo = scratch_copy(repo_src)
    if args.tests_from:
        shutil.rmtree(repo / "tests")
        shutil.copytree(args.tests_from / "tests", repo / "tests", ignore=COPY_IGNORE)
    logs = repo.parent / "logs"
    logs.mkdir()
    all_tests = sorted({t for *_, tests in plan for t in tests})
    runner = None if args.no_fork else Forker(repo, all_tests)
    run = (lambda a, log: runner.run(a, log, args.timeout)) if runner else \
        (lambda a, log: run_subprocess(repo, a, log, args.timeout))
    commit = subprocess.run(["git", "-C", str(repo_src), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = {"tool": "scripts/mutation/sql.py", "commit": commit, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "pytest_args": PYTEST_ARGS, "timeout_s": args.timeout,
              "tests_from": str(args.tests_from or ""), "every": args.every,
              "tests_by_view": {v: (args.tests or default_tests(v)) + args.extra_tests for v in views}, "mutants": []}
    print(f"{len(plan)} mutants of {len(views)} views; scratch copy {repo}", flush=True)

    canaries = [] if args.no_canary else [v for v in views if any(p[0] == v for p in plan)]
    jobs = [(v, f"{v}:canary", None, report["tests_by_view"][v]) for v in canaries] + plan
    try:
        for n, (view, mid, mu, tests) in enumerate(jobs, 1):
            target = repo / "queries" / f"{view}.sql"
            original = target.read_text()
            text = mu.text if mu else canary(original)
            log = logs / f"{mid.replace(':', '-')}.log"
            target.write_text(text)
            try:
                rc, seconds = run([*PYTEST_ARGS, f"--basetemp={repo.parent / 'tmp'}", *tests], log)
            finally:
                target.write_text(original)
            output = log.read_text(errors="replace")
            status, by = classify(rc, output)
            entry = {"id": mid, "view": view, "status": status, "killed_by": by, "seconds": round(seconds, 1),
                     "tests": tests}
            if mu:
                entry.update(operator=mu.operator, line=mu.line, diff=mu.diff())
            else:
                entry.update(canary=True, operator="canary", diff="final -> final_full; final as (select * from final_full where false)")
                if status != "killed":
                    print(f"WARNING: the tests of {view} did not notice the view emptied ({status}): "
                          "the mapping misses the tests that read it", flush=True)
            report["mutants"].append(entry)
            print(f"[{n}/{len(jobs)}] {mid:32s} {entry['operator']:15s} line {entry.get('line', '-')!s:>3}  "
                  f"{status:8s} {seconds:6.1f}s  {by or ''}", flush=True)
    finally:
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if args.merge_with:
            ran = {m["id"] for m in report["mutants"]}
            earlier = json.loads(args.merge_with.read_text())["mutants"]
            carried = [{**m, "carried_from": args.merge_with.name} for m in earlier if m["id"] not in ran]
            report["mutants"] = sorted(report["mutants"] + carried, key=lambda m: (m["view"], m["id"]))
            report["merged_with"] = args.merge_with.name
        report["summary"] = summarize(report["mutants"])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
        shutil.rmtree(repo.parent, ignore_errors=True)
    print()
    print(table(report["summary"]))
    survivors = [m for m in report["mutants"] if m["status"] == "survived"]
    if survivors:
        print(f"\n{len(survivors)} survivors:")
        for m in survivors:
            print(f"\n{m['id']} {m['operator']} line {m['line']}\n{m['diff']}")
    print(f"\nreport: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
