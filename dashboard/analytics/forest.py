"""Subgroup forest plot statistics, computed the way R's survival package computes them.

Definitions: docs/analysis.md ("Subgroup forest plot"). Checked against R survival 3.5-3 in
tests/test_forest.py (reference numbers in tests/reference/r_forest.json, written by
tests/reference/make_forest_reference.R).

- Hazard-ratio form: within each level of a subgroup field, ``coxph(Surv(time, status) ~ arm)``
  over the patients of that level in the compared arm or the reference arm (Efron ties, Wald
  95% CI), with events/n per arm; the interaction p-value is the likelihood-ratio test of
  ``~ arm * subgroup`` against ``~ arm + subgroup`` over the patients with a known subgroup level
  (R ``anova(fit_main, fit_int, test = "LRT")``), on as many degrees of freedom as there are
  estimable interaction terms (aliased columns dropped, as coxph gives them NA coefficients).
- Single-arm form: within each level, the Kaplan-Meier S(365) with its pointwise CI and the
  median with its CI (survival.km_fit / surv_at / median_survival).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard.analytics import survival as sv

UNKNOWN = "unknown"        # a subgroup level the source did not record: shown, left out of the LRT
HR_COLUMNS = ["subgroup_level", "n", "events", "ref_n", "ref_events", "hazard_ratio", "ci_lower", "ci_upper"]
SINGLE_COLUMNS = ["subgroup_level", "n", "events", "surv_365", "surv_365_ci_lower", "surv_365_ci_upper",
                  "median_days", "median_ci_lower_days", "median_ci_upper_days"]


def _estimable_columns(X: np.ndarray, start: int) -> list[int]:
    """Indexes of the columns of X kept by a sequential rank check on the centred columns (a column
    that is a linear combination of the ones before it is aliased: R's NA coefficient); the first
    `start` columns are checked too, in order."""
    Xc = X - X.mean(axis=0)
    kept: list[int] = []
    for j in range(X.shape[1]):
        trial = Xc[:, kept + [j]]
        if np.linalg.matrix_rank(trial, tol=1e-9 * max(1.0, np.abs(Xc).max())) == len(kept) + 1:
            kept.append(j)
    return kept


def interaction_lrt(time, event, arm, subgroup) -> tuple[float | None, int]:
    """(p, df) of the likelihood-ratio test of the arm-by-subgroup interaction: 2 (loglik of
    ~ arm * subgroup - loglik of ~ arm + subgroup), chi-square on the number of estimable
    interaction columns. ``arm`` is 0/1 (1 = the compared arm); rows with a missing subgroup are
    dropped. (None, 0) when no interaction term can be estimated or a fit does not converge."""
    t, e, a, s = sv._clean(time, event, np.asarray(arm, dtype=object), np.asarray(subgroup, dtype=object))
    keep = ~(pd.isna(pd.Series(a)).to_numpy() | pd.isna(pd.Series(s)).to_numpy())
    t, e, a, s = t[keep], e[keep], a[keep].astype(float), s[keep]
    levels = sv._levels(pd.Series(s, dtype=object))
    if len(levels) < 2 or len(np.unique(a)) < 2 or e.sum() == 0:
        return None, 0
    dummies = np.column_stack([(s == lv).astype(float) for lv in levels[1:]])
    main = np.column_stack([a, dummies])
    inter = dummies * a[:, None]
    full = np.column_stack([main, inter])
    kept_main = _estimable_columns(main, 0)
    kept_full = _estimable_columns(full, 0)
    df = sum(j >= main.shape[1] for j in kept_full)
    if df == 0:
        return None, 0
    ll_main, _ = sv.cox_loglik(main[:, kept_main], t, e)
    ll_full, _ = sv.cox_loglik(full[:, kept_full], t, e)
    if not (math.isfinite(ll_main) and math.isfinite(ll_full)):
        return None, df
    chisq = max(2 * (ll_full - ll_main), 0.0)
    return sv._chi2_sf(chisq, df), df


def _arm_counts(e, in_arm) -> tuple[int, int]:
    return int(in_arm.sum()), int(e[in_arm].sum())


def subgroup_hazard_ratios(time, event, arm, subgroup, levels) -> pd.DataFrame:
    """One row per subgroup level (in `levels` order): n and events of the compared arm (arm 1),
    ref_n and ref_events of the reference arm (arm 0), and the hazard ratio of arm 1 vs arm 0 with
    its Wald 95% CI within the level (NaN where not estimable: an arm empty or without events, an
    infinite coefficient, no convergence)."""
    t, e, a, s = sv._clean(time, event, np.asarray(arm, dtype=object), np.asarray(subgroup, dtype=object))
    rows = []
    for level in levels:
        at = s == level
        n1, d1 = _arm_counts(e, at & (a == 1))
        n0, d0 = _arm_counts(e, at & (a == 0))
        hr = lo = hi = math.nan
        if n1 and n0 and d0:
            cox = sv.cox_hazard_ratios(t[at], e[at], pd.Categorical(a[at].astype(int), categories=[0, 1]),
                                       reference=0).set_index("group")
            if 1 in cox.index:
                hr, lo, hi = (float(cox.loc[1, c]) for c in ("hazard_ratio", "ci_lower", "ci_upper"))
        rows.append(dict(subgroup_level=level, n=n1, events=d1, ref_n=n0, ref_events=d0,
                         hazard_ratio=hr, ci_lower=lo, ci_upper=hi))
    return pd.DataFrame(rows, columns=HR_COLUMNS)


def subgroup_survival(time, event, subgroup, levels, at_days: float = 365,
                      conf_type: str = "log-log") -> pd.DataFrame:
    """One row per subgroup level: n, events, S(at_days) with its pointwise CI (None past the
    level's last follow-up while S > 0, as km-summary) and the median with its CI (None = NR)."""
    t, e, s = sv._clean(time, event, np.asarray(subgroup, dtype=object))
    rows = []
    for level in levels:
        at = s == level
        fit = sv.km_fit(t[at], e[at], conf_type=conf_type)
        if fit.n == 0 or (at_days > fit.time[-1] and fit.surv[-1] > 0):
            surv = (None, None, None)
        else:
            surv = sv.surv_at(fit, at_days)
        med = sv.median_survival(fit)
        rows.append(dict(subgroup_level=level, n=fit.n, events=fit.events, surv_365=surv[0],
                         surv_365_ci_lower=surv[1], surv_365_ci_upper=surv[2], median_days=med[0],
                         median_ci_lower_days=med[1], median_ci_upper_days=med[2]))
    out = pd.DataFrame(rows, columns=SINGLE_COLUMNS)
    estimates = SINGLE_COLUMNS[3:]
    out[estimates] = out[estimates].astype(float)          # None (NR, not estimable) as NaN
    return out
