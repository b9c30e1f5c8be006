"""What changed between two data cuts (Overview's "Since data cut" panel; docs/changes.md).

`changes`: for the current filter, the patients and events of the current cut that the previous
cut (`since`) did not have, one row per patient and event (site_id, kind, patient_id, date), and
the headline numbers of both cuts side by side (extra `metrics`). Facts per cut: the view
queries/change_events.sql. The filter applies to the current cut's patients (as that cut records
them); the previous cut is read without a filter, so a patient whose filtered attribute changed is
not "new", and each cut's headline numbers use that cut's own attributes.
"""
from __future__ import annotations

import pandas as pd

from dashboard import data
from dashboard.access import SUPPRESSED, Scope, is_small
from dashboard.exports import EXPORTS, PATIENT, Export, export, run_export
from dashboard.exports.complement import to_withhold
from dashboard.filters import Filters
from dashboard.snapshots import SNAPSHOT_ID, Snapshot, SnapshotError

# the event kinds, in the order rows and counts are shown; the view's 'enrolled' fact is new_patient
KINDS = ("new_patient", "death", "progression", "grade3plus_ae", "downstaged")
KIND_LABELS = {"new_patient": "New patients", "death": "Deaths", "progression": "Progressions (TTP)",
               "grade3plus_ae": "Grade ≥ 3 AEs", "downstaged": "Downstaged to Milan"}
COLUMNS = ["site_id", "kind", "patient_id", "date"]
METRIC_COLUMNS = ["name", "previous", "current", "difference"]
ALL = "all"             # the de-identified form's site_id of the per-kind totals
RATE_METRICS = ("os_1y", "orr", "dcr", "downstaged_milan", "converted_resection")   # proportions 0..1


class ChangesError(ValueError):
    """A previous cut that cannot be compared with the current one (the message names the cut)."""


def previous_cut(snapshot: Snapshot, since: str | None) -> Snapshot | None:
    """The cut to compare `snapshot` with: a snapshot id under the same data root, servable to the
    current user (the demo: synthetic cuts only), with a cut-off no later than the current one;
    ChangesError naming the cut otherwise. Without `since`: the newest valid cut older than the
    current one, None when there is none (the oldest cut: compared with no cut)."""
    from dashboard import state
    if since is None or since == "":
        root = snapshot.path.parent.parent
        for candidate in reversed(older_cuts(snapshot, state.servable(data.complete_snapshots(root)))):
            try:
                return data.resolve(candidate.snapshot_id, root)
            except SnapshotError:
                continue
        return None
    if not isinstance(since, str):
        raise ChangesError("the previous data cut must be a snapshot id")
    if not SNAPSHOT_ID.match(since):
        raise ChangesError(f"previous data cut {since[:64]!r} is not a snapshot id (YYYY-MM-DD, optionally _suffix)")
    if since == snapshot.snapshot_id:
        return snapshot
    try:
        previous = data.resolve(since, snapshot.path.parent.parent)
    except SnapshotError as e:
        raise ChangesError(f"previous data cut {since!r}: {e}") from None
    if state.demo_only() and previous.source != state.SYNTHETIC:
        raise ChangesError(f"previous data cut {since!r} is not synthetic: it is served only after sign-in")
    if (previous.cutoff_date, previous.snapshot_id) > (snapshot.cutoff_date, snapshot.snapshot_id):
        raise ChangesError(f"previous data cut {since!r} (cut-off {previous.cutoff_date}) is newer than the current "
                           f"cut {snapshot.snapshot_id!r} (cut-off {snapshot.cutoff_date}): choose an older cut")
    return previous


def older_cuts(snapshot: Snapshot, snapshots: list[Snapshot]) -> list[Snapshot]:
    """The cuts of `snapshots` (oldest first) older than `snapshot`: the choices of a previous cut."""
    return [s for s in snapshots if (s.cutoff_date, s.snapshot_id) < (snapshot.cutoff_date, snapshot.snapshot_id)]


FACTS_SQL = "select patient_id, site_id, kind, key, date from change_events"


def new_facts(snapshot: Snapshot, previous: Snapshot | None, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Rows (site_id, kind, patient_id, date) of the facts of `snapshot` under the filter that
    `previous` (read without a filter, with the same scope; None: no cut) does not have, sorted
    site, kind, date."""
    now = data.execute(FACTS_SQL, snapshot, filters, scope)
    if previous is None:
        before = now.iloc[:0]
    elif previous is snapshot or previous.fingerprint == snapshot.fingerprint:
        before = now
    else:
        # the previous cut's facts do not depend on the filter: one query per cut and scope
        from dashboard import cache
        before = cache.cached("changes:facts", previous, Filters(), scope,
                              lambda: data.execute(FACTS_SQL, previous, Filters(), scope))
    known = pd.MultiIndex.from_frame(before[["patient_id", "kind", "key"]])
    fresh = now[~pd.MultiIndex.from_frame(now[["patient_id", "kind", "key"]]).isin(known)].copy()
    fresh["kind"] = fresh["kind"].replace({"enrolled": "new_patient"})
    fresh["order"] = fresh["kind"].map({k: i for i, k in enumerate(KINDS)})
    fresh = fresh.sort_values(["site_id", "order", "date", "patient_id", "key"], kind="stable")
    rows = fresh[COLUMNS].reset_index(drop=True)
    rows["date"] = pd.to_datetime(rows["date"]).astype("datetime64[ns]")
    return rows


# --- the headline numbers of both cuts ----------------------------------------------------------
def headline(snapshot: Snapshot, filters: Filters, scope: Scope) -> Export | None:
    """The headline export of a cut as the scope may see it; None while no headline export exists."""
    if "headline" not in EXPORTS:
        return None
    return run_export("headline", snapshot, filters, scope)


def metric_values(exp: Export | None) -> dict:
    """{name: value} of a headline export: the metric, with its group appended when not 'all'."""
    if exp is None:
        return {}
    return {(m if g == ALL else f"{m}:{g}"): v for m, g, v in zip(exp.rows["metric"], exp.rows["group"], exp.rows["value"])}


def metric_rows(previous: dict, current: dict) -> list[dict]:
    """name, previous, current, difference for every metric of either cut (current's order first);
    no difference where either value is missing or suppressed."""
    names = list(current) + [n for n in previous if n not in current]
    out = []
    for name in names:
        whole = name.partition(":")[0] not in RATE_METRICS
        p, c = _number(previous.get(name), whole), _number(current.get(name), whole)
        diff = c - p if isinstance(p, (int, float)) and isinstance(c, (int, float)) else None
        out.append({"name": name, "previous": p, "current": c, "difference": diff})
    return out


def _number(v, whole: bool = False):
    """A headline value as a plain float ("<5" and None kept); an int where `whole` (counts, days)
    and the value is a whole number."""
    if v is None or isinstance(v, str):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return None
    f = float(v)
    return int(f) if whole and f.is_integer() else f


def change_metrics(snapshot, previous, filters, scope) -> list[dict]:
    """The metric rows of the two cuts (previous None: every previous value None)."""
    return metric_rows(metric_values(headline(previous, filters, scope)) if previous is not None else {},
                       metric_values(headline(snapshot, filters, scope)))


# --- the export -----------------------------------------------------------------------------------
def deidentified(exp: Export, scope: Scope) -> Export:
    """What a role without patient-level access gets: patients per site and kind (every site of
    the current cut and every kind, 0 included) and per kind over the sites (site_id 'all'), counts
    1-4 as "<5" and, where a kind's total and all but one of its sites would be shown, one more count
    withheld (None); no patient id, no date. The metrics as the headline export shows them to this
    scope (the rows were computed pooled, so the headline is asked again with the scope)."""
    snapshot, previous, filters = exp.compared
    sites = data.site_ids(snapshot)
    counts = exp.rows.groupby(["site_id", "kind"]).size().to_dict() if len(exp.rows) else {}
    values = {}
    for kind in KINDS:
        for site in sites:
            values[(site, kind)] = int(counts.get((site, kind), 0))
        values[(ALL, kind)] = sum(values[(s, kind)] for s in sites)
    shown = {k: (SUPPRESSED if is_small(v) else v) for k, v in values.items()}
    hidden = to_withhold(shown, [((ALL, kind), [(s, kind) for s in sites]) for kind in KINDS])
    table = pd.DataFrame([{"site_id": site, "kind": kind, "n": None if (site, kind) in hidden else shown[(site, kind)]}
                          for kind in KINDS for site in [*sites, ALL]], columns=["site_id", "kind", "n"])
    table["n"] = table["n"].astype(object)
    extra = {**exp.extra, "metrics": change_metrics(snapshot, previous, filters, scope)}
    return Export(exp.name, table, SUPPRESSED if is_small(exp.n_patients) else exp.n_patients, extra)


def previous_key(snapshot: Snapshot, options: dict) -> dict:
    """The previous cut as verified (its fingerprint), for the result cache: a cut re-published under
    the same id, or a new 'cut before', is compared afresh."""
    previous = previous_cut(snapshot, options.get("since"))
    return {"since_fingerprint": previous.fingerprint if previous else ""}


@export("changes", "what happened since a previous data cut (--since ID; default the cut before, none for the "
                   "oldest), for the current filter: rows site_id, "
                   "kind (new_patient, death, progression, grade3plus_ae, downstaged), patient_id, date; "
                   "metrics: the headline numbers of both cuts",
        options=("since",), level=PATIENT, deidentified=deidentified, cache_key=previous_key)
def changes_export(snapshot: Snapshot, filters: Filters, scope: Scope, since: str | None = None) -> Export:
    previous = previous_cut(snapshot, since)
    rows = new_facts(snapshot, previous, filters, scope)
    extra = {"since_snapshot_id": previous.snapshot_id if previous else None,
             "since_cutoff_date": previous.cutoff_date.isoformat() if previous else None,
             "metrics": change_metrics(snapshot, previous, filters, scope)}
    n = int(data.value("select count(*) from cohort", snapshot, filters, scope))
    exp = Export("changes", rows, n, extra)
    # for the de-identified form (not serialised, not cached): it asks the headline again with the scope
    exp.compared = (snapshot, previous, filters)
    return exp
