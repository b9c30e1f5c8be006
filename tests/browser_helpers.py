"""Helpers for the browser tests (Playwright driving Debian's headless Chromium)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def export(root, name, *filters, **options):
    """Run `python -m dashboard export` as a user would; options become --key value flags."""
    args = [sys.executable, "-m", "dashboard", "export", name, "--data", str(root)]
    for f in filters:
        args += ["--filter", f]
    for k, v in options.items():
        args += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def banner_when(page, condition, timeout_s: float = 20) -> int:
    """The banner's n once `condition(n)` holds (polled: after a URL change the shell's callbacks
    may not have started yet); the last value seen when it never holds, for the assertion."""
    import time
    deadline = time.time() + timeout_s
    n = banner_n(page)
    while not condition(n) and time.time() < deadline:
        page.wait_for_timeout(200)
        n = banner_n(page)
    return n


def banner_n(page) -> int:
    # a function, not an expression: Playwright polls an expression with eval, which the CSP forbids
    page.wait_for_function("() => document.querySelector('#banner-count strong') !== null")
    return int(page.inner_text("#banner-count strong").replace(",", ""))


def wait_idle(page):
    """Wait until Dash has no callback in flight."""
    page.wait_for_function(
        "() => !document.querySelector('[data-dash-is-loading=\"true\"]') && "
        "!document.querySelector('._dash-loading-callback')", timeout=20000)
    page.wait_for_timeout(300)


def graph_data(page, figure: str):
    """A graph's traces as the browser holds them (gd._fullData holds decoded arrays)."""
    gid = json.dumps({"figure": figure, "type": "figure"}, separators=(",", ":"))
    return page.evaluate(
        """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                      return gd._fullData.map(t => ({name: t.name, x: Array.from(t.x || []),
                                                      y: Array.from(t.y || [])})); }""", gid)


def pick(page, control: str, *labels):
    page.click(f"#{control}")
    for label in labels:
        page.locator(".dash-dropdown-option", has_text=label).first.click()
    page.keyboard.press("Escape")
