"""Staging and downstaging statistics: flows, downstaging and conversion rates, time to downstaging.

Definitions: analysis plan, "Staging and downstaging". The per-patient facts come from the views
staging_flow, staging_outcomes, time_to_downstaging and downsizing (queries/); this module only
counts and estimates. Rates use exact (Clopper-Pearson) CIs; time to downstaging uses the
Aalen-Johansen cumulative incidence with death as a competing event, never 1 - Kaplan-Meier.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.analytics.competing import AJ_COLUMNS, aalen_johansen_arrays
from dashboard.analytics.proportions import clopper_pearson
from dashboard.analytics.survival import km_fit
from dashboard.contract import BCLC_STAGES

MEASURES = ("bclc", "milan", "resectable")
DIED, NOT_RESTAGED = "died before restaging", "not yet restaged"
TERMINAL = (DIED, NOT_RESTAGED)
# the states of each measure, best first (the order of the flow's nodes, top to bottom)
STATES = {
    "bclc": tuple(f"BCLC {s}" for s in BCLC_STAGES),
    "milan": ("within Milan", "outside Milan"),
    "resectable": ("resectable", "not resectable"),
}
# the baseline state of a patient whose baseline the source did not record (below the known states)
UNKNOWN_STATES = {"bclc": "BCLC unknown", "milan": "Milan unknown", "resectable": "resectability unknown"}
# a link's kind: the best follow-up state against the baseline state, or where the patient went instead
IMPROVED, UNCHANGED, WORSE = "improved", "unchanged", "worse"
FROM_UNKNOWN = "from an unrecorded baseline"
LINK_KINDS = (IMPROVED, UNCHANGED, WORSE, FROM_UNKNOWN, DIED, NOT_RESTAGED)

# downstaging-summary measures: (achieved flag, eligibility flag) of staging_outcomes
RATE_MEASURES = {
    "downstaged_to_milan": ("is_downstaged_to_milan", "outside_milan_at_baseline"),
    "converted_to_resectable": ("is_converted_to_resectable", "not_resectable_at_baseline"),
}


def state_order(measure: str) -> list[str]:
    """Every state of a measure in display order: best to worst, the unrecorded baseline, then the
    terminal states."""
    if measure not in STATES:
        raise ValueError(f"unknown staging measure {measure!r}; choose one of: {', '.join(MEASURES)}")
    return list(STATES[measure]) + [UNKNOWN_STATES[measure]] + list(TERMINAL)


def link_kind(measure: str, source: str, target: str) -> str:
    """'improved' when the best follow-up state is better than the baseline state (a lower BCLC
    stage, into Milan, became resectable), 'unchanged', 'worse', or the terminal state; from an
    unrecorded baseline, neither better nor worse can be told."""
    if target in TERMINAL:
        return target
    if source == UNKNOWN_STATES.get(measure):
        return FROM_UNKNOWN
    order = state_order(measure)
    s, t = order.index(source), order.index(target)
    return IMPROVED if t < s else WORSE if t > s else UNCHANGED


def flow_links(flow: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Patients per (source, target) from rows of the staging_flow view for one measure: one
    row per link with at least one patient, in state order. Columns: source, target, n.
    The rows are patients, or already counted: with a column `n`, each row stands for n
    patients (the staging-flow export counts them in SQL)."""
    order = {s: i for i, s in enumerate(state_order(measure))}
    sources, targets = flow["source"].tolist(), flow["target"].tolist()
    ns = flow["n"].tolist() if "n" in flow.columns else [1] * len(sources)
    links: dict = {}
    for source, target, n in zip(sources, targets, ns):
        if n > 0:
            links[(source, target)] = links.get((source, target), 0) + n
    if not links:
        return pd.DataFrame({"source": pd.Series(dtype=str), "target": pd.Series(dtype=str),
                             "n": pd.Series(dtype=int)})
    unknown = {s for pair in links for s in pair} - set(order)
    if unknown:
        raise ValueError(f"states not in the {measure} order: {sorted(unknown)}")
    keys = sorted(links, key=lambda st: (order[st[0]], order[st[1]]))
    return pd.DataFrame({"source": [s for s, _ in keys], "target": [t for _, t in keys],
                         "n": np.array([links[k] for k in keys], dtype=int)})


RATE_COUNT_COLUMNS = {
    "downstaged_to_milan": ("milan_achieved", "milan_eligible"),
    "converted_to_resectable": ("resectable_achieved", "resectable_eligible"),
}
# per measure: the count of patients whose baseline was not recorded (in no denominator)
RATE_UNKNOWN_COLUMNS = {"downstaged_to_milan": "milan_unknown", "converted_to_resectable": "resectable_unknown"}


def group_rates_from_counts(counts: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Downstaging and conversion rates per group with exact (Clopper-Pearson) 95% CIs, from
    patients already counted per group (the downstaging-summary export counts them in SQL): one
    input row per group with `group`, `milan_eligible`, `milan_achieved` (outside Milan at
    baseline, and of them downstaged to within Milan at any review), `resectable_eligible`,
    `resectable_achieved` (not resectable at baseline, and of them resectable at any review).
    Patients without a review are eligible and not achieved. `milan_unknown`, `resectable_unknown`
    (optional): patients whose baseline Milan status (resectability) was not recorded, who are in
    neither count and are reported as baseline_unknown. Rows: 'all' (the sum over groups) first,
    then `levels`, a level without eligible patients giving eligible 0 and no rate.
    Columns: group, measure, eligible, achieved, rate, ci_lower, ci_upper, baseline_unknown."""
    by_group = counts.set_index("group") if len(counts) else None
    rows = []
    for group in ["all"] + [g for g in levels if g != "all"]:
        for measure, (achieved_col, eligible_col) in RATE_COUNT_COLUMNS.items():
            unknown_col = RATE_UNKNOWN_COLUMNS[measure]
            cols = (eligible_col, achieved_col, unknown_col)
            if by_group is None:
                n = x = u = 0
            elif group == "all":
                n, x, u = (int(by_group[c].sum()) if c in by_group else 0 for c in cols)
            elif group in by_group.index:
                n, x, u = (int(by_group.at[group, c]) if c in by_group else 0 for c in cols)
            else:
                n = x = u = 0
            rate, lo, hi = clopper_pearson(x, n)
            rows.append((group, measure, n, x, rate, lo, hi, u))
    return pd.DataFrame(rows, columns=["group", "measure", "eligible", "achieved", "rate",
                                       "ci_lower", "ci_upper", "baseline_unknown"])


def cumulative_incidence(ttd: pd.DataFrame, levels: list[str], conf_type: str = "log") -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of downstaging (status 1), death (status 2) competing,
    per group, from rows of the time_to_downstaging view with a `group` column.

    One row per group per distinct time, from time 0 (CIF 0): group, time_days, cif, ci_lower,
    ci_upper (95% pointwise, R survival's multi-state default: log transform of the
    infinitesimal-jackknife SE; null where CIF = 0), then n_risk, n_event (downstaged at t),
    n_competing (died at t), n_censor. Groups in `levels` order; a group with no patient has no
    rows. The rows are patients, or already counted: with a column `n`, each row stands for n
    patients with its group, time_days and status (the downstaging-cif export counts them in SQL)."""
    cols = ["group", "time_days", "cif", "ci_lower", "ci_upper", "n_risk", "n_event", "n_competing",
            "n_censor"]
    counted = "n" in ttd.columns
    parts = []
    if len(ttd):
        group = ttd["group"].to_numpy()
        time, status = ttd["time_days"].to_numpy(), ttd["status"].to_numpy()
        n = ttd["n"].to_numpy() if counted else None
        for g in levels:
            rows = group == g
            if not rows.any() or (counted and n[rows].sum() == 0):
                continue
            fit = aalen_johansen_arrays(time[rows], status[rows], cause=1, conf_type=conf_type,
                                        counts=n[rows] if counted else None)
            if fit is None:
                fit = {c: np.zeros(0) for c in AJ_COLUMNS}
            elif len(fit["time_days"]) > 1 and fit["time_days"][1] == fit["time_days"][0]:
                # the leading CIF-0 row duplicates a data row when someone is censored at day 0
                fit = {c: v[1:] for c, v in fit.items()}
            fit["group"] = np.full(len(fit["time_days"]), g, dtype=object)
            parts.append(fit)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "group" else float) for c in cols})
    out = {c: np.concatenate([p[c] for p in parts]) for c in cols}
    for c in ("time_days", "n_risk", "n_event", "n_competing", "n_censor"):
        out[c] = out[c].astype(int)
    return pd.DataFrame(out)


def step_at(curve: pd.DataFrame, t: float) -> pd.Series | None:
    """The row of a right-continuous step curve (rows sorted by time_days, from 0) in force at t;
    None when t is beyond the last time (not estimable)."""
    if curve.empty or t > curve["time_days"].max():
        return None
    return curve[curve["time_days"] <= t].iloc[-1]


def one_minus_km(ttd: pd.DataFrame, t: float) -> float | None:
    """1 - Kaplan-Meier of downstaging at t with deaths treated as censored: the naive estimate
    that overstates the cumulative incidence when patients die (shown only for comparison).
    Rows are patients, or counted (a column `n`: each row stands for n patients)."""
    if "n" in ttd.columns:
        ttd = ttd[ttd["n"] > 0]
    if ttd.empty or t > ttd["time_days"].max():
        return None
    if "n" in ttd.columns:
        return _one_minus_km_counted(ttd, t)
    fit = km_fit(ttd["time_days"], (ttd["status"] == 1).astype(int))
    idx = np.searchsorted(fit.time, t, side="right") - 1
    return float(1 - fit.surv[idx]) if idx >= 0 else 0.0


def _one_minus_km_counted(ttd: pd.DataFrame, t: float) -> float:
    """one_minus_km from counted rows, with survival.km_fit's own arithmetic (integer events and
    numbers at risk per distinct time, S = cumprod(1 - d / n)), so the value is the same."""
    time = ttd["time_days"].to_numpy(float)
    n = ttd["n"].to_numpy(np.int64)
    events = np.where(ttd["status"].to_numpy() == 1, n, 0)
    utime, inverse = np.unique(time, return_inverse=True)
    n_event = np.bincount(inverse, weights=events, minlength=len(utime)).astype(int)
    n_total = np.bincount(inverse, weights=n, minlength=len(utime)).astype(int)
    n_risk = int(n.sum()) - np.concatenate([[0], np.cumsum(n_total)[:-1]]).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
    idx = np.searchsorted(utime, t, side="right") - 1
    return float(1 - surv[idx]) if idx >= 0 else 0.0


def downsizing_summary(rows: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Per group: patients with a best percent change of the index lesion, its median and quartiles
    (R's quantile type 7) and how many shrank by 30% or more. Columns: group, n, median, q1, q3,
    n_30."""
    out = []
    group = rows["group"].to_numpy() if len(rows) else np.zeros(0, dtype=object)
    change = rows["best_pct_change"].to_numpy(float) if len(rows) else np.zeros(0)
    for g in levels:
        v = change[group == g]
        v = v[~np.isnan(v)]
        if not len(v):
            out.append((g, 0, None, None, None, 0))
            continue
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        out.append((g, len(v), float(med), float(q1), float(q3), int((v <= -30).sum())))
    return pd.DataFrame(out, columns=["group", "n", "median", "q1", "q3", "n_30"])
