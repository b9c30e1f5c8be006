"""Staging exports (Downstaging page): the staging flow, downstaging and conversion rates, the
cumulative incidence of downstaging, downsizing. Definitions: analysis plan, "Staging and
downstaging"; views: staging_flow, staging_outcomes, time_to_downstaging, downsizing.

The exports count in DuckDB what they only count (patients per flow link, per group and
eligibility, per time and status) and read one row per patient only where they print one
(downsizing); the group of a patient is computed in the same SQL (`group_sql`), as
grouping.group_column computes it in pandas."""
from dashboard import cache, data
from dashboard.analytics import staging
from dashboard.data import ALL_SITES
from dashboard.exports import Export, export
from dashboard.filters import Filters
from dashboard.grouping import check_by, group_sql, ordered_levels

ONE_YEAR_DAYS = 365
DOWNSIZING_COLUMNS = ["group", "patient_id", "site_id", "lesion_id", "baseline_diameter_mm",
                      "best_diameter_mm", "best_pct_change", "best_visit"]


def cohort_groups(snapshot, filters, scope, by: str) -> tuple[list[str], int]:
    """The group levels present in cohort, in their natural order ([] for no patient), and the
    number of patients, counted in SQL.
    Cached: three cards of the Downstaging page ask for it in the same update."""
    def compute():
        counts = data.execute(f'select {group_sql("c")} as "group", count(*) as n from cohort c group by all',
                              snapshot, filters, scope, params={"by": by})
        counts = counts[counts["n"] > 0]          # with no grouping, an empty cohort still gives ('all', 0)
        levels = ordered_levels(by, counts["group"]) if len(counts) else []
        return levels, int(counts["n"].sum())
    return cache.cached("cohort_groups", snapshot, filters, scope, compute, by=by)


def check_measure(measure: str | None) -> str:
    measure = measure or "bclc"
    if measure not in staging.MEASURES:
        raise ValueError(f"unknown staging measure {measure!r}; choose one of: {', '.join(staging.MEASURES)}")
    return measure


@export("staging-flow", "patients per link of the staging flow, baseline state -> best follow-up state or "
                        "'died before restaging' / 'not yet restaged' (--measure bclc|milan|resectable)",
        options=("measure",))
def staging_flow_export(snapshot, filters=Filters(), scope=ALL_SITES, measure="bclc", **_):
    measure = check_measure(measure)
    counts = data.execute("select source, target, count(*) as n from staging_flow where measure = ? group by all",
                          snapshot, filters, scope, params=[measure])
    return Export("staging-flow", staging.flow_links(counts, measure), int(counts["n"].sum()),
                  {"measure": measure})


RATE_COUNTS_SQL = """
select {group} as "group",
       count(*) filter (where not o.baseline_within_milan) as milan_eligible,
       count(*) filter (where not o.baseline_within_milan and o.is_downstaged_to_milan) as milan_achieved,
       count(*) filter (where not o.baseline_resectable) as resectable_eligible,
       count(*) filter (where not o.baseline_resectable and o.is_converted_to_resectable) as resectable_achieved
from cohort c
join staging_outcomes o using (patient_id)
group by all
"""


@export("downstaging-summary", "downstaged to within Milan and converted to resectable: eligible, achieved, "
                               "rate and exact 95% CI, overall (group 'all') and per group (--by FIELD|none)",
        options=("by",))
def downstaging_summary_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, **_):
    by = check_by(by)
    levels, n = cohort_groups(snapshot, filters, scope, by)
    counts = data.execute(RATE_COUNTS_SQL.format(group=group_sql("c")), snapshot, filters, scope,
                          params={"by": by})
    return Export("downstaging-summary", staging.group_rates_from_counts(counts, levels), n,
                  {"by": by, "ci_method": "Clopper-Pearson exact, 95%"})


@export("downstaging-cif", "cumulative incidence of downstaging to within Milan (Aalen-Johansen, death "
                           "competing) among patients outside Milan at baseline, per group "
                           "(--by FIELD|none, --ci log|log-log|plain)",
        options=("by", "ci"))
def downstaging_cif_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, ci="log", **_):
    by = check_by(by)
    levels, n = cohort_groups(snapshot, filters, scope, by)
    # patients per group, time and status: the estimator needs no more than these counts
    ttd = data.execute(f'select {group_sql("c")} as "group", t.time_days, t.status, count(*) as n '
                       "from time_to_downstaging t join cohort c using (patient_id) group by all",
                       snapshot, filters, scope, params={"by": by})
    rows = staging.cumulative_incidence(ttd, levels, conf_type=ci)
    pooled_counts = ttd.groupby(["time_days", "status"], as_index=False)["n"].sum().assign(group="all")
    pooled = staging.cumulative_incidence(pooled_counts, ["all"], conf_type=ci)
    at = staging.step_at(pooled, ONE_YEAR_DAYS)
    at_one_year = None if at is None else {
        "time_days": ONE_YEAR_DAYS, "cif": at["cif"], "ci_lower": at["ci_lower"], "ci_upper": at["ci_upper"],
        "one_minus_km": staging.one_minus_km(pooled_counts, ONE_YEAR_DAYS)}
    by_status = ttd.groupby("status")["n"].sum()
    return Export("downstaging-cif", rows, n,
                  {"by": by, "conf_type": ci, "n_eligible": int(ttd["n"].sum()),
                   "n_downstaged": int(by_status.get(1, 0)), "n_died_first": int(by_status.get(2, 0)),
                   "n_censored": int(by_status.get(0, 0)), "all_at_one_year": at_one_year})


@export("downsizing", "best percent change of the index lesion's viable diameter (the largest target lesion at "
                      "baseline), one row per evaluable patient (--by FIELD|none)",
        options=("by",))
def downsizing_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, **_):
    by = check_by(by)
    levels, n = cohort_groups(snapshot, filters, scope, by)
    # every patient of the filter, in the export's order: group level, best change, patient
    rows = data.execute(f'select {group_sql("c")} as "group", d.patient_id, d.site_id, d.lesion_id, '
                        "d.baseline_diameter_mm, d.best_diameter_mm, d.best_pct_change, d.best_visit, "
                        "d.not_evaluable_reason "
                        "from downsizing d join cohort c using (patient_id) "
                        'order by list_position($levels::varchar[], "group"), d.best_pct_change, d.patient_id',
                        snapshot, filters, scope, params={"by": by, "levels": levels})
    evaluable = rows[rows["best_pct_change"].notna()][DOWNSIZING_COLUMNS].reset_index(drop=True)
    reasons = rows["not_evaluable_reason"].dropna().value_counts().sort_index()
    summary = staging.downsizing_summary(evaluable, levels)
    return Export("downsizing", evaluable, n,
                  {"by": by, "groups": levels, "summary": summary.to_dict(orient="records"),
                   "n_evaluable": len(evaluable),
                   "n_not_evaluable": int(reasons.sum()),
                   "not_evaluable": {str(k): int(v) for k, v in reasons.items()}})
