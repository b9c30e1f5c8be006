"""Exports: the headless twin of every figure.

Each export is a function (snapshot, filters, scope, **options) -> Export, registered with
@export in one module per page (dashboard/exports/<page>.py). The page that draws a figure calls
the same function, so the CSV behind "Download data" and `python -m dashboard export NAME` are
the figure's own rows.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from dashboard import data
from dashboard.access import ALL_SITES, AccessDenied, Scope, SUPPRESSED, is_small
from dashboard.filters import Filters
from dashboard.snapshots import Snapshot


@dataclass
class Export:
    name: str
    rows: pd.DataFrame
    n_patients: int
    extra: dict = field(default_factory=dict)


PATIENT, AGGREGATE = "patient", "aggregate"


@dataclass(frozen=True)
class Suppression:
    """How an aggregate export hides small cells for a suppressing scope (dashboard/access.py):
    counts: count column (or `extra` key) -> the columns derived from it (percentages, rates,
    CIs) that are withheld with it when it is 1-4. drop: columns (or `extra` keys) never shown
    under suppression (dates of patients)."""
    counts: dict = field(default_factory=dict)
    drop: tuple[str, ...] = ()

    def __call__(self, exp: "Export", scope: Scope) -> "Export":
        return suppress_counts(exp, self.counts, self.drop)


@dataclass(frozen=True)
class ExportSpec:
    name: str
    func: Callable
    help: str
    options: tuple[str, ...] = ()
    level: str = PATIENT                    # PATIENT rows identify patients; AGGREGATE rows do not
    suppress: Callable | None = None        # aggregate: (Export, Scope) -> Export with small cells hidden
    deidentified: Callable | None = None    # patient: (Export, Scope) -> the rows a sponsor may see; None: none
    # (snapshot, options) -> what else the rows depend on, for the result cache's key (another cut's
    # fingerprint: an export comparing two cuts); None: the snapshot, filters, scope and options only
    cache_key: Callable | None = None


EXPORTS: dict[str, ExportSpec] = {}


def export(name: str, help: str, options: tuple[str, ...] = (), *, level: str,
           suppress: Callable | None = None, deidentified: Callable | None = None,
           cache_key: Callable | None = None):
    """Register an export. Every export declares its level, so a new one cannot leak by omission:
    a PATIENT export is refused to a role without patient-level access unless it says what a
    sponsor may see (`deidentified`); an AGGREGATE export must say how its small cells are hidden
    (`suppress`, usually a Suppression naming its count columns; Suppression() when it has none)."""
    if level not in (PATIENT, AGGREGATE):
        raise ValueError(f"export {name!r}: level must be {PATIENT!r} or {AGGREGATE!r}")
    if level == AGGREGATE and suppress is None:
        raise ValueError(f"aggregate export {name!r} must declare its small-cell suppression")
    if level == PATIENT and suppress is not None:
        raise ValueError(f"patient-level export {name!r}: suppression applies to aggregates only")

    def register(func):
        EXPORTS[name] = ExportSpec(name, func, help, options, level, suppress, deidentified, cache_key)
        return func
    return register


def suppress_counts(exp: "Export", counts: dict, drop: tuple[str, ...] = ()) -> "Export":
    """A copy of the export with every count from 1 to 4 shown as "<5" and the values derived from
    it withheld (None), `drop` columns removed, and n_patients suppressed likewise."""
    rows = exp.rows.drop(columns=[c for c in drop if c in exp.rows.columns]).copy()
    extra = dict(exp.extra)
    for column, derived in counts.items():
        if column in rows.columns:
            small = rows[column].map(is_small)
            if small.any():
                rows[column] = rows[column].astype(object).where(~small, SUPPRESSED)
                for d in derived:
                    if d in rows.columns:
                        rows[d] = rows[d].astype(object).where(~small, None)
        if column in extra and is_small(extra[column]):      # a column and an extra key may share a name
            extra[column] = SUPPRESSED
            for d in derived:
                if d in extra:
                    extra[d] = None
    for key in [k for k in extra if k in drop]:
        extra.pop(key)
    n = SUPPRESSED if is_small(exp.n_patients) else exp.n_patients
    return Export(exp.name, rows, n, extra)


def n_patients(snapshot: Snapshot, filters: Filters, scope: Scope) -> int:
    """Patients in the filter and scope: the 'n' of every banner and export."""
    from dashboard import cache
    return cache.cached("n_patients", snapshot, filters, scope, lambda: int(
        data.value("select count(*) as n from cohort", snapshot, filters, scope)))


def n_total(snapshot: Snapshot, scope: Scope) -> int:
    """Patients in scope with no filter: the 'N' of the 'n of N patients' banner."""
    return n_patients(snapshot, Filters(), scope)


def _load_all():
    """Import the per-page export modules (each registers its exports)."""
    from dashboard.exports import (changes, enrollment, forest, headline, patient, quality, response,  # noqa: F401
                                   safety, staging, survival)


def run_export(name: str, snapshot: Snapshot, filters: Filters = Filters(), scope: Scope = ALL_SITES,
               **options) -> Export:
    """Run an export (cached by snapshot, filters, scope and options; dashboard/cache.py)."""
    spec = _spec(name)
    from dashboard import cache
    key = {**options, **spec.cache_key(snapshot, options)} if spec.cache_key else options
    return cache.cached("export:" + name, snapshot, filters, scope,
                        lambda: compute_export(name, snapshot, filters, scope, **options), **key)


def compute_export(name: str, snapshot: Snapshot, filters: Filters = Filters(), scope: Scope = ALL_SITES,
                   **options) -> Export:
    """Run an export without the result cache, as the scope may see it: for a card whose own view is
    cached (so the export is computed once per view) and whose export is too big to be worth
    storing. Downstaging's downsizing export at 100,000 patients: 95,000 rows, 180 ms to compute,
    99 ms to pickle into the cache (holding the GIL, while the page's other cards wait) and 5 MB on
    disk; only its CSV download would read it back, and computes it again instead."""
    return scoped(_spec(name), snapshot, filters, scope, options)


def scoped(spec: ExportSpec, snapshot: Snapshot, filters: Filters, scope: Scope, options: dict) -> Export:
    """The one place an export meets the user's scope. Patient-level rows: computed with the
    request's scope, which the data seam narrows to the sites whose patients it may see; for a
    scope without patient-level access, the export's de-identified form or AccessDenied. Aggregates:
    computed over the whole cohort, then small cells hidden when the scope suppresses."""
    if spec.level == PATIENT:
        if scope.patient_level:
            return spec.func(snapshot, filters, scope, **options)
        if spec.deidentified is None:
            raise AccessDenied(f"{spec.name}: patient-level rows are not available to your role")
        return spec.deidentified(spec.func(snapshot, filters, scope.pooled(), **options), scope)
    exp = spec.func(snapshot, filters, scope.pooled(), **options)
    return spec.suppress(exp, scope) if scope.suppress else exp


def _spec(name: str) -> ExportSpec:
    """The registered export of that name; a KeyError naming the known ones otherwise."""
    _load_all()
    if name not in EXPORTS:
        raise KeyError(f"unknown export {name!r}; known: {', '.join(sorted(EXPORTS))}")
    return EXPORTS[name]


# --- serialisation ----------------------------------------------------------------------------
def _plain(v):
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) or math.isinf(v) else float(v)
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: dates as YYYY-MM-DD, NaN/NaT as null, numpy scalars as Python values.
    Column-wise, so 100,000 rows take seconds, not minutes."""
    out = {}
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            col = col.dt.strftime("%Y-%m-%d")
        values = col.astype(object).where(col.notna(), None).tolist()
        if values and any(isinstance(v, (np.generic, dict, list, tuple, np.ndarray, dt.date, pd.Timestamp))
                          for v in values):
            values = [_plain(v) for v in values]
        out[c] = values
    columns = list(out)
    return [dict(zip(columns, row)) for row in zip(*out.values())] if columns else []


def to_json(exp: Export, snapshot: Snapshot, filters: Filters) -> str:
    doc = {"export": exp.name, "snapshot_id": snapshot.snapshot_id,
           "cutoff_date": snapshot.cutoff_date.isoformat(), "filters": filters.to_dict(),
           "n_patients": exp.n_patients}
    doc.update(_plain(exp.extra))
    doc["rows"] = records(exp.rows)
    return json.dumps(doc, indent=1 if len(exp.rows) <= 2000 else None, ensure_ascii=False, default=_plain)


def to_csv(exp: Export) -> str:
    out = exp.rows.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False, lineterminator="\n")
