"""Exact binomial CIs and Aalen-Johansen cumulative incidence against R.

Expected numbers: tests/reference/r_survival.json, written by tests/reference/make_reference.R
with R 4.2.2, survival 3.5-3 and cmprsk 2.2-11 (15 significant digits; null = R's NA).
Tolerances: CIF point estimates 1e-10 absolute (the brief's requirement); standard errors and
CI limits 1e-6 relative (they agree to about 1e-15); binomial limits 1e-6 relative.
"""
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.analytics.competing import aalen_johansen
from dashboard.analytics.proportions import clopper_pearson
from dashboard.analytics.survival import km_fit

REF_DIR = Path(__file__).resolve().parent / "reference"
R = json.loads((REF_DIR / "r_survival.json").read_text())
CR = pd.DataFrame(R["competing_risks"]["data"])
MS = R["competing_risks"]["survival_multistate"]
CMPRSK = R["competing_risks"]["cmprsk"]
SUBSETS = {"all": CR, "group=A": CR[CR["group"] == "A"], "group=B": CR[CR["group"] == "B"]}
CAUSES = {1: "cif_ds", 2: "cif_death"}


def close(actual, expected, rel=1e-6, abs_=1e-12):
    """Elementwise equality within tolerance, where R's null (NA) must be NaN/None here."""
    a = np.array([np.nan if v is None else v for v in np.atleast_1d(actual)], dtype=float)
    b = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], dtype=float)
    assert a.shape == b.shape, (a, b)
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"NA pattern differs:\n{a}\n{b}"
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rel, atol=abs_)


def step_value(table, times, column="cif"):
    """Value of a right-continuous step curve (rows from time 0) at each t."""
    idx = np.searchsorted(table["time_days"].to_numpy(), np.asarray(times, float), side="right") - 1
    return table[column].to_numpy()[idx]


# --- Clopper-Pearson ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", R["binom_clopper_pearson"], ids=lambda c: f"{c['x']}/{c['n']}")
def test_clopper_pearson_matches_binom_test(case):
    """Source: R 4.2.2 binom.test(x, n)$estimate and $conf.int (exact, 95%) for 12/40, 0/25,
    25/25, 33/57; make_reference.R, r_survival.json binom_clopper_pearson."""
    close(clopper_pearson(case["x"], case["n"]), [case["estimate"], case["lower"], case["upper"]])


def test_clopper_pearson_edges():
    """Bounds are exactly 0 at x = 0 and exactly 1 at x = n (R binom.test: 0/25 -> [0, 0.1371852],
    25/25 -> [0.8628148, 1]); n = 0 has no estimate."""
    assert clopper_pearson(0, 25)[1] == 0.0
    assert clopper_pearson(25, 25)[2] == 1.0
    assert clopper_pearson(0, 0) == (None, None, None)
    # symmetry: the CI of x/n mirrors the CI of (n - x)/n
    est, lo, hi = clopper_pearson(12, 40)
    est2, lo2, hi2 = clopper_pearson(28, 40)
    close([lo, hi], [1 - hi2, 1 - lo2])
    with pytest.raises(ValueError):
        clopper_pearson(5, 3)


def test_clopper_pearson_bounds_are_scipy_beta_ppf_exactly():
    """The bounds use special.betaincinv, the inverse scipy's beta.ppf computes (the formula of the
    docstring, as R binom.test): bit for bit the same numbers for every 0 <= x <= n < 300."""
    from scipy import stats
    alpha = 1 - 0.95                       # as clopper_pearson computes it (not exactly 0.05)
    for n in range(1, 300):
        for x in range(n + 1):
            _, lower, upper = clopper_pearson(x, n)
            assert lower == (0.0 if x == 0 else float(stats.beta.ppf(alpha / 2, x, n - x + 1))), (x, n)
            assert upper == (1.0 if x == n else float(stats.beta.ppf(1 - alpha / 2, x + 1, n - x))), (x, n)


# --- Aalen-Johansen against survival's multi-state survfit --------------------------------------
@pytest.mark.parametrize("conf_key,conf_type", [("default_log", "log"), ("log-log", "log-log"),
                                                ("plain", "plain")])
@pytest.mark.parametrize("curve", ["all", "group=A", "group=B"])
@pytest.mark.parametrize("cause", [1, 2])
def test_aalen_johansen_matches_survival_multistate(cause, curve, conf_key, conf_type):
    """Source: R survival 3.5-3, survfit(Surv(time, factor(status, 0:2, c('cens','ds','death')))
    ~ 1 | ~ group, data = cr, conf.type = ...) on the 20-patient set of make_reference.R:
    pstate, std.err (infinitesimal jackknife) and lower/upper (default 'log' for multi-state);
    r_survival.json competing_risks.survival_multistate. Ties at t = 3, 8, 12, 14."""
    block = (MS["overall"] if curve == "all" else MS["by_group"])[conf_key][curve]
    name = CAUSES[cause]
    sub = SUBSETS[curve]
    got = aalen_johansen(sub["time"], sub["status"], cause=cause, conf_type=conf_type)
    assert got.iloc[0][["time_days", "cif", "std_err"]].tolist() == [0.0, 0.0, 0.0]
    got = got.iloc[1:]                   # R's rows start at the first observed time
    close(got["time_days"], block["time"])
    close(got["n_risk"], block["n_risk"])
    close(got["n_censor"], block["n_censor"])
    close(got["n_event"], block[f"n_event_{name.removeprefix('cif_')}"])
    close(got["cif"], block[name], rel=0, abs_=1e-10)
    close(got["std_err"], block[f"{name}_std_err"])
    close(got["ci_lower"], block[f"{name}_lower"])
    close(got["ci_upper"], block[f"{name}_upper"])


def test_default_ci_is_log_like_r_multistate():
    """Source: r_survival.json competing_risks.survival_multistate.overall.default_log
    (R survival 3.5-3 asserts conf.type == 'log' for the default multi-state fit)."""
    block = MS["overall"]["default_log"]["all"]
    got = aalen_johansen(CR["time"], CR["status"]).iloc[1:]
    close(got["ci_lower"], block["cif_ds_lower"])
    close(got["ci_upper"], block["cif_ds_upper"])


@pytest.mark.parametrize("which,curves", [
    ("overall", {"1 1": ("all", 1), "1 2": ("all", 2)}),
    ("by_group", {"A 1": ("group=A", 1), "B 1": ("group=B", 1),
                  "A 2": ("group=A", 2), "B 2": ("group=B", 2)}),
])
def test_aalen_johansen_point_estimates_match_cmprsk(which, curves):
    """Source: R cmprsk 2.2-11, timepoints(cuminc(time, status, [group,] cencode = 0), times)$est
    at every distinct event time; r_survival.json competing_risks.cmprsk. cuminc's own variance
    (Aalen/delta type) is not what aalen_johansen reports (it reports survival's IJ se)."""
    block = CMPRSK[which]
    for name, (curve, cause) in curves.items():
        sub = SUBSETS[curve]
        table = aalen_johansen(sub["time"], sub["status"], cause=cause)
        close(step_value(table, block["event_times"]),
              block["curves"][name]["est_at_event_times"], rel=0, abs_=1e-10)


# --- hand-checked small case -------------------------------------------------------------------
def test_aalen_johansen_by_hand_with_ties():
    """Five patients: (time, status) = (1, ds), (2, death), (2, censored), (3, ds), (4, censored).
    By hand (S = all-cause KM just before t):
    t=1: n=5, one ds          -> CIF_ds = 1 * 1/5 = 0.2;           S becomes 4/5
    t=2: n=4 (the one censored at 2 is still at risk), one death
                              -> CIF_death = 4/5 * 1/4 = 0.2;      S becomes 4/5 * 3/4 = 0.6
    t=3: n=2, one ds          -> CIF_ds = 0.2 + 0.6 * 1/2 = 0.5;   S becomes 0.3
    (Processing the censoring at 2 before the death would give CIF_death = 4/5 * 1/3 = 0.267.)
    IJ se at t=1: the derivative of d/n w.r.t. each subject's weight is (1 - 0.2)/5 = 0.16 for the
    event and -0.2/5 = -0.04 for the other four: se = sqrt(0.16^2 + 4 * 0.04^2) = sqrt(0.032)
    = sqrt(p (1 - p) / n), the binomial se, as it must be before any censoring."""
    time, status = [1, 2, 2, 3, 4], [1, 2, 0, 1, 0]
    ds = aalen_johansen(time, status, cause=1)
    death = aalen_johansen(time, status, cause=2)
    close(ds["time_days"], [0, 1, 2, 3, 4])
    close(ds["n_risk"], [5, 5, 4, 2, 1])
    close(ds["cif"], [0, 0.2, 0.2, 0.5, 0.5], rel=0, abs_=1e-12)
    close(death["cif"], [0, 0, 0.2, 0.2, 0.2], rel=0, abs_=1e-12)
    close(ds["std_err"].iloc[1], math.sqrt(0.032))
    # CIF_ds + CIF_death + S = 1 at every time (S = all-cause Kaplan-Meier)
    km = km_fit(time, [s > 0 for s in status])
    close(ds["cif"].iloc[1:] + death["cif"].iloc[1:] + km.surv, np.ones(4))


def test_cifs_and_all_cause_km_add_to_one_on_the_reference_data():
    """Property of the Aalen-Johansen estimator (no R number needed): CIF_1 + CIF_2 = 1 - KM of
    any event, exactly; the R pstate columns (prob_initial_state) give the same S."""
    ds = aalen_johansen(CR["time"], CR["status"], cause=1).iloc[1:]
    death = aalen_johansen(CR["time"], CR["status"], cause=2).iloc[1:]
    km = km_fit(CR["time"], CR["status"] > 0)
    close(1 - ds["cif"].to_numpy() - death["cif"].to_numpy(), km.surv)
    close(km.surv, MS["overall"]["default_log"]["all"]["prob_initial_state"])


def test_empty_and_status_validation():
    assert aalen_johansen([], []).empty
    with pytest.raises(ValueError):
        aalen_johansen([1, 2], [1, -1])


# --- why not lifelines -------------------------------------------------------------------------
def test_lifelines_aalen_johansen_differs_at_tied_times():
    """Why competing.py exists: lifelines 0.30.3 AalenJohansenFitter breaks ties by random jitter,
    so on the reference data (ties at t = 3, 8, 12, 14) its CIF after the last time is not R's
    0.5761574 (R survival 3.5-3 pstate and cmprsk cuminc agree on it) and it changes with the
    seed; ours equals R's."""
    from lifelines import AalenJohansenFitter

    r_final = MS["overall"]["default_log"]["all"]["cif_ds"][-1]
    ours = aalen_johansen(CR["time"], CR["status"], cause=1)["cif"].iloc[-1]
    assert abs(ours - r_final) < 1e-10
    finals = []
    for seed in (0, 1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # "Tied event times were detected ..."
            fitter = AalenJohansenFitter(seed=seed).fit(CR["time"], CR["status"],
                                                         event_of_interest=1)
        finals.append(float(fitter.cumulative_density_.iloc[-1, 0]))
    assert all(abs(f - r_final) > 1e-4 for f in finals), finals
    assert len({round(f, 10) for f in finals}) > 1, finals
