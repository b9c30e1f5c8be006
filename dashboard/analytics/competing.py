"""Cumulative incidence with competing risks (Aalen-Johansen), computed as R's survival does it.

Definition: analysis plan, "Staging and downstaging" (time to downstaging, death competing).
Checked against R survival 3.5-3 multi-state ``survfit`` and cmprsk 2.2-11 ``cuminc`` in
tests/test_proportions_competing.py (tests/reference/r_survival.json, competing_risks block).

lifelines' AalenJohansenFitter is not used: it breaks tied times by random jitter, which changes
the estimate at tied times (a test shows it).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special

CONF_TYPES = ("log", "log-log", "plain")


def _numeric(values) -> np.ndarray:
    """Values as floats, NaN where not a number. Integer and float arrays (what SQL gives) are
    converted directly; anything else goes through pd.to_numeric (the same values)."""
    a = np.asarray(values)
    if a.dtype.kind in "iuf":
        return a.astype(float)
    return pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce").to_numpy(float)


def _clean(time, status, counts=None):
    t = _numeric(time)
    s = _numeric(status)
    if len(t) != len(s):
        raise ValueError("time and status must have the same length")
    w = None if counts is None else np.asarray(counts, dtype=float)
    if w is not None and len(w) != len(t):
        raise ValueError("counts must have the same length as time and status")
    keep = ~(np.isnan(t) | np.isnan(s))
    t, s = t[keep], s[keep]
    if np.any(s < 0) or np.any(s != np.round(s)):
        raise ValueError("status must be 0 (censored) or a positive integer event type")
    if np.any(t < 0):
        raise ValueError("time must be >= 0")
    if w is None:
        return t, s.astype(int), np.ones(len(t), dtype=np.int64)
    w = w[keep]
    if np.any(np.isnan(w)) or np.any(w < 0) or np.any(w != np.round(w)):
        raise ValueError("counts must be non-negative integers")
    return t, s.astype(int), w.astype(np.int64)


@lru_cache(maxsize=8)
def _z(conf_level: float) -> float:
    return float(special.ndtri(1 - (1 - conf_level) / 2))    # = scipy.stats.norm.ppf


def _confint(p, se, conf_type, conf_level):
    """R survival's ``survfit_confint`` with ``logse = FALSE`` (se of the probability itself),
    the transform applied to the probability p as survfit does for multi-state curves."""
    z = _z(conf_level)
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
                   conf_type: str = "log", counts=None) -> pd.DataFrame:
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

    ``counts`` (optional, non-negative integers): row i stands for counts[i] subjects with the
    same time and status, so that rows aggregated in SQL (one per time and status) give the
    estimate of the subjects they count.

    Subjects with the same time and status have the same influence U_i at every time, so the
    influences are carried once per distinct (time, status) and the sum of squares weights each
    by its number of subjects: the work grows with distinct times, not with subjects. The
    estimate, the counts and each subject's influence are computed with the same floating-point
    operations as subject by subject; only the order of the final sum of squares differs, so
    std_err and the CI agree with a subject-by-subject sum to rounding (about 1e-15 relative).

    Returns one row per distinct time (event or censoring), preceded by a row at time 0 with
    CIF 0: time_days, n_risk, n_event (this cause), n_competing (other causes), n_censor, cif,
    std_err, ci_lower, ci_upper.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    columns = aalen_johansen_arrays(time, status, cause, conf_level, conf_type, counts)
    if columns is None:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in AJ_COLUMNS})
    return pd.DataFrame(columns)


AJ_COLUMNS = ("time_days", "n_risk", "n_event", "n_competing", "n_censor", "cif", "std_err", "ci_lower",
              "ci_upper")


def aalen_johansen_arrays(time, status, cause: int = 1, conf_level: float = 0.95, conf_type: str = "log",
                          counts=None) -> dict | None:
    """aalen_johansen's columns as numpy arrays (AJ_COLUMNS, in order), None when there is no
    subject: the estimator without building a DataFrame, for callers that fit many groups."""
    t, s, w = _clean(time, status, counts)
    nonzero = w > 0
    if not nonzero.all():
        t, s, w = t[nonzero], s[nonzero], w[nonzero]
    n = int(w.sum())
    if n == 0:
        return None
    # one entry per distinct (time, status), sorted by time then status
    order = np.lexsort((s, t))
    t, s, w = t[order], s[order], w[order]
    new_key = np.ones(len(t), dtype=bool)
    new_key[1:] = (t[1:] != t[:-1]) | (s[1:] != s[:-1])
    starts = np.flatnonzero(new_key)
    gt, gs, gw = t[starts], s[starts], np.add.reduceat(w, starts)
    # distinct times: [first, end) ranges of entries
    new_time = np.ones(len(gt), dtype=bool)
    new_time[1:] = gt[1:] != gt[:-1]
    first = np.flatnonzero(new_time)
    end = np.append(first[1:], len(gt))
    utime = gt[first]
    n_total = np.add.reduceat(gw, first)
    d_all_t = np.add.reduceat(np.where(gs > 0, gw, 0), first)
    d_k_t = np.add.reduceat(np.where(gs == cause, gw, 0), first)
    n_cens_t = n_total - d_all_t
    n_risk = n - np.concatenate([[0], np.cumsum(n_total)[:-1]])

    m = len(utime)
    cif_t = np.zeros(m)
    se_t = np.zeros(m)
    surv_prev = 1.0             # all-cause S(t-)
    cif = 0.0
    se = 0.0
    g = len(gt)
    u_surv = np.zeros(g)        # influence of each subject on S(t-) (IJ), then on S(t)
    u_cif = np.zeros(g)         # influence on CIF_cause
    tmp = np.empty(g)
    sq = np.empty(g)
    weights = gw.astype(float)
    is_event, is_cause = gs > 0, gs == cause
    # the loop visits event times only; between them the CIF and its SE stay as they are
    event_times = np.flatnonzero(d_all_t > 0)
    for j, d_all, nr, d_k, a, b in zip(event_times.tolist(), d_all_t[event_times].tolist(),
                                       n_risk[event_times].tolist(), d_k_t[event_times].tolist(),
                                       first[event_times].tolist(), end[event_times].tolist()):
        # at risk: entries a..; here (time == t): a..b
        # hazards at t and their derivatives w.r.t. each subject's weight (0 for those not at risk)
        lam_all, lam_k = d_all / nr, d_k / nr
        # derivative of each hazard: (event here - lam) / n for those at risk, 0 for the others
        # (adding or subtracting S(t-) * 0 changes nothing); at risk, not here: (0 - lam) / n
        dl_all = np.where(is_event[a:b], (1.0 - lam_all) / nr, (0.0 - lam_all) / nr)
        dl_k = np.where(is_cause[a:b], (1.0 - lam_k) / nr, (0.0 - lam_k) / nr)
        # CIF(t) = CIF(t-) + S(t-) lam_k ; S(t) = S(t-) (1 - lam_all)
        np.multiply(u_surv, lam_k, out=tmp)
        np.add(u_cif, tmp, out=u_cif)                   # u_cif + u_surv * lam_k
        u_cif[a:b] += surv_prev * dl_k
        u_cif[b:] += surv_prev * ((0.0 - lam_k) / nr)
        np.multiply(u_surv, 1 - lam_all, out=u_surv)
        u_surv[a:b] -= surv_prev * dl_all
        u_surv[b:] -= surv_prev * ((0.0 - lam_all) / nr)
        cif = cif + surv_prev * lam_k
        surv_prev = surv_prev * (1 - lam_all)
        np.multiply(u_cif, u_cif, out=sq)
        se = float(np.sqrt(np.dot(weights, sq)))
        cif_t[j], se_t[j] = cif, se
    # between event times: the values of the last event time (0 before the first)
    if len(event_times) and len(event_times) < m:
        last = np.maximum.accumulate(np.where(d_all_t > 0, np.arange(m), -1))
        filled = last >= 0
        cif_t = np.where(filled, cif_t[np.maximum(last, 0)], 0.0)
        se_t = np.where(filled, se_t[np.maximum(last, 0)], 0.0)
    cif_col = np.concatenate([[0.0], cif_t])
    se_col = np.concatenate([[0.0], se_t])
    lower, upper = _confint(cif_col, se_col, conf_type, conf_level)
    return {
        "time_days": np.concatenate([[0.0], utime]),
        "n_risk": np.concatenate([[n], n_risk]).astype(np.int64),
        "n_event": np.concatenate([[0], d_k_t]).astype(np.int64),
        "n_competing": np.concatenate([[0], d_all_t - d_k_t]).astype(np.int64),
        "n_censor": np.concatenate([[0], n_cens_t]).astype(np.int64),
        "cif": cif_col,
        "std_err": se_col,
        "ci_lower": lower,
        "ci_upper": upper,
    }
