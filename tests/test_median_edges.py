"""Median and S(t) edge cases, against R as it prints them, and the Survival page's footnote against
what its summary table shows.

Source of every expected number: tests/reference/r_median_edge.json, written by
tests/reference/make_median_edge_reference.R (R 4.2.2, survival 3.5-3): the median with its CI from
summary(fit)$table (what print(survfit) shows), and summary(fit, times = c(2, 5, 15), extend = TRUE).
Through the export and the page the same small data sets are one BCLC stage each, their times
multiplied by 100 (a Kaplan-Meier fit and its medians scale with time; S at day 182 lies where R's
S at day 2 does for every set: before the first follow-up time of 300 days or 500 days; S at 365
and 730 days lies where R's S at day 5 does for before_first_event (after the censoring at 300,
before the death at 1000)).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard.analytics.survival import km_fit, median_followup, median_survival, surv_at_times
from dashboard.callbacks.survival import summary_note
from dashboard.exports import survival as km
from fixtures import write_snapshot
from test_survival_page import by_group, cli, close, find, registry_from, table_rows, text_of

R = json.loads((Path(__file__).resolve().parent / "reference" / "r_median_edge.json").read_text())
CASES = ("n1_event", "n1_censored", "flat_half_to_end", "flat_half_ended", "before_first_event")
CONF_TYPES = ("log-log", "log", "plain")
STAGE = dict(zip(CASES, ("0", "A", "B", "C", "D")))
SCALE = 100


def times_of(case):
    return R[case]["data"]["time"], R[case]["data"]["status"]


@pytest.mark.parametrize("ci", CONF_TYPES)
@pytest.mark.parametrize("case", CASES)
def test_median_and_its_ci_are_what_r_prints(case, ci):
    """r_median_edge.json: summary(fit)$table. flat_half_to_end: S = 0.5 from day 20 to the last
    follow-up (40) -> 20, where quantile() would say 30; flat_half_ended: a death at 40 ends the
    step -> the midpoint 30; n1_event: 5 with both bounds NA; n1_censored: all NA."""
    t, s = times_of(case)
    ref = R[case][ci]
    assert median_survival(km_fit(t, s, conf_type=ci)) == (ref["median"], ref["median_lower"], ref["median_upper"])


@pytest.mark.parametrize("ci", CONF_TYPES)
@pytest.mark.parametrize("case", CASES)
def test_s_at_times_before_and_after_the_first_event(case, ci):
    """r_median_edge.json at_times: summary(fit, times = c(2, 5, 15), extend = TRUE); before the first
    follow-up time S = 1 with CI (1, 1); after a censoring with S still 1 the log-log CI is NA."""
    t, s = times_of(case)
    ref = R[case][ci]["at_times"]
    got = surv_at_times(km_fit(t, s, conf_type=ci), ref["time"])
    close(got["surv"], ref["surv"])
    close(got["ci_lower"], ref["lower"])
    close(got["ci_upper"], ref["upper"])


def test_median_follow_up_uses_the_same_rule():
    """Reverse Kaplan-Meier of flat_half_to_end's mirror: deaths at 10, 20 and censorings at 30, 40
    flipped give a censoring curve flat at 0.5 from day 20 to the end -> 20, as
    print(survfit(Surv(time, 1 - status) ~ 1)) gives for flat_half_to_end (r_median_edge.json)."""
    t, s = times_of("flat_half_to_end")
    flipped = [1 - v for v in s]
    assert median_followup(t, flipped)[0] == R["flat_half_to_end"]["log-log"]["median"]


@pytest.fixture(scope="module")
def edge_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("edges")
    times, statuses, stages = [], [], []
    for case in CASES:
        t, s = times_of(case)
        times += [v * SCALE for v in t]
        statuses += s
        stages += [STAGE[case]] * len(t)
    write_snapshot(root, "2031-06-30", registry_from(times, statuses, bclc=stages))
    return root


def scaled(v):
    return None if v is None else v * SCALE


@pytest.mark.parametrize("ci", CONF_TYPES)
def test_export_medians_and_s_are_rs(edge_root, capsys, ci):
    """km-summary per stage = r_median_edge.json (times x 100): medians and bounds; S at 182 days =
    R's S at day 2; S at 365 and 730 days of before_first_event = R's S at day 5."""
    rows = by_group(cli(capsys, edge_root, "km-summary", "--ci", ci))
    for case in CASES:
        row, ref = rows[STAGE[case]], R[case][ci]
        assert [row["median_days"], row["median_ci_lower_days"], row["median_ci_upper_days"]] == \
            [scaled(ref["median"]), scaled(ref["median_lower"]), scaled(ref["median_upper"])], case
        at = ref["at_times"]
        close([row["surv_182"], row["surv_182_ci_lower"], row["surv_182_ci_upper"]],
              [at["surv"][0], at["lower"][0], at["upper"][0]])
    before = R["before_first_event"][ci]["at_times"]
    for t in (365, 730):
        row = rows[STAGE["before_first_event"]]
        close([row[f"surv_{t}"], row[f"surv_{t}_ci_lower"], row[f"surv_{t}_ci_upper"]],
              [before["surv"][1], before["lower"][1], before["upper"][1]])


def page(edge_root, monkeypatch, ci):
    from dashboard.callbacks.survival import survival_view
    monkeypatch.setenv("REGISTRY_DATA", str(edge_root))
    out = survival_view({"snapshot": "2031-06-30", "query": ""}, "os", "bclc_stage", ci, [])
    return table_rows(find(out[4], "survival-summary-table")), text_of(out[6])


def test_page_cells_and_footnote_agree(edge_root, monkeypatch):
    """The page's cells for R's values (r_median_edge.json, days x 100 / 30.4375): n1_event median
    500 days = 16.4 months with both bounds NA -> '16.4 (NR–NR)'; flat_half_to_end 2000 days = 65.7
    (lower 1000 = 32.9, upper NA); before_first_event S(182) = 1 with CI (1, 1) -> '100.0%
    (100.0–100.0)', S(365) = 1 with log-log CI NA -> '100.0% (CI —)'. The footnote names each form
    the table shows."""
    rows, note = page(edge_root, monkeypatch, "log-log")
    assert rows["0 †"][2] == "16.4 (NR–NR)"
    assert rows["A †"][2] == "NR (NR–NR)"
    assert rows["B †"][2] == "65.7 (32.9–NR)"
    assert rows["C †"][2] == "98.6 (32.9–NR)"                      # 3000 days: the midpoint of 2000-4000
    assert rows["D †"][3:5] == ["100.0% (100.0–100.0)", "100.0% (CI —)"]
    assert "NR: not reached" in note
    assert "NR at both ends" in note and "single patient" in note
    assert "100.0% (100.0–100.0)" in note and "before the group's first follow-up time" in note
    assert "CI —" in note and "log-log where S is 1 after a censoring" in note
    # the footnote promises "CI —" for log-log only: with the log transform R gives (1, 1) there
    rows_log, _ = page(edge_root, monkeypatch, "log")
    assert rows_log["D †"][3:5] == ["100.0% (100.0–100.0)", "100.0% (100.0–100.0)"]


def test_footnote_says_what_every_shown_form_means(edge_root, monkeypatch):
    """Every placeholder the summary table can show ('NR', '—', 'CI —', '100.0% (100.0–100.0)') is
    explained in the footnote; checked on the cells of this page (hand-listed forms)."""
    rows, note = page(edge_root, monkeypatch, "log-log")
    cells = " ".join(" ".join(v) for v in rows.values())
    for form in ("NR", "CI —", "100.0% (100.0–100.0)"):
        assert form in cells and form in note, form


def test_logrank_with_one_group_with_events_is_not_estimable_on_the_page(edge_root, monkeypatch):
    """The log-rank item of issue 19 (done in 2a61fe9), checked on the page: ?bclc=A,D keeps the
    censored patient of n1_censored (day 500) and before_first_event (censored 300, deaths 1000 and
    2000, censored 3000). A's one patient leaves before the first death: its expected count is 0, so
    one group has an expected event: R's survdiff gives df 0 (r_logrank_expected_zero.json
    one_group_with_expected, the same shape), the page "not estimable", never p = 1."""
    from dashboard.callbacks.survival import survival_view
    monkeypatch.setenv("REGISTRY_DATA", str(edge_root))
    out = survival_view({"snapshot": "2031-06-30", "query": "bclc=A,D"}, "os", "bclc_stage", "log-log", [])
    assert text_of(find(out[4], "survival-logrank")) == \
        "Log-rank test: not estimable (fewer than two groups with an expected event)."
    none = survival_view({"snapshot": "2031-06-30", "query": "bclc=A"}, "os", "none", "log-log", [])
    assert "needs two or more groups" in text_of(none[4])
