"""Data-quality export: one row per finding of the rules of dashboard/quality.py (docs/quality.md).

`data-quality` is patient level: the committee gets every site's rows, an investigator the rows of
their own sites (the data seam narrows the cohort to them). A sponsor gets the de-identified form:
findings and patients per site and rule, counts of 1-4 shown as "<5", no patient id, no detail.
"""
from __future__ import annotations

import pandas as pd

from dashboard import cache, data
from dashboard.access import ALL_SITES, SUPPRESSED, Scope, is_small
from dashboard.exports import PATIENT, Export, export, n_patients
from dashboard.filters import Filters
from dashboard.quality import COLUMNS, RULES, findings_sql

COUNT_COLUMNS = ("site_id", "table", "rule", "n_findings", "n_patients")


def counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Findings and distinct patients per site and rule (table, rule in RULES order)."""
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in COUNT_COLUMNS[:3] else "int64")
                             for c in COUNT_COLUMNS})
    out = (rows.groupby(["site_id", "table", "rule"], sort=False)
           .agg(n_findings=("patient_id", "size"), n_patients=("patient_id", "nunique")).reset_index())
    order = {r.label + "\0" + r.table: i for i, r in enumerate(RULES)}
    out["_order"] = (out["rule"] + "\0" + out["table"]).map(order)
    return out.sort_values(["site_id", "_order"]).drop(columns="_order").reset_index(drop=True)


def quality_deidentified(exp: Export, scope: Scope) -> Export:
    """What a sponsor gets: per site and rule, findings and patients, 1-4 shown as "<5"; no patient id."""
    rows = counts(exp.rows)
    for c in ("n_findings", "n_patients"):
        small = rows[c].map(is_small)
        rows[c] = rows[c].astype(object).where(~small, SUPPRESSED)
    extra = {"rules": exp.extra["rules"]}       # no total of findings: with the cells shown it would give a "<5" away
    n = SUPPRESSED if is_small(exp.n_patients) else exp.n_patients
    return Export("data-quality", rows, n, extra)


def all_findings(snapshot) -> pd.DataFrame:
    """Every finding of the cut, of every patient: filter-independent, so computed once per snapshot
    (the response rule alone takes seconds at 20,000 patients); never returned as is to a request."""
    sql, params = findings_sql(patients="cohort_all")
    return cache.cached("data-quality-all", snapshot, Filters(), ALL_SITES,
                        lambda: data.execute(sql, snapshot, params=params)[list(COLUMNS)])


@export("data-quality", "data-quality findings: one row per finding (site_id, patient_id, table, rule, detail); "
                        "a sponsor gets findings and patients per site and rule", level=PATIENT,
        deidentified=quality_deidentified)
def quality_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    found = all_findings(snapshot)
    # the patients of the filter and the request's scope, from the data seam: only their rows leave
    patients = data.execute("select patient_id from cohort", snapshot, filters, scope).patient_id
    rows = found[found.patient_id.isin(patients)]
    return Export("data-quality", rows.reset_index(drop=True), n_patients(snapshot, filters, scope),
                  {"n_findings": len(rows), "rules": [{"table": r.table, "rule": r.label} for r in RULES]})
