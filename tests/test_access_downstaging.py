"""Who sees what on the Downstaging page (issue 15, item 2): every callback and every download of the
page replayed by hand as committee, investigator (own site S01) and sponsor, the raw JSON answers read.

The registry is generated (200 patients, 6 sites, seed 3); each filter below is checked to make flow
links of 1 to 4 patients, CIF groups or downsizing boxes under 10 patients before anything is
asserted. Expected numbers come from the exports run with no scope in this process (the committee's
view, what `python -m dashboard export` prints), never from the answers under test.
"""
from __future__ import annotations

import datetime as dt
import json
import re

import orjson
import pytest

from access_page_checks import PATIENT_ID, Page, csv_frame, dates_in, figure_of, filters_of, footnote_of, small
from access_support import signed_in
from dashboard import data, exports, wire
from dashboard.access import ALL_SITES, MIN_GROUP, SUPPRESSED
from dashboard.figures import downstaging as figs
from dashboard.generate import generate_registry

FLOW, RATES, CIF, DOWNSIZING = "downstaging-flow", "downstaging-rates", "downstaging-cif", "downstaging-downsizing"
# one site (a CIF group of 7), one sex (downsizing boxes by site under 10), everyone
SCENARIOS = [{}, {"site": ["S04"]}, {"sex": ["F"]}]
IDS = ["all", "site-S04", "sex-F"]
BY = ["bclc_stage", "site_id"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("access-downstaging")
    generate_registry(root, n_patients=200, n_sites=6, seed=3, last_cut_only=True, progress=False)
    return root


@pytest.fixture
def env(root, dash_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    snapshot = data.resolve("latest")
    with signed_in(monkeypatch, tmp_path) as as_user:
        yield Page(dash_app, "/downstaging", snapshot.snapshot_id, as_user("committee")), as_user, snapshot


def truth(snapshot, name, scenario, **options):
    """The committee's numbers: the export with no scope."""
    return exports.compute_export(name, snapshot, filters_of(scenario), ALL_SITES, **options)


def as_json(fig) -> dict:
    return json.loads(orjson.dumps(wire.plain(fig), option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))


def numbers(text: str) -> list[int]:
    """The whole numbers of a text (not decimals or percentages, nor the note's "<5: 1 to 4 patients")."""
    return [int(n) for n in re.findall(r"(?<![\d.\-−])\d+(?![\d.%])", text.replace("1 to 4 patients", ""))]


# the counts the cards' notes write: N in the filter, eligible and their outcomes, points, not evaluable
NOTE_COUNTS = [re.compile(p) for p in (r"N = (\d+)", r"n = (\d+)", r"(\d+) downstaged", r"(\d+) died first",
                                       r"(\d+) censored", r"not evaluable: (\d+)", r"measurement: (\d+)")]


def texts(fig: dict, what: str) -> list[str]:
    """Annotation texts and hover texts (annotation hovertext, trace text) of a figure answer."""
    out = [a.get("text", "") + " " + a.get("hovertext", "") for a in fig["layout"].get("annotations", [])]
    if what == "all":
        for trace in fig["data"]:
            t = trace.get("text")
            out += t if isinstance(t, list) else [t] if isinstance(t, str) else []
            out.append(trace.get("name") or "")
    return out


def sizes(rows, column="n_risk"):
    return rows.groupby("group", sort=False)[column].max().to_dict()


# --- every callback, every role ----------------------------------------------------------------
@pytest.mark.parametrize("by", BY)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_a_sponsor_gets_no_count_from_1_to_4_no_patient_and_no_small_group(env, scenario, by):
    page, as_user, snapshot = env
    flow = truth(snapshot, "staging-flow", scenario, measure="bclc")
    assert flow.rows["n"].map(small).any(), "the filter must make flow links of 1-4 patients"
    answers, raw = page.update(as_user("sponsor"), scenario, {"by": by})
    assert not PATIENT_ID.search(raw)
    assert not dates_in(raw, {snapshot.cutoff_date.isoformat(), dt.date.today().isoformat()})

    # flow: a link of 1-4 patients reads "<5"; no label or hover carries a count of 1-4
    fig = figure_of(answers, FLOW)
    links = [a["text"] for a in fig["layout"]["annotations"] if a.get("name") == "link"]
    assert links.count(f"<b>{SUPPRESSED}</b>") == int(flow.rows["n"].map(small).sum())
    assert not [n for t in texts(fig, "all") for n in numbers(t.replace("BCLC", "")) if small(n)]

    # rates: no achieved or eligible count of 1-4 in the points' hover data or labels
    fig = figure_of(answers, RATES)
    for trace in fig["data"]:
        assert not [v for row in trace.get("customdata", []) for v in row[:2] if small(v)]
        assert not [n for t in trace.get("text", []) for n in numbers(t) if small(n)]
    assert not [n for t in texts(fig, "annotations") for n in numbers(t) if small(n)]

    # CIF: groups under 10 not drawn, said so; counts at risk / events of 1-4 as "<5"
    cif = truth(snapshot, "downstaging-cif", scenario, by=by)
    drawn = [t for t in figure_of(answers, CIF)["data"] if "(n=" in (t.get("name") or "")]
    assert sorted(t["legendgroup"] for t in drawn) == sorted(g for g, n in sizes(cif.rows).items() if n >= MIN_GROUP)
    for trace in drawn:
        assert not [v for row in trace["customdata"] for v in row[3:] if small(v)]
    hidden = [g for g, n in sizes(cif.rows).items() if n < MIN_GROUP]
    if hidden:
        note = figs.not_drawn_note(by, hidden)
        assert "fewer than 10 patients, not drawn for your role" in note
        said = [a["text"].replace("<br>", " ") for a in figure_of(answers, CIF)["layout"]["annotations"]
                if a.get("name") == "not-drawn"]
        assert said == [note] and note in footnote_of(answers, CIF)

    # its note: eligible = downstaged + died first + censored, eligible and downstaged also on the rates
    # card: a "<5" among the other two is not the only one not shown
    n, downstaged, died, censored = re.search(r"n = (\S+): (\S+) downstaged, (\S+) died first, (\S+) censored",
                                              footnote_of(answers, CIF)).groups()
    assert [v.isdigit() for v in (died, censored)].count(False) != 1 or not (n.isdigit() and downstaged.isdigit())

    # downsizing: de-identified points of the groups of 10 or more, the others named
    dz = truth(snapshot, "downsizing", scenario, by=by)
    boxes = [t for t in figure_of(answers, DOWNSIZING)["data"] if t.get("type") == "box"]
    counts = dz.rows["group"].value_counts()
    assert sorted({t["name"].split(":")[0] for t in boxes}) == sorted(
        figs.group_label(by, g) for g, n in counts.items() if n >= MIN_GROUP)
    for trace in boxes:
        assert all(len(row) == 4 for row in trace.get("customdata", []))     # lesion, two diameters, visit
    if (counts < MIN_GROUP).any():
        assert figs.not_drawn_note(by, [g for g in dz.extra["groups"] if 0 < counts.get(g, 0) < MIN_GROUP]) \
            in footnote_of(answers, DOWNSIZING)
    for figure in (FLOW, RATES, CIF, DOWNSIZING):
        note = footnote_of(answers, figure)
        assert not [n for p in NOTE_COUNTS for n in p.findall(note) if small(n)], figure


def test_the_scenarios_make_small_groups(root, monkeypatch):
    """The filters above do what the tests need: a CIF group under 10 (site S04), downsizing boxes
    by site under 10 (sex F), a downsizing group of 1-4 (sex F, site S04: 3 patients)."""
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    snapshot = data.resolve("latest")
    assert min(sizes(truth(snapshot, "downstaging-cif", {"site": ["S04"]}, by="bclc_stage").rows).values()) < MIN_GROUP
    counts = truth(snapshot, "downsizing", {"sex": ["F"]}, by="site_id").rows["group"].value_counts()
    assert (counts < MIN_GROUP).any() and (counts >= MIN_GROUP).any() and counts.map(small).any()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_an_investigator_sees_only_their_site_s_patients(env, scenario):
    page, as_user, snapshot = env
    answers, raw = page.update(as_user("investigator"), scenario, {"by": "site_id"})
    ids = set(PATIENT_ID.findall(raw))
    expected = truth(snapshot, "downsizing", scenario, by="site_id").rows
    own = expected[expected["site_id"] == "S01"]
    assert ids == set(own["patient_id"])
    assert (expected["site_id"] != "S01").any()                    # other sites' patients exist in the filter
    boxes = [t for t in figure_of(answers, DOWNSIZING)["data"] if t.get("type") == "box"]
    assert sum(len(t.get("y", [])) for t in boxes) == len(own)
    assert "Patients of your site only (S01)" in footnote_of(answers, DOWNSIZING)
    # the aggregates over other sites: the sponsor's (suppressed)
    sponsor, _ = page.update(as_user("sponsor"), scenario, {"by": "site_id"})
    for figure in (FLOW, RATES, CIF):
        assert figure_of(answers, figure) == figure_of(sponsor, figure), figure


def test_an_investigator_s_own_site_is_exact(env):
    page, as_user, snapshot = env
    own = {"site": ["S01"]}
    flow = truth(snapshot, "staging-flow", own, measure="bclc")
    assert flow.rows["n"].map(small).any()
    answers, _ = page.update(as_user("investigator"), own)
    committee, _ = page.update(as_user("committee"), own)
    for figure in (FLOW, RATES, CIF, DOWNSIZING):
        assert figure_of(answers, figure) == figure_of(committee, figure), figure


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_the_committee_sees_every_number(env, scenario):
    page, as_user, snapshot = env
    answers, raw = page.update(as_user("committee"), scenario, {"by": "site_id"})
    flow = truth(snapshot, "staging-flow", scenario, measure="bclc")
    assert figure_of(answers, FLOW) == as_json(figs.flow_figure(flow.rows, "bclc"))
    rates = truth(snapshot, "downstaging-summary", scenario, by="site_id")
    assert figure_of(answers, RATES) == as_json(figs.rates_figure(rates.rows, "site_id"))
    cif = truth(snapshot, "downstaging-cif", scenario, by="site_id")
    assert figure_of(answers, CIF) == as_json(figs.cif_figure(cif.rows, "site_id"))
    dz = truth(snapshot, "downsizing", scenario, by="site_id")
    assert figure_of(answers, DOWNSIZING) == as_json(figs.downsizing_figure(dz.rows, dz.extra["groups"], "site_id"))
    assert set(PATIENT_ID.findall(raw)) == set(dz.rows["patient_id"])


# --- downloads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS[1:], ids=IDS[1:])
def test_aggregate_downloads_per_role(env, scenario):
    """Sponsor and investigator: counts of 1-4 are "<5" with their rates and CIs empty, CIF rows of
    groups under 10 left out, every other value the committee's; the committee's CSV is the export."""
    page, as_user, snapshot = env
    state = page.state(scenario)
    cases = [(FLOW, "staging-flow", {"measure": "bclc"}, {"n": ()}),
             (RATES, "downstaging-summary", {"by": "bclc_stage"},
              {"eligible": ("rate", "ci_lower", "ci_upper"), "achieved": ("rate", "ci_lower", "ci_upper")}),
             (CIF, "downstaging-cif", {"by": "bclc_stage"},
              {c: () for c in ("n_risk", "n_event", "n_competing", "n_censor")})]
    for figure, name, options, counted in cases:
        expected = truth(snapshot, name, scenario, **options)
        status, _, committee = page.download(as_user("committee"), figure, state, "?by=bclc_stage")
        assert status == 200 and committee == exports.to_csv(expected), figure
        full = csv_frame(committee)
        if name == "downstaging-cif":
            small_groups = [g for g, n in sizes(expected.rows).items() if n < MIN_GROUP]
            assert small_groups or scenario != {"site": ["S04"]}, "a CIF group under 10 in this filter"
            full = full[~full["group"].isin(small_groups)].reset_index(drop=True)
        assert any(full[c].map(small).any() for c in counted), figure
        for role in ("sponsor", "investigator"):
            status, raw, csv = page.download(as_user(role), figure, state, "?by=bclc_stage")
            got = csv_frame(csv)
            assert status == 200 and list(got.columns) == list(full.columns) and len(got) == len(full), (role, figure)
            for column in full.columns:
                for i, (mine, theirs) in enumerate(zip(got[column], full[column])):
                    if column in counted:
                        # "<5" for 1-4; otherwise the committee's number, or withheld (empty) beside a "<5"
                        assert mine == SUPPRESSED if small(theirs) else mine in (theirs, ""), (role, figure, column)
                        assert mine != "" or int(theirs) >= 5, (role, figure, column)
                    elif any(column in d for d in counted.values()):
                        hide = any(not got.at[i, c].isdigit() for c, d in counted.items() if column in d)
                        assert mine == ("" if hide else theirs), (role, figure, column)
                    else:
                        assert mine == theirs, (role, figure, column)
            assert not recoverable(name, got, full), (role, figure)


def sums_of(name: str, rows) -> list[list[int]]:
    """The row numbers of each sum a reader knows the total of: flow links add up to the patients of
    the filter and, per baseline state, to that state's patients (both the banner's n under a filter);
    each measure's groups add up to its 'all' row (the total a member of the sum, known when shown). A
    total of 1-4 is not known: the banner shows it as "<5"."""
    if name == "staging-flow":
        sums = [list(rows.index)] + [list(rows.index[rows["source"] == s]) for s in rows["source"].unique()]
        return [m for m in sums if not small(sum(int(rows.at[i, "n"]) for i in m))]     # a banner of 1-4: "<5"
    if name == "downstaging-summary":
        return [list(rows.index[rows["measure"] == m]) for m in rows["measure"].unique()]
    return []


def recoverable(name: str, got, full) -> list:
    """Counts a reader can work out by subtraction: sums with exactly one member not shown (the flow's
    totals are known from the banner: a link not shown is then the only unknown)."""
    columns = {"staging-flow": ["n"], "downstaging-summary": ["eligible", "achieved"]}.get(name, [])
    found = []
    for column in columns:
        for members in sums_of(name, full):
            hidden = [i for i in members if not got.at[i, column].isdigit()]
            if len(hidden) == 1:
                found.append((column, hidden[0], full.at[hidden[0], column]))
    return found


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_downsizing_download_per_role(env, scenario):
    page, as_user, snapshot = env
    state = page.state(scenario)
    expected = truth(snapshot, "downsizing", scenario, by="site_id")
    status, _, committee = page.download(as_user("committee"), DOWNSIZING, state, "?by=site_id")
    assert status == 200 and committee == exports.to_csv(expected)
    full = csv_frame(committee)

    status, _, csv = page.download(as_user("investigator"), DOWNSIZING, state, "?by=site_id")
    assert status == 200 and csv_frame(csv).equals(full[full["site_id"] == "S01"].reset_index(drop=True))

    status, raw, csv = page.download(as_user("sponsor"), DOWNSIZING, state, "?by=site_id")
    got = csv_frame(csv)
    assert status == 200 and not PATIENT_ID.search(raw)
    assert "patient_id" not in got.columns and "site_id" not in got.columns
    counts = full["group"].value_counts()
    kept = full[full["group"].map(counts) >= MIN_GROUP].drop(columns=["patient_id", "site_id"])
    # the same values, in the order drawn (group, best change, then the values): not the patients' order
    key = ["group", "best_pct_change", "baseline_diameter_mm", "best_diameter_mm", "best_visit", "lesion_id"]
    assert sorted(map(tuple, got[key].values)) == sorted(map(tuple, kept[key].values))
    for _, g in got.groupby("group", sort=False):
        drawn = [(float(c), float(b), float(d), v, lesion) for c, b, d, v, lesion in
                 g[key[1:]].itertuples(index=False)]
        assert drawn == sorted(drawn)      # ties of best change by the values, not by the patients' order
    assert set(got["group"]) == {g for g, n in counts.items() if n >= MIN_GROUP}


# --- crafted requests --------------------------------------------------------------------------
def test_a_forged_state_gets_no_more(env):
    """The investigator's state asking for another site, or for their own and another; a store naming
    another export; a download of another page's patient-level figure."""
    page, as_user, snapshot = env
    for query in ("site=S02", "site=S01,S02", "site=S01&site=S02", "bclc=B&site=S02,S01"):
        forged = {"snapshot": snapshot.snapshot_id, "query": query}
        answers, raw = page.update(as_user("investigator"), {}, {"by": "site_id"}, state=forged)
        ids = set(PATIENT_ID.findall(raw))
        assert ids and all(i.startswith("S01-") for i in ids) or not ids, query
        status, raw, csv = page.download(as_user("investigator"), DOWNSIZING, forged, "?by=site_id",
                                         store={"export": "patients", "options": {}, "filename": "x"})
        assert status in (200, 204) and all(i.startswith("S01-") for i in PATIENT_ID.findall(raw)), query
    state = page.state({})
    for figure in ("response-swimmer", "response-waterfall", "ae-incidence-table", "patients"):
        status, raw, _ = page.download(as_user("sponsor"), figure, state, "?by=site_id")
        assert status in (200, 204, 400) and not PATIENT_ID.search(raw), figure
    status, raw, csv = page.download(as_user("sponsor"), DOWNSIZING, state, "?by=site_id",
                                     store={"export": "downsizing", "options": {"by": "none"}, "filename": "x"})
    assert status == 200 and not PATIENT_ID.search(raw) and "patient_id" not in csv
