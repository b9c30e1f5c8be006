"""Who sees what on the Survival page (issue 15, item 2): requests built by hand against
/_dash-update-component, signed in as each role through the header sign-in (tests/access_support.py).

The registry: generate_registry(n_patients=240, n_sites=6, seed=3), whose common cuts have groups
of 1-4 patients (BCLC A: 3, the reference level of the hazard ratios), of 5-9 and of 10 or more;
each scenario checks that its groups really are so in the committee's numbers before asserting.

Expected values: the exports run with no scope (dashboard.exports.compute_export with ALL_SITES, as
`python -m dashboard export` runs them), and the committee's own response for the numbers a
suppressing role may still see. The rules (dashboard/exports/survival.py, module docstring): a
group under 10 patients is not drawn (no trace, no numbers at risk, no estimate, no hazard ratio),
every count from 1 to 4 is "<5", the log-rank test is shown with two or more groups of 10+, the
hazard ratios only when the reference group has 10+, median follow-up with 10+ in the filter.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

from access_support import signed_in, write_users
from browser_helpers import ARTIFACTS, graph_data, wait_idle
from conftest import ROOT, free_port
from test_downloads import download_body as browser_download_body
from dashboard import app as app_module
from dashboard import data, exports
from dashboard.access import MIN_GROUP, SUPPRESSED, Scope
from dashboard.callbacks.survival import fmt_median, risk_times, times_option
from dashboard.data import ALL_SITES
from dashboard.exports import survival as km
from dashboard.figures.survival import tick_days
from dashboard.filters import Filters
from dashboard.generate import generate_registry
from dashboard.grouping import GROUPINGS
from dashboard.replay import callback_body, layout_props, page_plan, update_values

CUT = "2025-12-31"
PATIENT_ID = re.compile(r"S\d{2}-\d{4}")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
SMALL = {1, 2, 3, 4}
SPONSOR = Scope(patient_sites=(), suppress=True)
FIGURES = ("km-curve", "km-summary", "km-risk-table", "cox")
COUNTS = {"km-summary": ("n", "events"), "km-curve": ("n_risk", "n_event", "n_censor"),
          "km-risk-table": ("n_at_risk", "cum_events", "cum_censored"), "cox": ()}

# name -> (filter scenario, page options, {group: patients} the scenario is chosen for (committee's n))
SCENARIOS = {
    "all-by-bclc": ({}, {"by": "bclc_stage"}, {"A": 3, "B": 136, "C": 101}),
    "female-by-site": ({"sex": ["F"]}, {"by": "site_id"},
                       {"S01": 8, "S02": 9, "S03": 23, "S04": 4, "S05": 17, "S06": 7}),
    "s02-by-etiology-pfs": ({"site": ["S02"]}, {"by": "etiology_group", "endpoint": "pfs"},
                            {"HBV": 24, "HCV": 9, "HBV+HCV": 3, "alcohol": 5, "MASLD": 4}),
    "female-by-ecog-log": ({"sex": ["F"]}, {"by": "ecog_group", "ci": "log"}, {"0": 50, "1": 14, "2": 4}),
    "s02-female-no-grouping": ({"site": ["S02"], "sex": ["F"]}, {"by": "none"}, {"all": 9}),
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("access-survival")
    generate_registry(root, n_patients=240, n_sites=6, seed=3, last_cut_only=True, progress=False)
    return root


@pytest.fixture
def web(registry, dash_app, monkeypatch, tmp_path):
    """post(role, body) -> the response, signed in as that role; plus the page's callbacks."""
    monkeypatch.setenv("REGISTRY_DATA", str(registry))
    with signed_in(monkeypatch, tmp_path) as as_user:
        client = dash_app.server.test_client()
        deps = client.get("/_dash-dependencies", headers=as_user("committee")).get_json()
        callbacks, _, base = page_plan(deps, "/survival", set(layout_props(app_module.layout())))

        class Web:
            def post(self, role, body):
                return client.post("/_dash-update-component", json=body, headers=as_user(role))
        web = Web()
        web.deps, web.base = deps, base
        web.page = [d for d in callbacks if '"figure":"km-curve"' in d["output"]]
        yield web


# --- the requests ------------------------------------------------------------------------------
def page_body(web, scenario: dict, opts: dict, query: str | None = None) -> dict:
    """The browser's POST of the page callback for a filter scenario and page options (query: a
    filter-state query string as posted, instead of the scenario's)."""
    _, values = update_values(web.base, CUT, scenario)
    for key, value in opts.items():
        values[f'{{"key":"{key}","type":"page-option"}}.value'] = value
    if query is not None:
        values["filter-state.data"] = {"snapshot": CUT, "query": query}
    (dep,) = web.page
    return callback_body(dep, values)


def download_body(web, figure: str, opts: dict, query: str, search_extra: str = "") -> dict:
    """The browser's POST for a click on a card's "Download data (CSV)"."""
    search = "?" + "&".join(f"{k}={v}" for k, v in opts.items()) + search_extra
    return browser_download_body(web, figure, search, {"snapshot": CUT, "query": query})


def sent_csv(response, figure: str) -> str | None:
    if response.status_code != 200:
        return None
    key = json.dumps({"figure": figure, "type": "download"}, separators=(",", ":"))
    out = response.get_json()["response"].get(key)
    return None if out is None else out["data"]["content"]


def query_of(scenario: dict) -> str:
    return "&".join(f"{k}={','.join(v)}" for k, v in scenario.items())


# --- reading a response ------------------------------------------------------------------------
class Page:
    """The survival callback's response, parsed: traces, table cells, notes."""

    def __init__(self, response):
        assert response.status_code == 200, response.data[:300]
        self.raw = response.data.decode()
        out = response.get_json()["response"]
        assert "sideUpdate" not in response.get_json(), response.get_json().get("sideUpdate")
        get = lambda kind, fig, prop: out[json.dumps({"figure": fig, "type": kind}, separators=(",", ":"))][prop]
        for card in ("km-curve", "km-summary", "cox"):           # React renders no list inside a list
            children = get("footnote", card, "children")
            assert not any(isinstance(c, list) for c in children or []), (card, children)
        self.figure = get("figure", "km-curve", "figure")
        self.traces = self.figure["data"]
        self.curve_note = text(get("footnote", "km-curve", "children"))
        self.summary = get("table", "km-summary", "children")
        self.summary_note = text(get("footnote", "km-summary", "children"))
        self.cox = get("table", "cox", "children")
        self.cox_note = text(get("footnote", "cox", "children"))
        self.risk_spec = get("figure-export", "km-risk-table", "data")

    def legend(self) -> list[str]:
        return [t["name"] for t in self.traces if t.get("meta") == "km"]

    def trace(self, name):
        return next(t for t in self.traces if t["name"] == name)

    def summary_rows(self) -> dict[str, list[str]]:
        return table_rows(find(self.summary, "survival-summary-table"))

    def cox_rows(self) -> dict[str, list[str]] | None:
        table = find(self.cox, "survival-cox-table")
        return None if table is None else table_rows(table)

    def line(self, ident) -> str:
        return text(find(self.summary, ident))

    def annotations(self) -> list[str]:
        return [a.get("text", "") for a in self.figure["layout"].get("annotations", [])]


def text(node) -> str:
    """Every text of a component tree (JSON as Dash sends it)."""
    if node is None:
        return ""
    if isinstance(node, (str, int, float)):
        return str(node)
    if isinstance(node, list):
        return " ".join(text(n) for n in node)
    return text(node.get("props", {}).get("children"))


def find(node, ident):
    if isinstance(node, list):
        return next((f for n in node if (f := find(n, ident)) is not None), None)
    if isinstance(node, dict):
        props = node.get("props", {})
        if props.get("id") == ident:
            return node
        return find(props.get("children"), ident)
    return None


def table_rows(table) -> dict[str, list[str]]:
    """group -> the texts of its cells after the first (the group's own cell, dagger included)."""
    body = table["props"]["children"][1]["props"]["children"]
    rows = {}
    for tr in body:
        cells = tr["props"]["children"]
        rows[tr["props"]["data-group"]] = [text(td).strip() for td in cells[1:]]
    return rows


def page_opts(opts: dict) -> dict:
    """The page's options: the scenario's over the defaults."""
    return {"endpoint": "os", "by": "bclc_stage", "ci": "log-log", **opts}


def filters_of(scenario: dict) -> Filters:
    return Filters.parse_pairs([(k, ",".join(v)) for k, v in scenario.items()])[0]


def committee_exports(registry, scenario, opts) -> dict[str, exports.Export]:
    """The four exports with no scope, the risk table at the ticks of every group's curves."""
    snapshot, filters, o = data.resolve("latest", registry), filters_of(scenario), page_opts(opts)
    out = {name: exports.compute_export(name, snapshot, filters, ALL_SITES, **o) for name in ("km-curve", "km-summary",
                                                                                          "cox")}
    out["km-risk-table"] = risk_rows(registry, scenario, opts, risk_times(out["km-curve"]), rows=False)
    return out


def risk_rows(registry, scenario, opts, times, rows=True):
    """km-risk-table with no scope at those times (its rows, or the export)."""
    exp = exports.compute_export("km-risk-table", data.resolve("latest", registry), filters_of(scenario), ALL_SITES,
                                 **page_opts(opts), times=times)
    return exp.rows if rows else exp


def shown(n) -> str:
    return SUPPRESSED if n in SMALL else str(n)


def events_withheld(summary: pd.DataFrame) -> set:
    """The groups whose events the pooled row's complement rule withholds (dashboard/exports/complement.py
    on the events as a sponsor would see them), from km-summary's rows with no scope."""
    from dashboard.exports.complement import to_withhold
    values = {g: (SUPPRESSED if e in SMALL else int(e)) for g, e in zip(summary.group, summary.events)}
    if km.POOLED not in values:
        return set()
    return to_withhold(values, [(km.POOLED, [g for g in values if g != km.POOLED])])


def check_pooled_row(got: dict, want: dict, summary: pd.DataFrame, sizes: dict, total: int) -> None:
    """The pooled row: every patient's n and events; its estimates withheld under 10 patients in all; and no
    group's "<5" events recoverable from it."""
    assert want[km.POOLED][:2] == [str(total), str(int(summary.events[km.POOLED]))]
    assert got[km.POOLED][:2] == [shown(total), shown(int(summary.events[km.POOLED]))]
    assert got[km.POOLED][2:] == (["–"] * 4 if total < MIN_GROUP else want[km.POOLED][2:])
    assert no_single_unknown({g: got[g][1] for g in sizes} | {km.POOLED: got[km.POOLED][1]})


def no_single_unknown(events: dict) -> bool:
    """No "<5" among the groups' events can be worked out as the pooled events minus the others shown."""
    unknown = [g for g, e in events.items() if e in (SUPPRESSED, "–", None)]
    return len(unknown) != 1


def label(by, group, n) -> str:
    return ("All patients" if by == "none" else group) + f" (n = {n})" + (" †" if n < km.SMALL_GROUP else "")


def no_patient_data(raw: str) -> None:
    """No patient id, and no ISO date but the cut-off's and today's (download file names)."""
    assert not PATIENT_ID.findall(raw), PATIENT_ID.findall(raw)[:5]
    assert set(ISO_DATE.findall(raw)) <= {CUT, dt.date.today().isoformat()}, set(ISO_DATE.findall(raw))


def no_small_count(page: Page) -> None:
    """No count 1-4 in a trace's text, a legend, a table cell or a note."""
    for t in page.traces:
        assert not {str(v) for v in t.get("text") or []} & {"1", "2", "3", "4"}, t["name"]
        assert not re.search(r"\(n = [1-4]\)", t["name"]), t["name"]
    for rows in (page.summary_rows(), page.cox_rows() or {}):
        for cells in rows.values():
            assert not {"1", "2", "3", "4"} & set(cells), cells
    for note in (page.curve_note, page.summary_note, page.cox_note, *page.annotations()):
        assert not re.search(r"\bn = [1-4]\b|\([1-4] patients?\)", note), note


# --- sponsor and investigator: pooled aggregates, small cells hidden ----------------------------
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_sponsor_sees_no_small_group_and_no_count_under_five(web, registry, name):
    scenario, opts, sizes = SCENARIOS[name]
    truth = committee_exports(registry, scenario, opts)
    assert truth["km-summary"].extra["group_n"] == sizes                       # the scenario is what it says
    assert any(n in SMALL for n in sizes.values()) or sum(sizes.values()) < MIN_GROUP
    by = opts["by"]
    big = [g for g, n in sizes.items() if n >= MIN_GROUP]
    small = [g for g, n in sizes.items() if n < MIN_GROUP]
    committee = Page(web.post("committee", page_body(web, scenario, opts)))
    sponsor = Page(web.post("sponsor", page_body(web, scenario, opts)))
    no_patient_data(sponsor.raw)
    no_small_count(sponsor)

    # curves and numbers at risk: only groups of 10 or more, the note names the others
    assert sponsor.legend() == [label(by, g, sizes[g]) for g in big]
    assert committee.legend() == [label(by, g, n) for g, n in sizes.items()]
    drawn_prefixes = tuple(label(by, g, sizes[g]) for g in big) + tuple(f"{g} " for g in big)
    assert all(t["name"].startswith(drawn_prefixes) for t in sponsor.traces if t.get("name")), \
        [t["name"] for t in sponsor.traces]
    few = km.few_text(by, small)
    assert f"{few}, not drawn for your role." in sponsor.curve_note
    if not big:
        assert sponsor.annotations() == [f"{few}, not drawn for your role."]
    # each drawn curve: the committee's steps, its hover's at-risk counts "<5" where 1-4; the numbers
    # under the curves at the ticks of the curves drawn (up to the last time of a group of 10+)
    rows = truth["km-curve"].rows
    times = sponsor.risk_spec["options"]["times"]
    if big:
        assert times == times_option(tick_days(rows[rows.group.isin(big)].time_days.max()))
    risk = risk_rows(registry, scenario, opts, times)
    for g in big:
        mine, theirs = sponsor.trace(label(by, g, sizes[g])), committee.trace(label(by, g, sizes[g]))
        assert mine["y"] == theirs["y"] and mine["x"] == theirs["x"]
        at_risk = rows[rows.group == g].n_risk.tolist()
        assert mine["text"] == [shown(n) for n in at_risk] and theirs["text"] == [str(n) for n in at_risk]
        assert "at risk %{text}" in mine["hovertemplate"]
        assert any(n in SMALL for n in at_risk)                              # the tail of the curve has some
        for column, what in (("n_at_risk", "at risk"), ("cum_events", "events"), ("cum_censored", "censored")):
            assert sponsor.trace(f"{g} {what}")["text"] == [shown(v) for v in risk[risk.group == g][column]]

    # summary: n and events as counts, estimates withheld under 10, the committee's otherwise
    got, want = sponsor.summary_rows(), committee.summary_rows()
    summary = truth["km-summary"].rows.set_index("group")
    withheld_events = events_withheld(truth["km-summary"].rows)
    pooled = [km.POOLED] if by != "none" else []
    assert list(got) == list(sizes) + pooled                     # the pooled row under the groups
    for g, n in sizes.items():
        events = "–" if g in withheld_events else shown(int(summary.events[g]))
        assert got[g][:2] == [shown(n), events]
        assert want[g][:2] == [str(n), str(int(summary.events[g]))]
        if n < MIN_GROUP:
            assert got[g][2:] == ["–"] * 4
            assert want[g][2] == fmt_median(*summary.loc[g, ["median_days", "median_ci_lower_days",
                                                               "median_ci_upper_days"]])
        else:
            assert got[g][2:] == want[g][2:] and got[g][0] == want[g][0]
    assert f"{few}, estimates not shown for your role." in sponsor.summary_note
    # the pooled row: every patient's n and events; its estimates withheld under 10 patients in all
    total = sum(sizes.values())
    for _ in pooled:
        check_pooled_row(got, want, summary, sizes, total)

    # log-rank: over every group, shown with two groups of 10+; median follow-up with 10+ patients
    if by == "none":
        assert sponsor.line("survival-logrank") == "Log-rank test: needs two or more groups."
    elif len(big) >= 2:
        assert sponsor.line("survival-logrank") == committee.line("survival-logrank")
        assert "χ²" in sponsor.line("survival-logrank")
    else:
        assert "not shown for your role" in sponsor.line("survival-logrank")
        assert "χ²" in committee.line("survival-logrank")
    if sum(sizes.values()) >= MIN_GROUP:
        assert sponsor.line("survival-followup") == committee.line("survival-followup")
    else:
        assert "not shown for your role" in sponsor.line("survival-followup")
        assert "months" in committee.line("survival-followup")

    # hazard ratios: none when the reference group is under 10, else no row of a group under 10
    reference = truth["cox"].extra["reference"]          # the default reference (BCLC B; else the largest)
    if by == "none":
        assert sponsor.cox_rows() is None and "need a grouping" in text(sponsor.cox)
    elif sizes[reference] < MIN_GROUP:
        assert sponsor.cox_rows() is None
        assert f"the reference group, {km.groups_text(by, [reference])}, has fewer than 10" in text(sponsor.cox)
        assert committee.cox_rows()[reference] == ["1 (reference)", ""]
    else:
        theirs = committee.cox_rows()
        assert sponsor.cox_rows() == {g: theirs[g] for g in big}
        assert f"{few}, no hazard ratio for your role." in sponsor.cox_note
        assert set(theirs) == set(sizes)


@pytest.mark.parametrize("name", ["all-by-bclc", "female-by-site", "s02-female-no-grouping"])
def test_an_investigator_sees_the_pooled_aggregates_as_a_sponsor_unless_only_their_site(web, registry, name):
    """The investigator (site S01) gets the sponsor's response on every site's patients; with the
    site filter on their own site only, the committee's numbers of that site."""
    scenario, opts, _ = SCENARIOS[name]
    sponsor = web.post("sponsor", page_body(web, scenario, opts))
    investigator = web.post("investigator", page_body(web, scenario, opts))
    assert investigator.get_json() == sponsor.get_json()
    own = {**scenario, "site": ["S01"]}
    committee = Page(web.post("committee", page_body(web, own, opts)))
    mine = Page(web.post("investigator", page_body(web, own, opts)))
    assert mine.raw == committee.raw
    sizes = committee_exports(registry, own, opts)["km-summary"].extra["group_n"]
    assert mine.legend() == [label(opts["by"], g, n) for g, n in sizes.items()]
    # a site of theirs and another: pooled over both, suppressed
    both = Page(web.post("investigator", page_body(web, {**scenario, "site": ["S01", "S02"]}, opts)))
    no_small_count(both)
    no_patient_data(both.raw)


def test_the_committee_sees_every_number(web, registry):
    """Every group drawn, every count as it is: the exports with no scope."""
    for name, (scenario, opts, sizes) in SCENARIOS.items():
        page = Page(web.post("committee", page_body(web, scenario, opts)))
        truth = committee_exports(registry, scenario, opts)
        by = opts["by"]
        assert page.legend() == [label(by, g, n) for g, n in sizes.items()], name
        summary = truth["km-summary"].rows.set_index("group")
        assert {g: cells[:2] for g, cells in page.summary_rows().items()} == {
            g: [str(summary.n[g]), str(summary.events[g])] for g in [*sizes, *([km.POOLED] if by != "none" else [])]}
        if by != "none":
            assert summary.n[km.POOLED] == sum(sizes.values()) and summary.events[km.POOLED] == summary.events[
                list(sizes)].sum()
        risk = truth["km-risk-table"].rows
        for g in sizes:
            assert page.trace(f"{g} events")["text"] == [str(v) for v in risk[risk.group == g].cum_events]
        assert "for your role" not in page.raw
        assert page.risk_spec["options"]["times"] == risk_times(truth["km-curve"])


# --- downloads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["all-by-bclc", "female-by-site", "s02-by-etiology-pfs"])
def test_downloads_follow_the_same_rules(web, registry, name):
    """Each card's CSV: the committee's is the export with no scope; the sponsor's and the
    investigator's have no group under 10 in curves, numbers at risk and hazard ratios, no estimate
    of one in the summary, no count 1-4, and the committee's values elsewhere."""
    scenario, opts, sizes = SCENARIOS[name]
    truth = committee_exports(registry, scenario, opts)
    small = {g for g, n in sizes.items() if n < MIN_GROUP}
    query = query_of(scenario)
    for figure in FIGURES:
        committee = sent_csv(web.post("committee", download_body(web, figure, opts, query)), figure)
        assert committee == exports.to_csv(truth[figure])
        suppressed = truth[figure]
        if figure == "km-risk-table":           # at the ticks of the curves drawn for the role
            curve = truth["km-curve"].rows
            times = times_option(tick_days(curve[~curve.group.isin(small)].time_days.max()))
            suppressed = risk_rows(registry, scenario, opts, times, rows=False)
        expected = expected_csv(suppressed, figure, sizes)
        for role in ("sponsor", "investigator"):
            csv = sent_csv(web.post(role, download_body(web, figure, opts, query)), figure)
            no_patient_data(csv)
            got = read_csv(csv)
            assert got.equals(expected), (role, figure)
            for column in COUNTS[figure]:
                assert not set(got[column]) & {"1", "2", "3", "4"}, (figure, column)
            if figure != "cox":
                assert (got[list(COUNTS[figure])] == SUPPRESSED).any().any()     # the rule had work to do
            if figure != "km-summary":
                assert not set(got.group) & small


def read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(pd.io.common.StringIO(text), dtype=str, keep_default_na=False)


def expected_csv(truth: exports.Export, figure: str, sizes: dict) -> pd.DataFrame:
    """The rules applied by hand to the CSV with no scope: rows of groups under 10 dropped (curves,
    numbers at risk, hazard ratios; every row when the reference group is under 10) or their
    estimates blank (summary); counts 1-4 as "<5"."""
    rows = read_csv(exports.to_csv(truth))
    small = rows.group.map(lambda g: sizes.get(g, sum(sizes.values())) < MIN_GROUP)    # the pooled row: all
    if figure == "km-summary":
        rows.loc[small, list(km.SUMMARY_ESTIMATES)] = ""
        rows.loc[rows.group.isin(events_withheld(truth.rows)), "events"] = ""
    elif figure == "cox" and sizes[truth.extra["reference"]] < MIN_GROUP:
        rows = rows.iloc[0:0]
    else:
        rows = rows[~small].reset_index(drop=True)
    for column in COUNTS[figure]:
        rows[column] = rows[column].map(lambda v: SUPPRESSED if v in {"1", "2", "3", "4"} else v)
    return rows


def test_the_risk_table_download_uses_the_figures_ticks_for_each_role(web, registry):
    """The CSV behind 'Numbers at risk' is taken at the ticks the page drew for that user."""
    scenario, opts, _ = SCENARIOS["female-by-site"]
    for role in ("committee", "sponsor"):
        page = Page(web.post(role, page_body(web, scenario, opts)))
        csv = sent_csv(web.post(role, download_body(web, "km-risk-table", opts, query_of(scenario))), "km-risk-table")
        times = sorted({float(t) for t in pd.read_csv(pd.io.common.StringIO(csv)).time_days})
        assert times == [float(t) for t in page.risk_spec["options"]["times"].split(",")]
        assert [t / 30.4375 for t in times] == page.trace(page.legend()[0].split(" (")[0] + " at risk")["x"]


# --- crafted requests --------------------------------------------------------------------------
def test_a_forged_site_in_the_url_does_not_lift_suppression(web):
    """The filters come from the filter state: an investigator whose URL says site=S01 while the
    state's query asks for S02 gets S02's numbers suppressed; a state naming S01 and S02 too."""
    opts = {"by": "etiology_group"}
    sponsor = sent_csv(web.post("sponsor", download_body(web, "km-summary", opts, "site=S02")), "km-summary")
    forged = sent_csv(web.post("investigator", download_body(web, "km-summary", opts, "site=S02", "&site=S01")),
                      "km-summary")
    assert forged == sponsor and SUPPRESSED in forged
    for query in ("site=S02", "site=S01,S02", "site=S01&site=S02", "site=S01&site="):
        page = Page(web.post("investigator", page_body(web, {}, opts, query=query)))
        no_small_count(page)
        assert "for your role" in page.curve_note, query
    # a repeated key: the last one is the filter, for the data and the scope alike (here S01 alone)
    forged = Page(web.post("investigator", page_body(web, {}, opts, query="site=S02&site=S01")))
    assert forged.raw == Page(web.post("committee", page_body(web, {"site": ["S01"]}, opts))).raw


def test_a_patient_level_figure_of_another_page_sends_no_file(web):
    """From the Survival page, a sponsor's click forged to name another page's patient-level figure."""
    for figure in ("response-swimmer", "response-spider", "patients", "no-such-figure"):
        r = web.post("sponsor", download_body(web, figure, {"by": "bclc_stage"}, ""))
        assert r.status_code < 500 and sent_csv(r, figure) is None
        no_patient_data(r.data.decode())


def test_page_options_cannot_name_a_patient_field(web):
    """A crafted grouping is refused before the callback runs (dashboard/security.py: a page option
    outside its choices), with nothing of the registry in the answer."""
    for by in ("patient_id", "first_treatment_date", "site_id) --"):
        r = web.post("sponsor", page_body(web, {}, {"by": by}))
        assert r.status_code == 400 and b"outside its choices" in r.data
        no_patient_data(r.data.decode())


def test_an_unknown_user_is_served_nothing(web):
    r = web.post("nobody-known", page_body(web, {}, {"by": "bclc_stage"}))
    assert r.status_code in (401, 403) and b"km-curve" not in r.data


# --- the Cox reference group (issue 19, item 2): suppression keys on the chosen reference ----------
@pytest.mark.parametrize("ref, reference, shown_rows", [
    (None, "B", ["B", "C"]),            # the default reference: BCLC B (136); A (3) has no row for a sponsor
    ("C", "C", ["C", "B"]),             # chosen: C (101) first
    ("A", "A", None),                   # chosen: A (3 patients): no hazard ratio at all for a sponsor
])
def test_a_sponsor_sees_hazard_ratios_against_the_chosen_reference(web, registry, ref, reference, shown_rows):
    """The committee's cox export with --ref (no scope) decides the expectation: its reference and its
    rows; a sponsor gets the rows of groups of 10 or more, none when the chosen reference is under 10
    (SmallGroups reference=True keyed on the chosen group, not the first level)."""
    scenario, opts, sizes = SCENARIOS["all-by-bclc"]
    opts = {**opts, **({"ref": ref} if ref else {})}
    truth = exports.compute_export("cox", data.resolve("latest", registry), filters_of(scenario), ALL_SITES,
                                   **page_opts(opts))
    assert truth.extra["reference"] == reference and truth.rows.group.tolist()[0] == reference
    committee = Page(web.post("committee", page_body(web, scenario, opts)))
    sponsor = Page(web.post("sponsor", page_body(web, scenario, opts)))
    no_patient_data(sponsor.raw)
    no_small_count(sponsor)
    assert list(committee.cox_rows()) == truth.rows.group.tolist()
    assert committee.cox_rows()[reference] == ["1 (reference)", ""]
    assert text(find(committee.cox, "survival-reference")).startswith(
        f"Reference: BCLC stage {reference} (n = {sizes[reference]})")
    if shown_rows is None:
        assert sponsor.cox_rows() is None
        assert f"the reference group, BCLC stage {reference}, has fewer than 10" in text(sponsor.cox)
    else:
        assert list(sponsor.cox_rows()) == shown_rows
        assert sponsor.cox_rows() == {g: committee.cox_rows()[g] for g in shown_rows}
        assert text(find(sponsor.cox, "survival-reference")).startswith(
            f"Reference: BCLC stage {reference} (n = {sizes[reference]})")


# --- the exports themselves, every grouping ----------------------------------------------------
FILTERS = ["", "sex=F", "site=S02", "site=S02&sex=F", "bclc=A,C"]


@pytest.mark.parametrize("query", FILTERS)
def test_every_export_and_grouping_under_suppression(registry, query):
    """For each grouping and export, the sponsor's rows against the rows with no scope: no count 1-4,
    no row of a group under 10 in curves, numbers at risk and hazard ratios, no estimate of one in
    the summary, everything else unchanged."""
    snapshot = data.resolve("latest", registry)
    filters = Filters.from_query(query)[0]
    seen_small = seen_few = 0
    for by in GROUPINGS:
        for name in FIGURES:
            full = exports.compute_export(name, snapshot, filters, ALL_SITES, by=by, endpoint="ttp")
            mine = exports.compute_export(name, snapshot, filters, SPONSOR, by=by, endpoint="ttp")
            sizes = full.extra["group_n"]
            small = {g for g, n in sizes.items() if n < MIN_GROUP}
            seen_small += any(n in SMALL for n in sizes.values())
            seen_few += any(5 <= n < MIN_GROUP for n in sizes.values())
            assert mine.extra["group_n"] == {g: shown(n) if n in SMALL else n for g, n in sizes.items()}
            assert mine.n_patients == (SUPPRESSED if full.n_patients in SMALL else full.n_patients)
            for column in COUNTS[name]:
                assert not set(mine.rows[column].map(lambda v: v if isinstance(v, str) or v is None else int(v))) & SMALL
            if name == "km-summary" and by != "none":          # the pooled row: small when every patient is
                small = small | ({km.POOLED} if full.n_patients < MIN_GROUP else set())
            kept = full.rows[~full.rows.group.isin(small)].reset_index(drop=True)
            withheld_events = events_withheld(full.rows) if name == "km-summary" else set()
            if name == "km-summary":
                assert mine.rows.group.tolist() == full.rows.group.tolist()
                assert no_single_unknown(dict(zip(mine.rows.group, mine.rows.events))) or by == "none"
                hidden = mine.rows.group.isin(small)
                assert mine.rows.loc[hidden, list(km.SUMMARY_ESTIMATES)].isna().all().all()
                compare = mine.rows[~hidden].reset_index(drop=True)
            elif name == "cox" and full.extra["reference"] in small:
                assert mine.rows.empty
                continue
            else:
                compare = mine.rows
                assert not set(compare.group) & small
            assert compare.group.tolist() == kept.group.tolist()
            for column in kept.columns:
                if column in COUNTS[name]:
                    want = [None if column == "events" and g in withheld_events else SUPPRESSED if v in SMALL else v
                            for g, v in zip(kept.group, kept[column])]
                    assert compare[column].tolist() == want, (by, name, column)
                else:
                    pd.testing.assert_series_equal(compare[column].astype(object), kept[column].astype(object),
                                                   check_names=False)
    assert seen_small and seen_few


# --- in a browser --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def header_server(registry, tmp_path_factory):
    """`python app.py` behind the header sign-in (trusting 127.0.0.1) on the test registry."""
    users = tmp_path_factory.mktemp("users") / "users.json"
    write_users(users)
    port = free_port()
    env = {**os.environ, "DASHBOARD_AUTH": "header", "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1",
           "DASHBOARD_USERS": str(users)}
    log = open(registry / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data", str(registry)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(160):
            try:
                urllib.request.urlopen(urllib.request.Request(url + "/", headers={"X-Remote-User": "sponsor"}),
                                       timeout=1)
                break
            except OSError:
                assert proc.poll() is None, (registry / "server.log").read_text()
                time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.browser
@pytest.mark.parametrize("role", ["sponsor", "investigator"])
def test_in_a_browser_a_small_group_is_not_drawn_and_its_counts_read_under_five(browser, header_server, role):
    """What the person sees: BCLC A (3 patients) is not among the curves, the note says why, its row
    reads <5 and –, and the page logs no error. With A chosen as the Cox reference (?ref=A) no hazard
    ratio is shown, and the note says it is the reference group's size."""
    context = browser.new_context(viewport={"width": 1366, "height": 1400}, extra_http_headers={"X-Remote-User": role})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(header_server + "/survival?by=bclc_stage&ref=A")
        page.wait_for_selector("#survival-summary-table", timeout=30000)
        page.wait_for_selector("#card-km-curve .js-plotly-plot", timeout=30000)
        wait_idle(page)
        curves = [t["name"] for t in graph_data(page, "km-curve") if (t["name"] or "").endswith(")")]
        assert curves == ["B (n = 136)", "C (n = 101)"]
        assert "BCLC stage A: fewer than 10 patients, not drawn for your role." in page.inner_text("#card-km-curve")
        row = page.evaluate("() => Array.from(document.querySelectorAll('#survival-summary-table tbody tr'))"
                            ".map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))")
        assert row[0] == ["A", "<5", "<5", "–", "–", "–", "–"]
        assert "the reference group, BCLC stage A, has fewer than 10" in page.inner_text("#card-cox")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"access-survival-{role}.png"), full_page=True)
        assert errors == []
    finally:
        context.close()
