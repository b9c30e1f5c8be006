"""mutmut 3 over dashboard/analytics/, dashboard/filters.py and dashboard/validate.py, bounded.

    python -m scripts.mutation.python sample [--every 8]                 # print the sample's size per module
    python -m scripts.mutation.python run --label before [--every 8] [--tests-from DIR] [--max-children 2]
                                         [--names-from results-mutmut-before.json --status survived]
    python -m scripts.mutation.python export --workdir DIR --label before

mutmut (configuration in setup.cfg, [mutmut]) makes about 5,700 mutants of these files, far more
than fit in 40 minutes on two shared cores, so `run` tests a deterministic sample: within each
function, the mutants sorted by the SHA-256 of their name, every --every-th one (at least one per
function). It copies the repository into a scratch folder (the working tree never holds
mutants/), optionally replaces its tests/ with another checkout's (--tests-from: the "after"
measurement), runs `mutmut run <sample>` there and writes scripts/mutation/results-mutmut-<label>.json:
per module the mutants tested, killed, survived, timeouts and "no tests" (no selected test calls the
function), the kill rate, and every surviving mutant with its diff.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "scripts" / "mutation"
FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "dashboard" / "analytics").glob("*.py")) + \
    ["dashboard/filters.py", "dashboard/validate.py"]
COPY_IGNORE = shutil.ignore_patterns(".git", "mutants", "__pycache__", "*.pyc", "cache", "snapshots",
                                     "test-artifacts", "node_modules", ".cache")
# mutmut's exit codes (mutmut/stats.py status_by_exit_code) folded into the report's columns
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "crashed", -9: "crashed", None: "not_checked"}


def all_mutants(repo: Path) -> dict[str, list[str]]:
    """Mutant names per source file, as mutmut names them (module.x_function__mutmut_N)."""
    cwd = os.getcwd()
    os.chdir(repo)                                     # mutmut reads setup.cfg from the cwd
    try:
        from mutmut.mutation.file_mutation import mutate_file_contents
        from mutmut.utils.format_utils import get_mutant_name
        out = {}
        for f in FILES:
            mf = mutate_file_contents(f, (repo / f).read_text(), None, None)
            out[f] = [get_mutant_name(Path(f), n) for n in mf.mutant_names]
        return out
    finally:
        os.chdir(cwd)


def function_of(name: str) -> str:
    return name.rsplit("__mutmut_", 1)[0]


def sample(names: list[str], every: int) -> list[str]:
    """Deterministic: per function, the names in SHA-256 order, every `every`-th (at least one)."""
    by_func = defaultdict(list)
    for n in names:
        by_func[function_of(n)].append(n)
    out = []
    for func in sorted(by_func):
        ordered = sorted(by_func[func], key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        out += ordered[::every]
    return sorted(out)


def scratch_copy(tests_from: Path | None) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="mutmut-")) / "repo"
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
    if tests_from:
        shutil.rmtree(dest / "tests")
        shutil.copytree(tests_from / "tests", dest / "tests", ignore=COPY_IGNORE)
    return dest


def export(workdir: Path, label: str, names: list[str] | None, meta: dict) -> dict:
    """Read mutmut's results (mutants/**/*.meta) in workdir into the report."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        codes, durations = {}, {}
        for m in Path("mutants").rglob("*.meta"):
            data = json.loads(m.read_text())
            codes.update(data.get("exit_code_by_key", {}))
            durations.update(data.get("durations_by_key", {}))
        wanted = names if names is not None else sorted(codes)
        modules: dict[str, dict] = {}
        survivors = []
        for n in wanted:
            status = STATUS.get(codes.get(n), "suspicious")
            module = ".".join(function_of(n).split(".")[:-1])
            row = modules.setdefault(module, defaultdict(int))
            row["mutants"] += 1
            row[status] += 1
            if status in ("survived", "no_tests", "suspicious"):
                try:
                    diff = get_diff_for_mutant(n)
                except Exception as e:                 # keep the report even if one diff fails
                    diff = f"(no diff: {e})"
                survivors.append({"name": n, "status": status, "diff": diff})
        total = defaultdict(int)
        for row in modules.values():
            for k, v in row.items():
                total[k] += v
        for row in [*modules.values(), total]:
            detected = row["killed"] + row["timeout"]
            counted = detected + row["survived"] + row["no_tests"] + row["suspicious"]
            row["kill_rate"] = round(detected / counted, 4) if counted else None
        report = {**meta, "label": label, "modules": {k: dict(v) for k, v in sorted(modules.items())},
                  "total": dict(total), "survivors": survivors}
    finally:
        os.chdir(cwd)
    (OUT / f"results-mutmut-{label}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def table(report: dict) -> str:
    cols = ["mutants", "killed", "timeout", "survived", "no_tests", "not_checked", "kill_rate"]
    rows = [["module", *cols]]
    for name, row in [*report["modules"].items(), ("TOTAL", report["total"])]:
        rows.append([name, *[row.get(c, 0) for c in cols[:-1]],
                     "-" if row.get("kill_rate") is None else f"{100 * row['kill_rate']:.1f}%"])
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(cols) + 1)]
    return "\n".join("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.mutation.python", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--every", type=int, default=8)
    r = sub.add_parser("run")
    r.add_argument("--label", required=True)
    r.add_argument("--every", type=int, default=8)
    r.add_argument("--tests-from", type=Path, help="a checkout whose tests/ replaces this one's")
    r.add_argument("--names-from", type=Path, help="a results-mutmut-*.json: run its mutants of --status")
    r.add_argument("--status", default="survived,no_tests,suspicious")
    r.add_argument("--max-children", type=int, default=2)
    r.add_argument("--wall", type=float, default=2700, help="stop mutmut after this many seconds")
    r.add_argument("--keep", action="store_true", help="keep the scratch copy")
    e = sub.add_parser("export")
    e.add_argument("--workdir", type=Path, required=True)
    e.add_argument("--label", required=True)
    args = ap.parse_args(argv)

    if args.cmd == "sample":
        per_file = all_mutants(ROOT)
        total = 0
        for f, names in per_file.items():
            n = len(sample(names, args.every))
            total += n
            print(f"{f:40s} {len(names):5d} mutants, sample {n}")
        print(f"total sample {total} of {sum(map(len, per_file.values()))}")
        return 0
    if args.cmd == "export":
        print(table(export(args.workdir, args.label, None, {})))
        return 0

    repo = scratch_copy(args.tests_from)
    if args.names_from:
        wanted = set(args.status.split(","))
        names = sorted(m["name"] for m in json.loads(args.names_from.read_text())["survivors"] if m["status"] in wanted)
        how = f"the {args.status} mutants of {args.names_from.name}"
    else:
        names = [n for ns in all_mutants(repo).values() for n in sample(ns, args.every)]
        how = f"every {args.every}th mutant of each function in SHA-256 order of the names"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    tests_commit = None
    if args.tests_from:
        tests_commit = subprocess.run(["git", "-C", str(args.tests_from), "rev-parse", "HEAD"], capture_output=True,
                                      text=True).stdout.strip()
    meta = {"tool": "mutmut " + _mutmut_version(), "commit": commit, "tests_from": str(args.tests_from or ""),
            "tests_commit": tests_commit, "sample": how, "n_sampled": len(names),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"{len(names)} mutants ({how}); scratch copy {repo}", flush=True)
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *names]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=repo, start_new_session=True)
    try:
        proc.wait(args.wall)
        meta["stopped"] = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 2)                         # SIGINT: mutmut saves what it has
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        meta["stopped"] = True
    meta["seconds"] = round(time.monotonic() - t0)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = export(repo, args.label, names, meta)
    print(table(report))
    print(f"{len(report['survivors'])} not killed; report {OUT / f'results-mutmut-{args.label}.json'}")
    if not args.keep:
        shutil.rmtree(repo.parent, ignore_errors=True)
    return 0


def _mutmut_version() -> str:
    from importlib.metadata import version
    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
