"""The Safety page in headless Debian Chromium (Playwright) against `python app.py` on the synthetic
registry: every switch (all / related / serious, onset within N days, columns and measure of the
second heatmap, table level) changes the numbers on screen to those of `python -m dashboard export
ae-incidence` with the same filters and options. Screenshots land in test-artifacts/safety-*.png."""
import contextlib
import io
import json
import re

import pytest

from browser_helpers import ARTIFACTS, export, wait_idle
from dashboard.callbacks.safety import n_pct

pytestmark = pytest.mark.browser
ANY_AE = "Any adverse event"


def export_fast(root, name, *filters, **options) -> dict:
    """`python -m dashboard export` run in this process (the same code path as the command, without
    the interpreter start-up): the JSON document it prints."""
    from dashboard.__main__ import main
    args = ["export", name, "--data", str(root)] + [a for f in filters for a in ("--filter", f)]
    for k, v in options.items():
        args += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return json.loads(out.getvalue())


def option(key: str) -> str:
    """CSS selector of a page option control (a pattern-matching id, serialised by Dash)."""
    return "[id='" + json.dumps({"key": key, "type": "page-option"}, separators=(",", ":")) + "']"


def open_safety(page, url: str):
    page.goto(url)
    page.wait_for_selector("#safety-incidence-grid, #card-ae-incidence-table .alert", timeout=60000)
    page.wait_for_selector("#safety-listing-grid, #safety-listing-counts, #card-ae-listing-table .alert", timeout=20000)
    for card in ("ae-grade-heatmap", "ae-group-heatmap"):
        page.wait_for_selector(f"#card-{card} .js-plotly-plot", timeout=20000)
    wait_idle(page)


def table_rows(page) -> list[list[str]]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#safety-incidence-grid tbody tr'))
                              .map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))""")


def wait_first_row(page, cells: list[str]):
    """Wait until the table's first row ('Any adverse event') shows these cells."""
    page.wait_for_function("""(want) => { const tr = document.querySelector('#safety-incidence-grid tbody tr');
        return tr && JSON.stringify(Array.from(tr.cells).map(td => td.innerText.trim())) === JSON.stringify(want); }""",
                           arg=cells, timeout=20000)
    wait_idle(page)


def expected_row(r: dict) -> list[str]:
    """A row of the export as the page's table prints it."""
    rate = r["events_per_100_sessions"]
    return [r["term"] or r["soc"]] + [n_pct(r[c], r["denominator"]) for c in
                                      ("n_patients_any", "n_grade_3_4", "n_grade_5", "n_serious", "n_related")] + \
        [str(r["n_events"]), "" if rate is None else f"{rate:.1f}"]


def heatmap(page, figure: str) -> dict:
    """A heatmap as the browser holds it: row labels, column labels and the printed cell texts (of every
    coloured trace: the grade heatmap draws each colour band as a trace of its own, with gaps elsewhere)."""
    gid = json.dumps({"figure": figure, "type": "figure"}, separators=(",", ":"))
    return page.evaluate("""(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
        const traces = gd._fullData.filter(t => t.name !== 'fewer than 5');
        const t = traces[0] || {};
        const text = (t.text || []).map(r => Array.from(r).map(() => ''));
        traces.forEach(tr => (tr.text || []).forEach((r, i) => Array.from(r).forEach((s, j) => {
            if (s) { text[i][j] = s; } })));
        return {type: t.type, rows: gd._fullLayout.yaxis.ticktext || [], cols: gd._fullLayout.xaxis.ticktext || [],
                text: text, notes: (gd._fullLayout.annotations || []).map(a => a.text)}; }""", gid)


def pct_text(n: int, d: int, decimals: int) -> str:
    """As the heatmaps print a cell: blank for 0 patients, '<1' where rounding would print 0."""
    text = f"{100.0 * n / d:.{decimals}f}"
    return "" if n == 0 else text if float(text) > 0 else ("<1" if decimals == 0 else "<0.1")


def test_episode_switches_change_table_and_heatmap_to_the_export(page, live_server, synthetic_root):
    open_safety(page, live_server + "/safety")
    doc = export(synthetic_root, "ae-incidence")
    assert table_rows(page)[0] == expected_row(doc["rows"][0])
    assert f"N = {doc['n_patients']} patients" in page.inner_text("#safety-denominator")
    grade = heatmap(page, "ae-grade-heatmap")
    assert grade["type"] == "heatmap" and grade["rows"][0] == f"<b>{ANY_AE}</b>"
    first = doc["rows"][0]
    assert grade["text"][0] == [pct_text(first[f"grade_{g}"], first["denominator"], 1) for g in range(1, 6)]
    # every term row of the table equals the export's row
    shown = {r[0]: r for r in table_rows(page) if len(r) > 1}
    for r in doc["rows"][1:]:
        assert shown[r["term"]] == expected_row(r)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "safety-all-1366.png"), full_page=True)

    page.click("#safety-events label:has-text('Serious only')")
    page.wait_for_url(re.compile(r"events=serious"))
    serious = export_fast(synthetic_root, "ae-incidence", serious_only=True)
    wait_first_row(page, expected_row(serious["rows"][0]))
    assert serious["rows"][0]["n_patients_any"] < first["n_patients_any"]

    page.fill(option("within_days"), "7")
    page.press(option("within_days"), "Enter")
    page.wait_for_url(re.compile(r"within_days=7"))
    both = export_fast(synthetic_root, "ae-incidence", serious_only=True, within_days=7)
    wait_first_row(page, expected_row(both["rows"][0]))
    assert "with onset 0-7 days" in page.inner_text("#card-ae-grade-heatmap .footnote")
    page.screenshot(path=str(ARTIFACTS / "safety-serious-within-7-1366.png"), full_page=True)

    page.click("#safety-events label:has-text('Treatment-related only')")
    page.wait_for_url(re.compile(r"events=related"))
    related = export_fast(synthetic_root, "ae-incidence", related_only=True, within_days=7)
    wait_first_row(page, expected_row(related["rows"][0]))
    grade = heatmap(page, "ae-grade-heatmap")
    r0 = related["rows"][0]
    assert grade["text"][0] == [pct_text(r0[f"grade_{g}"], r0["denominator"], 1) for g in range(1, 6)]
    page.set_viewport_size({"width": 1920, "height": 1080})
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "safety-related-within-7-1920.png"), full_page=True)
    assert page.console_errors == []


def test_group_heatmap_columns_and_measure_follow_the_export(page, live_server, synthetic_root):
    open_safety(page, live_server + "/safety?bclc=B,C")
    doc = export_fast(synthetic_root, "ae-incidence", "bclc=B,C", by="site_id")
    sites = heatmap(page, "ae-group-heatmap")
    groups = list(dict.fromkeys(r["group"] for r in doc["rows"]))
    assert [c.split("<br>")[0].rstrip("†") for c in sites["cols"]] == groups
    first = [r for r in doc["rows"] if r["soc"] == ANY_AE]
    assert sites["text"][0] == [pct_text(r["n_patients_any"], r["denominator"], 0) for r in first]

    page.click(f"#safety-by {option('by')}")
    page.locator(".dash-dropdown-option", has_text=re.compile(r"^BCLC stage$")).first.click()
    page.wait_for_url(re.compile(r"by=bclc_stage"))
    page.click("#safety-measure label:has-text('Grade ≥ 3')")
    page.wait_for_url(re.compile(r"measure=grade3"))
    doc = export_fast(synthetic_root, "ae-incidence", "bclc=B,C", by="bclc_stage")
    page.wait_for_function("""() => { const gd = document.getElementById(JSON.stringify(
            {figure: 'ae-group-heatmap', type: 'figure'})).querySelector('.js-plotly-plot');
        return (gd._fullLayout.xaxis.ticktext || []).map(t => t.split('<br>')[0]).join(',') === 'B,C'; }""",
                           timeout=20000)
    wait_idle(page)
    stages = heatmap(page, "ae-group-heatmap")
    for label, texts in zip(stages["rows"], stages["text"]):
        if not label:
            continue                                   # a SOC header row
        name = label.replace("<b>", "").replace("</b>", "")
        cells = [r for r in doc["rows"] if (r["term"] or r["soc"]) == name]
        assert texts == [pct_text(r["n_grade_3_4"] + r["n_grade_5"], r["denominator"], 0) for r in cells], name
    page.screenshot(path=str(ARTIFACTS / "safety-bclc-grade3-1366.png"), full_page=True)
    assert page.console_errors == []


def test_soc_level_table_and_its_csv_download_equal_the_export(page, live_server, synthetic_root):
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_safety(page, live_server + "/safety?site=S01,S02,S03")
    page.screenshot(path=str(ARTIFACTS / "safety-three-sites-1920.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "safety-three-sites-1920-viewport.png"))
    page.click("#safety-level label:has-text('System organ classes')")
    page.wait_for_url(re.compile(r"level=soc"))
    doc = export_fast(synthetic_root, "ae-incidence", "site=S01,S02,S03", level="soc")
    page.wait_for_function("(n) => document.querySelectorAll('#safety-incidence-grid tbody tr').length === n",
                           arg=len(doc["rows"]), timeout=20000)
    wait_idle(page)
    assert table_rows(page) == [expected_row(r) for r in doc["rows"]]
    page.locator("#card-ae-incidence-table").screenshot(path=str(ARTIFACTS / "safety-soc-table-1920.png"))
    with page.expect_download() as info:
        page.click("#card-ae-incidence-table button:has-text('Download data (CSV)')")
    csv = open(info.value.path(), encoding="utf-8").read().splitlines()
    header, first = csv[0].split(","), csv[1].split(",")
    assert header[:3] == ["soc", "term", "group"] and len(csv) == len(doc["rows"]) + 1
    assert first[0] == ANY_AE and int(first[3]) == doc["rows"][0]["n_patients_any"]
    assert info.value.suggested_filename.startswith("safety_ae-incidence-table_")
    assert page.console_errors == []


def test_no_patient_gives_messages_not_errors(page, live_server):
    open_safety(page, live_server + "/safety?bclc=0&age_max=20")
    for figure in ("ae-grade-heatmap", "ae-group-heatmap"):
        assert any("No patients in the current filter" in n for n in heatmap(page, figure)["notes"])
    assert "No patients in the current filter" in page.inner_text("#card-ae-incidence-table")
    page.screenshot(path=str(ARTIFACTS / "safety-no-patients-1366.png"), full_page=True)
    assert page.console_errors == []


# --- the listing of serious safety signals -------------------------------------------------------------
def listing_rows(page) -> list[list[str]]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#safety-listing-grid tbody tr'))
                              .map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))""")


def listed(doc: dict) -> list[list[str]]:
    """The export's rows as the listing prints them."""
    def text(v):
        return "" if v is None else str(v)
    return [[r["patient_id"], r["site_id"], r["term"], r["soc"], str(r["grade"]), "yes" if r["is_serious"] else "no",
             r["onset_date"], "–" if r["days_since_last_session"] is None else str(r["days_since_last_session"]),
             text(r["session_number"]), "yes" if r["is_treatment_related"] else "no",
             r["resolution_date"] or "not resolved"] for r in doc["rows"]]


def test_the_listing_of_serious_safety_signals(page, live_server, synthetic_root):
    """Near the top of the page: every grade 5 and serious grade >= 3 event, as `export ae-listing` prints them;
    the options (min grade 4, serious only) change the rows to the export's with the same flags and stay in
    the URL; a grade 5 cell of the heatmap is painted in the grade 5 red."""
    open_safety(page, live_server + "/safety")
    doc = export_fast(synthetic_root, "ae-listing")
    assert listing_rows(page) == listed(doc) and doc["n_grade_5"] == 7
    assert [r[4] for r in listing_rows(page)[:7]] == ["5"] * 7
    note = page.inner_text("#card-ae-listing-table .footnote")
    assert "every grade 5 event, and every serious event of grade 3 or 4" in note and "126 events" in note
    top = page.locator("#card-ae-listing-table").bounding_box()
    assert top["y"] < 300                                           # a card near the top
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "safety-listing-1366.png"))
    page.screenshot(path=str(ARTIFACTS / "safety-listing-1366-full.png"), full_page=True)

    page.click("#safety-min-grade")
    page.locator(".dash-dropdown-option", has_text=re.compile(r"^Grade ≥ 4$")).first.click()
    page.wait_for_url(re.compile(r"min_grade=4"))
    page.click("#safety-serious-only label:has-text('Serious only')")
    page.wait_for_url(re.compile(r"serious_only=on"))
    both = export_fast(synthetic_root, "ae-listing", min_grade=4, serious_only=True)
    page.wait_for_function("(n) => document.querySelectorAll('#safety-listing-grid tbody tr').length === n",
                           arg=len(both["rows"]), timeout=20000)
    wait_idle(page)
    assert listing_rows(page) == listed(both)
    page.locator("#card-ae-listing-table").screenshot(path=str(ARTIFACTS / "safety-listing-grade4-serious-1366.png"))

    # the grade 5 cell of hepatic failure is the grade 5 red, whatever the cells around it
    colours = page.evaluate("""() => { const gd = document.getElementById(JSON.stringify(
            {figure: 'ae-grade-heatmap', type: 'figure'})).querySelector('.js-plotly-plot');
        return gd._fullData.map(t => t.name); }""")
    assert colours[:3] == ["grades 1-2", "grades 3-4", "grade 5"]
    page.locator("#card-ae-grade-heatmap").screenshot(path=str(ARTIFACTS / "safety-grade-heatmap-1366.png"))

    # a shared link restores the options
    page.goto(live_server + "/safety?min_grade=5")
    page.wait_for_selector("#safety-listing-grid")
    wait_idle(page)
    assert [r[4] for r in listing_rows(page)] == ["5"] * 7
    assert page.console_errors == []


# --- the listing per role, signed in through the form ---------------------------------------------------
PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def roles_server(tmp_path_factory):
    """`python app.py --auth local` on a small registry (240 patients, 6 sites) with an investigator of S01
    and a sponsor."""
    import os
    from argon2 import PasswordHasher
    from conftest import running_app
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("safety-roles")
    generate_registry(root, n_patients=240, n_sites=6, seed=7, last_cut_only=True, progress=False)
    tmp = tmp_path_factory.mktemp("safety-roles-server")
    hashed = PasswordHasher().hash(PASSWORD)
    (tmp / "users.json").write_text(json.dumps({"users": {
        "lin": {"role": "investigator", "sites": ["S01"], "password": hashed},
        "acme": {"role": "sponsor", "sites": [], "password": hashed}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_AUDIT_LOG=str(tmp / "audit.log"))
    with running_app(root, tmp / "server.log", "--auth", "local", "--users", str(tmp / "users.json"), env=env) as url:
        yield url, root


def sign_in(page, url, name, path):
    page.goto(url + path)
    page.wait_for_selector("#sign-in-form")
    page.fill("#sign-in-name", name)
    page.fill("#sign-in-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + path)


@pytest.mark.parametrize("who", ["lin", "acme"])
def test_the_listing_per_role_in_the_browser(page, roles_server, who):
    """The investigator sees patient rows of S01 only (the export run with the files' own access lists other
    sites too); the sponsor sees counts per term x grade x serious, "<5" for 1-4, and no patient id."""
    url, root = roles_server
    sign_in(page, url, who, "/safety?min_grade=3")
    page.wait_for_selector("#safety-listing-grid, #safety-listing-counts", timeout=60000)
    wait_idle(page)
    everyone = export_fast(root, "ae-listing", min_grade=3)
    assert len({r["site_id"] for r in everyone["rows"]}) > 1
    text = page.inner_text("#card-ae-listing-table")
    if who == "lin":
        rows = listing_rows(page)
        own = [r for r in listed(everyone) if r[1] == "S01"]
        assert rows == own and rows
        assert "Patients of your site (S01) only" in text
    else:
        assert not re.search(r"S\d\d-\d{4}", page.content())
        cells = page.evaluate("""() => Array.from(document.querySelectorAll('#safety-listing-counts tbody tr'))
                                  .map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))""")
        counts = [c for r in cells for c in r[4:]]
        assert counts and "<5" in counts and not [c for c in counts if c in ("1", "2", "3", "4")]
        assert "No patient, site or date for your role" in text
    page.screenshot(path=str(ARTIFACTS / f"safety-listing-{who}-1366.png"))
    assert page.console_errors == []
