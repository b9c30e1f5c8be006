"""Baseline characteristics ("Table 1") and follow-up status (docs/analysis.md, Enrollment).

Continuous variables: median and interquartile range (quartiles by linear interpolation, R's
quantile type 7). Categorical: n (%) of the group's patients. Missing values are counted in a
"missing" row and never silently dropped; percentages use every patient of the group as the
denominator.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.contract import BCLC_STAGES

# (variable, label, kind, levels) in table order; levels map a label to a predicate or a value
CATEGORICAL = "categorical"
CONTINUOUS = "continuous"

ROWS = [
    ("age_years", "Age, years", CONTINUOUS, None),
    ("sex", "Sex", CATEGORICAL, [("Male", "M"), ("Female", "F")]),
    ("etiology", "Etiology", CATEGORICAL,
     [(v, v) for v in ("HBV", "HCV", "HBV+HCV", "alcohol", "MASLD", "other")]),
    ("ecog_ps", "ECOG performance status", CATEGORICAL, [(str(v), v) for v in range(5)]),
    ("child_pugh_class", "Child-Pugh class", CATEGORICAL, [(v, v) for v in ("A", "B", "C")]),
    ("albi_grade", "ALBI grade", CATEGORICAL, [(str(v), v) for v in (1, 2, 3)]),
    ("afp_ng_ml", "AFP, ng/mL", CONTINUOUS, None),
    ("afp_over_400", "AFP > 400 ng/mL", CATEGORICAL, [("yes", True), ("no", False)]),
    ("tumor_count_group", "Tumour count", CATEGORICAL, [(v, v) for v in ("1", "2-3", "4-5", "> 5")]),
    ("largest_tumor_cm", "Largest tumour, cm", CONTINUOUS, None),
    ("has_macrovascular_invasion", "Macrovascular invasion", CATEGORICAL, [("yes", True), ("no", False)]),
    ("has_extrahepatic_spread", "Extrahepatic spread", CATEGORICAL, [("yes", True), ("no", False)]),
    ("is_within_milan", "Within Milan criteria", CATEGORICAL, [("yes", True), ("no", False)]),
    ("is_within_up_to_seven", "Within up-to-seven", CATEGORICAL, [("yes", True), ("no", False)]),
]

NULLABLE = {"etiology", "albi_grade", "afp_ng_ml", "afp_over_400"}   # null allowed by the contract
COLUMNS = ["variable", "label", "level", "group", "n_group", "n", "pct", "median", "q1", "q3", "text"]


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    afp = out["afp_ng_ml"]
    out["afp_over_400"] = np.where(afp.isna(), None, afp > 400)
    count = out["tumor_count"]
    out["tumor_count_group"] = np.select(
        [count == 1, count.between(2, 3), count.between(4, 5), count > 5], ["1", "2-3", "4-5", "> 5"], None)
    return out


def _fmt_num(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 1000 else f"{x:,.0f}"


def _row(var, label, level, group, n_group, n, pct=None, median=None, q1=None, q3=None, text=None) -> dict:
    return dict(variable=var, label=label, level=level, group=group, n_group=n_group, n=n, pct=pct,
                median=median, q1=q1, q3=q3, text=text)


def _patients_row(group: str, n_group: int) -> dict:
    return _row("n", "Patients", "", group, n_group, n_group, text=f"{n_group}")


def _continuous_row(var, label, group, n_group, values: pd.Series) -> dict:
    """median (IQR) of the values present; quartiles by numpy's 'linear' rule = R type 7."""
    return _continuous_row_of(var, label, group, n_group, values.dropna().astype(float).to_numpy())


def _continuous_row_of(var, label, group, n_group, present: np.ndarray) -> dict:
    """_continuous_row from the values present, as a float array."""
    if len(present):
        q1, med, q3 = np.quantile(present, [0.25, 0.5, 0.75])
        text = f"{_fmt_num(med)} ({_fmt_num(q1)}-{_fmt_num(q3)})"
    else:
        q1 = med = q3 = None
        text = "-"
    return _row(var, label, "median (IQR)", group, n_group, len(present), median=med, q1=q1, q3=q3, text=text)


def _count_row(var, label, level, group, n_group, n: int) -> dict:
    """n (%) of the group's patients."""
    pct = 100.0 * n / n_group if n_group else None
    return _row(var, label, level, group, n_group, n, pct=pct, text=f"{n} ({pct:.1f}%)" if pct is not None else "0")


def _group_rows(df: pd.DataFrame, group: str, with_missing: set | None = None) -> list[dict]:
    """One group's rows; a variable gets a "missing" row when the contract lets it be missing, when
    the group has a missing value, or when it is in `with_missing` (missing in the overall column:
    every column then has the row, zeros included, so that the table has no empty cell)."""
    n_group = len(df)
    with_missing = with_missing or set()
    rows = [_patients_row(group, n_group)]
    for var, label, kind, levels in ROWS:
        values = df[var]
        missing = int(values.isna().sum())
        if kind == CONTINUOUS:
            rows.append(_continuous_row(var, label, group, n_group, values))
        else:
            rows += [_count_row(var, label, level_label, group, n_group, int((values == value).sum()))
                     for level_label, value in levels]
        if var in NULLABLE or missing or var in with_missing:
            rows.append(_count_row(var, label, "missing", group, n_group, missing))
    return rows


def baseline_table(cohort: pd.DataFrame, by: str | None = "bclc_stage") -> pd.DataFrame:
    """Table 1 in long form: one row per variable, level and group ('Overall' and each level of
    `by` present in the data, in contract order for BCLC, then 'unknown' for the patients whose
    `by` was not recorded)."""
    df = _derive(cohort)
    rows = _group_rows(df, "Overall")
    with_missing = {r["variable"] for r in rows if r["level"] == "missing" and r["n"]}
    if by:
        levels = [v for v in BCLC_STAGES if v in set(df[by])] if by == "bclc_stage" else sorted(df[by].dropna().unique())
        for level in levels:
            rows += _group_rows(df[df[by] == level], group_label(by, level), with_missing)
        if df[by].isna().any():
            rows += _group_rows(df[df[by].isna()], group_label(by, None), with_missing)
    return pd.DataFrame(rows, columns=COLUMNS)


def group_label(by: str, level) -> str:
    """A Table 1 column's name: 'BCLC B', or 'BCLC unknown' for the patients whose stage was not recorded."""
    text = "unknown" if level is None else str(level)
    return f"BCLC {text}" if by == "bclc_stage" else text


# the Table 1 variables counted in SQL (categorical, from cohort's columns), and those computed here
# from the patients' numbers (the continuous variables, and AFP > 400 whose missing is AFP's)
COUNTED = [var for var, _, kind, _ in ROWS if kind == CATEGORICAL and var != "afp_over_400"]
NUMERIC = ["age_years", "afp_ng_ml", "largest_tumor_cm"]


def sql_text(value) -> str:
    """A level's value as DuckDB prints it as text (cast(... as varchar)): 'true'/'false' for
    booleans, the digits for integers, the text itself for text."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def baseline_table_counted(counts: pd.DataFrame, numeric: pd.DataFrame, by: str = "bclc_stage") -> pd.DataFrame:
    """baseline_table from counts, for 100,000 patients without a row per patient in pandas:
    the same rows and numbers.

    `counts`: patients per value of each categorical variable of COUNTED, as SQL counts them:
    columns `overall` (true: all patients; false: the patients of one level of `by`), `by`'s
    level (`level_of_by`), `variable`, `value` (the value cast to text, null when missing), `n`.
    `numeric`: one row per patient with `by` and the NUMERIC columns (null as NaN): the
    quartiles need every value, and AFP > 400 is derived from AFP as baseline_table derives it.

    The groups are numpy masks over the NUMERIC columns read once as float arrays (the values
    in their order, as pandas' groupby and dropna gave them): per-group pandas Series and
    groupby made this function 5.1 ms at 600 patients (stages B and C), the arrays 2.1."""
    n_total = len(numeric)
    lookup = {}
    for overall, level, var, value, n in counts[["overall", "level_of_by", "variable", "value", "n"]].itertuples(
            index=False, name=None):
        key = "Overall" if overall else None if level is None or level != level else level
        lookup[(key, var, None if value is None or value != value else value)] = int(n)
    columns = {var: numeric[var].to_numpy(dtype=np.float64, na_value=np.nan) for var in NUMERIC}
    groups = [("Overall", "Overall", columns)]
    if by:
        present = set(numeric[by])
        levels = ([v for v in BCLC_STAGES if v in present] if by == "bclc_stage"
                  else sorted(numeric[by].dropna().unique()))
        of_by = numeric[by].to_numpy(dtype=object)
        for level in levels:
            mask = of_by == level
            groups.append((level, group_label(by, level), {var: values[mask] for var, values in columns.items()}))
        unknown = pd.isna(numeric[by]).to_numpy()
        if unknown.any():               # counted under the level null (SQL's grouping-set row for a null stage)
            groups.append((None, group_label(by, None), {var: values[unknown] for var, values in columns.items()}))
    rows, with_missing = [], set()
    for key, group, sub in groups:          # Overall first: its missing values give every column the row
        n_group = n_total if key == "Overall" else len(sub["afp_ng_ml"])
        rows += _counted_group_rows(group, n_group, lambda var, value: lookup.get((key, var, value), 0), sub,
                                    with_missing)
        if key == "Overall":
            with_missing = {r["variable"] for r in rows if r["level"] == "missing" and r["n"]}
    return pd.DataFrame(rows, columns=COLUMNS)


def _counted_group_rows(group: str, n_group: int, count, numeric: dict, with_missing: set = frozenset()) -> list[dict]:
    """_group_rows' rows for one group, from count(variable, value text or None) and the group's
    NUMERIC values (float arrays, NaN when missing)."""
    rows = [_patients_row(group, n_group)]
    afp = numeric["afp_ng_ml"]
    afp_missing = np.isnan(afp)
    afp_over = {True: int((afp > 400).sum()), False: int(((afp <= 400) & ~afp_missing).sum())}
    for var, label, kind, levels in ROWS:
        if kind == CONTINUOUS:
            values = numeric[var]
            absent = np.isnan(values)
            missing = int(absent.sum())
            rows.append(_continuous_row_of(var, label, group, n_group, values[~absent]))
        else:
            missing = int(afp_missing.sum()) if var == "afp_over_400" else count(var, None)
            rows += [_count_row(var, label, level_label, group, n_group,
                                afp_over[value] if var == "afp_over_400" else count(var, sql_text(value)))
                     for level_label, value in levels]
        if var in NULLABLE or missing or var in with_missing:
            rows.append(_count_row(var, label, "missing", group, n_group, missing))
    return rows


def baseline_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Table 1 for display: one row per variable and level, one column per group."""
    if long.empty:
        return pd.DataFrame()
    groups = list(dict.fromkeys(long["group"]))
    keys = ["variable", "label", "level"]
    order = list(dict.fromkeys(map(tuple, long[keys].itertuples(index=False))))
    wide = long.set_index(keys + ["group"])["text"].unstack("group").reindex(order)
    return wide[groups].reset_index()


def baseline_wide_rows(long: pd.DataFrame) -> tuple[list[str], list[tuple[str, str, str, list]]]:
    """baseline_wide as plain lists, for building the table: the groups (columns, in order of
    first appearance) and one (variable, label, level, texts) per row of baseline_wide, in its
    order, with texts[i] the text of groups[i] (None where baseline_wide has NaN: a level, such as
    'missing', that the group does not have). One pass over the long rows: baseline_wide's
    set_index/unstack/reindex and its to_dict("records") took 5.0 ms of the Table 1 card at 600
    patients, this 0.16."""
    groups = list(dict.fromkeys(long["group"].tolist()))
    cells: dict[tuple, dict] = {}
    for var, label, level, group, text in zip(*(long[c].tolist() for c in ("variable", "label", "level", "group",
                                                                              "text"))):
        cells.setdefault((var, label, level), {})[group] = text
    return groups, [(var, label, level, [texts.get(g) for g in groups])
                    for (var, label, level), texts in cells.items()]


REASON_LABELS = {"lost_to_follow_up": "lost to follow-up"}
FOLLOWUP_ORDER = ["alive on study", "died", "off study: completed", "off study: lost to follow-up",
                  "off study: withdrawn", "off study: transplant", "off study: other"]


def followup_status(cohort: pd.DataFrame) -> pd.DataFrame:
    """Follow-up status per patient category: died (death_date known), off study by reason
    (alive, off_study_date set), else alive on study. Rows: status, n, pct."""
    n = len(cohort)
    died = cohort["death_date"].notna()
    off = cohort["off_study_date"].notna() & ~died
    reason = cohort["off_study_reason"].fillna("other").map(lambda r: REASON_LABELS.get(r, r.replace("_", " ")))
    status = np.where(died, "died", np.where(off, "off study: " + reason, "alive on study"))
    counts = pd.Series(status).value_counts()
    order = FOLLOWUP_ORDER + sorted(set(counts.index) - set(FOLLOWUP_ORDER))
    rows = [dict(status=s, n=int(counts.get(s, 0)), pct=100.0 * counts.get(s, 0) / n if n else None)
            for s in order if s in counts.index or s in ("alive on study", "died")]
    return pd.DataFrame(rows, columns=["status", "n", "pct"])


def followup_status_counted(counts: pd.DataFrame) -> pd.DataFrame:
    """followup_status from patients counted in SQL, one row per combination of `died` (a death
    date is known), `off_study` (an off-study date is recorded) and `off_study_reason`, with
    their number `n`: the same rows and numbers."""
    counts = counts[counts["n"] > 0]
    n = int(counts["n"].sum())
    reason = counts["off_study_reason"].astype(object).where(counts["off_study_reason"].notna(), "other")
    reason = reason.map(lambda r: REASON_LABELS.get(r, r.replace("_", " ")))
    died = counts["died"].astype(bool).to_numpy()
    off = counts["off_study"].astype(bool).to_numpy() & ~died
    status = np.where(died, "died", np.where(off, "off study: " + reason, "alive on study"))
    per_status = counts["n"].astype("int64").groupby(status).sum()
    order = FOLLOWUP_ORDER + sorted(set(per_status.index) - set(FOLLOWUP_ORDER))
    rows = [dict(status=s, n=int(per_status.get(s, 0)), pct=100.0 * per_status.get(s, 0) / n if n else None)
            for s in order if s in per_status.index or s in ("alive on study", "died")]
    return pd.DataFrame(rows, columns=["status", "n", "pct"])
