"""Staging exports (Downstaging page): the staging flow, downstaging and conversion rates, the
cumulative incidence of downstaging, downsizing. Definitions: analysis plan, "Staging and
downstaging"; views: staging_flow, staging_outcomes, time_to_downstaging, downsizing.

The exports count in DuckDB what they only count (patients per flow link, per group and
eligibility, per time and status) and read one row per patient only where they print one
(downsizing); the group of a patient is computed in the same SQL (`group_sql`), as
grouping.group_column computes it in pandas."""
import numpy as np
import pandas as pd

from dashboard import cache, data
from dashboard.access import MIN_GROUP, shown_count
from dashboard.analytics import staging
from dashboard.data import ALL_SITES
from dashboard.exports import AGGREGATE, PATIENT, Export, Suppression, export
from dashboard.exports.complement import to_withhold
from dashboard.filters import Filters
from dashboard.grouping import LEVEL_ORDER, check_by, group_sql, ordered_levels

ONE_YEAR_DAYS = 365
DOWNSIZING_COLUMNS = ["group", "patient_id", "site_id", "lesion_id", "baseline_diameter_mm",
                      "best_diameter_mm", "best_pct_change", "best_visit"]


# Every by-dependent count of the page in one query (binding and planning the nested views of a
# query costs more than counting 600 patients): one row per group, rate flags, time and status of
# time to downstaging (status -1 for a patient within Milan at baseline, or whose baseline Milan status was not
# recorded, who has none), with the
# number of patients. downstaging-summary and downstaging-cif sum what they need.
STAGING_COUNTS_SQL = """
select {group} as "group",
       coalesce(not o.baseline_within_milan, false) as milan_eligible,
       coalesce(not o.baseline_within_milan and o.is_downstaged_to_milan, false) as milan_achieved,
       coalesce(not o.baseline_resectable, false) as resectable_eligible,
       coalesce(not o.baseline_resectable and o.is_converted_to_resectable, false) as resectable_achieved,
       o.baseline_within_milan is null as milan_unknown,
       o.baseline_resectable is null as resectable_unknown,
       coalesce(t.time_days, -1) as time_days,
       coalesce(t.status, -1) as status,
       count(*) as n
from cohort c
join staging_outcomes_all o using (patient_id)
left join time_to_downstaging t using (patient_id)
group by all
"""
RATE_FLAGS = ("milan_eligible", "milan_achieved", "resectable_eligible", "resectable_achieved", "milan_unknown",
              "resectable_unknown")


def staging_counts(snapshot, filters, scope, by: str) -> dict:
    """The cohort's patients counted per group in one query (STAGING_COUNTS_SQL), cached per
    (snapshot, filters, scope, grouping): the rates and CIF cards of the Downstaging page read it
    in the same update. Keys: levels (the group levels present, in their natural order; [] for
    no patient), n (patients), rates (per group: patients eligible for and having achieved
    downstaging to Milan and conversion to resectable) and ttd (patients per group, time_days
    and status of time_to_downstaging)."""
    def compute():
        counts = data.execute(STAGING_COUNTS_SQL.format(group=group_sql("c")), snapshot, filters, scope,
                              params={"by": by})
        n = counts["n"].to_numpy()
        keep = n > 0
        group = counts["group"].to_numpy()[keep]
        n = n[keep]
        levels = ordered_levels(by, group) if len(group) else []
        # per group (first seen first): patients with each flag
        names, first, inverse = np.unique(group, return_index=True, return_inverse=True)
        seen = np.argsort(first, kind="stable")
        rates = {"group": names[seen]}
        for flag in RATE_FLAGS:
            sums = np.zeros(len(names), dtype=np.int64)
            np.add.at(sums, inverse, np.where(counts[flag].to_numpy(bool)[keep], n, 0))
            rates[flag] = sums[seen]
        status = counts["status"].to_numpy()[keep]
        timed = status >= 0
        ttd = pd.DataFrame({"group": group[timed], "time_days": counts["time_days"].to_numpy()[keep][timed],
                            "status": status[timed], "n": n[timed]})
        return {"levels": levels, "n": int(n.sum()), "rates": pd.DataFrame(rates), "ttd": ttd}
    return cache.cached("staging_counts", snapshot, filters, scope, compute, by=by)


def check_measure(measure: str | None) -> str:
    measure = measure or "bclc"
    if measure not in staging.MEASURES:
        raise ValueError(f"unknown staging measure {measure!r}; choose one of: {', '.join(staging.MEASURES)}")
    return measure


def _withhold(rows: pd.DataFrame, cells, derived=()) -> pd.DataFrame:
    """rows with the (index, column) cells set to None, and the `derived` columns of their rows."""
    rows = rows.copy()
    for label, column in cells:
        for c in (column, *derived):
            rows[c] = rows[c].astype(object)
            rows.at[label, c] = None
    return rows


FLOW_COUNTS = Suppression({"n": ()})


def suppress_flow(exp: Export, scope) -> Export:
    """staging-flow for a suppressing scope: links of 1-4 patients as "<5", and one more link withheld
    (None) wherever a "<5" would be the patients of the filter (the banner's n) or of a baseline state
    (the banner's n under that filter) minus the links shown."""
    raw = exp.rows
    totals = {("total",): shown_count(exp.n_patients, scope)} | {
        ("from", s): shown_count(int(n), scope) for s, n in raw.groupby("source", sort=False)["n"].sum().items()}
    out = FLOW_COUNTS(exp, scope)
    values = dict(zip(out.rows.index, out.rows["n"])) | totals
    sums = [(("total",), list(out.rows.index))] + [
        (("from", s), list(out.rows.index[out.rows["source"] == s])) for s in raw["source"].unique()]
    hidden = to_withhold(values, sums, public=set(totals))
    return Export(out.name, _withhold(out.rows, [(label, "n") for label in hidden]), out.n_patients, out.extra)


@export("staging-flow", "patients per link of the staging flow, baseline state -> best follow-up state or "
                        "'died before restaging' / 'not yet restaged' (--measure bclc|milan|resectable)",
        options=("measure",),
        level=AGGREGATE, suppress=suppress_flow)
def staging_flow_export(snapshot, filters=Filters(), scope=ALL_SITES, measure="bclc", **_):
    measure = check_measure(measure)
    counts = data.execute("select source, target, count(*) as n from staging_flow where measure = ? group by all",
                          snapshot, filters, scope, params=[measure])
    return Export("staging-flow", staging.flow_links(counts, measure), int(counts["n"].sum()),
                  {"measure": measure})


RATE_DERIVED = ("rate", "ci_lower", "ci_upper")
RATE_COUNTS = Suppression({"eligible": RATE_DERIVED, "achieved": RATE_DERIVED, "baseline_unknown": ()})


def suppress_rates(exp: Export, scope) -> Export:
    """downstaging-summary for a suppressing scope: eligible and achieved of 1-4 as "<5" with their rate
    and CI withheld, then per measure one more group's count withheld wherever a "<5" would be the
    'all' row minus the other groups."""
    out = RATE_COUNTS(exp, scope)
    rows, cells = out.rows, []
    for measure in rows["measure"].unique():
        at = rows.index[rows["measure"] == measure]
        overall = [i for i in at if rows.at[i, "group"] == "all"]
        groups = [i for i in at if rows.at[i, "group"] != "all"]
        if not overall or not groups:
            continue
        for column in ("eligible", "achieved", "baseline_unknown"):
            values = {i: rows.at[i, column] for i in at}
            cells += [(i, column) for i in to_withhold(values, [(overall[0], groups)])]
    return Export(out.name, _withhold(rows, cells, RATE_DERIVED), out.n_patients, out.extra)


@export("downstaging-summary", "downstaged to within Milan and converted to resectable: eligible, achieved, "
                               "rate and exact 95% CI, overall (group 'all') and per group (--by FIELD|none)",
        options=("by",),
        level=AGGREGATE, suppress=suppress_rates)
def downstaging_summary_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, **_):
    by = check_by(by)
    counts = staging_counts(snapshot, filters, scope, by)
    levels, n = counts["levels"], counts["n"]
    counts = counts["rates"]
    return Export("downstaging-summary", staging.group_rates_from_counts(counts, levels), n,
                  {"by": by, "ci_method": "Clopper-Pearson exact, 95%"})


CIF_COUNTS = Suppression({c: () for c in ("n_risk", "n_event", "n_competing", "n_censor", "n_eligible",
                                         "n_downstaged", "n_died_first", "n_censored", "n_baseline_unknown")})


def suppress_cif(exp: Export, scope) -> Export:
    """downstaging-cif for a suppressing scope: the curves of groups of fewer than MIN_GROUP eligible
    patients are not drawn (their rows dropped, the groups named in `not_drawn`), nor is the pooled
    value at one year when all eligible patients are fewer; counts of 1-4 become "<5"."""
    sizes = exp.rows.groupby("group", sort=False)["n_risk"].max()      # at risk at the first time: the group
    small = [str(g) for g, n in sizes.items() if n < MIN_GROUP]
    rows = exp.rows[~exp.rows["group"].isin(small)].reset_index(drop=True)
    extra = dict(exp.extra, not_drawn=small)
    if exp.extra["n_eligible"] < MIN_GROUP:
        extra["all_at_one_year"] = None
    out = CIF_COUNTS(Export(exp.name, rows, exp.n_patients, extra), scope)
    # eligible = downstaged + died first + censored; the first two are the rates card's (public there)
    for key in to_withhold(out.extra, [("n_eligible", ["n_downstaged", "n_died_first", "n_censored"])],
                           public={"n_eligible", "n_downstaged"}):
        out.extra[key] = None
    return out


@export("downstaging-cif", "cumulative incidence of downstaging to within Milan (Aalen-Johansen, death "
                           "competing) among patients outside Milan at baseline, per group "
                           "(--by FIELD|none, --ci log|log-log|plain)",
        options=("by", "ci"),
        level=AGGREGATE, suppress=suppress_cif)
def downstaging_cif_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, ci="log", **_):
    by = check_by(by)
    counts = staging_counts(snapshot, filters, scope, by)
    levels, n = counts["levels"], counts["n"]
    # patients per group, time and status: the estimator needs no more than these counts
    ttd = counts["ttd"]
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
                   "n_baseline_unknown": int(counts["rates"]["milan_unknown"].sum()),
                   "n_downstaged": int(by_status.get(1, 0)), "n_died_first": int(by_status.get(2, 0)),
                   "n_censored": int(by_status.get(0, 0)), "all_at_one_year": at_one_year})


IDENTIFYING = ("patient_id", "site_id")


def downsizing_deidentified(exp: Export, scope) -> Export:
    """The downsizing rows a role without patient-level access may see: no patient or site id (and no
    date: the export has none), only groups of at least MIN_GROUP evaluable patients (the others named
    in `not_drawn`), rows in the order they are drawn (group, best change, then the values: not the
    patients' order), and every count of 1-4 as "<5"."""
    rows = exp.rows.drop(columns=[c for c in exp.rows.columns
                                  if c in IDENTIFYING or pd.api.types.is_datetime64_any_dtype(exp.rows[c])])
    sizes = rows["group"].value_counts()
    kept = [g for g in exp.extra["groups"] if sizes.get(g, 0) >= MIN_GROUP]
    rank = {g: i for i, g in enumerate(kept)}
    order = ["best_pct_change", "baseline_diameter_mm", "best_diameter_mm", "best_visit", "lesion_id"]
    rows = (rows[rows["group"].isin(kept)].assign(_rank=lambda r: r["group"].map(rank))
            .sort_values(["_rank", *order], kind="stable").drop(columns="_rank").reset_index(drop=True))
    summary = [dict(s, n_30=shown_count(s["n_30"], scope)) for s in exp.extra["summary"] if s["group"] in rank]
    return Export(exp.name, rows, shown_count(exp.n_patients, scope), {
        "by": exp.extra["by"], "groups": kept, "summary": summary, "n_evaluable": len(rows),
        "n_not_evaluable": shown_count(exp.extra["n_not_evaluable"], scope),
        "not_evaluable": {k: shown_count(v, scope) for k, v in exp.extra["not_evaluable"].items()},
        "not_drawn": [g for g in exp.extra["groups"] if 0 < sizes.get(g, 0) < MIN_GROUP]})


@export("downsizing", "best percent change of the index lesion's viable diameter (the largest target lesion at "
                      "baseline), one row per evaluable patient (--by FIELD|none)",
        options=("by",),
        level=PATIENT, deidentified=downsizing_deidentified)
def downsizing_export(snapshot, filters=Filters(), scope=ALL_SITES, by=None, **_):
    by = check_by(by)
    # every patient of the filter (the rows of downsizing: downsizing_all joined to cohort), in the
    # export's order: group level (ordered_levels' order: LEVEL_ORDER's levels first, then the
    # others sorted), best change, patient: downsizing_all is stored in the order of best change
    # and patient, so its rowid is that order (an integer sort instead of one by change and text).
    # Its own levels and count: no wait for another query.
    rows = data.execute(f'select {group_sql("c")} as "group", d.patient_id, d.site_id, d.lesion_id, '
                        "d.baseline_diameter_mm, d.best_diameter_mm, d.best_pct_change, d.best_visit, "
                        "d.not_evaluable_reason "
                        "from downsizing_all d join cohort c using (patient_id) "
                        'order by coalesce(list_position($order::varchar[], "group"), 2147483647), "group", '
                        "d.rowid",
                        snapshot, filters, scope, params={"by": by, "order": LEVEL_ORDER.get(by, [])})
    group = rows["group"].to_numpy()
    levels = ordered_levels(by, group) if len(group) else []
    n = len(rows)
    evaluable = rows[rows["best_pct_change"].notna()][DOWNSIZING_COLUMNS].reset_index(drop=True)
    reasons = rows["not_evaluable_reason"].dropna().value_counts().sort_index()
    summary = staging.downsizing_summary(evaluable, levels)
    return Export("downsizing", evaluable, n,
                  {"by": by, "groups": levels, "summary": summary.to_dict(orient="records"),
                   "n_evaluable": len(evaluable),
                   "n_not_evaluable": int(reasons.sum()),
                   "not_evaluable": {str(k): int(v) for k, v in reasons.items()}})

