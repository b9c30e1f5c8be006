"""The browser benchmark: python -m benchmarks --browser [--scale registry|stress] [--reps N] [--quiet]

What a person feels, measured in headless Chromium (Playwright, /usr/bin/chromium) against the
real app (`python app.py` on a registry generated into a temporary folder with
`python -m dashboard generate`). On every page it plays the same sequence of actions through the
real controls (ACTIONS): open the page, open a shared link with filters in the URL, add a BCLC
stage in the dropdown, raise the age slider's minimum with the keyboard, remove a filter chip,
change a page option (none on the Overview), switch the data cut, go back in history, clear all
filters.

Definitions (all times on the page's clock, performance.now(), measured in the page):
- start: the input event's timeStamp (the first trusted pointerdown/keydown after the action was
  armed); for "open" and "shared link" the navigation start (0); for "back" the moment
  history.back() is called.
- end ("settled"): at least one callback request started after the start has been answered, no
  callback request is in flight (window.fetch to /_dash-update-component, counted until the body is
  read), no element is in Dash's loading state (data-dash-is-loading="true", Dash's
  _dash-loading-callback marker, a dcc.Graph still drawing: .dash-graph--pending), and that still
  holds after two requestAnimationFrame callbacks: end is the time of the second. The settle is
  accepted only if nothing starts in the QUIET_MS that follow (not counted in the time); else the
  page is watched until the next settle.
- time: end - start, per action; p50/p95 over the repetitions.
- requests: every /_dash-update-component request of the action: sent (fetch called, page clock),
  and from Playwright's timing of it (relative to its start, placed on the page clock from the
  send) its server part, requestStart -> responseStart (time to the first byte: the callback on
  the server, plus loopback), and its arrival, responseEnd. The page reads an answer when its
  main thread is free, often much later while it draws figures ("read late").
- wave: requests sorted by the time they were sent; a request opens a new wave when no request of
  the action has been in flight (sent, not yet arrived) for more than WAVE_GAP_MS before it was
  sent; it joins the current wave when it was sent while an earlier one was in flight or within
  WAVE_GAP_MS of the last arrival. Waves are separated by time with nothing in flight:
  sequential round trips.
- chain: the longest chain of requests where each one has an input among the outputs of the one
  before, which had been answered when it was sent (the renderer triggers a callback by an
  output of another, or holds it back until the other, which may change its input, has
  answered): the causal round trips.
- server ms: the length of the union of the requests' server parts (time when the server was
  working on at least one of them); server share = server ms / time. in flight ms: the union of
  [sent, arrived]. The rest of the time is the browser's: before the first request ("1st req"),
  between waves ("gaps": nothing in flight between the first send and the last arrival), and from
  the last arrival to the settled page ("draw": reading the answers, React, Plotly).

Uncached: the result cache (the server's $REGISTRY_CACHE folder, which this process shares) is
emptied immediately before each action of the `reps` uncached passes; cached: max(reps - 1, 1)
passes of the same sequence with nothing emptied. Timing never fails anything; targets (issue 17)
are printed beside the numbers. Results go under "browser" -> "registry" or "stress" in
benchmarks/results.json (every other key kept).

--trace (trace_main): one action of one page, played after the page's actions before it, with
Chromium's performance trace and V8's CPU profile; prints where the main thread's time went
(trace_breakdown) and writes the trace for DevTools under benchmarks/traces/.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM = "/usr/bin/chromium"
SCALES = {"registry": 600, "stress": 100_000}
QUIET_MS = 300          # a settle counts once nothing has started for this long after it
MAX_SKEW_MS = 1000      # a request leaves the page at most this long after fetch() was called
WAVE_GAP_MS = 5         # more than this with no request in flight separates two waves
TARGETS_MS = {"registry": {"filter": 300, "page option": 300, "open": 1500, "shared link": 1500},
              "stress": {"filter": 1000, "page option": 1000}}
FILTER_ACTIONS = ("dropdown", "slider", "chip", "clear all")
SHARED_QUERY = "bclc=B&sex=F"          # the shared link's filters
TIMEOUT_S = {"registry": 60, "stress": 300}

# page path, label, the page option's control (a label to click) or None
PAGE_OPTIONS = {
    "/": None,
    "/enrollment": "#card-accrual label:has-text('Per site')",
    "/survival": "#survival-endpoint label:has-text('Progression-free survival')",
    "/response": "#response-scope label:has-text('Local')",
    "/safety": "#safety-events label:has-text('Serious only')",
    "/downstaging": "#downstaging-measure label:has-text('Milan criteria')",
}

# --- in the page ---------------------------------------------------------------------------------
# Installed before any script of every document (Playwright init scripts are not subject to the
# CSP). Counts the callback requests through window.fetch, logs each one (sent, answered, its
# outputs and triggers), and takes an armed action's start from the first trusted input event.
INSTRUMENT_JS = r"""
(() => {
  const B = window.__bench = {pending: 0, started: 0, log: [], t0: 0, armed: false, mark: 0, kind: 'load'};
  // 'id.prop' as Dash writes changedPropIds (a pattern id as JSON with sorted keys; no '@hash' of
  // allow_duplicate outputs)
  const key = (id, prop) => (typeof id === 'string' ? id : JSON.stringify(sortKeys(id))) + '.' + prop.split('@')[0];
  function sortKeys(o) { const r = {}; Object.keys(o).sort().forEach(k => { r[k] = o[k]; }); return r; }
  const flat = (x) => Array.isArray(x) ? x.flatMap(flat) : (x ? [x] : []);
  const original = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url) || '';
    if (!url.includes('/_dash-update-component')) { return original.apply(this, arguments); }
    const entry = {sent: performance.now(), headers: null, answered: null, status: null,
                   output: null, outputs: [], inputs: [], changed: []};
    try {
      const body = JSON.parse(init && init.body);
      entry.output = body.output;
      entry.outputs = flat(body.outputs).map(o => key(o.id, o.property));
      entry.inputs = flat(body.inputs).map(i => key(i.id, i.property));
      entry.changed = body.changedPropIds || [];
    } catch (e) { /* not JSON: logged without outputs */ }
    B.log.push(entry); B.pending++; B.started++;
    const done = () => { if (entry.answered === null) { entry.answered = performance.now(); B.pending--; } };
    return original.apply(this, arguments).then((response) => {
      entry.headers = performance.now(); entry.status = response.status;
      response.clone().arrayBuffer().then(done, done);
      return response;
    }, (error) => { done(); throw error; });
  };
  const onInput = (e) => {
    if (B.armed && e.isTrusted) { B.armed = false; B.t0 = e.timeStamp; }
  };
  for (const type of ['pointerdown', 'mousedown', 'keydown']) {
    window.addEventListener(type, onInput, {capture: true});
  }
  B.arm = (kind) => { B.armed = true; B.t0 = null; B.kind = kind; B.mark = B.log.length; };
  B.now = (kind) => { B.armed = false; B.kind = kind; B.mark = B.log.length; B.t0 = performance.now(); };
})();
"""

# Resolves when the armed action has settled (see the module docstring), or on the timeout.
SETTLE_JS = r"""
async ({quietMs, timeoutMs}) => {
  const B = window.__bench;
  const busySelector = '[data-dash-is-loading="true"], ._dash-loading-callback, .dash-graph--pending';
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
  const mine = () => B.log.slice(B.mark);
  const idle = () => B.pending === 0 && !document.querySelector(busySelector);
  const answered = () => mine().some((r) => r.answered !== null);
  const deadline = performance.now() + timeoutMs;
  const result = (extra) => Object.assign({t0: B.t0, kind: B.kind, timeOrigin: performance.timeOrigin,
                                           requests: mine(), url: location.href}, extra);
  while (performance.now() < deadline) {
    await frame();
    if (B.t0 === null || !answered() || !idle()) { continue; }
    const started = B.started;
    await frame();                                   // the second animation frame after idle
    const end = performance.now();
    if (!idle() || B.started !== started) { continue; }
    let stable = true;                               // nothing starts in the quiet window
    while (performance.now() < end + quietMs) {
      await frame();
      if (!idle() || B.started !== started) { stable = false; break; }
    }
    if (stable) { return result({end: end, timeout: false}); }
  }
  return result({end: performance.now(), timeout: true});
}
"""


# --- the actions ---------------------------------------------------------------------------------
@dataclass
class Action:
    name: str
    kind: str                       # "navigation", "input" (armed: first input event) or "script"
    run: Callable                   # run(page, ctx) performs it
    before: Callable | None = None  # not timed: opens a dropdown, focuses a thumb
    note: str = ""


def _option(page, label: str, exact: bool = True):
    text = re.compile(rf"^\s*{re.escape(label)}\s*$") if exact else label
    return page.locator(".dash-dropdown-option", has_text=text).first


def open_dropdown(control: str):
    def before(page, ctx):
        page.click(f"#{control}")
        page.locator(".dash-dropdown-option").first.wait_for(timeout=10_000)
    return before


def choose(label: str, exact: bool = True, close: bool = True):
    def run(page, ctx):
        _option(page, label, exact).click()
        if close:
            page.keyboard.press("Escape")
    return run


def choose_nth(n: int):
    def run(page, ctx):
        page.locator(".dash-dropdown-option").nth(n).click()
        if page.locator(".dash-dropdown-option").count():
            page.keyboard.press("Escape")
    return run


def goto(query: str = ""):
    def run(page, ctx):
        page.goto(ctx["url"] + ctx["path"] + (("?" + query) if query else ""), wait_until="commit")
    return run


def focus_age_min(page, ctx):
    page.locator("#f-age [role=slider]").first.focus()


def press(key: str):
    return lambda page, ctx: page.keyboard.press(key)


def click(selector: str):
    return lambda page, ctx: page.click(selector)


def history_back(page, ctx):
    page.evaluate("() => { window.__bench.now('script'); history.back(); }")


def actions_for(path: str, has_second_cut: bool) -> list[Action]:
    acts = [
        Action("open", "navigation", goto()),
        Action("shared link", "navigation", goto(SHARED_QUERY), note=f"?{SHARED_QUERY}"),
        Action("dropdown", "input", choose("C"), before=open_dropdown("f-bclc"), note="BCLC stage + C"),
        Action("slider", "input", press("PageUp"), before=focus_age_min, note="age minimum 18 -> 28 (PageUp)"),
        Action("chip", "input", click(".filter-chip:has-text('Sex: F')"), note="remove the chip Sex: F"),
    ]
    if PAGE_OPTIONS[path]:
        acts.append(Action("page option", "input", click(PAGE_OPTIONS[path]),
                           note=PAGE_OPTIONS[path].split("has-text('")[1].rstrip("')")))
    if has_second_cut:
        acts.append(Action("data cut", "input", choose_nth(1), before=open_dropdown("snapshot-select"),
                           note="the cut before the latest"))
        acts.append(Action("back", "script", history_back, note="history.back(): to the latest cut"))
    else:
        acts.append(Action("back", "script", history_back, note="history.back(): before the page option"))
    acts.append(Action("clear all", "input", click("#clear-all-filters")))
    return acts


# --- the app -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(root: Path, patients: int, last_cut_only: bool, quiet: bool) -> None:
    """A registry as a user generates one: python -m dashboard generate."""
    args = [sys.executable, "-m", "dashboard", "generate", "--data", str(root), "--patients", str(patients)]
    args += ["--last-cut-only"] if last_cut_only else []
    args += ["--quiet"] if quiet else []
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL if quiet else sys.stderr)


@contextlib.contextmanager
def running_app(root: Path, cache_dir: Path, log_path: Path):
    """`python app.py --data root` on a free port (no background warming, its result cache in
    cache_dir); yields its URL once it serves, stops it and its process group on exit."""
    port = free_port()
    env = dict(os.environ, REGISTRY_DATA=str(root), REGISTRY_CACHE=str(cache_dir), REGISTRY_WARM="off")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data", str(root)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(url + "/_dash-layout", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 300:
                    raise RuntimeError("the dashboard did not start: " + log_path.read_text()[-2000:])
                time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def empty_result_cache(cache_dir: Path) -> int:
    """Remove every stored result of the server's cache folder (not the validation reports), as the
    server benchmark does: the next requests compute everything."""
    from dashboard import cache
    old = os.environ.get("REGISTRY_CACHE")
    os.environ["REGISTRY_CACHE"] = str(cache_dir)
    try:
        return cache.store().clear()
    finally:
        if old is None:
            os.environ.pop("REGISTRY_CACHE", None)
        else:
            os.environ["REGISTRY_CACHE"] = old


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is not installed (Debian package chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            yield browser
        finally:
            browser.close()


# --- one browser tab, instrumented ---------------------------------------------------------------
class Tab:
    """A page of a browser context with the instrumentation, and Playwright's record of every
    callback request (for its server timing)."""

    def __init__(self, browser, url: str, timeout_s: float = 60, quiet_ms: float = QUIET_MS):
        self.context = browser.new_context(viewport={"width": 1366, "height": 768})
        self.context.add_init_script(INSTRUMENT_JS)
        self.page = self.context.new_page()
        self.url = url
        self.timeout_s = timeout_s
        self.quiet_ms = quiet_ms
        self.finished: list[dict] = []
        self.errors: list[str] = []
        self.page.on("requestfinished", self._finished)
        self.page.on("requestfailed", self._finished)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))

    def _finished(self, request):
        if "/_dash-update-component" not in request.url:
            return
        try:
            body = json.loads(request.post_data or "{}")
        except ValueError:
            body = {}
        timing = request.timing
        self.finished.append({"output": body.get("output"), "start": timing.get("startTime"),
                              "requestStart": timing.get("requestStart"),
                              "responseStart": timing.get("responseStart"),
                              "responseEnd": timing.get("responseEnd"), "failed": request.failure})

    def close(self):
        self.context.close()

    def act(self, action: Action, path: str, tracer=None) -> dict:
        """Perform one action and return its measurement (see the module docstring). A tracer
        (Tracer) records a Chromium performance trace of it, from after its untimed `before`."""
        page, ctx = self.page, {"url": self.url, "path": path}
        if action.before:
            action.before(page, ctx)
        self.finished.clear()
        if tracer:
            tracer.start(page)
        if action.kind == "input":
            page.evaluate("(kind) => window.__bench.arm(kind)", action.kind)
        action.run(page, ctx)
        raw = page.evaluate(SETTLE_JS, {"quietMs": self.quiet_ms, "timeoutMs": self.timeout_s * 1000})
        if tracer:
            tracer.stop(page, raw)
        if raw["timeout"]:
            raise RuntimeError(f"{path} {action.name}: did not settle in {self.timeout_s} s "
                               f"(t0={raw['t0']}, requests={len(raw['requests'])}, url={raw['url']})")
        # Playwright reports a request once it is finished; wait (briefly) for the last ones
        deadline = time.monotonic() + 5
        while len(self.finished) < len(raw["requests"]) and time.monotonic() < deadline:
            page.wait_for_timeout(10)
        return analyse(raw, list(self.finished))


# --- the numbers of one action -------------------------------------------------------------------
def union_length(intervals) -> float:
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def waves_of(requests: list[dict], gap_ms: float = WAVE_GAP_MS) -> list[list[dict]]:
    """Group requests into waves (see the module docstring): by the time each was sent and the
    time its answer arrived (from the network; the page may read it later)."""
    waves: list[list[dict]] = []
    last_arrival = float("-inf")            # the latest arrival of every request sent so far
    for r in sorted(requests, key=lambda r: r["sent"]):
        if waves and r["sent"] <= last_arrival + gap_ms:
            waves[-1].append(r)
        else:
            waves.append([r])
        last_arrival = max(last_arrival, r["arrived"])
    return waves


def chain_length(requests: list[dict]) -> int:
    """The longest dependency chain (see the module docstring); "answered" is when the page had
    read the answer, the earliest the renderer can act on it."""
    ordered = sorted(requests, key=lambda r: r["sent"])
    depth: list[int] = []
    for j, r in enumerate(ordered):
        needs = set(r["inputs"]) | set(r["changed"])
        parents = [depth[i] for i, q in enumerate(ordered[:j])
                   if q["answered"] <= r["sent"] + 1 and set(q["outputs"]) & needs]
        depth.append(1 + max(parents, default=0))
    return max(depth, default=0)


def match_network_times(requests: list[dict], finished: list[dict], time_origin: float) -> None:
    """Give each request of the page's log Playwright's timing of it, matched by the callback's
    output in the order they were sent: "server_from"/"server_to" (requestStart -> responseStart)
    and "arrived" (responseEnd), placed on the page's clock from the time the page sent it.
    Without a match (or timing), "arrived" is the time the page read the answer and the server
    part is unknown (None; counted as "unmatched")."""
    pool: dict[str, list[dict]] = {}
    for f in sorted(finished, key=lambda f: f["start"] or 0):
        pool.setdefault(f["output"], []).append(f)
    for r in sorted(requests, key=lambda r: r["sent"]):
        f = pool[r["output"]].pop(0) if pool.get(r["output"]) else None
        ok = f is not None and all((f.get(k) is not None and f[k] >= 0)
                                   for k in ("requestStart", "responseStart", "responseEnd"))
        # Playwright's start (its wall clock) less the page's send: the time from fetch() to the
        # network stack, a few ms, or more while the page's main thread finishes the task that
        # called fetch (drawing what the same update changed: measured up to ~300 ms); its timings
        # are placed from there when that is plausible (0 to MAX_SKEW_MS)
        r["skew"] = f["start"] - (time_origin + r["sent"]) if ok and f.get("start") else None
        base = r["sent"] + (r["skew"] if r["skew"] is not None and 0 <= r["skew"] < MAX_SKEW_MS else 0)
        r["server_from"] = base + f["requestStart"] if ok else None
        r["server_to"] = base + f["responseStart"] if ok else None
        r["arrived"] = min(base + f["responseEnd"], r["answered"]) if ok else r["answered"]


def short(output: str | None) -> str:
    """A callback's outputs in a few words: 'url.search+filter-state.data+...', a pattern id by
    its values other than the type ('response-spider.figure')."""
    if not output:
        return "?"
    names = []
    for part in (p for p in output.strip(".").split("...") if p):
        ident, _, prop = part.rpartition(".")
        if ident.startswith("{"):
            try:
                pattern = json.loads(ident)
                values = [str(v) for k, v in pattern.items() if k != "type"]
                wildcard = any(isinstance(v, list) for v in pattern.values())
                ident = pattern.get("type", ident) if wildcard or not values else ",".join(values)
            except ValueError:
                pass
        names.append(f"{ident}.{prop.split('@')[0]}")
    return "+".join(names[:2]) + (f"+{len(names) - 2} more" if len(names) > 2 else "")


def analyse(raw: dict, finished: list[dict]) -> dict:
    """One action's numbers from the page's log and Playwright's timings."""
    t0, end = raw["t0"], raw["end"]
    reqs = [r for r in raw["requests"] if r["answered"] is not None]
    match_network_times(reqs, finished, raw["timeOrigin"])
    waves = waves_of(reqs)
    known = [r for r in reqs if r["server_from"] is not None]
    in_flight = union_length([(r["sent"], r["arrived"]) for r in reqs])
    server = union_length([(r["server_from"], r["server_to"]) for r in known])
    first = min(r["sent"] for r in reqs)
    last = max(r["arrived"] for r in reqs)
    return {
        "ms": round(end - t0, 1),
        "requests": len(reqs),
        "waves": len(waves),
        "chain": chain_length(reqs),
        "server_ms": round(server, 1),
        "server_sum_ms": round(sum(r["server_to"] - r["server_from"] for r in known), 1),
        "in_flight_ms": round(in_flight, 1),
        "to_first_request_ms": round(first - t0, 1),
        "between_waves_ms": round((last - first) - in_flight, 1),     # nothing in flight, inside the span
        "after_last_answer_ms": round(end - last, 1),
        "read_late_ms": round(max((r["answered"] - r["arrived"] for r in reqs), default=0), 1),
        "unmatched": len(reqs) - len(known),
        "clock_skew_ms": round(statistics.median([r["skew"] for r in known if r["skew"] is not None] or [0]), 1),
        "wave_detail": [{"sent_ms": round(min(r["sent"] for r in w) - t0, 1),
                         "arrived_ms": round(max(r["arrived"] for r in w) - t0, 1),
                         "read_ms": round(max(r["answered"] for r in w) - t0, 1),
                         "server_ms": round(union_length([(r["server_from"], r["server_to"]) for r in w
                                                          if r["server_from"] is not None]), 1),
                         "callbacks": [short(r["output"]) for r in w],
                         "read_state": ["filter-state.data" in (r.get("inputs") or []) for r in w],
                         "triggers": sorted({c for r in w for c in r.get("changed") or []})} for w in waves],
    }


# --- a whole run ---------------------------------------------------------------------------------
def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))]


def summarise(samples: list[dict]) -> dict:
    ms = [s["ms"] for s in samples]
    med = lambda key: round(statistics.median(s[key] for s in samples), 1)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
            "waves": max(s["waves"] for s in samples), "chain": max(s["chain"] for s in samples),
            "requests": max(s["requests"] for s in samples),
            "server_ms_p50": med("server_ms"), "server_share": round(statistics.median(
                s["server_ms"] / s["ms"] for s in samples if s["ms"] > 0), 3),
            "to_first_request_ms_p50": med("to_first_request_ms"), "between_waves_ms_p50": med("between_waves_ms"),
            "after_last_answer_ms_p50": med("after_last_answer_ms")}


def run(scale: str = "registry", reps: int = 3, quiet: bool = False, patients: int | None = None,
        pages: list[str] | None = None, quiet_ms: float = QUIET_MS) -> dict:
    """Generate the registry, start the app, drive Chromium through every page; the "browser"
    result (see the module docstring)."""
    from dashboard.app import PAGES
    patients = patients or SCALES[scale]
    reps = max(reps, 1)
    selected = [(p, label) for p, label in PAGES if not pages or p in pages or label in pages]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        tmp = Path(tmp)
        root, cache_dir = tmp / "data", tmp / "cache"
        cache_dir.mkdir(mode=0o700)
        last_cut_only = scale == "stress"           # 100,000 patients x 12 cuts is long to generate
        if not quiet:
            print(f"generating {patients:,} patients ({'last cut only' if last_cut_only else 'every quarterly cut'}) "
                  f"into {root} ...", file=sys.stderr)
        generate(root, patients, last_cut_only, quiet=True)
        has_second_cut = len([d for d in (root / "snapshots").iterdir() if d.is_dir()]) > 1
        plans = [(path, label, actions_for(path, has_second_cut)) for path, label in selected]
        n_actions = sum(len(a) for _, _, a in plans)
        passes = [("uncached", i) for i in range(reps)] + [("cached", i) for i in range(max(reps - 1, 1))]
        samples: dict[tuple, dict[str, list]] = {}
        log_path = tmp / "server.log"
        started = time.time()
        with running_app(root, cache_dir, log_path) as url, chromium() as browser:
            progress = _progress(n_actions * len(passes) + len(plans), quiet)
            tab = Tab(browser, url, TIMEOUT_S[scale] if patients >= 10_000 else 60, quiet_ms)
            try:
                for path, label, actions in plans:           # warm up: scripts into the browser's cache,
                    for action in actions[:1]:               # the server's imports and schemas
                        tab.act(action, path)
                    progress.update(1)
                for mode, _ in passes:
                    for path, label, actions in plans:
                        for action in actions:
                            if mode == "uncached":
                                empty_result_cache(cache_dir)
                            progress.set_postfix_str(f"{mode} {label}: {action.name}", refresh=False)
                            m = tab.act(action, path)
                            samples.setdefault((label, action.name), {"uncached": [], "cached": []})[mode].append(m)
                            progress.update(1)
                errors = list(tab.errors)
            finally:
                tab.close()
                progress.close()
        server_log_tail = log_path.read_text()[-4000:]
    rows = []
    for path, label, actions in plans:
        for action in actions:
            s = samples[(label, action.name)]
            rows.append({"page": label, "path": path, "action": action.name, "what": action.note,
                         "uncached": summarise(s["uncached"]), "cached": summarise(s["cached"]),
                         "example": s["uncached"][0]})
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": scale, "patients": patients, "reps": reps, "cached_reps": max(reps - 1, 1),
        "machine": f"{os.cpu_count()} cores, load (1 min) {load_before:.2f} at the start, "
                   f"{os.getloadavg()[0]:.2f} at the end",
        "server": "python app.py (Flask threaded), REGISTRY_WARM=off",
        "browser": f"headless {CHROMIUM} (Playwright), 1366x768",
        "seconds": round(time.time() - started, 1),
        "definitions": {"quiet_ms": quiet_ms, "wave_gap_ms": WAVE_GAP_MS,
                        "time": "input event -> last callback answered, nothing loading, two animation frames",
                        "server_ms": "union of requestStart -> responseStart of the action's callback requests"},
        "targets_ms": TARGETS_MS.get(scale, {}),
        "pages": rows,
        "summary": page_summary(rows),
        "console_errors": errors[:20],
    }
    if errors and not quiet:
        print(f"{len(errors)} console error(s) in the browser, first: {errors[0]}", file=sys.stderr)
    if "Traceback" in server_log_tail and not quiet:
        print("the server logged a traceback:\n" + server_log_tail, file=sys.stderr)
    return result


def page_summary(rows: list[dict]) -> list[dict]:
    """Per page: the filter changes together (the issue's target), the page option, the shared link."""
    out = []
    for label in dict.fromkeys(r["page"] for r in rows):
        mine = [r for r in rows if r["page"] == label]
        entry = {"page": label}
        for mode in ("uncached", "cached"):
            filt = [r[mode] for r in mine if r["action"] in FILTER_ACTIONS]
            entry[mode] = {"filter_p95_ms": max(f["p95_ms"] for f in filt),
                           "filter_p50_ms": round(statistics.median(f["p50_ms"] for f in filt), 1)}
            for name in ("page option", "shared link"):
                hit = [r[mode] for r in mine if r["action"] == name]
                if hit:
                    entry[mode][name.replace(" ", "_") + "_p95_ms"] = hit[0]["p95_ms"]
        out.append(entry)
    return out


def _progress(total: int, quiet: bool):
    from tqdm import tqdm
    return tqdm(total=total, unit="action", disable=quiet, file=sys.stderr, dynamic_ncols=True)


# --- output ----------------------------------------------------------------------------------------
def table(result: dict) -> str:
    lines = [f"browser benchmark, {result['patients']:,} patients ({result['scale']}), {result['date']}, "
             f"{result['reps']} uncached + {result['cached_reps']} cached pass(es), {result['machine']}",
             f"{'page':16} {'action':12} {'uncached p50':>12} {'p95':>7} {'cached p50':>10} {'p95':>7} "
             f"{'waves':>5} {'chain':>5} {'server':>7} {'share':>6} {'1st req':>7} {'gaps':>6} {'draw':>6}"]
    for r in result["pages"]:
        u, c = r["uncached"], r["cached"]
        lines.append(f"{r['page']:16} {r['action']:12} {u['p50_ms']:>12.0f} {u['p95_ms']:>7.0f} {c['p50_ms']:>10.0f} "
                     f"{c['p95_ms']:>7.0f} {u['waves']:>5} {u['chain']:>5} {u['server_ms_p50']:>7.0f} "
                     f"{100 * u['server_share']:>5.0f}% {u['to_first_request_ms_p50']:>7.0f} "
                     f"{u['between_waves_ms_p50']:>6.0f} {u['after_last_answer_ms_p50']:>6.0f}")
    lines.append("ms from the input event to the page settled (last callback answered, nothing loading, two "
                 "animation frames); waves/chain: max sequential round trips; server: union of the callbacks' "
                 "server time (uncached p50) and its share of the time; 1st req: input -> first request; gaps: "
                 "nothing in flight between the first request and the last answer; draw: last answer -> settled.")
    t = result.get("targets_ms") or {}
    if t:
        lines.append("targets (issue 17): " + ", ".join(f"{k} p95 < {v} ms" for k, v in t.items()))
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The table as Markdown (for the README)."""
    out = ["| Page | Action | p50 ms | p95 ms | cached p50 | cached p95 | waves | server ms | server share |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in result["pages"]:
        u, c = r["uncached"], r["cached"]
        out.append(f"| {r['page']} | {r['action']} | {u['p50_ms']:.0f} | {u['p95_ms']:.0f} | {c['p50_ms']:.0f} | "
                   f"{c['p95_ms']:.0f} | {u['waves']} | {u['server_ms_p50']:.0f} | {100 * u['server_share']:.0f}% |")
    return "\n".join(out)


def write_results(result: dict, output: Path) -> None:
    """Put `result` under "browser" -> its scale in the results file, keeping every other key."""
    output = Path(output)
    current = {}
    if output.exists():
        with contextlib.suppress(ValueError):
            current = json.loads(output.read_text())
    current = current if isinstance(current, dict) else {}
    browser = current.get("browser") if isinstance(current.get("browser"), dict) else {}
    browser[result["scale"]] = result
    current["browser"] = browser
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(current, indent=2) + "\n")


def main(scale: str, reps: int, quiet: bool, output: Path, patients: int | None = None,
         pages: list[str] | None = None, markdown_out: bool = False, quiet_ms: float = QUIET_MS) -> int:
    result = run(scale, reps, quiet, patients, pages, quiet_ms)
    write_results(result, output)
    print(table(result))
    if markdown_out:
        print()
        print(markdown(result))
    print(f"-> {output} (\"browser\" -> \"{scale}\")")
    return 0


# --- one action, traced: python -m benchmarks --browser --trace [--page /response] [--action dropdown]
# Chromium's trace categories: the main thread's tasks (what DevTools' Performance panel records).
# V8's CPU samples, whose stacks tell which script the scripting time ran in, come from the CDP
# Profiler (the trace's own cpu_profiler category stopped sending samples after about a second)
# and are added to the trace as the Profile/ProfileChunk events DevTools reads.
TRACE_CATEGORIES = [
    "devtools.timeline", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame",
    "toplevel", "v8", "v8.execute", "blink", "blink.user_timing", "loading", "latencyInfo",
    "disabled-by-default-v8.gc",
]
SAMPLING_US = 200                   # V8's CPU sampling interval (DevTools' default is 1000 us)
SYNC_MARK = "bench-trace-sync"      # a performance.mark: places the page's clock on the trace's

# a main-thread event's category by name (DevTools' timeline model); an event nested in another
# takes its time from its parent (self time), so forced style and layout inside a script count as
# style and layout, not scripting
SCRIPTING = {"FunctionCall", "EvaluateScript", "v8.compile", "v8.compileModule", "v8.evaluateModule",
             "v8.produceCache", "v8.produceModuleCache", "v8.run", "v8.callFunction", "V8.Execute",
             "TimerFire", "EventDispatch", "FireAnimationFrame", "FireIdleCallback", "XHRReadyStateChange",
             "XHRLoad", "RunMicrotasks", "v8.runMicrotasks", "MinorGC", "MajorGC", "V8.GCScavenger",
             "V8.GCFinalizeMC", "V8.GCIncrementalMarking", "V8.GC_MC_INCREMENTAL", "BlinkGC.AtomicPhase",
             "ThreadState::performIdleLazySweep", "CppGC.AtomicPhase", "V8.ParseFunction", "V8.CompileCode",
             "V8.CompileLazy", "ScriptCompiler::CompileFunction", "v8.parseOnBackground",
             "ResizeObserverController::DeliverObservations", "PerformanceObserver::Deliver",
             "IntersectionObserverController::DeliverNotifications", "HandlePostMessage"}
STYLE_LAYOUT = {"UpdateLayoutTree", "RecalculateStyles", "Layout", "UpdateLayerTree", "HitTest", "PrePaint",
                "ParseAuthorStyleSheet", "IntersectionObserverController::computeIntersections",
                "LayoutShift", "ComputeIntersections", "UpdateLayout"}
PAINT = {"Paint", "PaintImage", "PaintSetup", "CompositeLayers", "Layerize", "Commit", "UpdateLayer",
         "RasterTask", "Decode Image", "ImageDecodeTask", "Draw LazyPixelRef", "Decode LazyPixelRef",
         "Rasterize", "GPUTask", "ScrollLayer"}
# script sources, by a part of the URL (first match wins); frames without a URL belong to the
# nearest caller that has one
SOURCES = [("plotly.js", ("plotly",)), ("dash-renderer / React", ("dash-renderer", "dash_renderer", "react")),
           ("dcc/dbc/html bundles", ("/dcc/", "dash_core_components", "dash_bootstrap_components",
                                     "/html/", "dash_html_components", "dash_table")),
           ("our assets", ("/assets/",))]
PARTS = ["scripting", "style + layout", "paint + composite", "other tasks", "idle / network"]
BIN_US = 20                         # the main thread's timeline in 20 us bins


def _source(url: str) -> str:
    for name, parts in SOURCES:
        if any(p in url for p in parts):
            return name
    return "other scripts" if url else "V8/GC, no script"


def _category(name: str) -> str | None:
    if name in SCRIPTING or name.startswith("V8.GC") or name.startswith("v8.") and "compile" in name.lower():
        return "scripting"
    if name in STYLE_LAYOUT:
        return "style + layout"
    if name in PAINT:
        return "paint + composite"
    if name in {"RunTask", "ThreadControllerImpl::RunTask", "ThreadControllerImpl::DoWork", "ParseHTML",
                "ResourceReceivedData", "ResourceFinish", "ResourceReceiveResponse", "BeginMainThreadFrame",
                "BeginFrame", "RequestMainThreadFrame", "ProfileChunk"}:
        return "other tasks"
    return None


def _complete_events(events: list[dict]) -> list[tuple[float, float, str]]:
    """(start, end, name) in microseconds of a thread's events: complete ('X') events and B/E pairs."""
    out, open_ = [], {}
    for e in events:
        ph = e.get("ph")
        if ph == "X" and e.get("dur") is not None:
            out.append((e["ts"], e["ts"] + e["dur"], e["name"]))
        elif ph == "B":
            open_.setdefault(e["name"], []).append(e["ts"])
        elif ph == "E" and open_.get(e.get("name")):
            out.append((open_[e["name"]].pop(), e["ts"], e["name"]))
    return out


def _samples(events: list[dict], pid: int, tid: int) -> list[tuple[float, float, list[dict]]]:
    """V8's CPU samples of the thread: (time, weight, stack from the leaf up), weight being the
    time to the next sample (microseconds)."""
    nodes, times, stacks = {}, [], []
    starts = {e["id"]: e["args"]["data"]["startTime"] for e in events
              if e.get("name") == "Profile" and e.get("pid") == pid and "data" in e.get("args", {})}
    clock = {}
    for e in events:
        if e.get("name") != "ProfileChunk" or e.get("id") not in starts or e.get("pid") != pid:
            continue
        data = e["args"]["data"]
        profile = data.get("cpuProfile", {})
        for node in profile.get("nodes", []):
            nodes[(e["id"], node["id"])] = node
        t = clock.get(e["id"], starts[e["id"]])
        for sample, delta in zip(profile.get("samples", []), data.get("timeDeltas", [])):
            t += delta
            times.append(t)
            stacks.append((e["id"], sample))
        clock[e["id"]] = t
    out = []
    order = sorted(range(len(times)), key=times.__getitem__)
    for i, j in zip(order, order[1:] + [None]):
        weight = min(times[j] - times[i], 10_000) if j is not None else 0
        chain, key = [], stacks[i]
        while key in nodes:
            node = nodes[key]
            chain.append(node["callFrame"])
            key = (key[0], node.get("parent")) if node.get("parent") is not None else None
        out.append((times[i], weight, chain))
    return out


def trace_breakdown(trace: dict, t0_ms: float, end_ms: float, sync: dict) -> dict:
    """Where the main thread's time went between the action's start and its settled end (page clock,
    ms): each 20 us of [start, end] goes to the innermost main-thread event covering it (scripting,
    style + layout, paint + composite, other tasks) or to idle / network when no task ran;
    scripting is split by script source in proportion to V8's CPU samples taken in it. Also the
    10 functions with the most self time in the samples of the window."""
    import numpy as np
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mark = max((e for e in events if e.get("name") == sync["name"] and e.get("ph") in ("R", "I", "i", "n", "b", "X")),
               key=lambda e: e["ts"], default=None)
    if mark is None:
        raise RuntimeError("the trace has no sync mark: was blink.user_timing traced?")
    pid, tid = mark["pid"], mark["tid"]
    offset = mark["ts"] - sync["page_ms"] * 1000          # trace us = page ms * 1000 + offset
    lo, hi = t0_ms * 1000 + offset, end_ms * 1000 + offset
    n = max(int((hi - lo) / BIN_US), 1)
    bins = np.full(n, -1, dtype=np.int8)
    mine = [e for e in events if e.get("pid") == pid and e.get("tid") == tid]
    spans = sorted(((a, b, _category(name)) for a, b, name in _complete_events(mine) if b > lo and a < hi),
                   key=lambda s: (s[0], -(s[1] - s[0])))
    for a, b, cat in spans:                               # parents first: a child paints over its parent
        if cat is None:
            continue
        i, j = max(int((a - lo) / BIN_US), 0), min(int((b - lo) / BIN_US), n)
        bins[i:j] = PARTS.index(cat)
    counts = np.bincount(bins + 1, minlength=len(PARTS) + 1)
    parts = {name: counts[k + 1] * BIN_US / 1000 for k, name in enumerate(PARTS[:-1])}
    parts["idle / network"] = counts[0] * BIN_US / 1000
    # the samples, by source (scripting only) and by function (everything sampled in the window)
    by_source: dict[str, float] = {}
    functions: dict[tuple, float] = {}
    sampled = 0.0
    for t, weight, chain in _samples(events, pid, tid):
        if not lo <= t < hi or not chain:
            continue
        leaf = chain[0]
        fn = (leaf.get("functionName") or "(anonymous)", leaf.get("url", ""), leaf.get("lineNumber", -1),
              leaf.get("columnNumber", -1))
        if leaf.get("functionName") not in ("(idle)", "(program)", "(root)"):
            functions[fn] = functions.get(fn, 0.0) + weight / 1000
        k = min(int((t - lo) / BIN_US), n - 1)
        if bins[k] != PARTS.index("scripting"):
            continue
        url = next((f["url"] for f in chain if f.get("url")), "")
        source = _source(url)
        by_source[source] = by_source.get(source, 0.0) + weight
        sampled += weight
    scripting = parts["scripting"]
    split = ({k: scripting * v / sampled for k, v in by_source.items()} if sampled
             else {"(no CPU samples)": scripting})
    top = sorted(functions.items(), key=lambda kv: -kv[1])[:10]
    return {"ms": round(end_ms - t0_ms, 1), "parts_ms": {k: round(v, 1) for k, v in parts.items()},
            "scripting_ms": {k: round(v, 1) for k, v in sorted(split.items(), key=lambda kv: -kv[1])},
            "top_functions": [{"function": f, "url": u.rsplit("/", 1)[-1].split("?")[0], "line": line + 1,
                               "column": col + 1, "self_ms": round(ms, 1)} for (f, u, line, col), ms in top],
            "main_thread": {"pid": pid, "tid": tid}, "events": len(spans)}


class Tracer:
    """Chromium tracing around one action (Playwright's browser.start_tracing) with V8's CPU
    profile (CDP Profiler), and the sync mark that places the page's clock on the trace's once the
    action has settled."""

    def __init__(self, browser, categories=TRACE_CATEGORIES):
        self.browser, self.categories = browser, categories
        self.trace: dict | None = None
        self.window: tuple[float, float] | None = None
        self.sync: dict | None = None
        self.cdp = None

    def start(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Profiler.enable")
        self.cdp.send("Profiler.setSamplingInterval", {"interval": SAMPLING_US})
        self.browser.start_tracing(page=page, categories=self.categories)
        self.cdp.send("Profiler.start")

    def stop(self, page, raw):
        self.window = (raw["t0"], raw["end"])        # the action, on the page's clock (ms)
        self.sync = {"name": SYNC_MARK, "page_ms": page.evaluate(f"() => performance.mark('{SYNC_MARK}').startTime")}
        profile = self.cdp.send("Profiler.stop")["profile"]
        page.wait_for_timeout(50)                     # the mark reaches the trace buffer
        trace = json.loads(self.browser.stop_tracing())
        self.trace = trace if isinstance(trace, dict) else {"traceEvents": trace}
        self.cdp.detach()
        mark = next(e for e in self.trace["traceEvents"] if e.get("name") == SYNC_MARK)
        self.trace["traceEvents"] += profile_events(profile, mark["pid"], mark["tid"])


def profile_events(profile: dict, pid: int, tid: int) -> list[dict]:
    """A CDP CPU profile (its times on the trace's clock, microseconds) as the trace's Profile and
    ProfileChunk events of the thread (nodes with their parent instead of their children)."""
    parent = {child: node["id"] for node in profile["nodes"] for child in node.get("children", [])}
    nodes = [{"id": n["id"], "callFrame": n["callFrame"], **({"parent": parent[n["id"]]} if n["id"] in parent else {})}
             for n in profile["nodes"]]
    start = profile["startTime"]
    return [{"name": "Profile", "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "id": "0xbe7c", "pid": pid,
             "tid": tid, "ts": start, "args": {"data": {"startTime": start}}},
            {"name": "ProfileChunk", "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "id": "0xbe7c",
             "pid": pid, "tid": tid, "ts": profile["endTime"],
             "args": {"data": {"cpuProfile": {"nodes": nodes, "samples": profile.get("samples", [])},
                               "timeDeltas": profile.get("timeDeltas", [])}}}]


def trace_report(b: dict, label: str, action: str, mode: str) -> str:
    lines = [f"trace of {label}: {action} ({mode}): {b['ms']:.0f} ms from the input event to the settled page",
             "main thread:"]
    total = sum(b["parts_ms"].values())
    for name in PARTS:
        ms = b["parts_ms"][name]
        lines.append(f"  {name:24} {ms:8.1f} ms {100 * ms / total if total else 0:5.1f}%")
        if name == "scripting":
            for source, sms in b["scripting_ms"].items():
                lines.append(f"    {source:22} {sms:8.1f} ms")
    lines.append(f"  {'sum':24} {total:8.1f} ms (the action: {b['ms']:.1f} ms)")
    lines.append("top 10 functions by self time (CPU samples in the action):")
    for f in b["top_functions"]:
        lines.append(f"  {f['self_ms']:8.1f} ms  {f['function'][:40]:40} {f['url']}:{f['line']}:{f['column']}")
    return "\n".join(lines)


def trace_main(path: str = "/response", action_name: str = "dropdown", scale: str = "registry",
               patients: int | None = None, cached: bool = False, output: Path | None = None,
               quiet: bool = False, quiet_ms: float = QUIET_MS) -> dict:
    """Play the page's actions up to `action_name` (untraced, as the benchmark does), then that one
    action traced: print the breakdown and write the raw trace (open it in DevTools' Performance
    panel). The result cache is emptied before the traced action unless `cached`."""
    from dashboard.app import PAGES
    labels = dict(PAGES)
    path = next((p for p, label in PAGES if path in (p, label)), path)
    if path not in labels:
        raise SystemExit(f"no page {path!r}: one of {', '.join(p for p, _ in PAGES)}")
    patients = patients or SCALES[scale]
    output = Path(output or HERE / "traces" / f"{path.strip('/') or 'overview'}-{action_name.replace(' ', '-')}.json")
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        tmp = Path(tmp)
        root, cache_dir = tmp / "data", tmp / "cache"
        cache_dir.mkdir(mode=0o700)
        if not quiet:
            print(f"generating {patients:,} patients into {root} ...", file=sys.stderr)
        generate(root, patients, scale == "stress", quiet=True)
        has_second_cut = len([d for d in (root / "snapshots").iterdir() if d.is_dir()]) > 1
        actions = actions_for(path, has_second_cut)
        names = [a.name for a in actions]
        if action_name not in names:
            raise SystemExit(f"no action {action_name!r} on {path}: one of {', '.join(names)}")
        with running_app(root, cache_dir, tmp / "server.log") as url, chromium() as browser:
            tab = Tab(browser, url, TIMEOUT_S[scale] if patients >= 10_000 else 60, quiet_ms)
            try:
                tab.act(actions[0], path)                     # warm up: scripts cached, imports done
                for action in actions[:names.index(action_name)]:
                    tab.act(action, path)
                action = actions[names.index(action_name)]
                if not cached:
                    empty_result_cache(cache_dir)
                tracer = Tracer(browser)
                measured = tab.act(action, path, tracer=tracer)
            finally:
                tab.close()
    b = trace_breakdown(tracer.trace, *tracer.window, tracer.sync)
    b.update({"page": labels[path], "path": path, "action": action_name, "mode": "cached" if cached else "uncached",
              "patients": patients, "measured": {k: measured[k] for k in ("ms", "waves", "server_ms",
                                                                          "after_last_answer_ms")}})
    output.parent.mkdir(parents=True, exist_ok=True)
    trace = tracer.trace
    trace.setdefault("metadata", {})["benchmark"] = b
    output.write_text(json.dumps(trace))
    print(trace_report(b, labels[path], action_name, b["mode"]))
    print(f"benchmark: {measured['ms']:.0f} ms, {measured['waves']} wave(s), server {measured['server_ms']:.0f} ms, "
          f"last answer -> settled {measured['after_last_answer_ms']:.0f} ms")
    print(f"-> {output} (Chrome DevTools: Performance, Load profile)")
    return b
