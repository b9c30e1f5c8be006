"""The Tumour response page in headless Debian Chromium (Playwright) against `python app.py` on the
synthetic registry: the overall/local switch and the grouping change the figures, the numbers on
screen equal the exports for the same filters, a click on a waterfall bar follows that patient in
the spider and swimmer plots, the CSV download equals the export, no console error. Screenshots
land in test-artifacts/response-*.png (1366x768 with a filter; 1920x1080 with a patient followed)
to be looked at."""
import json
import re
from io import StringIO

import pandas as pd
import pytest

from browser_helpers import ARTIFACTS, banner_n, wait_idle
from dashboard import data, exports
from dashboard.filters import Filters

pytestmark = pytest.mark.browser


def export(root, name, *filters, **options) -> dict:
    """The export as `python -m dashboard export NAME --filter ...` gives it (the same function, run
    in this process; the response scope is passed as response_scope, see dashboard/exports/response.py)."""
    snapshot = data.resolve("latest", root)
    flt = Filters.from_cli(list(filters), known_sites=data.site_ids(snapshot))
    exp = exports.run_export(name, snapshot, flt, **options)
    return json.loads(exports.to_json(exp, snapshot, flt))


def gid(figure: str) -> str:
    return json.dumps({"figure": figure, "type": "figure"}, separators=(",", ":"))


def traces(page, figure: str) -> list[dict]:
    return page.evaluate(
        """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                      return gd._fullData.map(t => ({name: t.name, type: t.type, x: Array.from(t.x || []),
                              y: Array.from(t.y || [])})); }""", gid(figure))


def wait_for_traces(page, figure: str, js_test: str):
    """Wait until the figure's traces pass a test (a JS expression over `ts`, the traces)."""
    page.wait_for_function(
        f"""(gid) => {{ const el = document.getElementById(gid);
                        const gd = el && el.querySelector('.js-plotly-plot');
                        const ts = gd && gd._fullData; return !!ts && ({js_test}); }}""",
        arg=gid(figure), timeout=30000)


def bar_ids(page) -> list[str]:
    # the patients' bars (not the legend entry of the contradiction marks, a bar of height 0)
    return [p for t in traces(page, "response-waterfall") if t["type"] == "bar"
            and not t["name"].startswith("Recorded BOR contradicts") for p in t["x"]]


def open_page(page, url):
    page.goto(url)
    wait_for_traces(page, "response-waterfall", "ts.some(t => t.type === 'bar')")
    wait_idle(page)


def test_numbers_on_screen_equal_the_exports(page, live_server, synthetic_root):
    open_page(page, live_server + "/response?bclc=B,C")
    assert banner_n(page) == export(synthetic_root, "patients", "bclc=B,C")["n_patients"]
    waterfall = export(synthetic_root, "waterfall", "bclc=B,C")
    assert bar_ids(page) and sorted(bar_ids(page)) == sorted(r["patient_id"] for r in waterfall["rows"])
    note = page.inner_text("#response-not-evaluable")
    assert note.startswith(f"{waterfall['n_not_evaluable']} of {waterfall['n_patients']} patients not evaluable")
    summary = {r["group"]: r for r in export(synthetic_root, "response-summary", "bclc=B,C", by="bclc_stage")["rows"]}
    for group in ("B", "C", "all"):
        r = summary[group]
        cell = page.inner_text(f"#response-orr-{group}").split("\n")
        assert cell[0] == f"{100 * r['orr']:.1f}% {r['cr'] + r['pr']}/{r['n']}"
        assert cell[1] == f"{100 * r['orr_ci_lower']:.1f}–{100 * r['orr_ci_upper']:.1f}"
    bor = {t["name"]: t for t in traces(page, "response-bor")}
    assert bor["PD"]["x"][0] == pytest.approx(100 * summary["B"]["pd"] / summary["B"]["n"])
    consistency = export(synthetic_root, "response-consistency", "bclc=B,C")
    assert page.inner_text("#response-consistency-count").startswith(
        f"{consistency['n_patients_flagged']} of {consistency['n_patients_checked']} patients checked")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "response-1366x768.png"), full_page=False)
    page.screenshot(path=str(ARTIFACTS / "response-1366x768-full.png"), full_page=True)
    assert page.console_errors == []


def test_scope_switch_and_grouping_follow_the_exports(page, live_server, synthetic_root):
    open_page(page, live_server + "/response")
    overall = bar_ids(page)
    page.get_by_label("Local (treated target lesions)").check()
    page.wait_for_url(re.compile(r"scope=local"))
    local = export(synthetic_root, "waterfall", response_scope="local")
    wait_for_traces(page, "response-waterfall",
                    f"ts.filter(t => t.type === 'bar').reduce((n, t) => n + t.x.length, 0) === {len(local['rows'])}")
    wait_idle(page)
    assert bar_ids(page) != overall
    assert sorted(bar_ids(page)) == sorted(r["patient_id"] for r in local["rows"])
    assert page.inner_text("#response-not-evaluable").startswith(f"{local['n_not_evaluable']} of ")
    # group by site: one bar per site plus 'All patients', and the table's ORR cells from the export
    page.click("#response-by")
    page.locator(".dash-dropdown-option", has_text="Site").first.click()
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r"by=site_id"))
    wait_for_traces(page, "response-bor", "ts[0].y.length > 5")
    wait_idle(page)
    summary = export(synthetic_root, "response-summary", response_scope="local", by="site_id")["rows"]
    assert len(traces(page, "response-bor")[0]["y"]) == len(summary)
    s01 = next(r for r in summary if r["group"] == "S01")
    assert page.inner_text("#response-dcr-S01").split("\n")[0].split(" ")[0] == f"{100 * s01['dcr']:.1f}%"
    assert page.console_errors == []


def test_click_on_a_waterfall_bar_follows_the_patient(page, live_server, synthetic_root):
    open_page(page, live_server + "/response")
    page.locator(f"[id='{gid('response-waterfall')}'] .bars path").nth(150).click(force=True)
    page.wait_for_selector("#response-highlight-patient", timeout=20000)
    patient = page.inner_text("#response-highlight-patient")
    assert patient in bar_ids(page)
    wait_for_traces(page, "response-spider", f"ts.some(t => t.name === '{patient}')")
    wait_for_traces(page, "response-swimmer", f"ts.some(t => t.type === 'bar' && t.y.includes('{patient}'))")
    wait_idle(page)
    spider = next(t for t in traces(page, "response-spider") if t["name"] == patient)
    points = [r for r in export(synthetic_root, "spider")["rows"] if r["patient_id"] == patient]
    assert len(spider["y"]) == len(points)
    # the swimmer turned to the page holding the patient's lane, and says which lanes it shows
    lanes = list(dict.fromkeys(r["patient_id"] for r in export(synthetic_root, "swimmer")["rows"]))
    first = lanes.index(patient) // 50 * 50 + 1
    assert page.inner_text("#response-swimmer-count").startswith(
        f"Showing lanes {first}–{min(first + 49, len(lanes))} of {len(lanes)} patients")
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "response-1920x1080-click.png"), full_page=False)
    page.screenshot(path=str(ARTIFACTS / "response-1920x1080-click-full.png"), full_page=True)
    page.click("#response-highlight-clear")
    page.wait_for_selector("#response-highlight-patient", state="detached")
    assert page.console_errors == []


def test_swimmer_pages_and_csv_downloads_equal_the_exports(page, live_server, synthetic_root):
    open_page(page, live_server + "/response?site=S01,S02,S03")
    lanes = list(dict.fromkeys(r["patient_id"] for r in export(synthetic_root, "swimmer", "site=S01,S02,S03")["rows"]))
    assert page.inner_text("#response-swimmer-count").startswith(f"Showing lanes 1–50 of {len(lanes)} patients")
    page.locator("#response-swimmer-page a.page-link", has_text=re.compile(r"^2$")).click()
    page.wait_for_function("() => document.querySelector('#response-swimmer-count').innerText.startsWith('Showing lanes 51')")
    wait_idle(page)
    shown = [p for t in traces(page, "response-swimmer") if t["type"] == "bar" for p in t["y"]]
    assert sorted(shown) == sorted(lanes[50:100])
    for figure, name in (("response-waterfall", "waterfall"), ("response-swimmer", "swimmer"),
                         ("response-summary", "response-summary")):
        with page.expect_download() as info:
            page.click(f"#card-{figure} button:has-text('Download data (CSV)')")
        got = open(info.value.path(), encoding="utf-8").read()
        snapshot = data.resolve("latest", synthetic_root)
        flt = Filters.from_cli(["site=S01,S02,S03"], known_sites=data.site_ids(snapshot))
        options = {"response_scope": "overall", **({"by": "bclc_stage"} if name == "response-summary" else {})}
        expected = exports.to_csv(exports.run_export(name, snapshot, flt, **options))
        pd.testing.assert_frame_equal(pd.read_csv(StringIO(got)), pd.read_csv(StringIO(expected)))
        assert info.value.suggested_filename.startswith(f"response_{figure}_")
    assert page.console_errors == []


def test_no_patient_filter_shows_messages_not_errors(page, live_server):
    page.goto(live_server + "/response?bclc=0&age_max=20")
    wait_idle(page)
    assert banner_n(page) == 0
    for figure in ("response-waterfall", "response-bor", "response-spider", "response-swimmer"):
        page.wait_for_function(
            """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                          return gd && (gd.layout.annotations || []).some(a => a.text.includes('No patients')); }""",
            arg=gid(figure), timeout=20000)
    assert "No patients in the current filter" in page.inner_text("#card-response-summary")
    assert "Something went wrong" not in page.inner_text("body")
    assert page.console_errors == []
