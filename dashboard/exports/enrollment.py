"""Enrollment exports: patients, the Overview's facts, enrollment per site, accrual, Table 1, follow-up status.

Under small-cell suppression (dashboard/access.py; docs in each export's declaration): counts
from 1 to 4 are "<5" with their percentages withheld, the sites' first and last enrollment dates
(patients' dates) are dropped, and a median, IQR or reverse Kaplan-Meier median follow-up of
fewer than MIN_GROUP patients is withheld, as a box plot or a curve of such a group is not drawn.
"""
import numpy as np
import pandas as pd

from dashboard import data
from dashboard.access import MIN_GROUP, SUPPRESSED
from dashboard.data import ALL_SITES
from dashboard.exports import AGGREGATE, PATIENT, Export, Suppression, export, suppress_counts
from dashboard.filters import Filters

# the text of a withheld median (IQR) in Table 1, and the reason a withheld median follow-up gives
FEW_FOR_MEDIAN = f"n < {MIN_GROUP}"
FEW_FOR_FOLLOWUP = f"fewer than {MIN_GROUP} patients: not shown for your role"


@export("patients", "the filtered patients with baseline fields and derived endpoints",
        level=PATIENT)
def patients_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    rows = data.query("patient_summary", snapshot, filters, scope, order_by=("patient_id",))
    return Export("patients", rows, len(rows))


OVERVIEW_SQL = """
select (select count(*) from cohort) as n_patients,
       (select count(death_date) from cohort) as n_deaths,
       (select count(*) from sites_in_scope) as n_sites,
       (select count(distinct site_id) from cohort) as n_sites_enrolling
"""


@export("overview", "the Overview's facts: patients, deaths (OS events), sites and sites enrolling in the filter",
        level=AGGREGATE, suppress=Suppression({"n_patients": (), "n_deaths": ()}))
def overview_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    rows = data.execute(OVERVIEW_SQL, snapshot, filters, scope)
    return Export("overview", rows, int(rows["n_patients"].iloc[0]))


def is_subgroup(filters: Filters) -> bool:
    """True when a filter other than the site selection is active: the sites' counts are then of a
    subgroup of their patients, not measured against their targets (a site filter keeps whole sites)."""
    return not filters.without("site").is_empty()


# Suppressed: the first and last enrollment dates are patients' dates and are dropped. An
# investigator whose site filter keeps only their own sites is not suppressed and keeps them.
@export("enrollment", "per site: patients enrolled in the filter, every patient the site enrolled (no filter, within "
                      "the user's sites) and the target",
        level=AGGREGATE, suppress=Suppression({"n_enrolled": (), "enrolled_total": ()},
                                              drop=("first_enrollment_date", "last_enrollment_date")))
def enrollment_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    rows = data.query("enrollment", snapshot, filters, scope, order_by=("site_id",))
    # the same sites with no filter but the site selection: each site's whole enrollment
    totals = rows if not is_subgroup(filters) else \
        data.query("enrollment", snapshot, Filters(site=filters.site), scope, order_by=("site_id",))
    rows = rows.assign(enrolled_total=rows["site_id"].map(totals.set_index("site_id")["n_enrolled"])
                       .fillna(0).astype(rows["n_enrolled"].dtype))
    rows = rows[["site_id", "site_name", "n_enrolled", "enrolled_total", "target_enrollment",
                 "first_enrollment_date", "last_enrollment_date"]]
    return Export("enrollment", rows, int(rows["n_enrolled"].sum()), {"subgroup": is_subgroup(filters)})


@export("accrual", "cumulative patients by month, per site and pooled (site_id 'all'), against targets "
                   "(the pooled target: the sum over the sites that have one; null when none has); "
                   "cumulative_total: every patient enrolled (no filter, within the user's sites)",
        level=AGGREGATE, suppress=Suppression({"n_enrolled": (), "cum_enrolled": (), "cumulative_total": ()}))
def accrual_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    per_site = data.query("accrual_monthly", snapshot, filters, scope, order_by=("site_id", "month"))
    # the same sites and months with no filter but the site selection: each site's whole accrual
    totals = per_site if not is_subgroup(filters) else \
        data.query("accrual_monthly", snapshot, Filters(site=filters.site), scope, order_by=("site_id", "month"))
    if not totals[["site_id", "month"]].equals(per_site[["site_id", "month"]]):   # one grid: the sites', not the filter's
        raise ValueError("accrual: the unfiltered months or sites differ from the filtered ones")
    per_site = per_site.assign(cumulative_total=totals["cum_enrolled"].to_numpy())
    columns = ["site_id", "site_name", "month", "n_enrolled", "cum_enrolled", "target_enrollment"]
    # pooled: the sums over sites per month (numpy: a pandas groupby + concat cost 4 ms here)
    months, at = np.unique(per_site["month"].to_numpy(), return_inverse=True)
    pooled = {"site_id": np.full(len(months), "all", dtype=object),
              "site_name": np.full(len(months), "All sites", dtype=object), "month": months}
    for c in columns[3:5]:
        values = per_site[c].to_numpy()
        pooled[c] = np.bincount(at, weights=values, minlength=len(months)).astype(values.dtype)
    # a site without a target adds nothing to the pooled target; no site with one: no pooled target
    target = pd.to_numeric(per_site["target_enrollment"], errors="coerce").to_numpy(float)
    has = ~np.isnan(target)
    pooled_target = np.bincount(at[has], weights=target[has], minlength=len(months))
    # the view's integer type (nullable Int32 when some site has no target): no pooled target when none has
    dtype = per_site["target_enrollment"].dtype
    pooled["target_enrollment"] = pd.array(pooled_target if has.any() else [None] * len(months),
                                           dtype=dtype if has.all() else "Int32")
    rows = pd.DataFrame({c: np.concatenate([pooled[c], per_site[c].to_numpy()]) for c in columns[:5]})
    rows["target_enrollment"] = pd.concat([pd.Series(pooled["target_enrollment"]), per_site["target_enrollment"]],
                                          ignore_index=True)
    total = per_site["cumulative_total"].to_numpy()
    rows["cumulative_total"] = np.concatenate([np.bincount(at, weights=total, minlength=len(months))
                                               .astype(total.dtype), total])
    sites = per_site.drop_duplicates("site_id")
    return Export("accrual", rows, int(per_site["n_enrolled"].sum()),
                  {"n_sites": len(sites), "n_sites_with_target": int(sites["target_enrollment"].notna().sum()),
                   "subgroup": is_subgroup(filters)})


BASELINE_COUNTS_SQL = """
with patients as (
    select
        bclc_stage,
        cast(sex as varchar) as sex,
        cast(etiology as varchar) as etiology,
        cast(ecog_ps as varchar) as ecog_ps,
        cast(child_pugh_class as varchar) as child_pugh_class,
        cast(albi_grade as varchar) as albi_grade,
        case when tumor_count = 1 then '1' when tumor_count between 2 and 3 then '2-3'
             when tumor_count between 4 and 5 then '4-5' when tumor_count > 5 then '> 5' end as tumor_count_group,
        cast(has_macrovascular_invasion as varchar) as has_macrovascular_invasion,
        cast(has_extrahepatic_spread as varchar) as has_extrahepatic_spread,
        cast(is_within_milan as varchar) as is_within_milan,
        cast(is_within_up_to_seven as varchar) as is_within_up_to_seven
    from cohort
),

long as (
    from patients unpivot include nulls (value for variable in (
        sex, etiology, ecog_ps, child_pugh_class, albi_grade, tumor_count_group,
        has_macrovascular_invasion, has_extrahepatic_spread, is_within_milan, is_within_up_to_seven))
)

select grouping(bclc_stage) = 1 as overall, bclc_stage as level_of_by, variable, value, count(*) as n
from long
group by grouping sets ((variable, value), (bclc_stage, variable, value))
"""


def suppress_baseline(exp: Export, scope) -> Export:
    """Table 1 for a suppressing scope: a count (a group's patients, a level's patients, the values
    behind a median) from 1 to 4 is "<5" with its percentage withheld, and its text says "<5"; a
    median (IQR) of fewer than MIN_GROUP values is withheld (text "n < 10"): a median or quartile
    of a few patients is one patient's value, and a box plot of such a group is not drawn either."""
    out = suppress_counts(exp, {"n_group": (), "n": ("pct",)})
    rows = out.rows
    continuous = (rows["level"] == "median (IQR)").to_numpy()
    few = continuous & rows["n"].map(lambda n: isinstance(n, str) or 0 < n < MIN_GROUP).to_numpy()
    for column in ("median", "q1", "q3"):
        rows[column] = rows[column].astype(object).where(~few, None)
    small = (rows["n"].map(lambda n: n == SUPPRESSED).to_numpy() & ~continuous)
    rows["text"] = np.where(few, FEW_FOR_MEDIAN, np.where(small, SUPPRESSED, rows["text"].to_numpy(dtype=object)))
    return out


@export("baseline-table", "Table 1: baseline characteristics overall and by BCLC stage (long form)",
        level=AGGREGATE, suppress=suppress_baseline)
def baseline_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    """Table 1 as analytics.baseline.baseline_table computes it from every cohort column, with the
    categorical variables counted in DuckDB (overall and per stage) and only the numbers that need
    every value (ages, AFP, tumour sizes: quartiles) read per patient."""
    from dashboard.analytics.baseline import COUNTED, NUMERIC, baseline_table_counted
    counts = data.execute(BASELINE_COUNTS_SQL, snapshot, filters, scope)
    unknown = set(counts["variable"]) - set(COUNTED)
    if unknown:                                   # the SQL and baseline.ROWS must list the same variables
        raise ValueError(f"Table 1 counts variables that baseline.ROWS does not list: {sorted(unknown)}")
    numeric = data.execute(f"select bclc_stage, {', '.join(NUMERIC)} from cohort", snapshot, filters, scope)
    return Export("baseline-table", baseline_table_counted(counts, numeric, by="bclc_stage"), len(numeric))


FOLLOWUP_SQL = """
select 0 as part, death_date is not null as died, off_study_date is not null as off_study, off_study_reason,
       0 as time_days, false as is_event, count(*) as n
from cohort
group by all
union all
select 1, false, false, null, time_days, is_event, count(*)
from patient_endpoints
where endpoint = 'os'
group by all
order by part, time_days, is_event
"""


def suppress_followup(exp: Export, scope) -> Export:
    """Follow-up status for a suppressing scope: counts from 1 to 4 "<5" without their percentage;
    the reverse Kaplan-Meier median of fewer than MIN_GROUP patients withheld, as such a curve is
    not drawn (extra["median_followup_note"] says why)."""
    out = suppress_counts(exp, {"n": ("pct",)})
    if isinstance(out.n_patients, str) or 0 < out.n_patients < MIN_GROUP:
        for key in ("median_followup_days", "median_followup_ci_lower_days", "median_followup_ci_upper_days"):
            out.extra[key] = None
        out.extra["median_followup_note"] = FEW_FOR_FOLLOWUP
    return out


@export("followup-status", "follow-up status (alive on study, died, off study by reason) and median "
                           "follow-up by reverse Kaplan-Meier",
        level=AGGREGATE, suppress=suppress_followup)
def followup_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    """Follow-up status from patients counted by death, off-study and reason in DuckDB; the
    reverse Kaplan-Meier from patients counted per OS time and event (the estimate depends on
    these counts only), expanded for survival.median_followup.

    Both counts come from one query (FOLLOWUP_SQL: part 0 the status counts, part 1 the OS
    counts in time order; each part fills the other's columns with constants, so no column
    gains nulls and the dtypes are those of two separate queries): a query costs ~1 ms of
    binding and conversion on top of its work, at 600 patients 6.8 ms for both parts against
    7.9 ms as two queries."""
    from dashboard.analytics.baseline import followup_status_counted
    from dashboard.analytics.survival import median_followup
    both = data.execute(FOLLOWUP_SQL, snapshot, filters, scope)
    n_status = int((both["part"].to_numpy() == 0).sum())          # part 0 first (order by part)
    counts = both.iloc[:n_status]
    repeat = both["n"].to_numpy(np.int64)[n_status:]
    med, lo, hi = (median_followup(np.repeat(both["time_days"].to_numpy()[n_status:], repeat),
                                   np.repeat(both["is_event"].to_numpy()[n_status:], repeat))
                   if len(repeat) else (None, None, None))
    return Export("followup-status", followup_status_counted(counts), int(counts["n"].sum()),
                  {"median_followup_days": med, "median_followup_ci_lower_days": lo,
                   "median_followup_ci_upper_days": hi})
