"""Statistics whose mutants survived the suite (issue 14 item 10), against independent values:
the log-rank test where a group's expected count is 0 (R's survdiff, numbers committed in
tests/reference/r_logrank_expected_zero.json by make_logrank_expected_zero.R; R is not needed to run
these tests), and the small-group threshold of the analysis plan ("Groups with fewer than 5
patients are drawn but flagged")."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.analytics import response as resp
from dashboard.analytics import safety
from dashboard.analytics.survival import logrank_test

R = json.loads((Path(__file__).resolve().parent / "reference" / "r_logrank_expected_zero.json").read_text())


def run_case(name):
    case = R[name]
    d = case["data"]
    return case, logrank_test(d["time"], d["status"], d["group"])


@pytest.mark.parametrize("name", ["one_group_expected_zero", "two_groups_expected_zero"])
def test_logrank_df_counts_only_groups_with_expected_above_zero(name):
    """Kills: df = groups with patients - 1. Plan: "df = the rank of its variance matrix, as R
    (groups with expected count 0 do not count)". R: survdiff gives df 1 for three groups, one of
    them (c, censored before the first event) with expected 0: chisq 5.765, p 0.01635 (df 2 would
    give p 0.056); four groups with two at expected 0: chisq 0.0589 on 1 df."""
    case, res = run_case(name)
    assert list(res.observed.index) == case["group"]
    np.testing.assert_allclose(res.observed.to_numpy(), case["observed"], rtol=1e-12)
    np.testing.assert_allclose(res.expected.to_numpy(), case["expected"], rtol=1e-9, atol=1e-12)
    assert res.df == case["df"] == 1
    assert res.chisq == pytest.approx(case["chisq"], rel=1e-9)
    assert res.p_value == pytest.approx(case["p"], rel=1e-9)


@pytest.mark.parametrize("name", ["one_group_with_expected", "no_event"])
def test_logrank_with_fewer_than_two_groups_with_expected_is_not_estimable(name):
    """Plan: "With no event at all, or fewer than two groups with expected count > 0, the test is
    'not estimable' (never p = 1)". R's survdiff gives chisq 0 there (with p 1 on 0 df, or NaN on
    -1 df); the dashboard follows the plan: chisq 0, df 0, p NaN (the export writes null)."""
    case, res = run_case(name)
    assert case["chisq"] == 0 and case["df"] <= 0
    assert res.chisq == 0 and res.df == 0
    assert math.isnan(res.p_value)


# --- the small-group threshold: fewer than 5 patients --------------------------------------------
def best_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "bor": ["PR"] * n,
                         "best_pct_change": [-50.0] * n})


@pytest.mark.parametrize("n, small", [(1, True), (4, True), (5, False), (6, False)])
def test_response_group_of_fewer_than_5_patients_is_flagged(n, small):
    """Plan: "Groups with fewer than 5 patients are drawn but flagged"; docs/analysis.md: the count
    compared with 5 is the group's patients (its ITT denominator)."""
    assert resp.summarise(best_rows(n), "g")["is_small_group"] is small
    counts = pd.DataFrame({"group": ["g"], "bor": ["PR"], "evaluable": [True], "n": [n]})
    assert bool(resp.response_summary_counts(counts, by="none").iloc[0]["is_small_group"]) is small


def test_response_small_group_counts_patients_not_evaluable_ones():
    # 5 patients of whom only 2 have a waterfall bar: not small (the ITT denominator is 5)
    best = best_rows(5)
    best.loc[:2, "best_pct_change"] = np.nan
    assert resp.summarise(best, "g")["is_small_group"] is False


@pytest.mark.parametrize("n, flagged", [(0, False), (1, True), (4, True), (5, False)])
def test_safety_note_for_fewer_than_5_patients(n, flagged):
    """docs/analysis.md (Safety): "Fewer than 5 patients in the filter: each card's footnote warns
    that percentages are unstable" (none with no patient at all)."""
    from dashboard.callbacks.safety import small_note
    assert safety.SMALL_GROUP == 5
    note = small_note(n)
    assert (note != "") is flagged
    if flagged:
        assert f"Only {n} patient" in note.children and "unstable" in note.children


# --- tumour response: orders (docs/analysis.md, Tumour response) ---------------------------------
def test_waterfall_bars_largest_increase_first_ties_by_patient_id():
    """docs/analysis.md: "sorted from the largest increase to the largest decrease (ties by patient
    id)". Unsorted input, and input sorted by change with the tie in the wrong order: both give
    P3 (+10), P1 (-50), P2 (-50); a patient without a bar (P4) is left out."""
    best = pd.DataFrame({"patient_id": ["P2", "P1", "P3", "P4"], "site_id": "S01", "bclc_stage": "B",
                         "best_pct_change": [-50.0, -50.0, 10.0, np.nan], "best_visit": "M1",
                         "bor": ["PR", "PR", "SD", "NE"], "implied_response": ["PR", "PR", "SD", None],
                         "recorded_response": ["PR", "PR", "SD", "NE"], "contradicts": False})
    assert resp.waterfall_rows(best).patient_id.tolist() == ["P3", "P1", "P2"]
    presorted = best.iloc[[2, 0, 1]]                     # +10, then -50 P2 before -50 P1
    assert resp.waterfall_rows(presorted).patient_id.tolist() == ["P3", "P1", "P2"]


LANES = pd.DataFrame({"patient_id": ["A", "B", "C", "D", "E", "F"],
                      "time_on_study_days": [100.0, 200.0, 300.0, 400.0, 200.0, np.nan],
                      "bor": ["CR", "CR", "PR", None, "CR", "SD"]})


@pytest.mark.parametrize("sort, expected", [
    # time on study, longest first, ties by id, a missing time last
    ("time_desc", ["D", "C", "B", "E", "A", "F"]),
    ("time_asc", ["A", "B", "E", "C", "D", "F"]),
    # best response CR first, a missing one last; then longest first; ties by id
    ("bor", ["B", "E", "A", "C", "F", "D"]),
    ("patient", ["A", "B", "C", "D", "E", "F"]),
])
def test_swimmer_lane_order(sort, expected):
    """docs/analysis.md and response.swimmer_order's documented rules, worked on six lanes."""
    assert resp.swimmer_order(LANES, sort) == expected


def test_swimmer_marks_of_a_day_in_kind_order():
    """The swimmer export: each lane's marks by day, then session < scan < first PD < lane end.
    One lane, day 30 holds a scan and a session (given scan first) and day 60 a first PD and a death."""
    events = pd.DataFrame({"patient_id": "P1", "time_on_study_days": 60.0, "bor": "PD",
                           "day": [30.0, 30.0, 0.0, 60.0, 60.0],
                           "event": ["scan", "session", "session", "death", "first_pd"]})
    assert resp.swimmer_rows(events)[["day", "event"]].values.tolist() == [
        [0.0, "session"], [30.0, "session"], [30.0, "scan"], [60.0, "first_pd"], [60.0, "death"]]
