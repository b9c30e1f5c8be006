"""Kaplan-Meier, medians, numbers at risk, log-rank and Cox against R.

Every expected number comes from R 4.2.2 with survival 3.5-3, written by
tests/reference/make_reference.R into tests/reference/r_survival.json (15 significant digits;
null = R's NA) from the NCCTG lung data in tests/reference/lung.csv (status 1 = dead).
Each test names the R call that produced its numbers. Tolerance: 1e-6 relative (plus 1e-12
absolute for values at 0), as the analysis plan asks; the estimators actually agree with R to
about 1e-15.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.analytics.survival import (KMFit, cox_hazard_ratios, km_by_group, km_fit, km_table,
                                          logrank_test, median_followup, median_survival,
                                          risk_table, surv_at, surv_at_times)

REF_DIR = Path(__file__).resolve().parent / "reference"
R = json.loads((REF_DIR / "r_survival.json").read_text())
LUNG = pd.read_csv(REF_DIR / "lung.csv")
SUBSETS = {"overall": LUNG, "male": LUNG[LUNG["sex"] == 1], "female": LUNG[LUNG["sex"] == 2]}
REL = 1e-6


def close(actual, expected, rel=REL, abs_=1e-12):
    """Elementwise equality within tolerance, where R's null (NA) must be NaN/None here."""
    a = np.array([np.nan if v is None else v for v in np.atleast_1d(actual)], dtype=float)
    b = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], dtype=float)
    assert a.shape == b.shape, (a, b)
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"NA pattern differs:\n{a}\n{b}"
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rel, atol=abs_)


# --- medians and their CIs ---------------------------------------------------------------------
@pytest.mark.parametrize("group", ["overall", "male", "female"])
@pytest.mark.parametrize("conf_type", ["log-log", "log", "plain"])
def test_median_and_ci_match_r_for_every_conf_type(conf_type, group):
    """Source: R survival 3.5-3, summary(survfit(Surv(time, status) ~ sex | ~ 1, lung,
    conf.type = conf_type))$table (checked against quantile(fit, 0.5)); make_reference.R,
    r_survival.json lung_km.by_conf_type. E.g. male log-log 270 (210, 306)."""
    ref = R["lung_km"]["by_conf_type"][conf_type][group]
    sub = SUBSETS[group]
    fit = km_fit(sub["time"], sub["status"], conf_type=conf_type)
    assert (fit.n, fit.events) == (ref["n"], ref["events"])
    assert median_survival(fit) == (ref["median"], ref["median_lower"], ref["median_upper"])


def test_sanity_values_from_the_analysis_plan():
    """Source: analysis-plan.md / tests/reference/README.md sanity table (R survival 3.5-3):
    median 270 (210-306) men, 426 (345-524) women, log-log; overall 310 (285, 363) with log."""
    by_sex = km_by_group(LUNG, "time", "status", "sex", conf_type="log-log")
    assert median_survival(by_sex[1]) == (270, 210, 306)
    assert median_survival(by_sex[2]) == (426, 345, 524)
    assert median_survival(km_fit(LUNG["time"], LUNG["status"], conf_type="log")) == (310, 285, 363)


# --- S(t) at 182 / 365 / 730 days ------------------------------------------------------------
@pytest.mark.parametrize("group", ["overall", "male", "female"])
@pytest.mark.parametrize("conf_type", ["log-log", "log", "plain"])
def test_survival_at_6_12_24_months(conf_type, group):
    """Source: R survival 3.5-3, summary(survfit(..., conf.type = conf_type),
    times = c(182, 365, 730), extend = TRUE); r_survival.json lung_km...at_times.
    R's std.err here is the se of S (S * sigma)."""
    ref = R["lung_km"]["by_conf_type"][conf_type][group]["at_times"]
    sub = SUBSETS[group]
    fit = km_fit(sub["time"], sub["status"], conf_type=conf_type)
    got = surv_at_times(fit, ref["time"])
    close(got["n_risk"], ref["n_risk"])
    close(got["surv"], ref["surv"])
    close(got["std_err"], ref["std_err"])
    close(got["ci_lower"], ref["lower"])
    close(got["ci_upper"], ref["upper"])
    for i, t in enumerate(ref["time"]):
        close(surv_at(fit, t), [ref["surv"][i], ref["lower"][i], ref["upper"][i]])


def test_one_year_os_overall_log_log():
    """Source: R survival 3.5-3, summary(survfit(Surv(time, status) ~ 1, lung,
    conf.type = 'log-log'), times = 365): 0.4092416 (0.3387143, 0.4783808)."""
    fit = km_fit(LUNG["time"], LUNG["status"])
    close(surv_at(fit, 365), [0.409241624460064, 0.338714269088323, 0.478380767646914])


def test_surv_at_beyond_last_time_carries_last_value_as_r_extend():
    """Source: R survival 3.5-3, summary(fit_by_sex, times = 990, extend = TRUE): the women's
    last time is 965, and R reports S = 0.0832144 (0.0185053, 0.2123639) with n.risk 0 at 990;
    r_survival.json lung_risk_table.grid.female."""
    women = SUBSETS["female"]
    fit = km_fit(women["time"], women["status"])
    assert fit.time.max() == 965
    ref = R["lung_risk_table"]["grid"]["female"]
    i = ref["time"].index(990)
    assert ref["n_risk"][i] == 0
    close(surv_at(fit, 990), [ref["surv"][i], ref["lower"][i], ref["upper"][i]])
    assert surv_at_times(fit, [990])["n_risk"].iloc[0] == 0
    # before the first time S = 1 with CI [1, 1] (R summary at t = 0)
    assert surv_at(fit, 0) == (1.0, 1.0, 1.0)


# --- the whole step function -------------------------------------------------------------------
def test_overall_step_function_log_log():
    """Source: R survival 3.5-3, survfit(Surv(time, status) ~ 1, lung, conf.type = 'log-log'):
    fit$time, n.risk, n.event, n.censor, surv, std.err (se of the cumulative hazard), lower,
    upper; r_survival.json lung_km.overall_step_function_loglog (186 distinct times)."""
    ref = R["lung_km"]["overall_step_function_loglog"]
    fit = km_fit(LUNG["time"], LUNG["status"], conf_type="log-log")
    assert isinstance(fit, KMFit)
    close(fit.time, ref["time"])
    close(fit.n_risk, ref["n_risk"])
    close(fit.n_event, ref["n_event"])
    close(fit.n_censor, ref["n_censor"])
    close(fit.surv, ref["surv"])
    close(fit.std_err, ref["std_err"])
    close(fit.ci_lower, ref["lower"])
    close(fit.ci_upper, ref["upper"])


def test_km_table_starts_at_time_zero():
    """Source: R survival 3.5-3 step function as above, with survfit0's row at time 0 (S = 1,
    CI [1, 1]; summary(fit, times = 0) gives the same, r_survival.json lung_risk_table.grid)."""
    ref = R["lung_km"]["overall_step_function_loglog"]
    table = km_table(km_fit(LUNG["time"], LUNG["status"]))
    assert list(table.columns) == ["time_days", "n_risk", "n_event", "n_censor", "surv",
                                   "ci_lower", "ci_upper"]
    assert table.iloc[0].tolist() == [0.0, 228, 0, 0, 1.0, 1.0, 1.0]
    close(table["time_days"].iloc[1:], ref["time"])
    close(table["surv"].iloc[1:], ref["surv"])
    close(table["ci_upper"].iloc[1:], ref["upper"])


# --- numbers at risk ---------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["grid", "tied_event_times"])
@pytest.mark.parametrize("group", ["overall", "male", "female"])
def test_risk_table_against_r(block, group):
    """Source: R survival 3.5-3, summary(survfit(Surv(time, status) ~ sex | ~ 1, lung,
    conf.type = 'log-log'), times, extend = TRUE)$n.risk and cumsum(n.event / n.censor), which
    make_reference.R asserts equal the explicit counts #{time >= t}, #{event, time <= t},
    #{censored, time <= t}; times 0, 90, ..., 990 and the tied death times 11, 13, 53, 145, 163,
    201 (r_survival.json lung_risk_table)."""
    ref = R["lung_risk_table"][block] if block == "grid" else R["lung_risk_table"][block]["table"]
    ref = ref[group]
    sub = SUBSETS[group]
    got = risk_table(sub["time"], sub["status"], ref["time"])
    assert list(got.columns) == ["time_days", "n_at_risk", "cum_events", "cum_censored"]
    close(got["n_at_risk"], ref["n_risk"])
    close(got["cum_events"], ref["cum_events"])
    close(got["cum_censored"], ref["cum_censored"])
    # S and its log-log CI at the same ticks
    at = surv_at_times(km_fit(sub["time"], sub["status"]), ref["time"])
    close(at["n_risk"], ref["n_risk"])
    close(at["surv"], ref["surv"])
    close(at["ci_lower"], ref["lower"])
    close(at["ci_upper"], ref["upper"])


def test_at_risk_counts_those_who_die_at_t():
    """Source: r_survival.json lung_risk_table.tied_event_times (R survival 3.5-3): at t = 11,
    3 deaths tie; n.risk = #{time >= 11} = 227, not #{time > 11} = 224 (lifelines' count)."""
    ref = R["lung_risk_table"]["tied_event_times"]["table"]["overall"]
    i = ref["time"].index(11)
    assert (ref["n_risk"][i], ref["events_at_t"][i], ref["n_risk_after_t"][i]) == (227, 3, 224)
    got = risk_table(LUNG["time"], LUNG["status"], [11])
    assert got["n_at_risk"].iloc[0] == 227
    assert got["cum_events"].iloc[0] == 4          # the death at t = 5 and the three at t = 11


# --- log-rank ----------------------------------------------------------------------------------
def test_logrank_by_sex():
    """Source: R survival 3.5-3, survdiff(Surv(time, status) ~ sex, lung): chisq 10.3267 on 1 df,
    p = 0.0013112; r_survival.json lung_logrank.sex."""
    ref = R["lung_logrank"]["sex"]
    res = logrank_test(LUNG["time"], LUNG["status"], LUNG["sex"])
    close(res.chisq, ref["chisq"])
    assert res.df == ref["df"] == 1
    close(res.p_value, ref["p"])
    close(res.observed.to_numpy(), ref["observed"])
    close(res.expected.to_numpy(), ref["expected"])
    assert round(res.chisq, 4) == 10.3267 and round(res.p_value, 7) == 0.0013112


def test_logrank_by_ecog_four_levels():
    """Source: R survival 3.5-3, survdiff(Surv(time, status) ~ ph.ecog) on the 227 rows with
    ph.ecog known (level 3 has one patient): chisq 21.96 on 3 df; r_survival.json
    lung_logrank.ph.ecog."""
    ref = R["lung_logrank"]["ph.ecog"]
    known = LUNG.dropna(subset=["ph.ecog"])
    assert len(known) == ref["rows_used"]
    res = logrank_test(known["time"], known["status"], known["ph.ecog"])
    assert res.df == ref["df"] == 3
    close(res.chisq, ref["chisq"])
    close(res.p_value, ref["p"])
    close(res.observed.to_numpy(), ref["observed"])
    close(res.expected.to_numpy(), ref["expected"])
    # rows with a missing group are dropped, as R does
    res_all_rows = logrank_test(LUNG["time"], LUNG["status"], LUNG["ph.ecog"])
    close(res_all_rows.chisq, ref["chisq"])


def test_logrank_needs_two_groups():
    """Analysis plan: df = k - 1 with k groups having a patient; one group -> no test."""
    assert logrank_test([1, 2, 3], [1, 0, 1], ["a", "a", "a"]) is None
    assert logrank_test([1, 2, 3], [1, 0, 1], ["a", None, None]) is None


# --- Cox ---------------------------------------------------------------------------------------
def _check_cox(got, ref_levels, prefix):
    for term, ref in ref_levels.items():
        level = float(term.removeprefix(prefix))
        row = got[got["group"] == level].iloc[0]
        close([row.hazard_ratio, row.ci_lower, row.ci_upper, row.p_value],
              [ref["hr"], ref["hr_lower"], ref["hr_upper"], ref["wald_p"]])


def test_cox_by_sex_efron():
    """Source: R survival 3.5-3, coxph(Surv(time, status) ~ factor(sex), lung) (Efron ties):
    HR female vs male 0.588003 (0.423718, 0.815985), Wald p 0.0014912; r_survival.json
    lung_cox.sex."""
    got = cox_hazard_ratios(LUNG["time"], LUNG["status"], LUNG["sex"])
    assert list(got.columns[:5]) == ["group", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]
    ref_row = got.iloc[0]
    assert ref_row.group == 1 and ref_row.hazard_ratio == 1 and math.isnan(ref_row.p_value)
    _check_cox(got, R["lung_cox"]["sex"]["levels"], "factor(sex)")
    # Breslow ties would give 0.588372: the test is sharp enough to tell them apart
    breslow = R["lung_cox"]["sex_breslow"]["levels"]["factor(sex)2"]["hr"]
    assert abs(got.iloc[1].hazard_ratio - breslow) > 1e-4


def test_cox_by_ecog_with_a_single_patient_level():
    """Source: R survival 3.5-3, coxph(Surv(time, status) ~ factor(ph.ecog)) on the 227 rows with
    ph.ecog known, reference level 0; level 3 is one patient (HR 9.10, 1.22-67.9);
    r_survival.json lung_cox.ph.ecog."""
    known = LUNG.dropna(subset=["ph.ecog"])
    got = cox_hazard_ratios(known["time"], known["status"], known["ph.ecog"])
    assert got["group"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert got["n"].tolist() == [63, 113, 50, 1]
    _check_cox(got, R["lung_cox"]["ph.ecog"]["levels"], "factor(ph.ecog)")


def test_cox_reference_level_can_be_chosen():
    """HR(male vs female) = 1 / HR(female vs male): R survival 3.5-3 coxph as above; the CI
    inverts (upper 1/0.423718, lower 1/0.815985)."""
    ref = R["lung_cox"]["sex"]["levels"]["factor(sex)2"]
    got = cox_hazard_ratios(LUNG["time"], LUNG["status"], LUNG["sex"], reference=2)
    row = got.iloc[1]
    assert row.group == 1
    close([row.hazard_ratio, row.ci_lower, row.ci_upper, row.p_value],
          [1 / ref["hr"], 1 / ref["hr_upper"], 1 / ref["hr_lower"], ref["wald_p"]])


def test_cox_degenerate_levels_give_nan_rows_not_errors():
    """A level whose patients are all censored, or a single censored patient, has no estimable HR
    (R would report a coefficient running to -inf with a warning): NaN row; the other levels are
    still estimated as if the level were absent (checked against the fit without it)."""
    df = LUNG[["time", "status", "sex"]].copy()
    extra = pd.DataFrame({"time": [100, 200, 300, 50], "status": [0, 0, 0, 0],
                          "sex": ["all_censored", "all_censored", "all_censored", "single"]})
    df = pd.concat([df.astype({"sex": str}), extra], ignore_index=True)
    got = cox_hazard_ratios(df["time"], df["status"], df["sex"], reference="1")
    assert got["group"].tolist() == ["1", "2", "all_censored", "single"]
    for level in ("all_censored", "single"):
        row = got[got["group"] == level].iloc[0]
        assert np.isnan([row.hazard_ratio, row.ci_lower, row.ci_upper, row.p_value]).all()
    # reference level without events: nothing can be estimated
    got = cox_hazard_ratios([1, 2, 3, 4], [0, 0, 1, 1], ["a", "a", "b", "b"])
    assert got["hazard_ratio"].tolist()[0] == 1 and np.isnan(got["hazard_ratio"].iloc[1])
    assert cox_hazard_ratios([], [], []).empty


# --- reverse Kaplan-Meier follow-up ------------------------------------------------------------
@pytest.mark.parametrize("group", ["overall", "male", "female"])
def test_median_followup_reverse_km(group):
    """Source: R survival 3.5-3, survfit(Surv(time, 1 - status) ~ sex | ~ 1, lung,
    conf.type = 'log-log'), summary()$table; r_survival.json lung_reverse_km. Men: 840 (806, NR):
    the upper band never crosses 0.5, reported as None."""
    ref = R["lung_reverse_km"][group]
    sub = SUBSETS[group]
    assert median_followup(sub["time"], sub["status"]) == (ref["median"], ref["median_lower"],
                                                           ref["median_upper"])


def test_median_followup_upper_bound_not_reached_is_none():
    """Source: r_survival.json lung_reverse_km.male (R survival 3.5-3): upper = NA."""
    assert R["lung_reverse_km"]["male"]["median_upper"] is None
    men = SUBSETS["male"]
    med, lower, upper = median_followup(men["time"], men["status"].astype(bool))
    assert (med, lower, upper) == (840, 806, None)


# --- tiny data sets: S = 0.5 over a flat step ----------------------------------------------------
@pytest.mark.parametrize("name", ["tiny_a", "tiny_b", "tiny_c"])
@pytest.mark.parametrize("conf_type", ["log-log", "log", "plain"])
def test_tiny_flat_half_median_is_the_midpoint(name, conf_type):
    """Source: R survival 3.5-3, survfit(Surv(time, status) ~ 1, conf.type = conf_type) on the
    tiny sets of make_reference.R; r_survival.json tiny_km. tiny_a: S = 0.5 on [2, 4) (the
    censoring at 3 inside the step is ignored) -> 3; tiny_b: [15, 25) -> 20; tiny_c: [2, 3) -> 2.5.
    The full step function (including NA CIs where S = 0) is compared too."""
    block = R["tiny_km"][name]
    ref = block[conf_type]
    fit = km_fit(block["data"]["time"], block["data"]["status"], conf_type=conf_type)
    assert median_survival(fit) == (ref["median"], ref["median_lower"], ref["median_upper"])
    step = ref["step"]
    close(fit.time, step["time"])
    close(fit.n_risk, step["n_risk"])
    close(fit.surv, step["surv"])
    close(fit.std_err, step["std_err"])
    close(fit.ci_lower, step["lower"])
    close(fit.ci_upper, step["upper"])


# --- hand-checked small cases ------------------------------------------------------------------
def test_km_by_hand_four_patients():
    """Four patients: times 1, 2, 2, 4 with events yes, yes, censored, yes. By hand:
    t=1: n=4, d=1 -> S = 3/4;                  sigma^2 = 1/(4*3) = 1/12
    t=2: n=3 (the censored one is at risk at 2), d=1 -> S = 3/4 * 2/3 = 1/2;
         sigma^2 = 1/12 + 1/(3*2) = 1/4, sigma = 1/2
    t=4: n=1, d=1 -> S = 0 (Greenwood undefined: NaN, R prints NA)
    plain CI at t=2: 1/2 -/+ 1.959964 * 1/2 * 1/2 = (0.0100090, 0.9899910)
    median: S = 1/2 exactly on [2, 4) -> (2 + 4) / 2 = 3; lower band (0.0100) is below 1/2
    from t=2 on, but already at t=1 the plain lower is 0.75 - 1.96*0.75*sqrt(1/12) = 0.3257 < 0.5,
    so the lower limit is 1; the upper band never falls below 0.5 -> None."""
    fit = km_fit([1, 2, 2, 4], [True, True, False, True], conf_type="plain")
    close(fit.time, [1, 2, 4])
    close(fit.n_risk, [4, 3, 1])
    close(fit.n_event, [1, 1, 1])
    close(fit.n_censor, [0, 1, 0])
    close(fit.surv, [0.75, 0.5, 0.0])
    close(fit.std_err, [math.sqrt(1 / 12), 0.5, np.nan])
    z = 1.959963984540054
    close([fit.ci_lower[1], fit.ci_upper[1]], [0.5 - z * 0.25, 0.5 + z * 0.25])
    assert median_survival(fit) == (3.0, 1.0, None)
    table = km_table(fit)
    assert table["surv"].tolist() == [1.0, 0.75, 0.5, 0.0]


def test_median_flat_at_half_to_the_end_is_the_time_it_reached_half():
    """R print(survfit) / summary(fit)$table (survmean's minmin; r_median_edge.json
    flat_half_to_end gives the same rule on days 10-40): a curve that stays at exactly 0.5 to its
    last (censored) time has median = the time S reached 0.5, not a midpoint with a time that has
    no event. By hand: times 1, 2, 3, 4; events 1, 1, 0, 0 -> S = 3/4, 1/2, 1/2, 1/2 -> 2."""
    fit = km_fit([1, 2, 3, 4], [1, 1, 0, 0])
    assert median_survival(fit)[0] == 2.0


def test_median_not_reached_and_empty_inputs():
    """S never reaches 0.5 -> None (NR), never the last event time; no patients -> all None."""
    # S = 4/5 from t = 1 on; only the lower log-log band dips below 0.5 (at t = 1: S^exp(-z
    # sigma / log S) with sigma = sqrt(1/20) gives 0.204), so the median and its upper limit are NR
    fit = km_fit([1, 2, 3, 4, 5], [1, 0, 0, 0, 0])
    assert median_survival(fit) == (None, 1.0, None)
    empty = km_fit([], [])
    assert median_survival(empty) == (None, None, None)
    assert surv_at(empty, 365) == (None, None, None)
    assert km_table(empty).empty
    assert median_followup([], []) == (None, None, None)


def test_log_log_ci_is_na_where_s_is_one_as_in_r():
    """R survival's survfit_confint: the log-log transform is NA where S = 1 (censorings before
    the first death), while 'log' gives [1, 1]. By hand: times 3 (censored), 5 (death), 7, 9."""
    ll = km_fit([3, 5, 7, 9], [0, 1, 0, 1], conf_type="log-log")
    assert np.isnan(ll.ci_lower[0]) and np.isnan(ll.ci_upper[0])
    lg = km_fit([3, 5, 7, 9], [0, 1, 0, 1], conf_type="log")
    assert (lg.ci_lower[0], lg.ci_upper[0]) == (1.0, 1.0)


def test_inputs_with_missing_values_are_dropped():
    """As R drops NA rows: the fit with a missing time/event equals the fit without those rows."""
    a = km_fit([1, 2, np.nan, 4, 5], [1, 0, 1, None, 1])
    b = km_fit([1, 2, 5], [1, 0, 1])
    close(a.surv, b.surv)
    close(a.time, b.time)
    with pytest.raises(ValueError):
        km_fit([1, 2], [1, 2])


def test_km_by_group():
    """km_by_group = one km_fit per level (sorted), rows with a missing group dropped; None ->
    one fit under "all". Source for the numbers: R medians as in the tests above."""
    fits = km_by_group(LUNG, "time", "status", "sex", conf_type="log")
    assert list(fits) == [1, 2]
    assert median_survival(fits[2]) == (426, 348, 550)
    (only,) = km_by_group(LUNG, "time", "status", None).items()
    assert only[0] == "all" and median_survival(only[1]) == (310, 284, 361)
    with_missing = km_by_group(LUNG, "time", "status", "ph.ecog")
    assert sum(f.n for f in with_missing.values()) == 227


def test_unique_rows_equals_numpy_unique_with_counts():
    """The Cox fit's collapse of identical subjects: the rows and counts of np.unique(axis=0)."""
    import numpy as np
    from dashboard.analytics.survival import _unique_rows
    rng = np.random.default_rng(3)
    m = np.column_stack([rng.integers(0, 50, 2000), rng.integers(0, 2, 2000),
                         rng.integers(0, 3, 2000) - 0.37]).astype(float)
    rows, counts = _unique_rows(m)
    ref_rows, ref_counts = np.unique(m, axis=0, return_counts=True)
    assert np.array_equal(rows, ref_rows) and np.array_equal(counts, ref_counts)
    empty_rows, empty_counts = _unique_rows(np.zeros((0, 3)))
    assert empty_rows.shape == (0, 3) and len(empty_counts) == 0


def test_normal_and_chi2_tails_are_scipy_stats_values_exactly():
    """The z quantile, the normal tail (Cox Wald p) and the chi-squared tail (log-rank p) come from
    scipy.special, the functions scipy.stats' norm and chi2 call (so that starting the dashboard
    does not import scipy.stats): the same numbers, bit for bit, over a sweep; chi2 with df 0 is NaN."""
    from scipy import stats
    from dashboard.analytics import competing, survival
    for conf in np.linspace(0.5, 0.999, 200):
        assert survival._z(conf) == float(stats.norm.ppf(1 - (1 - conf) / 2)) == competing._z(conf)
    for x in np.concatenate([np.linspace(0, 40, 4001), [1e-300, np.inf]]):
        assert 2 * survival._norm_sf(abs(x)) == float(2 * stats.norm.sf(abs(x)))
    for df in range(0, 12):
        for x in np.concatenate([np.linspace(0, 80, 2001), [1e-300, np.inf]]):
            a, b = survival._chi2_sf(x, df), float(stats.chi2.sf(x, df))
            assert a == b or (np.isnan(a) and np.isnan(b)), (x, df)
