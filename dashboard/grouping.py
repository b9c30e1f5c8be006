"""Grouping fields shared by every page's "by" selector and the exports' --by option.

Each key is a column of the `cohort` view (queries/cohort.sql); 'none' means one group, 'all'.
"""
from __future__ import annotations

import pandas as pd

from dashboard.contract import BCLC_STAGES

GROUPINGS = {
    "bclc_stage": "BCLC stage",
    "site_id": "Site",
    "child_pugh_class": "Child-Pugh class",
    "etiology_group": "Etiology",
    "sex": "Sex",
    "ecog_group": "ECOG",
    "age_group": "Age >= 65",
    "afp_group": "AFP > 400 ng/mL",
    "tumor_size_group": "Largest tumour > 7 cm",
    "up_to_seven_group": "Up-to-seven",
    "drug": "Drug (first session)",
    "none": "No grouping",
}
ALL = "all"

# level order where alphabetical order would mislead
LEVEL_ORDER = {
    "bclc_stage": list(BCLC_STAGES),
    "afp_group": ["<= 400", "> 400", "unknown"],
    "tumor_size_group": ["<= 7 cm", "> 7 cm"],
    "etiology_group": ["HBV", "HCV", "HBV+HCV", "alcohol", "MASLD", "other", "unknown"],
    "sex": ["M", "F"],
    "age_group": ["< 65", ">= 65", "unknown"],
    "up_to_seven_group": ["within", "beyond", "unknown"],
}


def check_by(by: str | None) -> str:
    """The grouping key, validated ('none' when not given); a clear error for an unknown one."""
    by = by or "none"
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; choose one of: {', '.join(GROUPINGS)}")
    return by


def group_column(cohort: pd.DataFrame, by: str) -> pd.Series:
    """The group label of each patient (the string 'all' with no grouping)."""
    by = check_by(by)
    if by == "none":
        return pd.Series(ALL, index=cohort.index)
    return cohort[by].astype("string").fillna("unknown")


def ordered_levels(by: str, levels) -> list[str]:
    """Levels in their natural order (BCLC 0 < A < ... ; otherwise sorted). Not the Cox reference:
    that is chosen, or BCLC B / the largest group (exports/survival.py, default_reference)."""
    present = list(dict.fromkeys(str(v) for v in pd.unique(pd.Series(levels, dtype=object))))
    order = LEVEL_ORDER.get(by)
    if order:
        return [v for v in order if v in present] + sorted(v for v in present if v not in order)
    return sorted(present)


def group_sql(alias: str) -> str:
    """The patient's group label in SQL, for the grouping bound as the parameter $by, over the
    grouping fields of a row aliased `alias` (a `cohort` row or one carrying its fields):
    `group_column` in SQL ('all' with no grouping; the field as text, 'unknown' when missing).
    The branches name the fields of GROUPINGS (code, not input); the choice is a bound value."""
    fields = [key for key in GROUPINGS if key != "none"]
    assert alias.isidentifier() and all(key.isidentifier() for key in fields)
    branches = " ".join(f"when '{key}' then cast({alias}.{key} as varchar)" for key in fields)
    return f"case when $by = 'none' then 'all' else coalesce(case $by {branches} end, 'unknown') end"
