"""Tumour response (mRECIST): waterfall rows, best-response counts, ORR and DCR with exact CIs,
swimmer lane order. Statistics only: tidy DataFrames in, tidy DataFrames out, nothing plotted.

Definitions: analysis plan, "Tumour response (mRECIST)". The per-patient values (BOR, best
percent change, not-evaluable reason) come from the views best_response and tumour_burden.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard.analytics.proportions import clopper_pearson
from dashboard.grouping import ALL, check_by, group_column, ordered_levels

BOR_ORDER = ["CR", "PR", "SD", "PD", "NE"]
RESPONDERS = ("CR", "PR")
CONTROLLED = ("CR", "PR", "SD")
SMALL_GROUP = 5          # groups with fewer patients are drawn but flagged (analysis plan)
SCOPES = ("overall", "local")

WATERFALL_COLUMNS = ["patient_id", "site_id", "bclc_stage", "best_pct_change", "best_visit", "bor",
                     "implied_response", "recorded_response", "contradicts"]
SUMMARY_COLUMNS = ["group", "n", "n_evaluable", "cr", "pr", "sd", "pd", "ne",
                   "orr", "orr_ci_lower", "orr_ci_upper", "dcr", "dcr_ci_lower", "dcr_ci_upper",
                   "orr_evaluable", "orr_evaluable_ci_lower", "orr_evaluable_ci_upper",
                   "dcr_evaluable", "dcr_evaluable_ci_lower", "dcr_evaluable_ci_upper", "is_small_group"]
NOT_EVALUABLE_REASONS = ["no baseline sum", "no follow-up scan", "no post-baseline sum"]


def check_scope(scope: str | None) -> str:
    """The response scope, validated ('overall' when not given)."""
    scope = scope or "overall"
    if scope not in SCOPES:
        raise ValueError(f"unknown response scope {scope!r}; choose overall or local")
    return scope


def is_evaluable(best: pd.DataFrame) -> pd.Series:
    """Evaluable = the patient has a best percent change, i.e. a waterfall bar (baseline sum > 0
    and at least one post-baseline sum up to the first PD)."""
    return best["best_pct_change"].notna()


def waterfall_rows(best: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluable patient, bars in plotting order: from the largest increase to the
    largest decrease (ties by patient id). Input: best_response rows of one scope (rows that
    arrive in that order already, as the waterfall export's query sorts them, are not sorted again)."""
    rows = best[is_evaluable(best)]
    if not in_waterfall_order(rows):
        rows = rows.sort_values(["best_pct_change", "patient_id"], ascending=[False, True], kind="mergesort")
    return rows[WATERFALL_COLUMNS].reset_index(drop=True)


def in_waterfall_order(rows: pd.DataFrame) -> bool:
    """The evaluable rows are in plotting order: best change decreasing, ties by increasing
    patient id (a vectorised check, much cheaper than sorting 100,000 rows again)."""
    if len(rows) < 2:
        return True
    change = rows["best_pct_change"].to_numpy(dtype=float)
    ids = rows["patient_id"].to_numpy(dtype=object)
    return bool(np.all((change[1:] < change[:-1]) | ((change[1:] == change[:-1]) & (ids[1:] > ids[:-1]))))


def waterfall_positions(n: int, max_bars: int) -> np.ndarray | None:
    """The positions (0-based, in plotting order) of the bars a waterfall of n bars draws: None
    (every bar) up to max_bars, else max_bars evenly spaced ones, the first and last included."""
    if n <= max_bars:
        return None
    return np.unique(np.linspace(0, n - 1, max_bars).round().astype(int))


def not_evaluable_counts(best: pd.DataFrame) -> dict[str, int]:
    """Patients without a waterfall bar, by reason (every reason listed, 0 when none)."""
    reasons = best.loc[~is_evaluable(best), "not_evaluable_reason"].value_counts()
    counts = {r: int(reasons.get(r, 0)) for r in NOT_EVALUABLE_REASONS}
    counts.update({str(r): int(n) for r, n in reasons.items() if r not in counts})
    return counts


def summarise(best: pd.DataFrame, group: str) -> dict:
    """Counts by BOR, ORR and DCR with exact (Clopper-Pearson) 95% CIs, over all patients of the
    group (intention to treat) and over its evaluable patients (those with a waterfall bar;
    numerators count the evaluable patients' responses)."""
    return _summaries(best, np.zeros(len(best), dtype=np.int64), [group])[0]


def _summaries(best: pd.DataFrame, codes: np.ndarray, groups: list[str]) -> list[dict]:
    """summarise() for several groups at once: codes[i] is the index in `groups` of best's row i
    (-1: in no group). Counted with np.bincount over the rows once, not by filtering the rows per
    group (the same integers, so the same rates and intervals)."""
    return _counted(best["bor"].to_numpy(dtype=object), is_evaluable(best).to_numpy(dtype=bool), codes, groups)


def _counted(bor: np.ndarray, evaluable: np.ndarray, codes: np.ndarray, groups: list[str],
             weights: np.ndarray | None = None) -> list[dict]:
    """_summaries over rows given as arrays (BOR, evaluable, group code), each row counting as
    `weights` patients (1 when not given): the rows may be patients or counted patients (one row per
    group, BOR and evaluability, as response_summary_counts gets them from SQL). The counts are
    integers either way, so the rates and intervals are the same."""
    k = len(groups)
    keep = codes >= 0
    code = codes[keep]
    bor = bor[keep]
    evaluable = evaluable[keep]
    weight = None if weights is None else np.asarray(weights, dtype=np.int64)[keep]

    def count(mask=None):
        if weight is None:
            return np.bincount(code if mask is None else code[mask], minlength=k)
        w = weight if mask is None else weight[mask]
        return np.bincount(code if mask is None else code[mask], weights=w, minlength=k).round().astype(np.int64)

    is_bor = {b: bor == b for b in BOR_ORDER}
    responder = np.logical_or.reduce([is_bor[b] for b in RESPONDERS])
    controlled = np.logical_or.reduce([is_bor[b] for b in CONTROLLED])
    n, n_ev = count(), count(evaluable)
    per_bor = {b.lower(): count(is_bor[b]) for b in BOR_ORDER}
    x = {"orr": count(responder), "dcr": count(controlled),
         "orr_evaluable": count(responder & evaluable), "dcr_evaluable": count(controlled & evaluable)}
    rows = []
    for i, group in enumerate(groups):
        row = {"group": group, "n": int(n[i]), "n_evaluable": int(n_ev[i]),
               **{b: int(v[i]) for b, v in per_bor.items()}}
        for name in ("orr", "dcr"):
            row[name], row[f"{name}_ci_lower"], row[f"{name}_ci_upper"] = clopper_pearson(int(x[name][i]), row["n"])
            row[f"{name}_evaluable"], row[f"{name}_evaluable_ci_lower"], row[f"{name}_evaluable_ci_upper"] = \
                clopper_pearson(int(x[f"{name}_evaluable"][i]), row["n_evaluable"])
        row["is_small_group"] = row["n"] < SMALL_GROUP
        rows.append(row)
    return rows


def response_summary_counts(counts: pd.DataFrame, by: str = "none") -> pd.DataFrame:
    """response_summary() from patients counted per group, BOR and evaluability (columns group, bor,
    evaluable, n: one row per combination present, as the response-summary export counts them in
    SQL) instead of one row per patient: the same rows, numbers and intervals."""
    by = check_by(by)
    bor = counts["bor"].to_numpy(dtype=object)
    evaluable = counts["evaluable"].to_numpy(dtype=bool)
    n = counts["n"].to_numpy(dtype=np.int64)
    rows = []
    if by != "none":
        group = counts["group"].to_numpy(dtype=object)
        levels = ordered_levels(by, group)
        codes = pd.Index(levels, dtype=object).get_indexer(group)
        rows += _counted(bor, evaluable, np.asarray(codes, dtype=np.int64), levels, n)
    rows += _counted(bor, evaluable, np.zeros(len(counts), dtype=np.int64), [ALL], n)
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out if n.sum() else out.iloc[0:0]


def response_summary(best: pd.DataFrame, cohort: pd.DataFrame, by: str = "none") -> pd.DataFrame:
    """One row per group of `by` (levels in their natural order), then a row 'all' for every
    patient when grouped; with no grouping, the single row 'all'.
    Inputs: best_response rows of one scope; cohort rows (for the grouping field)."""
    by = check_by(by)
    rows = []
    if by != "none":
        # each best_response row's group: its patient's cohort row (none when the patient is not there)
        position = pd.Index(cohort["patient_id"]).get_indexer(best["patient_id"])
        labels = np.append(group_column(cohort, by).to_numpy(dtype=object), None)    # position -1: None
        group = pd.Series(labels[position], dtype=object)
        levels = ordered_levels(by, group.dropna())
        codes = pd.Index(levels, dtype=object).get_indexer(group)
        rows += _summaries(best, np.asarray(codes, dtype=np.int64), levels)
    rows += _summaries(best, np.zeros(len(best), dtype=np.int64), [ALL])
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out if len(best) else out.iloc[0:0]


SWIMMER_SORTS = {
    "time_desc": "time on study, longest first",
    "time_asc": "time on study, shortest first",
    "bor": "best response (CR first), then time on study",
    "patient": "patient id",
}


def swimmer_order(events: pd.DataFrame, sort: str = "time_desc") -> list[str]:
    """Patient ids in lane order (first lane on top). Input: swimmer_events rows of one scope (or
    one row per lane with patient_id, time_on_study_days and bor).

    time_desc: time on study, longest first; time_asc: shortest first; bor: best response (CR
    first, a missing or unknown one last), then longest first; patient: by id. Ties always by
    patient id, a missing time on study last. One stable sort of numpy arrays (np.lexsort: the
    last key is the primary one), fast for 100,000 lanes."""
    lanes = events.drop_duplicates("patient_id")
    patient = lanes["patient_id"].to_numpy(dtype=str)
    time = lanes["time_on_study_days"].to_numpy(dtype=float)
    rank = lanes["bor"].map({b: i for i, b in enumerate(BOR_ORDER)}).fillna(len(BOR_ORDER)).to_numpy(dtype=float)
    keys = {"time_desc": (patient, -time),
            "time_asc": (patient, time),
            "bor": (patient, -time, rank),
            "patient": (patient,)}
    return patient[np.lexsort(keys.get(sort, keys["time_desc"]))].tolist()


def n_pages(n_lanes: int, size: int) -> int:
    return max(1, math.ceil(n_lanes / size))


def page_of(order: list[str], patient_id: str | None, size: int) -> int | None:
    """The 1-based page holding a patient's lane (None when the patient has no lane)."""
    if patient_id is None or patient_id not in order:
        return None
    return order.index(patient_id) // size + 1


def page_slice(order: list[str], page: int, size: int) -> list[str]:
    """The lanes of a 1-based page (the page is clamped to the pages that exist)."""
    page = min(max(1, int(page or 1)), n_pages(len(order), size))
    return order[(page - 1) * size: page * size]


SWIMMER_KIND = {"session": 0, "scan": 1, "first_pd": 2, "death": 3, "last_contact": 3}


def swimmer_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Swimmer export rows: lanes in default order (longest time on study first), each lane's
    marks by day, then session < scan < first PD < lane end; rows tied on all three keep their
    input order (one stable np.lexsort and one take: a million marks are not copied three times)."""
    order = swimmer_order(events, "time_desc")
    lane = pd.Index(order).get_indexer(events["patient_id"])
    day = events["day"].to_numpy(dtype=float)
    kind = events["event"].map(SWIMMER_KIND).to_numpy(dtype=float)
    out = events.drop(columns=["scope"], errors="ignore").take(np.lexsort((kind, day, lane)))
    return out.reset_index(drop=True)
