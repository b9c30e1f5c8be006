"""Staging exports (Downstaging page): the staging flow, downstaging and conversion rates, the
cumulative incidence of downstaging, downsizing. Definitions: analysis plan, "Staging and
downstaging"; views: staging_flow, staging_outcomes, time_to_downstaging, downsizing."""
from dashboard import data
from dashboard.analytics import staging
from dashboard.data import ALL_SITES
from dashboard.exports import Export, export
from dashboard.filters import Filters
from dashboard.grouping import check_by

ONE_YEAR_DAYS = 365
DOWNSIZING_COLUMNS = ["group", "patient_id", "site_id", "lesion_id", "baseline_diameter_mm",
                      "best_diameter_mm", "best_pct_change", "best_visit"]


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
    flow = data.execute("select source, target from staging_flow where measure = ?", snapshot, filters, scope,
                        params=[measure])
    return Export("staging-flow", staging.flow_links(flow, measure), len(flow), {"measure": measure})


@export("downstaging-summary", "downstaged to within Milan and converted to resectable: eligible, achieved, "
                               "rate and exact 95% CI, overall (group 'all') and per group (--by FIELD|none)",
        options=("by",))
def downstaging_summary_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, **_):
    by = check_by(by)
    cohort = data.query("cohort", snapshot, filters, scope)
    outcomes = data.query("staging_outcomes", snapshot, filters, scope)
    outcomes["outside_milan_at_baseline"] = ~outcomes["baseline_within_milan"].astype(bool)
    outcomes["not_resectable_at_baseline"] = ~outcomes["baseline_resectable"].astype(bool)
    patients, levels = staging.with_groups(outcomes, cohort, by)
    return Export("downstaging-summary", staging.group_rates(patients, levels), len(cohort),
                  {"by": by, "ci_method": "Clopper-Pearson exact, 95%"})


@export("downstaging-cif", "cumulative incidence of downstaging to within Milan (Aalen-Johansen, death "
                           "competing) among patients outside Milan at baseline, per group "
                           "(--by FIELD|none, --ci log|log-log|plain)",
        options=("by", "ci"))
def downstaging_cif_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, ci="log", **_):
    by = check_by(by)
    cohort = data.query("cohort", snapshot, filters, scope)
    ttd = data.query("time_to_downstaging", snapshot, filters, scope, order_by=("patient_id",))
    ttd, levels = staging.with_groups(ttd, cohort, by)
    rows = staging.cumulative_incidence(ttd, levels, conf_type=ci)
    pooled = staging.cumulative_incidence(ttd.assign(group="all"), ["all"], conf_type=ci)
    at = staging.step_at(pooled, ONE_YEAR_DAYS)
    at_one_year = None if at is None else {
        "time_days": ONE_YEAR_DAYS, "cif": at["cif"], "ci_lower": at["ci_lower"], "ci_upper": at["ci_upper"],
        "one_minus_km": staging.one_minus_km(ttd, ONE_YEAR_DAYS)}
    return Export("downstaging-cif", rows, len(cohort),
                  {"by": by, "conf_type": ci, "n_eligible": len(ttd),
                   "n_downstaged": int((ttd["status"] == 1).sum()), "n_died_first": int((ttd["status"] == 2).sum()),
                   "n_censored": int((ttd["status"] == 0).sum()), "all_at_one_year": at_one_year})


@export("downsizing", "best percent change of the index lesion's viable diameter (the largest target lesion at "
                      "baseline), one row per evaluable patient (--by FIELD|none)",
        options=("by",))
def downsizing_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, **_):
    by = check_by(by)
    cohort = data.query("cohort", snapshot, filters, scope)
    rows = data.query("downsizing", snapshot, filters, scope, order_by=("patient_id",))
    rows, levels = staging.with_groups(rows, cohort, by)
    evaluable = rows[rows["best_pct_change"].notna()].copy()
    evaluable["level"] = evaluable["group"].map({g: i for i, g in enumerate(levels)})
    evaluable = evaluable.sort_values(["level", "best_pct_change", "patient_id"])[DOWNSIZING_COLUMNS]
    reasons = rows["not_evaluable_reason"].dropna().value_counts().sort_index()
    summary = staging.downsizing_summary(evaluable, levels)
    return Export("downsizing", evaluable.reset_index(drop=True), len(cohort),
                  {"by": by, "groups": levels, "summary": summary.to_dict(orient="records"),
                   "n_evaluable": len(evaluable),
                   "n_not_evaluable": int(reasons.sum()),
                   "not_evaluable": {str(k): int(v) for k, v in reasons.items()}})
