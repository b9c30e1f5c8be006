"""Derivations on the varied registry (tests/fixtures.py varied_registry), each expected value worked
out by hand from the analysis plan (../shared/specs/analysis-plan.md, docs/analysis.md) in the
comment beside it. The registry varies what the mini registry holds constant, so that a wrong
derivation that agrees with the right one on the mini registry gives a different number here
(issue 14 item 10: each test names the mutation it kills).

Day arithmetic: day of the year 2024 (a leap year): Jan 10 = 10, Feb 1 = 32, Mar 1 = 61, Apr 1 = 92,
Apr 15 = 106, May 1 = 122, May 15 = 136, Jun 1 = 153, Jun 10 = 162, Jul 1 = 183, Jul 15 = 197,
Aug 1 = 214, Dec 31 = 366.
"""
import datetime as dt

import pytest

from fixtures import varied_registry, write_snapshot

from dashboard import data, exports
from dashboard.filters import Filters
from dashboard.validate import validate_folder

# R 4.2.2: binom.test(x, n)$conf.int, 15 significant digits (run once, pasted)
R_BINOM = {
    (2, 6): (0.0432718682927417, 0.777221904496488),
    (3, 6): (0.118117248757025, 0.881882751242975),
    (1, 4): (0.00630946320970987, 0.805879550316757),
    (2, 4): (0.067585986488543, 0.932414013511457),
}


@pytest.fixture(scope="module")
def varied_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("varied")
    write_snapshot(root, "2024-12-31", varied_registry())
    return root


@pytest.fixture(scope="module")
def varied(varied_root):
    return data.resolve("latest", varied_root)


def q(snapshot, view, **filters):
    return data.query(view, snapshot, Filters(**filters))


def endpoints(snapshot) -> dict:
    df = q(snapshot, "patient_endpoints")
    return {(r.patient_id, r.endpoint): (int(r.time_days), bool(r.is_event)) for r in df.itertuples()}


def test_varied_registry_is_valid_with_the_two_unmeasured_lesions_as_its_only_warnings(varied_root):
    # contract rules: docs/snapshot-contract.md; the only soft issues are the two target lesions
    # left unmeasured on purpose (V4's L2 at M1, V5's L1 at baseline)
    report = validate_folder(varied_root / "snapshots" / "2024-12-31")
    assert report.ok, report.summary()
    assert sorted(ex for w in report.warnings for ex in w.examples) == ["V4/L2/M1", "V5/L1/baseline"], \
        report.summary()


def test_view_contracts_on_varied_registry(varied):
    from test_views import check_contracts
    check_contracts(varied)


# --- patient_endpoints_all.sql ------------------------------------------------------------------
def test_os_ends_at_death_even_when_the_last_contact_is_earlier(varied):
    """Kills: OS ending at last_known_alive_date when a death date exists. Plan: OS event date =
    death_date. V1: first DEB-TACE Jan 10, last contact May 1, died Jun 10 -> 162 - 10 = 152 days,
    an event (the mutant gives 122 - 10 = 112)."""
    assert endpoints(varied)[("V1", "os")] == (152, True)


def test_pfs_is_the_earlier_of_progression_and_death(varied):
    """Kills: PFS as greatest(PD, death). Plan: "progression or death, whichever is first".
    V2: t0 Feb 1, PD Apr 1, died Aug 1 -> PFS 92 - 32 = 60 days (the mutant: 214 - 32 = 182),
    OS 182; V1: no PD, died Jun 10 -> PFS event at death, 152 days."""
    ep = endpoints(varied)
    assert ep[("V2", "pfs")] == (60, True)
    assert ep[("V2", "ttp")] == (60, True)
    assert ep[("V2", "os")] == (182, True)
    assert ep[("V1", "pfs")] == (152, True)


def test_every_endpoint_of_the_varied_registry(varied):
    """Every row, by hand from the plan's endpoint table (TTP/local TTP censored at the last
    post-baseline scan, day 0 with none; PFS likewise unless death; OS at last_known_alive_date)."""
    assert endpoints(varied) == {
        # V1: last scan Mar 1 (61 - 10 = 51), died Jun 10 (152), last contact May 1
        ("V1", "os"): (152, True), ("V1", "ttp"): (51, False), ("V1", "pfs"): (152, True),
        ("V1", "local_ttp"): (51, False),
        # V2: PD Apr 1 (60), died Aug 1 (182)
        ("V2", "os"): (182, True), ("V2", "ttp"): (60, True), ("V2", "pfs"): (60, True),
        ("V2", "local_ttp"): (60, True),
        # V3: PD Apr 15 (106 - 61 = 45), alive Dec 31 (366 - 61 = 305)
        ("V3", "os"): (305, False), ("V3", "ttp"): (45, True), ("V3", "pfs"): (45, True),
        ("V3", "local_ttp"): (45, True),
        # V4: last scan May 15 (136 - 92 = 44), alive Dec 31 (366 - 92 = 274)
        ("V4", "os"): (274, False), ("V4", "ttp"): (44, False), ("V4", "pfs"): (44, False),
        ("V4", "local_ttp"): (44, False),
        # V5: no follow-up scan (day 0), last contact Jul 1 (183 - 122 = 61)
        ("V5", "os"): (61, False), ("V5", "ttp"): (0, False), ("V5", "pfs"): (0, False),
        ("V5", "local_ttp"): (0, False),
        # V6: last scan Jul 15 (197 - 153 = 44), alive Dec 31 (366 - 153 = 213)
        ("V6", "os"): (213, False), ("V6", "ttp"): (44, False), ("V6", "pfs"): (44, False),
        ("V6", "local_ttp"): (44, False),
    }


# --- best_response_all.sql ----------------------------------------------------------------------
def best(snapshot, scope="overall"):
    br = q(snapshot, "best_response")
    return br[br.scope == scope].set_index("patient_id")


@pytest.mark.parametrize("scope", ["overall", "local"])
def test_a_response_after_the_first_pd_does_not_count(varied, scope):
    """Kills: scans after the first PD counted in the best response. Plan: BOR = best recorded
    response "among post-baseline visits up to and including the first PD". V3: PD at M1, PR at M3
    -> BOR PD from one counted scan (the mutant: PR from two); the bar is M1's +25%, not M3's -50%."""
    v3 = best(varied, scope).loc["V3"]
    assert v3.bor == "PD"
    assert v3.n_followup_scans == 1
    assert v3.best_pct_change == pytest.approx(25.0)           # 100 * (50 - 40) / 40
    assert v3.best_visit == "M1"
    assert v3.first_pd_date.date() == dt.date(2024, 4, 15)


def test_no_baseline_sum_is_the_reason_before_no_follow_up_scan(varied):
    """Kills: the order of "no follow-up scan" and "no baseline sum" swapped. docs/analysis.md:
    evaluable = "a baseline sum > 0 and at least one fully measured post-baseline scan"; the reason
    given is the first condition that fails, in the order docs/queries.md lists them ('no baseline
    sum', 'no follow-up scan', 'no post-baseline sum'). V5 has neither a baseline sum (its target
    lesion unmeasured at baseline) nor a follow-up scan: 'no baseline sum'."""
    br = best(varied)
    assert br.loc["V5", "not_evaluable_reason"] == "no baseline sum"
    assert br.loc["V5", "bor"] == "NE" and br.loc["V5", "n_followup_scans"] == 0


def test_best_response_of_every_varied_patient(varied):
    """Plan: BOR ranked CR > PR > SD > PD > NE up to the first PD; best change = minimum percent
    change over the same visits; no post-baseline sum -> no bar."""
    br = best(varied)
    assert br.bor.to_dict() == {"V1": "SD", "V2": "PD", "V3": "PD", "V4": "PR", "V5": "NE", "V6": "CR"}
    pct = br.best_pct_change
    assert pct["V1"] == pytest.approx(-10.0)        # 100 * (27 - 30) / 30
    assert pct["V2"] == pytest.approx(25.0)         # 100 * (50 - 40) / 40
    assert pct["V6"] == pytest.approx(-100.0)       # 0 mm of 20
    assert pct[["V4", "V5"]].isna().all()
    # V4: L2 unmeasured at its only follow-up scan: a PR without a waterfall bar
    assert br.loc["V4", "not_evaluable_reason"] == "no post-baseline sum"
    assert br.not_evaluable_reason[["V1", "V2", "V3", "V6"]].isna().all()


# --- analytics/response.py ----------------------------------------------------------------------
def assert_rate(row, prefix, x, n):
    lower, upper = R_BINOM[(x, n)]
    assert row[prefix] == pytest.approx(x / n, rel=1e-12), prefix
    assert row[f"{prefix}_ci_lower"] == pytest.approx(lower, rel=1e-6), prefix
    assert row[f"{prefix}_ci_upper"] == pytest.approx(upper, rel=1e-6), prefix


def test_evaluable_orr_counts_only_the_responders_with_a_bar(varied):
    """Kills: ORR among evaluable patients counting every responder. Plan/docs/analysis.md: the
    evaluable-only rate's numerator counts "the responses among those evaluable patients (a CR or PR
    of a patient without a bar counts in the ITT rate only)". Responders: V4 (PR, no bar) and V6
    (CR, bar); evaluable (a bar): V1 V2 V3 V6. ORR 2/6, evaluable ORR 1/4 (the mutant: 2/4);
    DCR (+ V1's SD) 3/6, evaluable 2/4. CIs: R binom.test."""
    row = exports.compute_export("response-summary", varied, Filters(), data.ALL_SITES,
                                 response_scope="overall", by="none").rows.set_index("group").loc["all"]
    assert (row.n, row.cr, row.pr, row.sd, row.pd, row["ne"], row.n_evaluable) == (6, 1, 1, 1, 2, 1, 4)
    assert_rate(row, "orr", 2, 6)
    assert_rate(row, "orr_evaluable", 1, 4)
    assert_rate(row, "dcr", 3, 6)
    assert_rate(row, "dcr_evaluable", 2, 4)


# --- cohort.sql: filters ------------------------------------------------------------------------
@pytest.mark.parametrize("classes, expected", [
    (("A",), {"V4", "V5", "V6"}),
    (("B",), {"V1", "V3"}),
    (("C",), {"V2"}),
    (("B", "C"), {"V1", "V2", "V3"}),
])
def test_child_pugh_filter_keeps_the_hand_counted_patients(varied, classes, expected):
    """Kills: the Child-Pugh filter deleted from cohort.sql. Expected sets read off the fixture's
    child_pugh_class column (V1 B, V2 C, V3 B, V4-V6 A), not from another view."""
    assert set(q(varied, "cohort", child_pugh=classes).patient_id) == expected
    assert set(q(varied, "patient_endpoints", child_pugh=classes).patient_id) == expected
    rows = exports.compute_export("response-summary", varied, Filters(child_pugh=classes), data.ALL_SITES,
                                  response_scope="overall", by="none").rows
    assert int(rows.set_index("group").loc["all", "n"]) == len(expected)


@pytest.mark.parametrize("filters, expected", [
    (dict(age_min=60, age_max=60), {"V2", "V3"}),                 # ages 55 60 60 70 45 80
    (dict(age_min=70), {"V4", "V6"}),
    (dict(age_max=55), {"V1", "V5"}),
    (dict(enrolled_from=dt.date(2024, 3, 1), enrolled_to=dt.date(2024, 3, 1)), {"V3"}),
    (dict(enrolled_from=dt.date(2024, 4, 1)), {"V4", "V5", "V6"}),
    (dict(enrolled_to=dt.date(2024, 2, 1)), {"V1", "V2"}),
])
def test_age_and_enrollment_bounds_are_inclusive(varied, filters, expected):
    """Plan/docs: bounds are inclusive ("Age ≥", "Age ≤", enrolled from/to a date); hand-counted
    from the fixture's ages and first treatment dates."""
    assert set(q(varied, "cohort", **filters).patient_id) == expected


def test_equal_bounds_from_the_url_reach_the_cohort(varied):
    """Kills: equal age or date bounds rejected by filters.py: the URL form with min == max keeps
    the filter (no problem reported) and selects the hand-counted patients."""
    f, problems = Filters.from_query("age_min=60&age_max=60&enrolled_from=2024-03-01&enrolled_to=2024-03-01")
    assert problems == []
    assert set(data.query("cohort", varied, f).patient_id) == {"V3"}


# --- staging_outcomes_all.sql -------------------------------------------------------------------
def test_downstaging_needs_outside_milan_at_baseline(varied):
    """Plan: "Downstaged to Milan: outside Milan at baseline and within Milan at any review";
    "Converted to resectable: not resectable at baseline and resectable at any review". V3 is within
    Milan and resectable at baseline and at its review: neither; V4 is outside and not resectable at
    baseline, within and resectable at its review: both. Best follow-up BCLC: A for both."""
    st = q(varied, "staging_outcomes").set_index("patient_id")
    assert not bool(st.loc["V3", "is_downstaged_to_milan"]) and not bool(st.loc["V3", "is_converted_to_resectable"])
    assert bool(st.loc["V4", "is_downstaged_to_milan"]) and bool(st.loc["V4", "is_converted_to_resectable"])
    assert st.loc[["V3", "V4"], "best_bclc_stage"].tolist() == ["A", "A"]
    # V1 and V2 died without a review; V5 and V6 are alive without one
    assert st.restaging_status.to_dict() == {
        "V1": "died before restaging", "V2": "died before restaging", "V3": "restaged", "V4": "restaged",
        "V5": "not yet restaged", "V6": "not yet restaged"}


# --- log-rank: not estimable --------------------------------------------------------------------
def test_logrank_without_any_event_is_not_estimable(varied):
    """Plan: "With no event at all, or fewer than two groups with expected count > 0, the test is
    'not estimable' (never p = 1)". Enrolled from 2024-03-01: V3 (Child-Pugh B) and V4-V6 (A), all
    alive: two groups, no death. The page said "χ² = 0.00 on 1 df, p = 1.00"."""
    from dashboard.callbacks.survival import logrank_text
    from dashboard.exports.survival import survival_analysis
    analysis = survival_analysis(varied, Filters(enrolled_from=dt.date(2024, 3, 1)), endpoint="os",
                                 by="child_pugh_class")
    assert list(analysis.levels) == ["A", "B"]
    lr = analysis.logrank_dict()
    assert lr["chisq"] == 0 and lr["df"] == 0 and lr["p_value"] != lr["p_value"]      # NaN
    summary = exports.compute_export("km-summary", varied, Filters(enrolled_from=dt.date(2024, 3, 1)),
                                     data.ALL_SITES, endpoint="os", by="child_pugh_class")
    assert logrank_text(summary) == "Log-rank test: not estimable (fewer than two groups with an expected event)."
    doc = exports.to_json(summary, varied, Filters(enrolled_from=dt.date(2024, 3, 1)))
    assert '"p_value": null' in doc


# --- Table 1 and follow-up status (the exports, counted in SQL) ----------------------------------
def table_one(snapshot, filters=Filters()):
    rows = exports.compute_export("baseline-table", snapshot, filters, data.ALL_SITES).rows
    return rows.set_index(["group", "variable", "level"])


def test_table_one_export_by_hand(varied):
    """Plan (Enrollment): Table 1 overall and by BCLC stage; median (IQR) with R's default quantile
    (type 7). Ages 45 55 60 60 70 80: median 60, Q1 = 55 + 0.25 * (60 - 55) = 56.25 (position 2.25),
    Q3 = 60 + 0.75 * (70 - 60) = 67.5 (position 4.75). BCLC B (V1 V3 V4 V5 V6): 45 55 60 70 80 ->
    60 (55-70); BCLC C (V2 alone): 60 (60-60). Child-Pugh A 3, B 2, C 1 of 6."""
    t = table_one(varied)
    age = t.loc[("Overall", "age_years", "median (IQR)")]
    assert (age["median"], age.q1, age.q3, age.text) == (60.0, 56.25, 67.5, "60.0 (56.2-67.5)")
    assert t.loc[("BCLC B", "age_years", "median (IQR)"), "text"] == "60.0 (55.0-70.0)"
    assert t.loc[("BCLC C", "age_years", "median (IQR)"), "text"] == "60.0 (60.0-60.0)"
    assert [t.loc[("Overall", "child_pugh_class", c), "n"] for c in "ABC"] == [3, 2, 1]
    assert [t.loc[("BCLC B", "child_pugh_class", c), "n"] for c in "ABC"] == [3, 2, 0]
    assert t.loc[("Overall", "child_pugh_class", "B"), "text"] == "2 (33.3%)"
    assert [t.loc[(g, "n", ""), "n"] for g in ("Overall", "BCLC B", "BCLC C")] == [6, 5, 1]
    # AFP > 400 ng/mL (strictly): V4 at 401 yes, V6 at 400 no
    assert [t.loc[("Overall", "afp_over_400", lv), "n"] for lv in ("yes", "no", "missing")] == [1, 5, 0]
    assert set(q(varied, "cohort").query("afp_group == '> 400'").patient_id) == {"V4"}


def test_table_one_export_counts_missing_values(mini_snapshot):
    """Plan: "Missing values are counted, never silently dropped": mini P2's etiology is missing, 1 of 5."""
    t = table_one(mini_snapshot)
    assert t.loc[("Overall", "etiology", "missing"), "text"] == "1 (20.0%)"
    assert t.loc[("Overall", "etiology", "HBV"), "n"] == 4


def test_followup_status_export_by_hand(varied):
    """Died: V1, V2; alive on study: V3-V6. Median follow-up, reverse Kaplan-Meier of OS (being
    alive at the last contact is the event): times 61 (V5, alive), 152 and 182 (deaths, censored),
    213, 274, 305 (alive). S = 5/6 after 61; at 213, 3 at risk: 5/6 * 2/3 = 0.556; at 274, 2 at risk:
    0.278 <= 0.5 -> median 274 days."""
    exp = exports.compute_export("followup-status", varied, Filters(), data.ALL_SITES)
    assert exp.rows.set_index("status").n.to_dict() == {"alive on study": 4, "died": 2}
    assert exp.extra["median_followup_days"] == 274


def test_table_one_and_followup_with_no_patient(varied):
    """A filter with no patient (BCLC 0): no Table 1 row has a patient, no one in follow-up, no median."""
    t = table_one(varied, Filters(bclc=("0",)))
    assert (t.n.fillna(0) == 0).all()
    f = exports.compute_export("followup-status", varied, Filters(bclc=("0",)), data.ALL_SITES)
    assert f.rows.n.sum() == 0 and f.extra["median_followup_days"] is None


def test_followup_status_export_counts_off_study_reasons(mini_snapshot):
    """Mini registry: P1 and P4 died; P3 off study (lost to follow-up, alive); P2 and P5 alive on
    study. The export lists alive and died first, then the off-study reasons present."""
    exp = exports.compute_export("followup-status", mini_snapshot, Filters(), data.ALL_SITES)
    assert exp.rows[["status", "n"]].values.tolist() == [
        ["alive on study", 2], ["died", 2], ["off study: lost to follow-up", 1]]
    assert exp.rows.pct.tolist() == pytest.approx([40.0, 40.0, 20.0])


# --- spider and swimmer views ---------------------------------------------------------------------
def test_spider_points_of_the_evaluable_patients_after_pd_too(varied):
    """docs/analysis.md: the percent change at every fully measured scan, baseline included, of the
    evaluable patients; scans after the first PD are drawn too. V3: 0% (baseline, day -5), +25% (M1,
    PD, day 45), -50% (M3, after PD, day 106 = Jun 15 (167) - Mar 1 (61)); V4 and V5 (no bar): none."""
    sp = q(varied, "spider_points")
    sp = sp[sp.scope == "overall"]
    assert set(sp.patient_id) == {"V1", "V2", "V3", "V6"}
    v3 = sp[sp.patient_id == "V3"].sort_values("day")
    assert v3[["visit", "day", "pct_change"]].values.tolist() == [["baseline", -5, 0.0], ["M1", 45, 25.0],
                                                                  ["M3", 106, -50.0]]
    assert v3.is_up_to_first_pd.tolist() == [True, True, False]


def test_swimmer_lane_ends_at_death_even_after_the_last_contact(varied, mini_snapshot):
    """docs/analysis.md: one lane per patient "from the first DEB-TACE (day 0) to death or the last
    date known alive". V1: last contact May 1, died Jun 10 -> lane 152 days ending in a death mark
    (not 112); V2: first PD day 60, death day 182; V3: first PD day 45, alive to day 305. Mini P3:
    off study (lost to follow-up)."""
    sw = q(varied, "swimmer_events")
    sw = sw[sw.scope == "overall"]
    lanes = sw.drop_duplicates("patient_id").set_index("patient_id")
    assert lanes.time_on_study_days.to_dict() == {"V1": 152, "V2": 182, "V3": 305, "V4": 274, "V5": 61, "V6": 213}
    assert lanes.end_status.to_dict() == {"V1": "died", "V2": "died", "V3": "alive on study", "V4": "alive on study",
                                          "V5": "alive on study", "V6": "alive on study"}
    marks = {(r.patient_id, r.event): r.day for r in sw.itertuples() if r.event in ("death", "first_pd", "last_contact")}
    assert marks == {("V1", "death"): 152, ("V2", "first_pd"): 60, ("V2", "death"): 182, ("V3", "first_pd"): 45,
                     ("V3", "last_contact"): 305, ("V4", "last_contact"): 274, ("V5", "last_contact"): 61,
                     ("V6", "last_contact"): 213}
    mini = q(mini_snapshot, "swimmer_events").drop_duplicates("patient_id").set_index("patient_id")
    assert mini.loc["P3", "end_status"] == "off study"
