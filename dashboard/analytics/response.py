"""Tumour response (mRECIST): waterfall rows, best-response counts, ORR and DCR with exact CIs,
swimmer lane order. Statistics only: tidy DataFrames in, tidy DataFrames out, nothing plotted.

Definitions: analysis plan, "Tumour response (mRECIST)". The per-patient values (BOR, best
percent change, not-evaluable reason) come from the views best_response and tumour_burden.
"""
from __future__ import annotations

import math

import pandas as pd

from dashboard.analytics.proportions import clopper_pearson
from dashboard.grouping import ALL, check_by, group_column, ordered_levels

BOR_ORDER = ["CR", "PR", "SD", "PD", "NE"]
RESPONDERS = ("CR", "PR")
CONTROLLED = ("CR", "PR", "SD")
SMALL_GROUP = 5          # groups with fewer patients are drawn but flagged (analysis plan)
SCOPES = ("overall", "local")

WATERFALL_COLUMNS = ["patient_id", "site_id", "bclc_stage", "best_pct_change", "best_visit", "bor"]
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
    largest decrease (ties by patient id). Input: best_response rows of one scope."""
    rows = best[is_evaluable(best)]
    rows = rows.sort_values(["best_pct_change", "patient_id"], ascending=[False, True], kind="mergesort")
    return rows[WATERFALL_COLUMNS].reset_index(drop=True)


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
    n = len(best)
    counts = {b.lower(): int((best["bor"] == b).sum()) for b in BOR_ORDER}
    evaluable = best[is_evaluable(best)]
    n_ev = len(evaluable)
    row = {"group": group, "n": n, "n_evaluable": n_ev, **counts}
    for name, cats in (("orr", RESPONDERS), ("dcr", CONTROLLED)):
        row[name], row[f"{name}_ci_lower"], row[f"{name}_ci_upper"] = \
            clopper_pearson(int(best["bor"].isin(cats).sum()), n)
        row[f"{name}_evaluable"], row[f"{name}_evaluable_ci_lower"], row[f"{name}_evaluable_ci_upper"] = \
            clopper_pearson(int(evaluable["bor"].isin(cats).sum()), n_ev)
    row["is_small_group"] = n < SMALL_GROUP
    return row


def response_summary(best: pd.DataFrame, cohort: pd.DataFrame, by: str = "none") -> pd.DataFrame:
    """One row per group of `by` (levels in their natural order), then a row 'all' for every
    patient when grouped; with no grouping, the single row 'all'.
    Inputs: best_response rows of one scope; cohort rows (for the grouping field)."""
    by = check_by(by)
    groups = group_column(cohort, by)
    labelled = best.merge(pd.DataFrame({"patient_id": cohort["patient_id"], "group": groups.values}),
                          on="patient_id", how="left")
    rows = []
    if by != "none":
        for level in ordered_levels(by, labelled["group"].dropna()):
            rows.append(summarise(labelled[labelled["group"] == level], level))
    rows.append(summarise(labelled, ALL))
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out if len(best) else out.iloc[0:0]


SWIMMER_SORTS = {
    "time_desc": "time on study, longest first",
    "time_asc": "time on study, shortest first",
    "bor": "best response (CR first), then time on study",
    "patient": "patient id",
}


def swimmer_order(events: pd.DataFrame, sort: str = "time_desc") -> list[str]:
    """Patient ids in lane order (first lane on top). Input: swimmer_events rows of one scope."""
    lanes = events.drop_duplicates("patient_id")[["patient_id", "time_on_study_days", "bor"]].copy()
    lanes["bor_rank"] = lanes["bor"].map({b: i for i, b in enumerate(BOR_ORDER)}).fillna(len(BOR_ORDER))
    keys = {"time_desc": (["time_on_study_days", "patient_id"], [False, True]),
            "time_asc": (["time_on_study_days", "patient_id"], [True, True]),
            "bor": (["bor_rank", "time_on_study_days", "patient_id"], [True, False, True]),
            "patient": (["patient_id"], [True])}
    cols, ascending = keys.get(sort, keys["time_desc"])
    return lanes.sort_values(cols, ascending=ascending, kind="mergesort")["patient_id"].tolist()


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


def swimmer_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Swimmer export rows: lanes in default order (longest time on study first), each lane's
    marks by day."""
    order = {pid: i for i, pid in enumerate(swimmer_order(events, "time_desc"))}
    kind = {"session": 0, "scan": 1, "first_pd": 2, "death": 3, "last_contact": 3}
    out = events.assign(_lane=events["patient_id"].map(order), _kind=events["event"].map(kind))
    out = out.sort_values(["_lane", "day", "_kind"], kind="mergesort").drop(columns=["_lane", "_kind", "scope"],
                                                                            errors="ignore")
    return out.reset_index(drop=True)
