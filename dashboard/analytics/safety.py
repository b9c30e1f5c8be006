"""Adverse-event incidence by CTCAE v4.0 worst grade (analysis plan, "Safety (CTCAE v4.0)").

Each patient counts once per term at the worst grade recorded for that term, once per system
organ class (SOC) at the worst grade within it, and once overall at the worst grade of any AE.
Incidence = patients with the event / patients in the filter (patients without any AE are in the
denominator). Events per 100 sessions = counted episodes / DEB-TACE sessions of the patients in
the group * 100.

Two computations give the same rows, one tidy row per (SOC, term, group):

- `incidence_from_counts`, what the `ae-incidence` export runs: the worst grades per patient and
  the patients per worst grade and group are counted in DuckDB (dashboard/exports/safety.py);
  this lays those few hundred counts out as the grid, zeros included, in display order.
- `incidence`, in pandas from the `ae_worst_grade` view (one row per patient per term, episodes
  already chosen by the episode filters of `ae_episodes`) and one row per patient in the filter with
  its group and number of sessions: the computation the export replaced (tests/test_safety_counts.py
  checks the two agree with no episode).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

GRADES = (1, 2, 3, 4, 5)
ANY_AE = "Any adverse event"        # the soc of the overall row (term null)
LEVELS = ("term", "soc")
COUNT_COLUMNS = ["n_patients_any"] + [f"grade_{g}" for g in GRADES] + [
    "n_grade_3_4", "n_grade_5", "n_serious", "n_related"]
COLUMNS = ["soc", "term", "group"] + COUNT_COLUMNS + [
    "denominator", "n_events", "n_sessions", "events_per_100_sessions"]
SMALL_GROUP = 5                      # groups with fewer patients are flagged: percentages are unstable


def check_level(level: str | None) -> str:
    level = level or "term"
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of: {', '.join(LEVELS)}")
    return level


def worst_by(worst_terms: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per patient per `keys` (['soc', 'term'], ['soc'] or [] for overall): the worst grade,
    whether any counted episode was serious / treatment-related, and the number of episodes."""
    return (worst_terms.groupby(["patient_id", *keys], as_index=False, sort=False)
            .agg(worst_grade=("worst_grade", "max"), any_serious=("any_serious", "any"),
                 any_related=("any_related", "any"), n_episodes=("n_episodes", "sum")))


def _counts(per_patient: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = per_patient.assign(**{f"grade_{k}": per_patient.worst_grade == k for k in GRADES},
                           n_serious=per_patient.any_serious.astype(bool),
                           n_related=per_patient.any_related.astype(bool))
    out = g.groupby([*keys, "group"], as_index=False, sort=False).agg(
        n_patients_any=("patient_id", "nunique"),
        **{f"grade_{k}": (f"grade_{k}", "sum") for k in GRADES},
        n_serious=("n_serious", "sum"), n_related=("n_related", "sum"), n_events=("n_episodes", "sum"))
    out["n_grade_3_4"] = out.grade_3 + out.grade_4
    out["n_grade_5"] = out.grade_5
    return out


def incidence(worst_terms: pd.DataFrame, patients: pd.DataFrame, level: str = "term",
              groups: list[str] | None = None) -> pd.DataFrame:
    """Incidence rows (COLUMNS) per term or per SOC and per group, the overall row first.

    worst_terms: rows of `ae_worst_grade` (patient_id, soc, term, worst_grade, n_episodes,
    any_serious, any_related). patients: one row per patient in the filter (patient_id, group,
    n_sessions). Every term/SOC seen in the filter gets a row in every group (zeros included).
    Rows are ordered: the overall row ('Any adverse event', term null), then SOCs by pooled
    any-grade incidence (descending), terms within a SOC likewise, name breaking ties; groups in
    the order of `groups` (default: sorted)."""
    level = check_level(level)
    groups = list(groups) if groups is not None else sorted(patients["group"].unique())
    denominators = patients.groupby("group").size().reindex(groups, fill_value=0)
    sessions = patients.groupby("group")["n_sessions"].sum().reindex(groups, fill_value=0)
    w = worst_terms.merge(patients[["patient_id", "group"]], on="patient_id", how="inner")

    keys = ["soc", "term"] if level == "term" else ["soc"]
    overall = _counts(worst_by(w, ["group"]), []).assign(soc=ANY_AE, term=None)
    detail = _counts(worst_by(w, [*keys, "group"]), keys)
    if level == "soc":
        detail["term"] = None

    # the full grid: every (soc, term) of the filter x every group, zeros where no patient
    items = detail[["soc", "term"]].drop_duplicates()
    items = pd.concat([pd.DataFrame({"soc": [ANY_AE], "term": [None]}), items], ignore_index=True)
    grid = items.merge(pd.DataFrame({"group": pd.Series(groups, dtype=object)}), how="cross")
    counts = pd.concat([overall, detail], ignore_index=True)
    rows = grid.merge(counts, on=["soc", "term", "group"], how="left")
    count_cols = COUNT_COLUMNS + ["n_events"]
    rows[count_cols] = rows[count_cols].fillna(0).astype(int)
    rows["denominator"] = rows["group"].map(denominators).astype(int)
    rows["n_sessions"] = rows["group"].map(sessions).astype(int)
    rows["events_per_100_sessions"] = (100.0 * rows.n_events / rows.n_sessions.where(rows.n_sessions > 0))

    # order: pooled incidence of the SOC, then of the term (the same patients in every group)
    pooled_soc = worst_by(w, ["soc"]).groupby("soc").size()
    pooled_term = worst_by(w, ["soc", "term"]).groupby(["soc", "term"]).size()
    rows["_overall"] = rows.soc != ANY_AE
    rows["_soc_n"] = -rows.soc.map(pooled_soc).fillna(0)
    rows["_term_n"] = -pd.Series([pooled_term.get((s, t), 0) for s, t in zip(rows.soc, rows.term)],
                                 index=rows.index, dtype=float)
    rows["_group"] = rows.group.map({g: i for i, g in enumerate(groups)})
    rows = rows.sort_values(["_overall", "_soc_n", "soc", "_term_n", "term", "_group"], na_position="first")
    return rows[COLUMNS].reset_index(drop=True)


def incidence_from_counts(counts: pd.DataFrame, groups: pd.DataFrame, level: str = "term",
                          order: list[str] | None = None) -> pd.DataFrame:
    """Incidence rows (COLUMNS) from patient counts taken in SQL: the same rows, values, dtypes and
    order as `incidence` on the same patients and episodes (a few hundred rows: plain Python).

    counts: one row per (level, soc, term, group) with at least one patient, level 'term' (soc and
    term), 'soc' (soc, no term) or 'overall' (neither): n_patients_any (patients with a counted
    episode), grade_1..grade_5 (patients by worst grade), n_serious, n_related (patients with at
    least one serious / treatment-related counted episode) and n_events (counted episodes). The
    'soc' rows are needed at level term too: they order the classes. groups: one row per group with
    its denominator (patients) and n_sessions. order: the groups in display order (default: sorted)."""
    level = check_level(level)
    order = list(order) if order is not None else sorted(groups["group"])
    denominators = dict(zip(groups["group"], groups["denominator"].astype(int)))
    sessions = dict(zip(groups["group"], groups["n_sessions"].astype(int)))
    sources = ["grade_1", "grade_2", "grade_3", "grade_4", "grade_5", "n_serious", "n_related", "n_events"]

    # each patient is in one group: pooled counts (the order of classes and terms) are sums over groups
    found, items, pooled_soc, pooled_term = {}, {(ANY_AE, None): None}, {}, {}
    columns = [counts[c].tolist() for c in ["level", "soc", "term", "group", "n_patients_any", *sources]]
    for lvl, soc, term, group, n_any, *rest in zip(*columns):
        term = term if isinstance(term, str) else None
        if lvl == "soc":
            pooled_soc[soc] = pooled_soc.get(soc, 0) + int(n_any)
        elif lvl == "term":
            pooled_term[(soc, term)] = pooled_term.get((soc, term), 0) + int(n_any)
        if lvl == "overall":
            key = (ANY_AE, None)
        elif lvl == level:
            key = (soc, term if level == "term" else None)
            items.setdefault(key, None)
        else:
            continue
        found[(*key, group)] = (int(n_any), *(int(v) for v in rest))

    # the full grid: every (soc, term) of the filter x every group, zeros where no patient; in display
    # order: the overall row, then classes by pooled incidence (descending), terms within a class
    # likewise, names breaking ties, groups in `order`
    def rank(item):
        soc, term = item
        return (soc != ANY_AE, -pooled_soc.get(soc, 0) if soc != ANY_AE else 0, soc,
                -pooled_term.get(item, 0), term is not None, term or "")

    zero = (0,) * (len(sources) + 1)
    out = {c: [] for c in ["soc", "term", "group", "n_patients_any", *sources, "denominator", "n_sessions"]}
    for soc, term in sorted(items, key=rank):
        for group in order:
            values = found.get((soc, term, group), zero)
            out["soc"].append(soc)
            out["term"].append(term)
            out["group"].append(group)
            for column, value in zip(["n_patients_any", *sources], values):
                out[column].append(value)
            out["denominator"].append(denominators.get(group, 0))
            out["n_sessions"].append(sessions.get(group, 0))
    rows = pd.DataFrame({c: np.array(v, dtype=object if c in ("soc", "term", "group") else "int64")
                         for c, v in out.items()})
    rows["n_grade_3_4"] = rows.grade_3 + rows.grade_4
    rows["n_grade_5"] = rows.grade_5
    rows["events_per_100_sessions"] = (100.0 * rows.n_events / rows.n_sessions.where(rows.n_sessions > 0))
    return rows[COLUMNS]
