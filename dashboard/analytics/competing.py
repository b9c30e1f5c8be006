"""Cumulative incidence with competing risks (Aalen-Johansen), computed as R's survival does it.

Definition: analysis plan, "Staging and downstaging" (time to downstaging, death competing).
Checked against R survival 3.5-3 multi-state ``survfit`` and cmprsk 2.2-11 ``cuminc`` in
tests/test_proportions_competing.py (tests/reference/r_survival.json, competing_risks block).

lifelines' AalenJohansenFitter is not used: it breaks tied times by random jitter, which changes
the estimate at tied times (a test shows it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CONF_TYPES = ("log", "log-log", "plain")


def _clean(time, status):
    t = pd.to_numeric(pd.Series(np.asarray(time, dtype=object)), errors="coerce").to_numpy(float)
    s = pd.to_numeric(pd.Series(np.asarray(status, dtype=object)), errors="coerce").to_numpy(float)
    if len(t) != len(s):
        raise ValueError("time and status must have the same length")
    keep = ~(np.isnan(t) | np.isnan(s))
    t, s = t[keep], s[keep]
    if np.any(s < 0) or np.any(s != np.round(s)):
        raise ValueError("status must be 0 (censored) or a positive integer event type")
    if np.any(t < 0):
        raise ValueError("time must be >= 0")
    return t, s.astype(int)


def _confint(p, se, conf_type, conf_level):
    """R survival's ``survfit_confint`` with ``logse = FALSE`` (se of the probability itself),
    the transform applied to the probability p as survfit does for multi-state curves."""
    z = float(stats.norm.ppf(1 - (1 - conf_level) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            return np.maximum(p - z * se, 0.0), np.minimum(p + z * se, 1.0)
        sel = np.where(se == 0, 0.0, se / p)       # se of log p
        if conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            return np.exp(np.log(xx) - z * sel), np.minimum(np.exp(np.log(xx) + z * sel), 1.0)
        if conf_type == "log-log":
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            se2 = z * sel / np.log(xx)
            return (np.exp(-np.exp(np.log(-np.log(xx)) - se2)),
                    np.exp(-np.exp(np.log(-np.log(xx)) + se2)))
    raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")


def aalen_johansen(time, status, cause: int = 1, conf_level: float = 0.95,
                   conf_type: str = "log") -> pd.DataFrame:
    """Cumulative incidence of ``cause`` by the Aalen-Johansen estimator:
    CIF_k(t) = sum over event times s <= t of S(s-) d_k(s) / n(s), with S the all-cause
    Kaplan-Meier. status 0 = censored, 1, 2, ... = event types. Ties are exact: all events at a
    time are processed together and subjects censored at t are still at risk at t (R survival's
    multi-state survfit and cmprsk::cuminc; point estimates equal theirs to rounding).

    std_err is R survival's infinitesimal-jackknife (IJ) standard error of the CIF, the default
    of multi-state survfit: sqrt(sum_i U_i(t)^2) with U_i the derivative of the estimate with
    respect to subject i's case weight (survival's survfitci). The CI uses R's transform for
    multi-state curves, by default "log": CIF * exp(-/+ z se / CIF), upper capped at 1, NaN
    (R: NA) where CIF = 0; "log-log" and "plain" as survfit(conf.type=...). Tested against
    R survival 3.5-3 survfit(Surv(time, state) ~ 1 | ~ group). This is not cmprsk's
    (Aalen/delta-method) variance, which differs.

    Returns one row per distinct time (event or censoring), preceded by a row at time 0 with
    CIF 0: time_days, n_risk, n_event (this cause), n_competing (other causes), n_censor, cif,
    std_err, ci_lower, ci_upper.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    t, s = _clean(time, status)
    n = len(t)
    cols = ["time_days", "n_risk", "n_event", "n_competing", "n_censor", "cif", "std_err",
            "ci_lower", "ci_upper"]
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    utime = np.unique(t)
    surv_prev = 1.0             # all-cause S(t-)
    cif = 0.0
    u_surv = np.zeros(n)        # influence of each subject on S(t-) (IJ), then on S(t)
    u_cif = np.zeros(n)         # influence on CIF_cause
    rows = []
    for tt in utime:
        at_risk = t >= tt
        here = t == tt
        nr = int(at_risk.sum())
        d_all = int(np.sum(here & (s > 0)))
        d_k = int(np.sum(here & (s == cause)))
        n_cens = int(np.sum(here & (s == 0)))
        if d_all > 0:
            # hazards at tt and their derivatives w.r.t. each subject's weight
            lam_all, lam_k = d_all / nr, d_k / nr
            dl_all = (((here & (s > 0)).astype(float)) - at_risk * lam_all) / nr
            dl_k = (((here & (s == cause)).astype(float)) - at_risk * lam_k) / nr
            # CIF(t) = CIF(t-) + S(t-) lam_k ; S(t) = S(t-) (1 - lam_all)
            u_cif = u_cif + u_surv * lam_k + surv_prev * dl_k
            u_surv = u_surv * (1 - lam_all) - surv_prev * dl_all
            cif = cif + surv_prev * lam_k
            surv_prev = surv_prev * (1 - lam_all)
        rows.append((tt, nr, d_k, d_all - d_k, n_cens, cif, float(np.sqrt(np.sum(u_cif ** 2)))))
    out = pd.DataFrame(rows, columns=cols[:7])
    out = pd.concat([pd.DataFrame([(0.0, n, 0, 0, 0, 0.0, 0.0)], columns=cols[:7]), out],
                    ignore_index=True)
    lower, upper = _confint(out["cif"].to_numpy(float), out["std_err"].to_numpy(float),
                            conf_type, conf_level)
    out["ci_lower"], out["ci_upper"] = lower, upper
    return out
