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



def totals(modules: dict) -> dict:
    """The modules' counts summed; every row, and the total, gets its kill rate."""
    total = defaultdict(int)
    for row in modules.values():
        for k, v in row.items():
            total[k] += v
    for row in [*modules.values(), total]:
        detected = row["killed"] + row["timeout"]
        counted = detected + row["survived"] + row["no_tests"] + row["suspicious"]
        row["kill_rate"] = round(detected / counted, 4) if counted else None
    return total

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


def generated_mutants(repo: Path) -> dict[str, list[str]]:
    """As all_mutants, read from a kept copy's mutants/*.meta when mutmut already made them."""
    metas = {f: repo / "mutants" / (f + ".meta") for f in FILES}
    if all(m.exists() for m in metas.values()):
        return {f: sorted(json.loads(m.read_text())["exit_code_by_key"]) for f, m in metas.items()}
    return all_mutants(repo)


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


def scratch_copy(tests_from: Path | None, src: Path = ROOT) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="mutmut-")) / "repo"
    shutil.copytree(src, dest, ignore=COPY_IGNORE)
    if tests_from:
        shutil.rmtree(dest / "tests")
        shutil.copytree(tests_from / "tests", dest / "tests", ignore=COPY_IGNORE)
    return dest


def set_selection(cfg: Path, tests: list[str]) -> None:
    """Replace pytest_add_cli_args_test_selection in a copy's setup.cfg."""
    lines, out, skipping = cfg.read_text().splitlines(), [], False
    for line in lines:
        if line.startswith("pytest_add_cli_args_test_selection"):
            out += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in tests]
            skipping = True
            continue
        if skipping and line.startswith((" ", "\t")):
            continue
        skipping = False
        out.append(line)
    cfg.write_text("\n".join(out) + "\n")


def export(workdir: Path, label: str, names: list[str] | None, meta: dict, merge_with: Path | None = None) -> dict:
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
        carried = {}
        if merge_with:                               # the earlier run's statuses for the mutants not run now
            earlier = json.loads(merge_with.read_text())
            meta["merged_with"] = merge_with.name
            for n, st in earlier["status_by_name"].items():
                if n not in wanted:
                    carried[n] = st
            wanted = sorted(set(wanted) | set(carried))
        status_by_name = {}
        modules: dict[str, dict] = {}
        survivors = []
        for n in wanted:
            status = carried[n] if n in carried else STATUS.get(codes.get(n), "suspicious")
            status_by_name[n] = status
            module = ".".join(function_of(n).split(".")[:-1])
            row = modules.setdefault(module, defaultdict(int))
            row["mutants"] += 1
            row[status] += 1
            if status in ("survived", "no_tests", "suspicious", "not_checked") and n not in carried:
                try:
                    diff = get_diff_for_mutant(n)
                except Exception as e:                 # keep the report even if one diff fails
                    diff = f"(no diff: {e})"
                survivors.append({"name": n, "status": status, "diff": diff})
        total = totals(modules)
        report = {**meta, "label": label, "modules": {k: dict(v) for k, v in sorted(modules.items())},
                  "total": dict(total), "survivors": survivors, "status_by_name": status_by_name}
    finally:
        os.chdir(cwd)
    (OUT / f"results-mutmut-{label}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


# The test file that exercises each module whole: mutmut maps a mutant to the tests that called its
# function while they ran, and a module- or session-scoped fixture (tests/test_validate.py validates
# every broken snapshot once, in its first test's setup) is credited to one test only.
OWN_TESTS = {
    "dashboard.validate": ["tests/test_validate.py"],
    "dashboard.filters": ["tests/test_filters.py"],
    "dashboard.analytics.survival": ["tests/test_survival_stats.py"],
    "dashboard.analytics.competing": ["tests/test_proportions_competing.py"],
    "dashboard.analytics.proportions": ["tests/test_proportions_competing.py"],
    "dashboard.analytics.response": ["tests/test_response_page.py"],
    "dashboard.analytics.safety": ["tests/test_safety_page.py"],
    "dashboard.analytics.staging": ["tests/test_downstaging_page.py"],
    "dashboard.analytics.baseline": ["tests/test_enrollment_page.py"],
}


def confirm(workdir: Path, report_path: Path, timeout: float, extra: list[str]) -> dict:
    """Run every mutant the report lists as not killed against its mapped tests plus its module's
    own test file(s) whole (OWN_TESTS) and any extra files, -x, with the mutant switched on by
    MUTANT_UNDER_TEST in mutmut's mutants/ tree; a failure is recorded as killed (confirm)."""
    from scripts.mutation.sql import PYTEST_ARGS, Forker
    report = json.loads(report_path.read_text())
    stats = json.loads((workdir / "mutants" / "mutmut-stats.json").read_text())
    by_func = stats["tests_by_mangled_function_name"]
    todo = [m for m in report["survivors"] if m["status"] in ("survived", "no_tests", "suspicious")]
    files = sorted({f for fs in OWN_TESTS.values() for f in fs} | set(extra))
    mutants_dir = (workdir / "mutants").resolve()
    forker = Forker(mutants_dir, files)
    logs = Path(tempfile.mkdtemp(prefix="confirm-"))
    for i, m in enumerate(todo, 1):
        name = m["name"]
        module = ".".join(function_of(name).split(".")[:-1])
        mapped = sorted(by_func.get(function_of(name), []))
        own = OWN_TESTS.get(module, []) + extra
        tests = own + [t for t in mapped if t.split("::")[0] not in own]
        rc, seconds = forker.run([*PYTEST_ARGS, f"--basetemp={logs / 'tmp'}", *tests], logs / "log",
                                 timeout, env={"MUTANT_UNDER_TEST": name})
        out = (logs / "log").read_text(errors="replace")
        if rc == 1:
            m["confirm"] = "killed"
            first = [x for x in out.splitlines() if x.startswith(("FAILED ", "ERROR "))]
            m["killed_by"] = first[0].split()[1] if first else None
        else:
            m["confirm"] = "timeout" if rc is None else "survived" if rc == 0 else f"exit {rc}"
        print(f"[{i}/{len(todo)}] {name:70s} {m['confirm']:8s} {seconds:6.1f}s {m.get('killed_by') or ''}", flush=True)
        report["status_by_name"][name] = {"killed": "killed", "timeout": "timeout"}.get(m["confirm"], m["status"])
        report["confirmed"] = f"not-killed mutants re-run against OWN_TESTS + their mapped tests {extra or ''}"
        recount(report)
        report_path.write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(logs, ignore_errors=True)
    return report


def recount(report: dict) -> None:
    """The per-module counts again from status_by_name."""
    modules: dict[str, dict] = {}
    for n, status in report["status_by_name"].items():
        row = modules.setdefault(".".join(function_of(n).split(".")[:-1]), defaultdict(int))
        row["mutants"] += 1
        row[status] += 1
    total = totals(modules)
    report["modules"] = {k: dict(v) for k, v in sorted(modules.items())}
    report["total"] = dict(total)


def drive(workdir: Path, names: list[str], extra: list[str], timeout: float, wall: float, report_path: Path,
          meta: dict) -> dict:
    """Run each mutant (mutmut's trampolines, switched on by MUTANT_UNDER_TEST in a process forked
    from one that imported the tests) against its module's own test file(s) whole, then the other
    tests mutmut saw call its function, then `extra`, in file order, -x. Mutants go in SHA-256 order
    of their names, so a run stopped at `wall` seconds has tested an unbiased part of the sample."""
    from scripts.mutation.sql import PYTEST_ARGS, Forker
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    stats = json.loads((workdir / "mutants" / "mutmut-stats.json").read_text())
    by_func = stats["tests_by_mangled_function_name"]
    order = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    files = sorted({f for fs in OWN_TESTS.values() for f in fs} | set(extra) |
                   {t.split("::")[0] for ts in by_func.values() for t in ts})
    mutants_dir = (workdir / "mutants").resolve()
    forker = Forker(mutants_dir, files, preload=lambda: preload_test_docs(workdir))
    logs = Path(tempfile.mkdtemp(prefix="mutmut-drive-"))
    report = {**meta, "status_by_name": {n: "not_checked" for n in names}, "results": {}}
    t0 = time.monotonic()
    for i, name in enumerate(order, 1):
        if time.monotonic() - t0 > wall:
            report["stopped"] = f"wall time {wall:.0f} s reached after {i - 1} of {len(order)} mutants"
            break
        module = ".".join(function_of(name).split(".")[:-1])
        mapped = sorted(by_func.get(function_of(name), []))
        own = OWN_TESTS.get(module, [])
        tests = own + [t for t in mapped if t.split("::")[0] not in own] + [x for x in extra if x not in own]
        rc, seconds = forker.run([*PYTEST_ARGS, f"--basetemp={logs / 'tmp'}", *tests], logs / "log",
                                 timeout, env={"MUTANT_UNDER_TEST": name})
        out = (logs / "log").read_text(errors="replace")
        first = [x.split()[1] for x in out.splitlines() if x.startswith(("FAILED ", "ERROR ")) and len(x.split()) > 1]
        status = {0: "survived", 1: "killed", None: "timeout"}.get(rc, "suspicious")
        if status == "survived" and not mapped:
            status = "no_tests"
        report["status_by_name"][name] = status
        report["results"][name] = {"status": status, "seconds": round(seconds, 1),
                                   "killed_by": first[0] if status == "killed" and first else None}
        print(f"[{i}/{len(order)}] {name:72s} {status:9s} {seconds:6.1f}s  {report['results'][name]['killed_by'] or ''}",
              flush=True)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        report["survivors"] = []
        for n, st in sorted(report["status_by_name"].items()):
            if st in ("survived", "no_tests", "suspicious"):
                try:
                    diff = get_diff_for_mutant(n)
                except Exception as e:
                    diff = f"(no diff: {e})"
                report["survivors"].append({"name": n, "status": st, "diff": diff})
    finally:
        os.chdir(cwd)
    recount(report)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(logs, ignore_errors=True)
    return report


def preload_test_docs(workdir: Path) -> None:
    """tests/test_docs.py parses dashboard/validate.py's source when imported (and test_validate
    imports it): mutmut's trampolined copy does not parse as the rules. Import the trampolined
    module first, then test_docs while the file on disk is the original, so the forked runs find
    both in sys.modules. test_docs itself is not run (its cases come from the file's text)."""
    mutants = workdir / "mutants"
    if not (mutants / "tests" / "test_docs.py").exists():
        return
    import importlib
    sys.path.insert(0, str(mutants / "tests"))
    importlib.import_module("dashboard.validate")
    target = mutants / "dashboard" / "validate.py"
    trampolined = target.read_bytes()
    stat = target.stat()
    try:
        target.write_bytes((workdir / "dashboard" / "validate.py").read_bytes())
        importlib.import_module("test_docs")
    finally:
        target.write_bytes(trampolined)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def prepare(repo: Path, stats_from: Path | None = None) -> None:
    """mutmut's own first steps in the copy: mutants/ (trampolined sources) and the per-function
    test mapping (one instrumented run of the selected tests), unless a kept copy has them.
    stats_from: take the mapping from an earlier run's mutants/mutmut-stats.json instead."""
    if (repo / "mutants" / "mutmut-stats.json").exists():
        return
    if stats_from:
        code = ("import os\n"
                "from mutmut.__main__ import copy_src_dir, copy_also_copy_files, setup_source_paths, create_mutants\n"
                "from mutmut.mutation.trampoline import set_mutant_under_test\n"
                "os.makedirs('mutants', exist_ok=True)\n"
                "set_mutant_under_test('mutant_generation')\n"
                "copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(2)\n")
        subprocess.run([sys.executable, "-c", code], cwd=repo, check=True)
        shutil.copy2(stats_from, repo / "mutants" / "mutmut-stats.json")
        return
    code = ("import os\n"
            "from mutmut.__main__ import copy_src_dir, copy_also_copy_files, setup_source_paths, create_mutants, "
            "collect_or_load_stats\n"
            "from mutmut.workers.isolation import get_mutant_runner\n"
            "from mutmut.mutation.trampoline import set_mutant_under_test\n"
            "os.makedirs('mutants', exist_ok=True)\n"
            "set_mutant_under_test('mutant_generation')\n"
            "copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(2)\n"
            "collect_or_load_stats(get_mutant_runner(1))\n")
    subprocess.run([sys.executable, "-c", code], cwd=repo, check=True)


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
    r.add_argument("--merge-with", type=Path, help="an earlier report: its mutants not run now count as they were")
    r.add_argument("--selection", nargs="+", help="test files mutmut runs (default: setup.cfg's selection)")
    r.add_argument("--wall", type=float, default=2400, help="start no mutant after this many seconds")
    r.add_argument("--timeout", type=float, default=300, help="seconds per mutant")
    r.add_argument("--extra-tests", nargs="+", default=[], help="test files run for every mutant, after the others")
    r.add_argument("--keep", action="store_true", help="keep the scratch copy")
    r.add_argument("--stats-from", type=Path, help="an earlier run's mutants/mutmut-stats.json (test mapping)")
    r.add_argument("--repo", type=Path, default=None, help="the tree to copy (default: this repository)")
    r.add_argument("--prepare-only", action="store_true", help="make the copy and its mutants, run nothing")
    r.add_argument("--workdir", type=Path, help="reuse a kept scratch copy (its mutants/ are not generated again)")
    e = sub.add_parser("export")
    e.add_argument("--workdir", type=Path, required=True)
    e.add_argument("--label", required=True)
    e.add_argument("--every", type=int, help="report only the sample run with this --every")
    c = sub.add_parser("confirm", help="re-run a report's not-killed mutants against whole test files")
    c.add_argument("--workdir", type=Path, required=True)
    c.add_argument("--label", required=True)
    c.add_argument("--timeout", type=float, default=300)
    c.add_argument("--extra-tests", nargs="+", default=[])
    args = ap.parse_args(argv)

    for name in ("names_from", "merge_with", "tests_from", "workdir", "stats_from", "repo"):    # the runner works in other folders
        if getattr(args, name, None):
            setattr(args, name, getattr(args, name).resolve())

    if args.cmd == "confirm":
        print(table(confirm(args.workdir.resolve(), OUT / f"results-mutmut-{args.label}.json", args.timeout,
                            args.extra_tests)))
        return 0

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
        names = None
        if args.every:
            names = [n for ns in generated_mutants(args.workdir).values() for n in sample(ns, args.every)]
        meta = {"tool": "mutmut " + _mutmut_version(), "sample": f"every {args.every}th mutant of each function "
                "in SHA-256 order of the names" if args.every else "all", "n_sampled": len(names or [])}
        print(table(export(args.workdir, args.label, names, meta)))
        return 0

    if args.workdir:
        repo = args.workdir.resolve()
        shutil.copy2(ROOT / "setup.cfg", repo / "setup.cfg")
        if args.tests_from:
            shutil.rmtree(repo / "tests")
            shutil.copytree(args.tests_from / "tests", repo / "tests", ignore=COPY_IGNORE)
            shutil.rmtree(repo / "mutants" / "tests", ignore_errors=True)
            shutil.copytree(repo / "tests", repo / "mutants" / "tests")
    else:
        repo = scratch_copy(args.tests_from, args.repo or ROOT)
        shutil.copy2(ROOT / "setup.cfg", repo / "setup.cfg")
    if args.selection:
        set_selection(repo / "setup.cfg", args.selection)
    if args.prepare_only:
        prepare(repo, args.stats_from)
        print(f"prepared {repo}")
        return 0
    if args.names_from:
        wanted = set(args.status.split(","))
        names = sorted(n for n, st in json.loads(args.names_from.read_text())["status_by_name"].items() if st in wanted)
        how = f"the {args.status} mutants of {args.names_from.name}"
    else:
        names = [n for ns in generated_mutants(repo).values() for n in sample(ns, args.every)]
        how = f"every {args.every}th mutant of each function in SHA-256 order of the names"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    tests_commit = None
    if args.tests_from:
        tests_commit = subprocess.run(["git", "-C", str(args.tests_from), "rev-parse", "HEAD"], capture_output=True,
                                      text=True).stdout.strip()
    meta = {"tool": "mutmut " + _mutmut_version(), "commit": commit, "tests_from": str(args.tests_from or ""),
            "selection": args.selection or "setup.cfg",
            "tests_commit": tests_commit, "sample": how, "n_sampled": len(names),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"{len(names)} mutants ({how}); scratch copy {repo}", flush=True)
    prepare(repo, args.stats_from)
    report = drive(repo, names, args.extra_tests, args.timeout, args.wall, OUT / f"results-mutmut-{args.label}.json", meta)
    if args.merge_with:                                  # the earlier run's statuses for mutants not run now
        earlier = json.loads(args.merge_with.read_text())
        for n, st in earlier["status_by_name"].items():
            report["status_by_name"].setdefault(n, st)
        report["merged_with"] = args.merge_with.name
        report["n_sampled"] = len(report["status_by_name"])
        report["sample"] = earlier.get("sample", report["sample"])
        report["survivors"] += [m for m in earlier["survivors"] if m["name"] not in set(names)
                                and report["status_by_name"][m["name"]] == m["status"]]
        recount(report)
        (OUT / f"results-mutmut-{args.label}.json").write_text(json.dumps(report, indent=1) + "\n")
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
