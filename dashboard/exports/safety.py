"""Safety exports: CTCAE adverse-event incidence by worst grade (registered with @export).

`ae-incidence` is the data of all three Safety cards: the term-by-grade heatmap (level term, no
grouping), the term-by-group heatmap (level term, --by a grouping) and the incidence table.
"""
from __future__ import annotations

from dashboard import data
from dashboard.analytics.safety import COLUMNS, check_level, incidence
from dashboard.data import ALL_SITES
from dashboard.exports import Export, export
from dashboard.filters import Filters
from dashboard.grouping import check_by, group_column, ordered_levels

# patients in the filter with their number of DEB-TACE sessions (the exposure of events per 100 sessions)
SESSIONS_SQL = """
select c.*, count(t.session_number)::integer as n_sessions
from cohort c
left join stg_treatments t using (patient_id)
group by all
"""


def episode_variables(related_only=False, serious_only=False, within_days=None) -> dict:
    """The DuckDB variables read by queries/ae_episodes.sql; None = no restriction.
    Always the full set, so a value bound by an earlier query on the same cursor never lingers."""
    if within_days is not None and int(within_days) < 0:
        raise ValueError(f"--within-days must be 0 or more, got {within_days}")
    return {"ae_related_only": True if related_only else None,
            "ae_serious_only": True if serious_only else None,
            "ae_within_days": int(within_days) if within_days is not None else None}


NO_EPISODE_FILTER = episode_variables()


@export("ae-incidence", "CTCAE adverse events: patients by worst grade per term or SOC (--level), per group (--by "
                        "site_id|bclc_stage|child_pugh_class|none), any grade, grade 3-4, grade 5, serious, related, "
                        "events per 100 sessions; --related-only, --serious-only, --within-days N",
        options=("level", "by", "related_only", "serious_only", "within_days"))
def ae_incidence_export(snapshot, filters=Filters(), scope=ALL_SITES, level="term", by="none",
                        related_only=False, serious_only=False, within_days=None, **_):
    level, by = check_level(level), check_by(by)
    variables = episode_variables(related_only, serious_only, within_days)
    try:
        worst = data.query("ae_worst_grade", snapshot, filters, scope, order_by=("patient_id", "term"),
                           variables=variables)
    finally:
        # reset the episode filters on this thread's cursor for whatever query runs next
        data.execute("select 1", snapshot, filters, scope, variables=NO_EPISODE_FILTER)
    patients = data.execute(SESSIONS_SQL, snapshot, filters, scope)
    patients["group"] = group_column(patients, by)
    groups = ordered_levels(by, patients["group"]) if len(patients) else []
    rows = incidence(worst, patients, level, groups)
    n_events = int(worst["n_episodes"].sum())
    return Export("ae-incidence", rows[COLUMNS], len(patients), {
        "level": level, "by": by, "related_only": bool(related_only), "serious_only": bool(serious_only),
        "within_days": variables["ae_within_days"],
        "n_patients_with_ae": int(worst["patient_id"].nunique()),
        "n_events": n_events, "n_sessions": int(patients["n_sessions"].sum()),
    })
