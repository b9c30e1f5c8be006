"""Fault run: python -m benchmarks.faultrun [--users 20] [--seconds 60] [--workers 2]

Serves two quarterly cuts of the 600-patient synthetic registry with gunicorn (gunicorn.conf.py,
N workers, its own result cache in a new 0700 folder, the cache warmer on as deployed) on
127.0.0.1, and runs U simulated users for S seconds while three faults happen (times for 60 s;
scaled to --seconds):

  20 s  one worker is SIGKILLed (gunicorn starts another);
  35 s  the registry's next cut is published with dashboard.snapshots.publish (the new "latest");
  45 s  patients.parquet of that cut is rewritten in place, same rows with `sex` swapped,
        manifest untouched: from then on the cut must not be served (its checksum fails) and
        the previous cut is "latest" again.

Each user loops: open a random page (GET), load it with a random filter in the URL (the shell
callback, asking for the latest cut), post every callback of the page as the browser does, and
half the time change a filter in the same tab (which stays on its cut). Every response is
recorded with the cut it claims (the state store, the banner's "Data cut", the overview's cut
card, the survival export's file name).

Afterwards the truth is computed per cut from the pristine registry (benchmarks/cache/registry)
by the export command, `python -m dashboard export` (dashboard.__main__.main, in two fresh
processes, REGISTRY_CACHE=off): the `patients` export for every banner ("n of N patients") and
overview card (patients, deaths), `km-summary` for every survival summary table (n and events
per group). Checks, each failing the run (exit 1):

  - every response 200/204, except connection failures at the kill of requests in flight on it;
  - no error notice ("Something went wrong", set_props) in any callback response;
  - no wrong number: every banner, overview and survival table equals the truth of the cut it claims;
  - no response claiming the changed cut from 2 s (--grace) after the change;
  - the latest cut: loads from --grace after the publication get the new cut;
  - each of these saw at least one answer (a check with nothing to judge fails, never passes).

--sign-in runs the server with sign-in on (the trusted-proxy header sign-in, every request signed
in as a committee member, whose numbers are the export command's): the faults must be survived
with sign-in as without it.

Prints a table and writes benchmarks/faultrun.json. Loopback only; bounded (users start nothing
after --seconds, answers are awaited 10 s more, a request times out after 30 s); the server and
every process it started are stopped on exit.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from dashboard.replay import callback_body

from benchmarks.__main__ import CACHE, HERE, ROOT, SCENARIOS, ensure_registry, percentile
from benchmarks.loadtest import run_users, serve, worker_pids

# A and B are served from the start, C is published during the run; mid-accrual cuts, so each cut
# has its own N (the banner's total tells them apart) as well as its own follow-up
CUTS = ("2024-06-30", "2024-09-30", "2024-12-31")
# the benchmark's filter changes, and sex alone (what the changed file swaps)
FAULT_SCENARIOS = SCENARIOS + [{"sex": ["M"]}, {"sex": ["F"]}]
TIMEOUT = 30                  # seconds per request
DRAIN = 10                    # seconds after the end for the answers of requests already sent
TRUTH_PROCESSES = 2          # one per core of the host the run was written for
KILL_WINDOW = 5               # a connection failure this long after the kill can be in flight on it
CHECKS = ("other_5xx", "other_http", "failed_requests", "error_notices", "wrong_numbers",
          "served_after_change", "stale_latest", "unverified")


@dataclass
class Exchange:
    """One HTTP request of a user and what its answer claims. Times: seconds from the run's start."""
    user: int
    kind: str                       # page | load | change | callback
    what: str                       # page path or callback outputs
    t0: float
    t1: float
    status: int | None = None       # None: no HTTP answer (connection failure, timeout)
    error: str | None = None
    notice: bool = False            # an error notice in the answer
    gone: bool = False              # ... the one for a cut no longer available (deleted or rejected)
    cut: str | None = None          # the cut the answer claims
    query: str | None = None        # the filter state the numbers are for
    asked_latest: bool = False
    asked: str | None = None        # the cut of the filter state a callback was posted with
    numbers: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


# --- HTTP --------------------------------------------------------------------------------------
SIGN_IN: dict[str, str] = {}       # headers of every request (--sign-in: the proxy's user header)


def http(url: str, body: dict | None = None) -> tuple[int | None, bytes, str | None]:
    """(status, payload, connection error) of one request; never raises."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**SIGN_IN, **({"Content-Type": "application/json"} if body is not None else {})}
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.read(), None
    except urllib.error.HTTPError as e:
        try:
            return e.code, e.read(), None
        except Exception:            # the body cut off: still an HTTP answer
            return e.code, b"", None
    except Exception as e:           # reset, refused, remote closed, timeout
        reason = getattr(e, "reason", None)
        return None, b"", f"{type(e).__name__}: {reason or e}"[:200]


# --- reading answers ---------------------------------------------------------------------------
def walk(tree):
    """Every component dict of a Dash JSON tree."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if "props" in node and isinstance(node["props"], dict):
                yield node
                stack.append(node["props"].get("children"))
            else:
                stack.extend(node.values())


def text(tree) -> str:
    if tree is None or isinstance(tree, bool):
        return ""
    if isinstance(tree, (str, int, float)):
        return str(tree)
    if isinstance(tree, list):
        return "".join(text(x) for x in tree)
    if isinstance(tree, dict):
        return text(tree.get("props", {}).get("children"))
    return ""


def by_id(tree, ident):
    return next((c for c in walk(tree) if c["props"].get("id") == ident), None)


CHANGE_WINDOW = 2.0     # seconds before the change's time stamp during which the file is being rewritten


def has_notice(payload: bytes) -> bool:
    """An error notice: Dash's set_props of the error alert (app.report_callback_error), or its words."""
    return b"Something went wrong" in payload or (b'"sideUpdate"' in payload and b"error-notice" in payload)


def count(s: str) -> int:
    return int(s.replace(",", "").strip())


def read_banner(response: dict, ex: Exchange) -> None:
    m = re.search(r"([\d,]+)\s+of\s+([\d,]+)\s+patients", text(response.get("banner-count", {}).get("children")))
    c = re.search(r"Data cut (\S+)", text(response.get("banner-cutoff", {}).get("children")))
    if m:
        ex.numbers.update(banner_n=count(m.group(1)), banner_total=count(m.group(2)))
    ex.cut = c.group(1) if c else None


def read_overview(response: dict, ex: Exchange) -> None:
    tree = response.get("overview-cards", {}).get("children")
    cut, patients, deaths = (by_id(tree, i) for i in ("overview-snapshot", "overview-patients", "overview-deaths"))
    ex.cut = text(cut).strip() or None if cut else None
    with contextlib.suppress(ValueError):
        if patients:
            ex.numbers["overview_patients"] = count(text(patients))
        if deaths:
            ex.numbers["overview_deaths"] = count(text(deaths))


def read_survival(response: dict, payload: bytes, ex: Exchange) -> None:
    table = by_id(response, "survival-summary-table")
    if table is not None:
        groups = {}
        for row in walk(table):
            if row.get("type") == "Tr" and "data-group" in row["props"]:
                cells = row["props"]["children"]
                with contextlib.suppress(ValueError, IndexError):
                    groups[str(row["props"]["data-group"])] = [count(text(cells[1])), count(text(cells[2]))]
        ex.numbers["km"] = groups
    claimed = {c for c in CUTS if c.encode() in payload}    # the export file names carry the cut
    ex.cut = claimed.pop() if len(claimed) == 1 else None


# --- one user's visit --------------------------------------------------------------------------
class Run:
    """The shared state of a run: plans, the record of every exchange, the fault events."""

    def __init__(self, url: str, plans: dict, sync: dict, seconds: float):
        self.url, self.plans, self.sync, self.seconds = url, plans, sync, seconds
        self.t_start = time.monotonic()
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        self.events: dict = {}
        self.harness_errors: list[str] = []
        self.in_flight: dict = {}       # requests sent and not answered yet

    def now(self) -> float:
        return time.monotonic() - self.t_start

    def record(self, ex: Exchange) -> Exchange:
        with self.lock:
            self.exchanges.append(ex)
        return ex

    def exchange(self, user, kind, what, target, body=None) -> tuple[Exchange, bytes]:
        t0 = self.now()
        key = object()
        with self.lock:
            self.in_flight[key] = (t0, user, kind, what)
        try:
            status, payload, error = http(self.url + target, body)
        finally:
            with self.lock:
                del self.in_flight[key]
        ex = Exchange(user, kind, what, round(t0, 3), round(self.now(), 3), status, error)
        ex.notice = status == 200 and kind != "page" and has_notice(payload)
        ex.gone = ex.notice and b"is no longer available" in payload
        return ex, payload

    def sync_state(self, user, kind, values, changed, state: dict) -> dict | None:
        """Post the shell callback beside the browser's own `state` (the browser computes the
        cards' state itself: assets/shell.js); the state with the cut the shell resolved, as a
        load's cards resolve 'latest' (None: a failure)."""
        ex, payload = self.exchange(user, kind, "shell", "/_dash-update-component",
                                    callback_body(self.sync, values, changed))
        ex.asked_latest = kind == "load"
        ex.cut, ex.query = state["snapshot"], state["query"]
        if ex.status == 204:            # nothing changed (every output no_update)
            self.record(ex)
            return state
        if ex.status != 200 or ex.notice:
            self.record(ex)
            return None
        try:
            side = json.loads(payload).get("sideUpdate") or {}      # the shell sets the cut's list as a side update
            ex.cut = side.get("snapshot-select", {}).get("value") or ex.cut
        except (ValueError, KeyError, TypeError, AttributeError):
            ex.numbers["unreadable"] = True
        self.record(ex)
        return {"snapshot": ex.cut, "query": state["query"]}

    def post_page(self, user, pool, callbacks, values):
        def one(dep):
            ex, payload = self.exchange(user, "callback", dep["output"][:60], "/_dash-update-component",
                                        callback_body(dep, values, "filter-state.data"))
            ex.query, ex.asked = values["filter-state.data"]["query"], values["filter-state.data"]["snapshot"]
            if ex.status == 200 and not ex.notice:
                out = dep["output"]
                if "banner-count" in out or "overview-cards" in out or "survival-summary" in out or "km-summary" in out:
                    try:
                        response = json.loads(payload)["response"]
                    except (ValueError, KeyError):
                        response = None
                    if response is None:
                        ex.numbers["unreadable"] = True
                    elif "banner-count" in out:
                        read_banner(response, ex)
                    elif "overview-cards" in out:
                        read_overview(response, ex)
                    else:
                        read_survival(response, payload, ex)
                        ex.options = {k: values.get(f'{{"key":"{k}","type":"page-option"}}.value')
                                      for k in ("endpoint", "by", "ci")}
                    if ex.numbers and ex.cut is None and not ex.numbers.get("unreadable"):
                        ex.cut = values["filter-state.data"]["snapshot"]    # no cut named: the one asked for
            self.record(ex)
        list(pool.map(one, callbacks))

    def visit(self, user, rng, pool):
        try:
            self._visit(user, rng, pool)
        except Exception as e:          # the harness's own failure: reported, and fails the run
            with self.lock:
                self.harness_errors.append(f"t={self.now():.2f}s user {user}: {type(e).__name__}: {e}"[:300])

    def _visit(self, user, rng, pool):
        from dashboard.replay import update_values
        path = rng.choice(list(self.plans))
        callbacks, _, base = self.plans[path]
        ex, _ = self.exchange(user, "page", path, path)
        self.record(ex)
        if ex.status != 200:
            return
        # a fresh tab: the URL holds the filters, no cut (the latest), the controls are empty
        scenario = rng.choice(FAULT_SCENARIOS)
        _, page_values = update_values(base, "", scenario)
        query = page_values["filter-state.data"]["query"]
        search = "?" + query if query else ""
        # the browser's step has set the controls from the URL and asks the server's to check it
        load = dict(page_values, **{"url.search": search, "snapshot-select.value": None, "url-seen.data": "load:1",
                                    "filter-state.data": None})
        if self.now() >= self.seconds:
            return                      # the run is over: no new step
        state = self.sync_state(user, "load", load, "url-seen.data", {"snapshot": "latest", "query": query})
        if state is None or self.now() >= self.seconds:
            return
        self.post_page(user, pool, callbacks, dict(page_values, **{"filter-state.data": state}))
        if rng.random() < 0.5 and self.now() < self.seconds:
            # a filter changed in the same tab, which stays on its cut
            sync_values, page_values = update_values(base, state["snapshot"], rng.choice(FAULT_SCENARIOS))
            sync_values.update({"url.search": search, "filter-state.data": state})
            new = self.sync_state(user, "change", sync_values, "f-bclc.value", page_values["filter-state.data"])
            if new is not None and self.now() < self.seconds:
                self.post_page(user, pool, callbacks, dict(page_values, **{"filter-state.data": new}))


# --- the faults --------------------------------------------------------------------------------
def publish_cut(source: Path, root: Path, cut: str) -> None:
    """Publish the source registry's cut into root with dashboard.snapshots.publish (atomic)."""
    import pyarrow.parquet as pq
    from dashboard.contract import TABLE_NAMES
    from dashboard.snapshots import publish, read_manifest
    folder = source / "snapshots" / cut
    manifest = read_manifest(folder)
    tables = {name: pq.read_table(folder / f"{name}.parquet") for name in TABLE_NAMES}
    created = dt.datetime.strptime(manifest["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    publish(root, cut, dt.date.fromisoformat(manifest["cutoff_date"]), tables, source=manifest["source"],
            created_at=created)


def swap_sex(root: Path, cut: str) -> dict:
    """Rewrite patients.parquet of a published cut with M and F swapped: same rows, same path, the
    manifest untouched (written beside it, then renamed over it, so no reader sees half a file)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    path = root / "snapshots" / cut / "patients.parquet"
    table = pq.read_table(path)
    sex = table.column("sex")
    swapped = pc.if_else(pc.equal(sex, "M"), pa.scalar("F", sex.type),
                         pc.if_else(pc.equal(sex, "F"), pa.scalar("M", sex.type), sex))
    table = table.set_column(table.schema.get_field_index("sex"), table.schema.field("sex"), swapped)
    tmp = path.parent.parent / f".faultrun-{cut}-patients.parquet"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return {"rows": table.num_rows, "male_after": int(pc.sum(pc.equal(swapped, "M")).as_py() or 0)}


def fault_events(run: Run, master_pid: int, source: Path, root: Path, times: dict, stop: threading.Event) -> None:
    """Kill a worker, publish cut C, change a file of C: each at its time (seconds from the start)."""
    def wait_until(t):
        return not stop.wait(max(0.0, t - run.now()))

    try:
        if wait_until(times["kill"]):
            pids = worker_pids(master_pid)
            run.events["workers_before_kill"] = pids
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                run.events.update(kill=round(run.now(), 3), killed_pid=pids[0])
        # the time of a publication or a change is when it is done (the rename): readers see it from then
        if wait_until(times["publish"]):
            t = run.now()
            publish_cut(source, root, CUTS[2])
            run.events.update(publish_started=round(t, 3), publish=round(run.now(), 3), published=CUTS[2])
        if wait_until(times["change"]):
            t = run.now()
            info = swap_sex(root, CUTS[2])
            run.events.update(change_started=round(t, 3), change=round(run.now(), 3),
                              changed=f"{CUTS[2]}/patients.parquet", change_info=info)
    except Exception as e:         # a fault that could not be made is reported (the run then fails)
        run.events["event_error"] = f"{type(e).__name__}: {e}"


# --- the truth ---------------------------------------------------------------------------------
def filter_args(query: str) -> list[str]:
    return [x for k, v in parse_qsl(query) for x in ("--filter", f"{k}={v}")]


def truth_requests(exchanges: list[Exchange]) -> dict[str, list[list[str]]]:
    """Per cut, the export commands whose answers the recorded numbers need."""
    wanted: dict[str, set] = {}
    for ex in exchanges:
        if ex.cut not in CUTS or not ex.numbers or ex.query is None:
            continue
        todo = wanted.setdefault(ex.cut, {("patients", "")})
        if any(k in ex.numbers for k in ("banner_n", "overview_patients", "overview_deaths")):
            todo.add(("patients", ex.query))
        if "km" in ex.numbers:
            opts = tuple(f"--{k}={v}" for k, v in sorted(ex.options.items()) if v)
            todo.add(("km-summary", ex.query) + opts)
    return {cut: [list(t) for t in sorted(todo)] for cut, todo in wanted.items()}


def truth_args(cut: str, source: Path, request: list[str]) -> list[str]:
    name, query, *opts = request
    return ["export", name, "--data", str(source), "--snapshot", cut, *filter_args(query), *opts]


def truth_process(tmp: Path, i: int) -> subprocess.Popen:
    """A fresh process for the truth (truth_worker), with the result cache off and its own temp
    folder (no file of this machine's shared temp folder is read). Started with the server, at a
    low priority: it imports while the server starts, and computes nothing until the run is over."""
    env = dict(os.environ, REGISTRY_CACHE="off", TMPDIR=str(tmp), PYTHONPATH=str(ROOT))
    env.pop("REGISTRY_DATA", None)
    with open(tmp / f"truth-{i}.err", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "benchmarks.faultrun", "--truth-worker"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)


def compute_truth(source: Path, requests: dict[str, list[list[str]]], procs: list[subprocess.Popen]) -> dict:
    """{cut: {request key: parsed export JSON or {"error": ...}}}: the truth processes run the export
    command (python -m dashboard export: dashboard.__main__.main) for each request, a cut's requests
    in one process (it validates each cut it reads once), the cuts dealt out by their number of requests."""
    shares = [[] for _ in procs]
    for cut in sorted(requests, key=lambda c: -len(requests[c])):
        min(shares, key=len).extend((cut, r) for r in requests[cut])
    for proc, share in zip(procs, shares):      # every process starts now (it reads all of stdin at once)
        proc.stdin.write(json.dumps([truth_args(cut, source, r) for cut, r in share]) + "\n")
        proc.stdin.flush()
    truth: dict = {}
    for proc, share in zip(procs, shares):
        try:
            out, _ = proc.communicate(timeout=300)
            answers = json.loads(out)
        except Exception as e:          # reported as the truth of every request (the run then fails)
            proc.kill()
            proc.wait()
            answers = [{"error": f"truth process failed: {type(e).__name__}: {e}"}] * len(share)
        for (cut, r), answer in zip(share, answers):
            truth.setdefault(cut, {})["\t".join(r)] = answer
    return truth


def truth_worker() -> int:
    """Run the export command for each argv of the JSON list on stdin; print their answers as a
    JSON list (the export's JSON, or {"error", "exit"})."""
    os.nice(10)                     # the server under test comes first
    from dashboard.__main__ import main as cli, parser
    parser()                        # imports every export now, before the requests arrive
    answers = []
    argvs = json.loads(sys.stdin.readline())
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) - 10)   # the run is over
    for argv in argvs:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli(argv)
            except BaseException as e:          # noqa: BLE001  (reported, as the CLI's exit would be)
                code, err = 1, io.StringIO(f"{type(e).__name__}: {e}")
        try:
            answers.append(json.loads(out.getvalue()) if code == 0 else {"error": err.getvalue()[-500:], "exit": code})
        except ValueError:
            answers.append({"error": "not JSON: " + out.getvalue()[:200], "exit": code})
    print(json.dumps(answers))
    return 0


def expected_numbers(ex: Exchange, truth: dict) -> dict | None:
    """What the numbers of an exchange must be, from the truth of the cut it claims."""
    cut = truth.get(ex.cut, {})
    want = {}
    patients, everyone = cut.get(f"patients\t{ex.query}"), cut.get("patients\t")
    if "banner_n" in ex.numbers or "overview_patients" in ex.numbers:
        if not patients or "error" in patients or not everyone or "error" in everyone:
            return None
        want.update(banner_n=patients["n_patients"], banner_total=everyone["n_patients"],
                    overview_patients=patients["n_patients"],
                    overview_deaths=sum(1 for r in patients["rows"] if r.get("death_date") is not None))
    if "km" in ex.numbers:
        opts = "".join(f"\t--{k}={v}" for k, v in sorted(ex.options.items()) if v)
        km = cut.get(f"km-summary\t{ex.query}{opts}")
        if not km or "error" in km:
            return None
        want["km"] = {str(r["group"]): [r["n"], r["events"]] for r in km["rows"]}
    return {k: v for k, v in want.items() if k in ex.numbers}


# --- judging -----------------------------------------------------------------------------------
def judge(exchanges: list[Exchange], events: dict, truth: dict, grace: float) -> dict:
    """Every check of the run: {check: [examples]} plus the counts of the summary."""
    kill, publish, change = events.get("kill"), events.get("publish"), events.get("change")
    found = {c: [] for c in CHECKS}
    found["in_flight_at_kill"] = []
    found["no_numbers_for_changed_cut"] = []
    # answers each time-bound check could judge: loads between publication and change, answers naming
    # a cut sent after the change; with none, that check saw nothing (a slow server) and says so
    checked = {"banners": 0, "overview": 0, "survival": 0, "latest_after_publish": 0, "cut_after_change": 0}
    for ex in exchanges:
        where = f"t={ex.t0:.2f}-{ex.t1:.2f}s user {ex.user} {ex.kind} {ex.what}"
        at_kill = kill is not None and ex.t0 <= kill + 0.05 and kill - 0.05 <= ex.t1 <= kill + KILL_WINDOW
        if ex.status is None:
            found["in_flight_at_kill" if at_kill else "failed_requests"].append(f"{where}: {ex.error}")
            continue
        if ex.status in (502, 503, 504) and at_kill:
            found["in_flight_at_kill"].append(f"{where}: HTTP {ex.status}")
            continue
        if ex.status >= 500:
            found["other_5xx"].append(f"{where}: HTTP {ex.status}")
            continue
        if ex.status not in (200, 204):
            found["other_http"].append(f"{where}: HTTP {ex.status}")
            continue
        if ex.notice:
            # a tab on the changed cut answered once it changed (its rewrite takes a moment before the
            # event is stamped): "no longer available, reload" is the right answer, not an error
            if ex.gone and change is not None and ex.asked == CUTS[2] and ex.t1 >= change - CHANGE_WINDOW:
                found["no_numbers_for_changed_cut"].append(where)
            else:
                found["error_notices"].append(where)
            continue
        if change is not None and ex.cut is not None and ex.t0 >= change + grace:
            checked["cut_after_change"] += 1
            if ex.cut == CUTS[2]:
                found["served_after_change"].append(f"{where}: claims {ex.cut}, changed at {change:.2f}s")
        # a load sent after the publication (+ grace) and before the change must get the new cut; one
        # answered with another cut after the change may be right (the new cut is then rejected)
        if ex.asked_latest and ex.cut is not None and publish is not None and ex.t0 >= publish + grace and \
                (change is None or ex.t0 < change) and (ex.cut == CUTS[2] or change is None or ex.t1 < change):
            checked["latest_after_publish"] += 1
            if ex.cut != CUTS[2]:
                found["stale_latest"].append(f"{where}: latest was {ex.cut}, {CUTS[2]} published at {publish:.2f}s")
        if ex.numbers.get("unreadable"):
            found["unverified"].append(f"{where}: answer not readable")
            continue
        if ex.numbers:
            if ex.cut not in CUTS:
                found["unverified"].append(f"{where}: claims no known cut ({ex.cut!r})")
                continue
            want = expected_numbers(ex, truth)
            if want is None:
                found["unverified"].append(f"{where}: no truth for {ex.cut} {ex.query!r}")
                continue
            for key in ("banner_n", "overview_patients", "km"):
                if key in ex.numbers:
                    checked[{"banner_n": "banners", "overview_patients": "overview", "km": "survival"}[key]] += 1
            wrong = {k: (v, want[k]) for k, v in ex.numbers.items() if want.get(k) != v}
            if wrong:
                found["wrong_numbers"].append(f"{where}: cut {ex.cut} filter {ex.query!r}: " + "; ".join(
                    f"{k} {got} expected {exp}" for k, (got, exp) in wrong.items()))
        elif ex.kind == "callback" and any(s in ex.what for s in ("banner-count", "overview-cards")):
            if change is not None and ex.asked == CUTS[2] and ex.t0 >= change:
                found["no_numbers_for_changed_cut"].append(where)     # a message for a tab on it: allowed
            else:
                found["unverified"].append(f"{where}: no numbers in the answer")
    return {"found": found, "checked": checked}


def server_errors(log: Path) -> dict:
    """Tracebacks in the server's log: how many, and the distinct exceptions they end with."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {"tracebacks": None, "exceptions": {}}
    exceptions: dict[str, int] = {}
    n = 0
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            n += 1
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or lines[j].startswith("Traceback")
                                      or lines[j].startswith("During handling") or not lines[j].strip()):
                j += 1
            if j < len(lines):
                last = re.sub(r"\d+", "N", lines[j])[:160]
                exceptions[last] = exceptions.get(last, 0) + 1
    return {"tracebacks": n, "exceptions": dict(sorted(exceptions.items(), key=lambda kv: -kv[1])[:10])}


# --- the run -----------------------------------------------------------------------------------
def prepare(tmp: Path) -> tuple[Path, Path]:
    """The pristine registry (benchmarks/cache/registry, generated once) and the served data root:
    a copy of cuts A and B."""
    source = ensure_registry("registry")
    missing = [c for c in CUTS if not (source / "snapshots" / c / "manifest.json").is_file()]
    if missing:
        raise SystemExit(f"the registry in {source} has no cut {', '.join(missing)}")
    root = tmp / "data"
    for cut in CUTS[:2]:
        shutil.copytree(source / "snapshots" / cut, root / "snapshots" / cut)
    return source, root


def event_times(seconds: float, args) -> dict:
    scale = seconds / 60
    return {"kill": args.kill_at if args.kill_at is not None else 20 * scale,
            "publish": args.publish_at if args.publish_at is not None else 35 * scale,
            "change": args.change_at if args.change_at is not None else 45 * scale}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faultrun", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kill-at", type=float, help="seconds (default: 20/60 of the run)")
    p.add_argument("--publish-at", type=float, help="seconds (default: 35/60 of the run)")
    p.add_argument("--change-at", type=float, help="seconds (default: 45/60 of the run)")
    p.add_argument("--grace", type=float, help="seconds after the publication and the change before every "
                   "answer must follow them (default: 2 s for 60 s, scaled)")
    p.add_argument("--warm", choices=["on", "off"], default="on", help="the server's background cache "
                   "warmer (on: as gunicorn.conf.py deploys it)")
    p.add_argument("--sign-in", action="store_true", help="serve with sign-in on (header sign-in, as the committee)")
    p.add_argument("--output", default=str(HERE / "faultrun.json"))
    p.add_argument("--truth-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.truth_worker:
        return truth_worker()
    times = event_times(args.seconds, args)
    if args.grace is None:
        args.grace = round(2 * args.seconds / 60, 2)
    wall0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="faultrun-"))
    try:
        result = fault_run(args, times, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["wall_s"] = round(time.monotonic() - wall0, 1)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result, args.output)
    return 0 if result["ok"] else 1


def fault_run(args, times: dict, tmp: Path) -> dict:
    source, root = prepare(tmp)
    cache = tmp / "server-cache"
    cache.mkdir(mode=0o700)
    harness_cache = tmp / "harness-cache"          # this process's own (it lays pages out, never serves)
    harness_cache.mkdir(mode=0o700)
    os.environ.update(REGISTRY_DATA=str(root), REGISTRY_CACHE=str(harness_cache))
    log = CACHE / "faultrun-gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    env = {"REGISTRY_CACHE": str(cache), "TMPDIR": str(tmp)}
    if args.warm == "on":
        env["REGISTRY_WARM"] = "on"
    if args.sign_in:
        users = tmp / "users.json"
        users.write_text(json.dumps({"users": {"chair": {"role": "committee", "sites": []}}}))
        env.update(DASHBOARD_AUTH="header", DASHBOARD_TRUSTED_PROXIES="127.0.0.1", DASHBOARD_USERS=str(users))
        SIGN_IN["X-Remote-User"] = "chair"
    truth_tmp = tmp / "truth"
    truth_tmp.mkdir(mode=0o700)
    truth_procs = [truth_process(truth_tmp, i) for i in range(TRUTH_PROCESSES)]
    try:
        return judged_run(args, times, source, root, env, log, truth_procs)
    finally:
        for proc in truth_procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def judged_run(args, times: dict, source: Path, root: Path, env: dict, log: Path,
               truth_procs: list[subprocess.Popen]) -> dict:
    """Serve root, run the users and the faults, then judge every exchange against the truth."""
    from dashboard import app as app_module
    from dashboard.app import PAGES, create_app
    from dashboard.replay import layout_props, page_plan
    create_app()        # registers the pages, so the plans know each page's callbacks
    phases = {}
    t = time.monotonic()
    with serve(root, workers=args.workers, env=env, log=log) as server:
        phases["server_start_s"] = round(time.monotonic() - t, 1)
        deps = json.loads(http(server.url + "/_dash-dependencies")[1])
        shell_ids = set(layout_props(app_module.layout()))
        plans = {path: page_plan(deps, path, shell_ids) for path, _ in PAGES}
        sync = next(iter(plans.values()))[1]
        run = Run(server.url, plans, sync, args.seconds)
        stop = threading.Event()
        events = threading.Thread(target=fault_events, args=(run, server.proc.pid, source, root, times, stop),
                                  daemon=True)
        events.start()
        try:
            elapsed = run_users(args.users, args.seconds, run.visit, grace=DRAIN)
        finally:
            stop.set()
            events.join(30)
        run.events["workers_after"] = worker_pids(server.proc.pid)
        run.events["server_alive"] = server.proc.poll() is None
        with run.lock:                  # the users' answers now; requests still unanswered are left
            exchanges = list(run.exchanges)
            harness_errors = list(run.harness_errors)
            unanswered = sorted(run.in_flight.values())
    t = time.monotonic()
    truth = compute_truth(source, truth_requests(exchanges), truth_procs)
    phases["truth_s"] = round(time.monotonic() - t, 1)
    verdict = judge(exchanges, run.events, truth, args.grace)
    found, checked = verdict["found"], verdict["checked"]
    problems = []
    if "kill" not in run.events:
        problems.append("no worker was killed")
    if "publish" not in run.events or "change" not in run.events:
        problems.append("a fault was not made: " + run.events.get("event_error", "ran out of time"))
    if len(run.events.get("workers_after", [])) != args.workers:
        problems.append(f"{len(run.events.get('workers_after', []))} worker(s) at the end, expected {args.workers}")
    if not checked["banners"]:
        problems.append("no banner was checked")
    if not checked["latest_after_publish"]:
        problems.append("no load was answered between the publication (+ grace) and the change: 'latest' not checked")
    if not checked["cut_after_change"]:
        problems.append("no answer naming a cut was asked for after the change (+ grace): the changed cut not checked")
    problems += [f"harness error: {e}" for e in harness_errors[:5]]
    statuses = [ex.status for ex in exchanges]
    counts = {"requests": len(exchanges), "2xx": sum(1 for s in statuses if s in (200, 204)),
              **{k: len(v) for k, v in found.items()}, **{f"checked_{k}": v for k, v in checked.items()}}
    ok = not problems and not any(counts[c] for c in CHECKS)
    answered = [ex.t1 - ex.t0 for ex in exchanges if ex.status is not None and ex.kind != "page"]
    latency = {"p50_ms": round(1000 * percentile(answered, 50)), "p95_ms": round(1000 * percentile(answered, 95)),
               "max_ms": round(1000 * max(answered)), "over_10s": sum(1 for x in answered if x > 10)} if answered else {}
    cut_of_loads = [(round(ex.t0, 1), ex.cut) for ex in exchanges if ex.asked_latest and ex.cut]
    return {
        "ok": ok, "users": args.users, "seconds": args.seconds, "elapsed_s": round(elapsed, 1),
        "workers": args.workers, "warm": args.warm, "grace_s": args.grace, "cuts": list(CUTS),
        "planned_events_s": {k: round(v, 2) for k, v in times.items()}, "events": run.events,
        "counts": counts, "callback_latency": latency, "problems": problems,
        "unanswered_at_end": [f"t={t0:.2f}s user {u} {k} {w}" for t0, u, k, w in unanswered],
        "examples": {k: v[:10] for k, v in found.items() if v},
        "latest_served": summarize_latest(cut_of_loads),
        "phases": phases, "truth": {"seconds": phases["truth_s"], "exports": sum(len(v) for v in truth.values()),
                  "errors": [f"{c} {k}: {a['error'][:200]}" for c, d in truth.items() for k, a in d.items()
                             if "error" in a][:5]},
        "server_log": {"path": str(log), **server_errors(log)},
        # every exchange: user, kind, what, t0, t1, status, error, notice, cut claimed, filter, numbers
        "exchanges": [[ex.user, ex.kind, ex.what[:40], ex.t0, ex.t1, ex.status, ex.error, ex.notice, ex.cut,
                       ex.query, ex.numbers or None] for ex in sorted(exchanges, key=lambda ex: ex.t0)],
    }


def summarize_latest(loads: list[tuple[float, str]]) -> list[dict]:
    """The cut 'latest' answered, as runs of consecutive loads in time order."""
    out = []
    for t, cut in sorted(loads):
        if out and out[-1]["cut"] == cut:
            out[-1]["to_s"], out[-1]["loads"] = t, out[-1]["loads"] + 1
        else:
            out.append({"cut": cut, "from_s": t, "to_s": t, "loads": 1})
    return out


LABELS = {
    "requests": "requests", "2xx": "2xx/204", "in_flight_at_kill": "in flight on the killed worker (allowed)",
    "no_numbers_for_changed_cut": "no count, tab on the changed cut (allowed)",
    "other_5xx": "other 5xx", "other_http": "other non-2xx", "failed_requests": "other failed requests (no answer)",
    "error_notices": "error notices", "wrong_numbers": "wrong numbers", "served_after_change": "served after change",
    "stale_latest": "stale latest after publication", "unverified": "numbers not verifiable",
    "checked_banners": "banners checked", "checked_overview": "overview cards checked",
    "checked_survival": "survival tables checked", "checked_latest_after_publish": "loads judged for 'latest'",
    "checked_cut_after_change": "answers judged after the change",
}


def print_summary(result: dict, output: str) -> None:
    ev = result["events"]
    print(f"fault run: {result['users']} users, {result['elapsed_s']} s, {result['workers']} workers, warm "
          f"{result['warm']}; killed worker {ev.get('killed_pid')} at {ev.get('kill', '-')} s, published "
          f"{ev.get('published')} at {ev.get('publish', '-')} s, changed {ev.get('changed')} at {ev.get('change', '-')} s")
    for key, label in LABELS.items():
        n = result["counts"].get(key, 0)
        flag = "  FAIL" if key in CHECKS and n else ""
        print(f"  {label:42} {n:>7}{flag}")
    if result["callback_latency"]:
        lat = result["callback_latency"]
        print(f"  callback latency: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, max {lat['max_ms']} ms, "
              f"{lat['over_10s']} over 10 s (not judged)")
    if result["unanswered_at_end"]:
        print(f"  {len(result['unanswered_at_end'])} request(s) still unanswered {DRAIN} s after the end (not judged), "
              f"the oldest sent at {result['unanswered_at_end'][0].split()[0]}")
    print("  latest served: " + ", ".join(f"{r['cut']} {r['from_s']}-{r['to_s']} s ({r['loads']})"
                                         for r in result["latest_served"]))
    for key, examples in result["examples"].items():
        print(f"\n{LABELS.get(key, key)}:")
        for e in examples[:5]:
            print("  " + e)
    if result["truth"]["errors"]:
        print("\ntruth errors:\n  " + "\n  ".join(result["truth"]["errors"]))
    log = result["server_log"]
    if log.get("tracebacks"):
        print(f"\nserver log: {log['tracebacks']} traceback(s) ({log['path']})")
        for e, n in log["exceptions"].items():
            print(f"  {n:>4} x {e}")
    for problem in result["problems"]:
        print("PROBLEM: " + problem)
    print(f"\n{'PASS' if result['ok'] else 'FAIL'}  (truth: {result['truth']['exports']} exports in "
          f"{result['truth']['seconds']} s; wall {result.get('wall_s')} s) -> {output}")


if __name__ == "__main__":
    sys.exit(main())
