"""The Downstaging page in headless Debian Chromium (Playwright) against `python app.py` on the
synthetic registry: the switches change the figures, the numbers on screen equal the exports for
the same filters, the CSV download equals the export, no console error. Screenshots land in
test-artifacts/downstaging-*.png to be looked at."""
import json
import re
from io import StringIO

import pandas as pd
import pytest

from browser_helpers import ARTIFACTS, banner_n, pick, wait_idle
from dashboard import data, exports
from dashboard.filters import Filters

pytestmark = pytest.mark.browser


def export(root, name, *filters, **options) -> dict:
    """The export as `python -m dashboard export NAME --data root --filter ...` gives it (the same
    function, run in this process: a subprocess per number would make these tests slow)."""
    snapshot = data.resolve("latest", root)
    flt = Filters.from_cli(list(filters), known_sites=data.site_ids(snapshot))
    exp = exports.run_export(name, snapshot, flt, **options)
    return json.loads(exports.to_json(exp, snapshot, flt))


def gid(figure: str) -> str:
    return json.dumps({"figure": figure, "type": "figure"}, separators=(",", ":"))


def annotation_texts(page, figure: str, name: str) -> list[str]:
    return page.evaluate(
        """([gid, name]) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                              return (gd.layout.annotations || []).filter(a => a.name === name).map(a => a.text); }""",
        [gid(figure), name])


def traces(page, figure: str) -> list[dict]:
    """A graph's traces as the browser holds them (gd._fullData holds decoded arrays)."""
    return page.evaluate(
        """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                      return gd._fullData.map(t => ({name: t.name, x: Array.from(t.x || []),
                              y: Array.from(t.y || []), text: Array.isArray(t.text) ? t.text : [t.text],
                              showlegend: t.showlegend, type: t.type})); }""", gid(figure))


def link_counts(page) -> list[int]:
    return sorted(int(re.sub(r"<[^>]+>", "", t)) for t in annotation_texts(page, "downstaging-flow", "link"))


def wait_for_nodes(page, text: str):
    page.wait_for_function(
        """([gid, text]) => { const el = document.getElementById(gid);
                              const gd = el && el.querySelector('.js-plotly-plot');
                              return gd && gd.layout && (gd.layout.annotations || [])
                                  .some(a => a.name === 'node' && a.text.includes(text)); }""",
        arg=[gid("downstaging-flow"), text], timeout=20000)
    wait_idle(page)


def test_flow_switch_shows_each_measure_with_the_export_counts(page, live_server, synthetic_root):
    page.goto(live_server + "/downstaging?bclc=B,C")
    wait_for_nodes(page, "BCLC B")
    assert banner_n(page) == export(synthetic_root, "patients", "bclc=B,C")["n_patients"]
    for measure, label, node in (("bclc", None, "BCLC B"), ("milan", "Milan criteria", "Outside Milan"),
                                 ("resectable", "Resectability", "Not resectable")):
        if label:
            page.get_by_label(label).check()
            wait_for_nodes(page, node)
        expected = export(synthetic_root, "staging-flow", "bclc=B,C", measure=measure)
        assert link_counts(page) == sorted(r["n"] for r in expected["rows"]), measure
        nodes = annotation_texts(page, "downstaging-flow", "node")
        died = sum(r["n"] for r in expected["rows"] if r["target"] == "died before restaging")
        assert f"<b>Died before restaging</b><br>n = {died}" in nodes
        if measure == "milan":
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator("#card-downstaging-flow").screenshot(path=str(ARTIFACTS / "downstaging-flow-milan.png"))
    assert page.console_errors == []


def test_group_by_changes_rates_curves_and_boxes_as_the_exports_say(page, live_server, synthetic_root):
    page.goto(live_server + "/downstaging")
    wait_for_nodes(page, "BCLC B")
    pick(page, "downstaging-by", "Sex")
    page.wait_for_function(
        """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                      return gd._fullData.some(t => (t.name || '').startsWith('M (n=')); }""",
        arg=gid("downstaging-cif"), timeout=20000)
    wait_idle(page)
    summary = export(synthetic_root, "downstaging-summary", by="sex")["rows"]
    milan = next(t for t in traces(page, "downstaging-rates") if t["name"] == "Downstaged to within Milan")
    expected = [f"{r['achieved']}/{r['eligible']} · {100 * r['rate']:.1f}%" for r in summary
                if r["measure"] == "downstaged_to_milan"]
    assert milan["text"] == expected and milan["y"] == ["All patients", "M", "F"]
    cif = export(synthetic_root, "downstaging-cif", by="sex")["rows"]
    curves = [t["name"] for t in traces(page, "downstaging-cif") if t["showlegend"]]
    n0 = {r["group"]: r["n_risk"] for r in cif if r["time_days"] == 0}
    assert curves == [f"M (n={n0['M']})", f"F (n={n0['F']})"]
    boxes = [t for t in traces(page, "downstaging-downsizing") if t["type"] == "box"]
    rows = export(synthetic_root, "downsizing", by="sex")["rows"]
    assert [len(b["y"]) for b in boxes] == [sum(r["group"] == g for r in rows) for g in ("M", "F")]
    assert page.console_errors == []


def test_csv_download_equals_the_export(page, live_server, synthetic_root):
    page.goto(live_server + "/downstaging?site=S01,S02")
    wait_for_nodes(page, "BCLC")
    page.get_by_label("Resectability").check()
    wait_for_nodes(page, "Not resectable")
    for figure, name, options in (("downstaging-flow", "staging-flow", {"measure": "resectable"}),
                                  ("downstaging-rates", "downstaging-summary", {"by": "bclc_stage"})):
        with page.expect_download() as info:
            page.click(f"#card-{figure} button:has-text('Download data (CSV)')")
        got = pd.read_csv(StringIO(open(info.value.path(), encoding="utf-8").read()))
        expected = pd.DataFrame(export(synthetic_root, name, "site=S01,S02", **options)["rows"])
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert info.value.suggested_filename.startswith(f"downstaging_{figure}_")
    assert page.console_errors == []


def test_no_patient_filter_shows_messages_not_errors(page, live_server):
    page.goto(live_server + "/downstaging?bclc=0&age_max=20")
    wait_idle(page)
    page.wait_for_function("() => document.querySelector('#banner-count strong') !== null")
    assert banner_n(page) == 0
    for figure in ("downstaging-flow", "downstaging-rates", "downstaging-cif", "downstaging-downsizing"):
        page.wait_for_function(
            """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                          return gd && (gd.layout.annotations || []).some(a => a.text.includes('No patient')); }""",
            arg=gid(figure), timeout=20000)
    assert "Something went wrong" not in page.inner_text("body")
    assert page.console_errors == []


@pytest.mark.parametrize("width,height", [(1366, 768), (1920, 1080)])
def test_downstaging_screenshots(browser, live_server, width, height):
    pg = browser.new_context(viewport={"width": width, "height": height}).new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(live_server + "/downstaging")
    wait_for_nodes(pg, "BCLC B")
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"downstaging-{width}x{height}.png"), full_page=False)
    pg.screenshot(path=str(ARTIFACTS / f"downstaging-{width}x{height}-full.png"), full_page=True)
    assert errors == []
