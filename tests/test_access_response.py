"""Who sees what on the Tumour response page (issue 15, item 2), through requests built by hand.

Each role signs in through the header sign-in (tests/access_support.py) and posts what the browser
posts to /_dash-update-component for every callback of the page (dashboard/replay.py), under
filters that make small cells, and every CSV download of the page's figures. The assertions read
the raw response: what reaches the browser, seen or not (customdata, hover texts, stores).

- committee: every number and bar, equal to the export run with no scope (every site).
- investigator (own site S01): waterfall bars, spider lines, swimmer lanes and consistency rows of
  S01 only; pooled aggregates (ORR/DCR, BOR) with counts 1-4 shown as "<5" unless the site filter
  keeps only S01.
- sponsor: no patient id or date; a de-identified waterfall (best change and BOR only) when at
  least access.MIN_GROUP patients are evaluable, else a note; spider, swimmer and consistency say
  in one sentence that they are not available, and their CSV is refused (204); counts 1-4 as "<5".

Expected values: the exports run outside a request with no user (every site, nothing suppressed),
and counts taken from those rows with pandas.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re

import pandas as pd
import pytest

from access_support import signed_in
from dashboard import data, exports
from dashboard.figures.response import is_contradiction_legend
from dashboard.access import MIN_GROUP, SUPPRESSED, AccessDenied, Scope, User, is_small, scope_for
from dashboard.callbacks import response as cb
from dashboard.exports import response as rx
from dashboard.filters import Filters
from dashboard.replay import Session, callback_body, parse_id, update_values

PATIENT_ID = re.compile(r"S\d{2}-\d{4}")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# filter -> the scenario the shell's controls set; chosen (and checked in test_the_registry_has_small_cells)
# so that groups under MIN_GROUP and cells of 1-4 patients occur
SCENARIOS = {
    "every patient": {},
    "site S02": {"site": ["S02"]},
    "BCLC A": {"bclc": ["A"]},
    "own site S01": {"site": ["S01"]},
    "S02, BCLC C, women": {"site": ["S02"], "bclc": ["C"], "sex": ["F"]},
    "BCLC D (nobody)": {"bclc": ["D"]},
}
CARDS = {"waterfall": cb.WATERFALL, "bor-summary": cb.BOR, "spider": cb.SPIDER, "swimmer": cb.SWIMMER,
         "consistency": cb.CONSISTENCY}
PATIENT_LEVEL_CARDS = (cb.SPIDER, cb.SWIMMER, cb.CONSISTENCY)
DOWNLOAD_OUTPUT = '{"figure":["MATCH"],"type":"download"}.data'


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """300 patients at 6 sites (seed 5): 3 of BCLC A, so every group of A is under 5."""
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("access-response")
    generate_registry(root, n_patients=300, n_sites=6, seed=5, last_cut_only=True, progress=False)
    return root


def filters_of(scenario: dict) -> Filters:
    return Filters.parse_pairs([(k, ",".join(v)) for k, v in scenario.items()])[0]


class Page:
    """The response page's callbacks, posted as one signed-in role."""

    def __init__(self, session, snapshot, as_user):
        self.session, self.snapshot, self.as_user = session, snapshot, as_user
        callbacks, _, self.base = session.plan("/response")
        self.cards = {name: next(d for d in callbacks if f'"figure":"{figure}"' in d["output"].split("...")[0])
                      for name, figure in CARDS.items()}
        self.deps = session.deps

    def values(self, scenario: dict, **extra) -> dict:
        _, values = update_values(self.base, self.snapshot.snapshot_id, scenario)
        values.update(extra)
        return values

    def post(self, role: str, body: dict):
        return self.session.client.post("/_dash-update-component", json=body, headers=self.as_user(role))

    def card(self, role: str, name: str, scenario: dict, **extra):
        """(status, raw JSON text, outputs by component id) of one card's callback."""
        r = self.post(role, callback_body(self.cards[name], self.values(scenario, **extra)))
        assert r.status_code in (200, 204), r.data[:300]
        text = r.get_data(as_text=True)
        return r.status_code, text, outputs(text)

    def download(self, role: str, figure: str, scenario: dict | None = None, search: str = "",
                 state: dict | None = None):
        """(status, CSV text or None) of a click on the card's "Download data (CSV)"."""
        dep = next(d for d in self.deps if d["output"] == DOWNLOAD_OUTPUT)
        state = state or {"snapshot": self.snapshot.snapshot_id, "query": filters_of(scenario or {}).to_query()}
        values = {"url.search": search, "filter-state.data": state}
        states = [{"id": parse_id(s["id"]), "property": s["property"], "value": values[f"{s['id']}.{s['property']}"]}
                  for s in dep["state"]]
        button = {"type": "download-csv", "figure": figure}
        body = {"output": DOWNLOAD_OUTPUT, "outputs": {"id": {"type": "download", "figure": figure}, "property": "data"},
                "inputs": [{"id": button, "property": "n_clicks", "value": 1}], "state": states,
                "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"]}
        r = self.post(role, body)
        if r.status_code != 200:
            return r.status_code, None
        key = json.dumps({"figure": figure, "type": "download"}, separators=(",", ":"))
        return r.status_code, r.get_json()["response"][key]["data"]["content"]


def outputs(text: str) -> dict:
    """Component id (as Dash writes it) -> {property: value} of a callback response."""
    if not text:
        return {}
    return {key: props for key, props in json.loads(text)["response"].items()}


def prop(out: dict, figure: str, kind: str, name: str):
    return out[json.dumps({"figure": figure, "type": kind}, separators=(",", ":"))][name]


def texts(node) -> list[str]:
    """Every string and number of a component tree (children, in order), as text."""
    if isinstance(node, dict):
        return texts(node.get("props", {}).get("children")) if "props" in node else \
            [t for v in node.values() for t in texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in texts(v)]
    return [] if node is None or isinstance(node, bool) else [str(node)]


def table_rows(table) -> list[list[str]]:
    """The body rows of the ORR/DCR table, each cell's text joined (none for a message)."""
    if table.get("type") != "Static":          # a message, not the table (one Static component)
        return []
    body = table["props"]["children"][1]
    rows = body["props"]["children"]
    return [["".join(texts(td)) for td in tr["props"]["children"]] for tr in rows]


def run(name, snapshot, scenario, scope: Scope | None = None, **options):
    """The export as computed outside a request: every site and nothing suppressed, or the scope's."""
    return exports.compute_export(name, snapshot, filters_of(scenario), scope or Scope(), **options)


@pytest.fixture
def page(registry, dash_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_DATA", str(registry))
    session = Session(dash_app)        # reads the callback map before sign-in (as the demo user)
    snapshot = data.resolve("latest")
    with signed_in(monkeypatch, tmp_path) as as_user:
        yield Page(session, snapshot, as_user)


def allowed_dates(snapshot) -> set[str]:
    """The ISO dates a response may carry that are no patient's: the cut-off (the snapshot id, in
    file names) and today (in file names)."""
    return {snapshot.cutoff_date.isoformat(), snapshot.snapshot_id, dt.date.today().isoformat()}


# --- the registry makes the cases the rules are about -----------------------------------------------
def test_the_registry_has_small_cells(registry):
    snapshot = data.resolve("latest", registry)
    by_stage = run("response-summary", snapshot, {}, by="bclc_stage").rows.set_index("group")
    assert 1 <= by_stage.loc["A", "n"] <= 4                       # a group under 5 (and under MIN_GROUP)
    assert len(run("waterfall", snapshot, {"bclc": ["A"]}).rows) < MIN_GROUP
    assert len(run("waterfall", snapshot, {}).rows) >= MIN_GROUP
    small = run("waterfall", snapshot, SCENARIOS["S02, BCLC C, women"])
    assert 1 <= small.extra["n_not_evaluable"] <= 4 and len(small.rows) < MIN_GROUP
    row = run("response-summary", snapshot, SCENARIOS["S02, BCLC C, women"]).rows.iloc[-1]
    assert is_small(row["cr"] + row["pr"]) and row["n"] >= 5       # a rate over n >= 5 whose responders are 1-4
    sites = set(run("waterfall", snapshot, {}).rows["site_id"])
    assert {"S01", "S02"} <= sites
    assert run("waterfall", snapshot, SCENARIOS["BCLC D (nobody)"]).n_patients == 0


# --- sponsor ----------------------------------------------------------------------------------------
def assert_no_patient_data(text: str, snapshot):
    assert not PATIENT_ID.search(text), PATIENT_ID.search(text).group()
    dates = set(ISO_DATE.findall(text)) - allowed_dates(snapshot)
    assert not dates, dates


RESPONSE_SCOPE = '{"key":"scope","type":"page-option"}.value'


@pytest.mark.parametrize("label", list(SCENARIOS))
def test_sponsor_gets_no_patient_id_date_or_patient_view(page, label):
    scenario = SCENARIOS[label]
    for name, response_scope in [(name, s) for name in CARDS for s in ("overall", "local")]:
        status, text, out = page.card("sponsor", name, scenario, **{RESPONSE_SCOPE: response_scope})
        assert status == 200, name
        assert_no_patient_data(text, page.snapshot)
        assert "Something went wrong" not in text and "Not available for your role:" not in text
    for figure in (cb.SPIDER, cb.SWIMMER):
        _, _, out = page.card("sponsor", figure.split("-", 1)[1], scenario)
        fig = prop(out, figure, "figure", "figure")
        assert fig["data"] == []
        assert [a["text"].replace("<br>", " ") for a in fig["layout"]["annotations"]] == [cb.NOT_FOR_ROLE]
        assert fig["layout"]["xaxis"]["visible"] is False
        assert prop(out, figure, "figure-export", "data") is None
    _, _, out = page.card("sponsor", "consistency", scenario)
    assert texts(prop(out, cb.CONSISTENCY, "table", "children")) == [cb.NOT_FOR_ROLE]


@pytest.mark.parametrize("label", list(SCENARIOS))
def test_sponsor_waterfall_is_de_identified_or_not_drawn(page, label):
    scenario = SCENARIOS[label]
    expected = run("waterfall", page.snapshot, scenario)           # every site, identified
    _, text, out = page.card("sponsor", "waterfall", scenario)
    fig = prop(out, cb.WATERFALL, "figure", "figure")
    note = " ".join(texts(prop(out, cb.WATERFALL, "footnote", "children")))
    if expected.n_patients == 0:
        return
    if len(expected.rows) < MIN_GROUP:
        assert fig["data"] == []
        assert f"Fewer than {MIN_GROUP} evaluable patients" in note and "not drawn for your role" in note
        assert f"({SUPPRESSED if is_small(len(expected.rows)) else len(expected.rows)})" in note
        return
    bars = [b for b in fig["data"] if b["type"] == "bar" and not is_contradiction_legend(b)]
    # every evaluable patient drawn, each bar's implied response (its colour), recorded BOR and change as the
    # committee's, ids replaced by numbers
    drawn = sorted((int(x), bar["name"].split(" ")[0], float(c[0]), c[1]) for bar in bars
                   for x, c in zip(bar["x"], bar["customdata"]))
    assert [(level, round(v, 6)) for _, level, v, _ in drawn] == \
        [(b, round(v, 6)) for b, v in zip(expected.rows["implied_response"], expected.rows["best_pct_change"])]
    assert [text.split(" ")[1].rstrip(",") for *_, text in drawn] == list(expected.rows["bor"])
    for bar in bars:
        assert "site" not in bar["hovertemplate"] and "%{x}" not in bar["hovertemplate"]
        assert all(len(c) == 2 for c in bar["customdata"])      # the change and the recorded response only
        assert not any("S0" in str(v) for c in bar["customdata"] for v in c)
        count = int((expected.rows["implied_response"] == bar["name"].split(" ")[0]).sum())
        assert bar["name"].endswith(f"({SUPPRESSED if is_small(count) else count})")
    assert cb.NOT_FOR_ROLE not in text


def numerators(e) -> dict:
    """rate -> (numerator, denominator) of a committee's response-summary row: responders (CR + PR),
    controlled (CR + PR + SD), and among the evaluable the same, back from the rate."""
    def evaluable(rate):
        return round(e[rate] * e["n_evaluable"]) if e["n_evaluable"] else 0
    return {"orr": (e["cr"] + e["pr"], e["n"]), "dcr": (e["cr"] + e["pr"] + e["sd"], e["n"]),
            "orr_evaluable": (evaluable("orr_evaluable"), e["n_evaluable"]),
            "dcr_evaluable": (evaluable("dcr_evaluable"), e["n_evaluable"])}


def summary_cells(page, role, scenario, by):
    _, _, out = page.card(role, "bor-summary", scenario, **{'{"key":"by","type":"page-option"}.value': by})
    return out, table_rows(prop(out, cb.SUMMARY, "table", "children"))


@pytest.mark.parametrize("label", list(SCENARIOS))
@pytest.mark.parametrize("by", ["bclc_stage", "site_id"])
def test_sponsor_summary_and_bor_bars_suppress_counts_1_to_4_and_keep_the_rest(page, label, by):
    """Every count cell the sponsor sees is the committee's, or "<5" where the committee's is 1-4;
    a rate is the committee's, or withheld ("–") where its numerator or denominator is 1-4."""
    scenario = SCENARIOS[label]
    expected = run("response-summary", page.snapshot, scenario, by=by).rows
    out, sponsor = summary_cells(page, "sponsor", scenario, by)
    _, committee = summary_cells(page, "committee", scenario, by)
    assert len(sponsor) == len(committee) == len(expected)
    n_suppressed = 0
    for s_row, c_row, (_, e) in zip(sponsor, committee, expected.iterrows()):
        x = {rate: numerator for rate, (numerator, _) in numerators(e).items()}
        cells = {1: ("n", None), 2: ("n", "orr"), 3: ("n", "dcr"), 4: ("n_evaluable", None),
                 5: ("n_evaluable", "orr_evaluable"), 6: ("n_evaluable", "dcr_evaluable")}
        assert s_row[0] == c_row[0]
        for i, (n_col, rate) in cells.items():
            if rate is None:
                want = SUPPRESSED if is_small(e[n_col]) else c_row[i]
            else:
                want = "–" if is_small(e[n_col]) or is_small(x[rate]) else c_row[i]
            n_suppressed += want != c_row[i]
            assert s_row[i] == want, (label, by, e["group"], i)
            assert not re.search(r"(?<![\d.])[1-4]/", s_row[i]), s_row[i]      # no "3/40"
    fig = prop(out, cb.BOR, "figure", "figure")
    for bar in fig["data"]:
        bor = bar["name"].lower()
        for (count, n, group, pct), x, (_, e) in zip(bar["customdata"], bar["x"], expected.iterrows()):
            assert count == (SUPPRESSED if is_small(e[bor]) else str(e[bor]))
            assert n == (SUPPRESSED if is_small(e["n"]) else str(e["n"]))
            if is_small(e[bor]) or is_small(e["n"]):
                assert x is None and pct == "% withheld"
            else:
                assert x == pytest.approx(100 * e[bor] / e["n"])
    labels = fig["data"][0]["y"] if fig["data"] else []
    assert not any(re.search(r"\(n=[1-4]\)", label) for label in labels)
    if label == "every patient" and by == "bclc_stage":
        assert n_suppressed > 0 and any("(n=<5)" in y for y in labels)     # the rule did something here


# --- investigator -----------------------------------------------------------------------------------
@pytest.mark.parametrize("label", list(SCENARIOS))
def test_investigator_sees_own_site_rows_only(page, label):
    scenario = SCENARIOS[label]
    own = run("waterfall", page.snapshot, scenario, Scope(sites=("S01",)))
    for name, response_scope in [(name, s) for name in CARDS for s in ("overall", "local")]:
        status, text, out = page.card("investigator", name, scenario, **{RESPONSE_SCOPE: response_scope})
        assert status == 200
        others = {i for i in PATIENT_ID.findall(text) if not i.startswith("S01-")}
        assert not others, (name, sorted(others)[:5])
    _, _, out = page.card("investigator", "waterfall", scenario)
    if own.n_patients:
        assert "Patients of your site (S01) only." in "".join(texts(prop(out, cb.WATERFALL, "footnote", "children")))
    fig = prop(out, cb.WATERFALL, "figure", "figure")
    own_bars = [b for b in fig["data"] if b["type"] == "bar" and not is_contradiction_legend(b)]
    drawn = [x for b in own_bars for x in b["x"]]
    assert sorted(drawn) == sorted(own.rows["patient_id"])      # every own-site bar, and no other
    assert all(c[0] == "S01" for b in own_bars for c in b["customdata"])


@pytest.mark.parametrize("label", ["every patient", "own site S01"])
def test_investigator_pooled_summary_is_suppressed_unless_the_filter_keeps_own_site(page, label):
    scenario = SCENARIOS[label]
    by = "bclc_stage"
    _, investigator = summary_cells(page, "investigator", scenario, by)
    _, committee = summary_cells(page, "committee", scenario, by)
    expected = run("response-summary", page.snapshot, scenario, by=by).rows
    small = [i for i, (_, e) in enumerate(expected.iterrows()) if is_small(e["n"])]
    assert small, "a group of 1-4 patients"
    for i in small:
        want = SUPPRESSED if label == "every patient" else str(expected.iloc[i]["n"])
        assert investigator[i][1] == want
    if label == "own site S01":
        assert investigator == committee


# --- committee --------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", list(SCENARIOS))
def test_committee_sees_every_number_unsuppressed(page, label):
    scenario = SCENARIOS[label]
    waterfall = run("waterfall", page.snapshot, scenario)
    _, text, out = page.card("committee", "waterfall", scenario)
    fig = prop(out, cb.WATERFALL, "figure", "figure")
    drawn = [x for b in fig["data"] if b["type"] == "bar" and not is_contradiction_legend(b) for x in b["x"]]
    assert sorted(drawn) == sorted(waterfall.rows["patient_id"])
    assert SUPPRESSED not in text
    expected = run("response-summary", page.snapshot, scenario, by="bclc_stage").rows
    _, committee = summary_cells(page, "committee", scenario, "bclc_stage")
    assert [row[1] for row in committee] == [str(n) for n in expected["n"]]
    assert [row[4] for row in committee] == [str(n) for n in expected["n_evaluable"]]
    for name in ("spider", "swimmer", "consistency"):
        _, text, _ = page.card("committee", name, scenario)
        assert cb.NOT_FOR_ROLE not in text


# --- downloads --------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", list(SCENARIOS))
def test_sponsor_downloads(page, label):
    scenario = SCENARIOS[label]
    for figure in PATIENT_LEVEL_CARDS:
        for search in ("", "?scope=local"):
            assert page.download("sponsor", figure, scenario, search) == (204, None)
    status, csv = page.download("sponsor", cb.WATERFALL, scenario)
    assert status == 200
    assert_no_patient_data(csv, page.snapshot)
    got = pd.read_csv(io.StringIO(csv))
    assert list(got.columns) == rx.DEIDENTIFIED_COLUMNS
    expected = run("waterfall", page.snapshot, scenario).rows
    if len(expected) < MIN_GROUP:
        assert got.empty
    else:
        assert list(got["bor"]) == list(expected["bor"])
        assert got["best_pct_change"].round(6).tolist() == expected["best_pct_change"].round(6).tolist()
    for figure in (cb.BOR, cb.SUMMARY):
        status, csv = page.download("sponsor", figure, scenario, "?by=site_id")
        rows = pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False)
        committee = run("response-summary", page.snapshot, scenario, by="site_id").rows
        for column in ("n", "n_evaluable", "cr", "pr", "sd", "pd", "ne"):
            want = [SUPPRESSED if is_small(v) else str(v) for v in committee[column]]
            assert rows[column].tolist() == want


@pytest.mark.parametrize("label", list(SCENARIOS))
def test_investigator_downloads_hold_own_site_rows_only(page, label):
    scenario = SCENARIOS[label]
    for figure, export in ((cb.WATERFALL, "waterfall"), (cb.SPIDER, "spider"), (cb.SWIMMER, "swimmer"),
                           (cb.CONSISTENCY, "response-consistency")):
        status, csv = page.download("investigator", figure, scenario)
        assert status == 200
        rows = pd.read_csv(io.StringIO(csv), dtype=str)
        assert set(rows["site_id"]) <= {"S01"} and rows["patient_id"].str.startswith("S01-").all()
        own = run(export, page.snapshot, scenario, Scope(sites=("S01",)), response_scope="overall")
        assert len(rows) == len(own.rows), figure
        others = {i for i in PATIENT_ID.findall(csv) if not i.startswith("S01-")}
        assert not others


# --- crafted requests -------------------------------------------------------------------------------
def test_a_forged_site_in_the_page_options_or_state_does_not_widen_the_investigator_s_rows(page):
    """The state's query names S02 (not the investigator's site), or the URL's page options try a
    site: no row of S02 comes back."""
    forged = {"snapshot": page.snapshot.snapshot_id, "query": "site=S02"}
    for figure in (cb.WATERFALL, cb.SPIDER, cb.SWIMMER, cb.CONSISTENCY):
        status, csv = page.download("investigator", figure, state=forged)
        assert status == 200 and not PATIENT_ID.search(csv)
        status, csv = page.download("investigator", figure, {"site": ["S01"]}, search="?site=S02&scope=local")
        assert status == 200 and not re.search(r"S0[2-9]-\d{4}", csv)
    status, text, _ = page.card("investigator", "waterfall", {}, **{"filter-state.data": forged})
    assert not PATIENT_ID.search(text)


def test_another_site_s_patient_as_the_highlight_reveals_nothing(page, monkeypatch):
    """The highlight store is the client's: naming an S02 patient (also when the waterfall draws a
    sample of its bars, where the highlighted patient's bar is queried by id) adds no S02 row."""
    from dashboard.figures import response as figs
    other = run("waterfall", page.snapshot, {}).rows
    other = other.loc[other["site_id"] == "S02", "patient_id"].iloc[0]
    monkeypatch.setattr(figs, "MAX_BARS", 7)
    for name in ("waterfall", "spider", "swimmer"):
        _, text, _ = page.card("investigator", name, {}, **{"response-highlight.data": other})
        assert other not in text and not re.search(r"S0[2-9]-\d{4}", text), name
    direct = rx.waterfall_bars(page.snapshot, Filters(), Scope(patient_sites=("S01",), suppress=True),
                               "overall", highlight=other, max_bars=7)
    assert set(direct["rows"]["site_id"]) == {"S01"}


def test_sponsor_click_on_a_bar_follows_no_one(page):
    dep = next(d for d in page.deps if d["output"] == "response-highlight.data")
    waterfall = '{"figure":"response-waterfall","type":"figure"}.clickData'
    body = callback_body(dep, {waterfall: {"points": [{"x": "3", "customdata": ["-42.0"]}]},
                               "response-highlight.data": "S02-0001"}, changed=waterfall)
    r = page.post("sponsor", body)
    assert r.status_code == 200 and r.get_json()["response"]["response-highlight"]["data"] is None
    r = page.post("committee", body)
    assert r.get_json()["response"]["response-highlight"]["data"] == "3"
    label = next(d for d in page.deps if d["output"].startswith("..response-highlight-label.children"))
    body = callback_body(label, {"response-highlight.data": "3"}, changed="response-highlight.data")
    assert page.post("sponsor", body).get_json()["response"]["response-highlight-label"]["children"] == ""
    assert "Following" in page.post("committee", body).get_data(as_text=True)


def test_an_unknown_download_figure_gives_no_file(page):
    for role in ("sponsor", "investigator"):
        assert page.download(role, "response-patients") == (204, None)


def test_patient_level_helpers_keep_to_the_scope_they_are_given(registry):
    """The swimmer's page of lanes reads the marks of the lanes it is given: only those in the
    scope's cohort come back, and a scope without patient-level access is refused."""
    snapshot = data.resolve("latest", registry)
    every = rx.swimmer_lanes(snapshot, Filters(), Scope(), "overall")
    s02 = [p for p in every if p.startswith("S02-")][:5]
    s01 = [p for p in every if p.startswith("S01-")][:5]
    investigator = scope_for(User("inv", "investigator", ("S01",)))
    rows = rx.swimmer_page_rows(snapshot, Filters(), investigator, "overall", s02 + s01)
    assert set(rows["patient_id"]) == set(s01)
    sponsor = scope_for(User("sp", "sponsor"))
    for helper in (lambda: rx.swimmer_page_rows(snapshot, Filters(), sponsor, "overall", s02),
                   lambda: rx.swimmer_lanes(snapshot, Filters(), sponsor, "overall")):
        with pytest.raises(AccessDenied):
            helper()
    with pytest.raises(AccessDenied):
        exports.compute_export("spider", snapshot, Filters(), sponsor)


@pytest.mark.parametrize("max_bars", [2000, 20])
def test_waterfall_bars_for_a_sponsor_are_the_de_identified_export(registry, max_bars):
    """The card's bars (waterfall_bars, sampled in SQL above max_bars) and the export's de-identified
    rows: best change and BOR only; the counts 1-4 as "<5"."""
    snapshot = data.resolve("latest", registry)
    sponsor = scope_for(User("sp", "sponsor"))
    for label, scenario in SCENARIOS.items():
        f = filters_of(scenario)
        full = run("waterfall", snapshot, scenario)
        bars = rx.waterfall_bars(snapshot, f, sponsor, "overall", max_bars=max_bars)
        exp = exports.compute_export("waterfall", snapshot, f, sponsor)
        assert list(exp.rows.columns) == rx.DEIDENTIFIED_COLUMNS
        assert exp.n_patients == (SUPPRESSED if is_small(full.n_patients) else full.n_patients)
        assert exp.extra["n_not_evaluable"] == (SUPPRESSED if is_small(full.extra["n_not_evaluable"])
                                                else full.extra["n_not_evaluable"])
        assert not any(is_small(v) for v in exp.extra["not_evaluable_reasons"].values())
        assert not any(is_small(v) for v in bars["bor_counts"].values())
        if len(full.rows) < MIN_GROUP:
            assert bars["withheld"] and bars["rows"] is None and exp.rows.empty, label
            assert "not drawn for your role" in exp.extra["not_drawn"]
            continue
        assert list(bars["rows"].columns) == rx.DEIDENTIFIED_COLUMNS
        assert exp.rows.equals(full.rows[rx.DEIDENTIFIED_COLUMNS])
        assert len(bars["rows"]) == min(max_bars, len(full.rows))


def test_summary_rates_withheld_when_numerator_or_denominator_is_small(registry):
    """For every scenario and grouping: a sponsor's rate is None exactly where the committee's
    numerator (responders, controlled) or denominator is 1-4, and otherwise the committee's."""
    snapshot = data.resolve("latest", registry)
    sponsor = scope_for(User("sp", "sponsor"))
    withheld = 0
    for scenario in SCENARIOS.values():
        for by in ("none", "bclc_stage", "site_id", "sex"):
            full = run("response-summary", snapshot, scenario, by=by).rows
            shown = run("response-summary", snapshot, scenario, sponsor, by=by).rows
            for (_, e), (_, s) in zip(full.iterrows(), shown.iterrows()):
                for rate, (x, n) in numerators(e).items():
                    if is_small(x) or is_small(n):
                        withheld += 1
                        assert s[rate] is None and s[f"{rate}_ci_lower"] is None, (by, e["group"], rate)
                    elif e[rate] == e[rate]:
                        assert s[rate] == pytest.approx(e[rate])
    assert withheld > 0
