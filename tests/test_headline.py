"""The headline export and the Overview's headline card.

Sources of the expected numbers: the pages' own exports run with the same filters (km-summary,
response-summary, ae-incidence, downstaging-summary, overview, enrollment); hand counts on the mini
registry (tests/fixtures.py); R's survival package (tests/reference/r_headline.json, made by
make_headline_reference.R from synthetic_os.csv); counts taken with pandas from the parquet files.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import beta

from dashboard import data, exports
from dashboard.access import SUPPRESSED, Scope, is_small
from dashboard.callbacks.overview import headline_view, link
from dashboard.components import iter_components
from dashboard.exports import headline as hl
from dashboard.exports import survival as km
from dashboard.filters import Filters

REFERENCE = Path(__file__).resolve().parent / "reference"
R = json.loads((REFERENCE / "r_headline.json").read_text())
SPONSOR = Scope(patient_sites=(), suppress=True)
FILTERS = {"none": Filters(), "site S02": Filters(site=("S02",)), "BCLC C": Filters(bclc=("C",)),
           "F and HBV": Filters(sex=("F",), etiology=("HBV",)),
           "no patient": Filters(site=("S01",), enrolled_to=dt.date(2000, 1, 1))}


def rows_of(exp) -> dict:
    """(metric, group) -> row, with missing values as None."""
    frame = exp.rows.astype(object).where(exp.rows.notna(), None)
    return {(r["metric"], r["group"]): r for r in frame.to_dict("records")}


def same(a, b) -> bool:
    if a is None or b is None or (isinstance(b, float) and b != b):
        return a is None and (b is None or b != b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


@pytest.fixture(scope="module")
def synthetic(synthetic_root):
    return data.resolve("latest", synthetic_root)


@pytest.mark.parametrize("name", list(FILTERS))
def test_headline_equals_the_pages_exports(synthetic, name):
    """Every headline number is the number of the export of the page that shows it, same filters."""
    f = FILTERS[name]
    got = rows_of(exports.compute_export("headline", synthetic, f))
    assert [m for m, _ in got] == sorted([m for m, _ in got], key=hl.METRICS.index)
    run = lambda export, **o: exports.compute_export(export, synthetic, f, **o)   # noqa: E731
    pooled = run("km-summary", by="none").rows
    stages = run("km-summary", by="bclc_stage").rows
    n = int(run("overview").rows.n_patients.iloc[0])
    assert got[("enrolled", "all")]["value"] == n == got[("enrolled", "all")]["n"]
    if n == 0:
        assert got[("os_1y", "all")]["value"] is None and got[("orr", "all")]["n"] == 0
        assert [g for m, g in got if m == "os_1y"] == ["all"]
        return
    for group, r in [("all", pooled.iloc[0])] + [(g, r) for g, r in stages.set_index("group").iterrows()
                                                 if g != km.POOLED]:
        for metric, cols in (("os_1y", ("surv_365", "surv_365_ci_lower", "surv_365_ci_upper")),
                             ("median_os_days", ("median_days", "median_ci_lower_days", "median_ci_upper_days"))):
            row = got[(metric, group)]
            assert [same(row[k], r[c]) for k, c in zip(("value", "ci_lower", "ci_upper"), cols)] == [True] * 3, \
                (metric, group, row)
            assert row["n"] == r["n"]
    assert {g for m, g in got if m == "os_1y"} == {"all"} | (set(stages.group) - {km.POOLED})
    followup = run("km-summary", by="none").extra
    assert same(got[("median_followup_days", "all")]["value"], followup["median_followup_days"])
    response = run("response-summary", by="none").rows.iloc[0]
    for metric in ("orr", "dcr"):
        row = got[(metric, "all")]
        assert [row["value"], row["ci_lower"], row["ci_upper"], row["n"]] == [
            response[metric], response[f"{metric}_ci_lower"], response[f"{metric}_ci_upper"], response["n"]]
    ae = run("ae-incidence", level="term", by="none").rows
    overall = ae[ae.term.isna() & (ae.soc == "Any adverse event")].iloc[0]
    assert got[("grade3plus_patients", "all")]["value"] == overall.n_grade_3_4 + overall.n_grade_5
    assert got[("grade5_patients", "all")]["value"] == overall.n_grade_5
    rates = run("downstaging-summary", by="none").rows.set_index("measure")
    for metric, measure in (("downstaged_milan", "downstaged_to_milan"), ("converted_resection", "converted_to_resectable")):
        row, r = got[(metric, "all")], rates.loc[measure]
        assert same(row["value"], r.rate) and same(row["ci_lower"], r.ci_lower) and row["n"] == r.eligible
    target = run("enrollment").rows.target_enrollment.sum()
    assert got[("target", "all")]["value"] == target


def test_headline_against_r(synthetic, synthetic_root):
    """1-year OS (log-log CI), median OS and the reverse Kaplan-Meier median follow-up against R:
    r_headline.json (survfit(Surv(os_days, os_event) ~ 1, conf.type = "log-log"), summary(times = 365);
    survfit(Surv(os_days, 1 - os_event) ~ 1) for follow-up), on the same patients (synthetic_os.csv,
    checked here against the test registry's patients export)."""
    csv = pd.read_csv(REFERENCE / "synthetic_os.csv")
    mine = exports.compute_export("patients", synthetic).rows.sort_values("patient_id")
    assert csv.patient_id.tolist() == mine.patient_id.tolist()
    assert csv.os_days.tolist() == mine.os_days.tolist()
    assert csv.os_event.tolist() == mine.os_event.astype(int).tolist()
    got = rows_of(exports.compute_export("headline", synthetic))
    for group, ref in R["survival"].items():
        row = got[("os_1y", group)]
        assert row["n"] == ref["n"]
        assert [row["value"], row["ci_lower"], row["ci_upper"]] == pytest.approx(
            [ref["os_1y"], ref["os_1y_lower"], ref["os_1y_upper"]], abs=1e-9)
        med = got[("median_os_days", group)]
        assert [med["value"], med["ci_lower"], med["ci_upper"]] == [ref["median"], ref["median_lower"],
                                                                   ref["median_upper"]]
    fu = got[("median_followup_days", "all")]
    assert [fu["value"], fu["ci_lower"], fu["ci_upper"]] == [R["median_followup"]["median"],
                                                            R["median_followup"]["lower"], R["median_followup"]["upper"]]
    assert fu["value"] == 620                       # R: 620 (585, 663) days


def clopper_pearson(x, n):
    """Exact 95% CI from the beta quantiles (independent of dashboard.analytics.proportions)."""
    lower = 0.0 if x == 0 else beta.ppf(0.025, x, n - x + 1)
    upper = 1.0 if x == n else beta.ppf(0.975, x + 1, n - x)
    return lower, upper


def test_headline_on_the_mini_registry_by_hand(mini_snapshot):
    """tests/fixtures.py mini_registry, worked by hand: 5 patients at S01 (target 10) and S02 (target 5).
    OS: P4 died day 31, P1 day 182; P5 censored 213, P3 214, P2 334: S(365) beyond the last follow-up
    with S = 0.6 > 0: not estimable; median not reached. Reverse KM (censoring the event): 3 at risk at
    213 -> 2/3, 2 at risk at 214 -> 1/3: median follow-up 214 days. BOR: P1 PR, P2 SD, P3 CR, P4 NE,
    P5 SD: ORR 2/5, DCR 4/5. Worst AE grade: P1 3 (Fever), P2 2: grade >= 3 one patient, grade 5 none.
    Outside Milan at baseline: P1, P2, P4, P5; P1 within Milan at a review: 1 of 4. Not resectable at
    baseline: all 5; P2 resectable at a review: 1 of 5. Last first DEB-TACE 2024-06-01, more than 90 days
    before the cut-off 2024-12-31: accrual closed."""
    exp = exports.compute_export("headline", mini_snapshot)
    got = rows_of(exp)
    assert got[("enrolled", "all")]["value"] == 5 and got[("target", "all")]["value"] == 15
    assert got[("target", "all")]["n"] is None
    assert got[("os_1y", "all")]["value"] is None and got[("os_1y", "all")]["n"] == 5
    assert got[("median_os_days", "all")]["value"] is None                  # not reached
    assert [got[("os_1y", g)]["n"] for g in ("B", "C")] == [3, 2]
    assert got[("median_os_days", "C")]["value"] is not None                  # P4 31 d, P2 334 censored: S 0.5 at 31
    assert got[("median_followup_days", "all")]["value"] == 214
    for metric, x in (("orr", 2), ("dcr", 4)):
        row = got[(metric, "all")]
        assert row["value"] == x / 5 and row["n"] == 5
        assert [row["ci_lower"], row["ci_upper"]] == pytest.approx(clopper_pearson(x, 5), abs=1e-9)
    assert (got[("grade3plus_patients", "all")]["value"], got[("grade5_patients", "all")]["value"]) == (1, 0)
    assert got[("grade3plus_patients", "all")]["n"] == 5
    for metric, x, n in (("downstaged_milan", 1, 4), ("converted_resection", 1, 5)):
        row = got[(metric, "all")]
        assert row["value"] == x / n and row["n"] == n
        assert [row["ci_lower"], row["ci_upper"]] == pytest.approx(clopper_pearson(x, n), abs=1e-9)
    assert exp.extra["accrual_open"] is False and exp.extra["last_enrolment_date"] == "2024-06-01"
    assert (exp.extra["n_sites"], exp.extra["n_sites_recruiting"]) == (2, 0)


def test_accrual_open_on_an_earlier_cut_against_the_parquet(synthetic_root):
    """An earlier cut of the synthetic registry, while patients were still enrolled: accrual open, and the
    sites recruiting counted with pandas from the cut's patients.parquet (first DEB-TACE in the 90 days
    up to the cut-off)."""
    cuts = data.complete_snapshots(synthetic_root)
    early = data.resolve(cuts[2].snapshot_id, synthetic_root)
    patients = pd.read_parquet(early.path / "patients.parquet")
    cutoff = pd.Timestamp(early.cutoff_date)
    first = pd.to_datetime(patients.first_treatment_date)
    enrolled = patients[first <= cutoff]
    recent = enrolled[pd.to_datetime(enrolled.first_treatment_date) > cutoff - pd.Timedelta(days=90)]
    exp = exports.compute_export("headline", early)
    assert len(recent) > 0
    assert exp.extra["accrual_open"] is True
    assert exp.extra["n_sites_recruiting"] == recent.site_id.nunique()
    assert rows_of(exp)[("enrolled", "all")]["value"] == len(enrolled)
    assert exp.extra["last_enrolment_date"] == pd.Timestamp(first[first <= cutoff].max()).date().isoformat()


@pytest.mark.parametrize("name", ["none", "site S02", "BCLC C", "F and HBV"])
def test_a_sponsor_s_headline_has_no_small_count_and_no_patient_date(synthetic, name):
    """Sponsor: no count 1-4 anywhere (n, counts), values withheld exactly where the page's own export
    withholds them for the sponsor, no last enrolment date; the committee's numbers otherwise."""
    f = FILTERS[name]
    mine = exports.compute_export("headline", synthetic, f, SPONSOR)
    theirs = rows_of(exports.compute_export("headline", synthetic, f))
    got = rows_of(mine)
    assert "last_enrolment_date" not in mine.extra
    for key, row in got.items():
        assert not is_small(row["n"]) and not is_small(row["value"] if key[0] in hl.COUNT_METRICS else None), key
        if is_small(theirs[key]["n"]) or (key[0] in hl.COUNT_METRICS and is_small(theirs[key]["value"])):
            assert SUPPRESSED in (row["n"], row["value"]), key
    by_stage = exports.compute_export("km-summary", synthetic, f, SPONSOR, by="bclc_stage", endpoint="os", ci="log-log")
    for g, r in by_stage.rows.set_index("group").iterrows():
        if g != km.POOLED:
            assert same(got[("os_1y", g)]["value"], r.surv_365), g
            assert same(got[("median_os_days", g)]["value"], r.median_days), g
            # withheld (shown "–", never "not reached") exactly for the groups the Survival page does not draw
            for metric in ("os_1y", "median_os_days"):
                assert (f"{metric}/{g}" in mine.extra["withheld"]) == (g in by_stage.extra["not_drawn"]), (metric, g)
    ae = exports.compute_export("ae-incidence", synthetic, f, SPONSOR, level="term", by="none").rows
    overall = ae[ae.term.isna()].iloc[0]
    assert got[("grade5_patients", "all")]["value"] == overall.n_grade_5
    assert got[("grade3plus_patients", "all")]["value"] == overall.n_grade_3_plus


def test_the_registry_has_small_cells_for_the_sponsor_test(synthetic):
    """Without a small cell the sponsor test could not fail: site S02's grade 5 count and BCLC A's size."""
    small = [key for name in ("site S02", "BCLC C", "F and HBV")
             for key, row in rows_of(exports.compute_export("headline", synthetic, FILTERS[name])).items()
             if is_small(row["n"]) or (key[0] in hl.COUNT_METRICS and is_small(row["value"]))]
    assert small
    assert rows_of(exports.compute_export("headline", synthetic))[("os_1y", "A")]["n"] < 10


def test_links_keep_the_filters_and_the_cut():
    f = Filters(site=("S01", "S02"), sex=("F",))
    assert link("os_1y", f, "latest") == "/survival?site=S01,S02&sex=F&by=none"
    assert link("os_by_stage", f, "2024-12-31") == "/survival?site=S01,S02&sex=F&snapshot=2024-12-31"
    assert link("downstaged_milan", Filters(), None) == "/downstaging?measure=milan&by=none"
    assert link("grade3plus_patients", Filters(), "latest") == "/safety?measure=grade3"


def test_the_card_is_one_static_component_with_the_export_s_numbers(synthetic_root, monkeypatch):
    """The headline card: one Static component; the pooled 1-year OS as a percentage of the export's value,
    linked to the Survival page without grouping; a sponsor's small counts read "<5"."""
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    from dashboard import access
    view = headline_view({"snapshot": "latest", "query": ""}, "latest")
    assert type(view).__name__ == "Static"
    by_id = {c.id: c for c in iter_components(view.component) if getattr(c, "id", None)}
    snapshot = data.resolve("latest")
    os1 = rows_of(exports.compute_export("headline", snapshot))[("os_1y", "all")]
    assert by_id["headline-os-1y"].children == f"{100 * os1['value']:.1f}%"
    assert by_id["headline-os-1y"].href == "/survival?by=none"
    monkeypatch.setattr(access, "_process", {"user": access.User("sp", "sponsor")})
    view = headline_view({"snapshot": "latest", "query": "site=S02"}, "latest")
    by_id = {c.id: c for c in iter_components(view.component) if getattr(c, "id", None)}
    assert by_id["headline-grade5"].children == SUPPRESSED
    assert by_id["headline-grade5"].href == "/safety?site=S02"


def nodes_by_id(node, out=None) -> dict:
    """id -> text of every element with an id in a component's JSON (a Static's tree)."""
    out = {} if out is None else out
    if isinstance(node, list):
        for child in node:
            nodes_by_id(child, out)
    elif isinstance(node, dict):
        props = node.get("props", {})
        if props.get("id"):
            out[props["id"]] = props.get("children")
        nodes_by_id(props.get("children"), out)
    return out


@pytest.mark.parametrize("scenario", [{}, {"site": ["S02"]}, {"bclc": ["A"]}])
def test_the_overview_page_as_a_sponsor(synthetic_root, dash_app, monkeypatch, tmp_path, scenario):
    """The Overview's callbacks replayed as the browser sends them, signed in as a sponsor: no patient id,
    no date but the cut-off's, the headline's counts as the sponsor's headline export gives them ("<5" for
    1-4), never a count of 1-4; the committee sees the numbers."""
    from access_page_checks import PATIENT_ID, Page, dates_in
    from access_support import signed_in
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    snapshot = data.resolve("latest")
    f = Filters(**{k: tuple(v) for k, v in scenario.items()})
    with signed_in(monkeypatch, tmp_path) as as_user:
        page = Page(dash_app, "/", snapshot.snapshot_id, as_user("committee"))
        answers, raw = page.update(as_user("sponsor"), scenario)
        assert not PATIENT_ID.search(raw)
        cuts = {s.snapshot_id for s in data.complete_snapshots()}      # the changes panel names the older cuts
        assert dates_in(raw, cuts | {dt.date.today().isoformat()}) == set()
        shown = nodes_by_id(answers["overview-headline"]["children"])
        mine = rows_of(exports.compute_export("headline", snapshot, f, SPONSOR))
        for ident, metric in (("headline-enrolled", "enrolled"), ("headline-grade3", "grade3plus_patients"),
                              ("headline-grade5", "grade5_patients")):
            value = mine[(metric, "all")]["value"]
            assert shown[ident] == (value if isinstance(value, str) else "–" if value is None else f"{int(value):,}")
            assert shown[ident] not in ("1", "2", "3", "4"), ident
        committee, _ = page.update(as_user("committee"), scenario)
        theirs = nodes_by_id(committee["overview-headline"]["children"])
        full = rows_of(exports.compute_export("headline", snapshot, f))
        assert theirs["headline-grade5"] == f"{int(full[('grade5_patients', 'all')]['value']):,}"
    if scenario == {"site": ["S02"]}:
        assert shown["headline-grade5"] == SUPPRESSED and theirs["headline-grade5"] == "1"     # the rule had work
