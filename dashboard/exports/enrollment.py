"""Enrollment exports: patients, enrollment per site, accrual, Table 1, follow-up status."""
import pandas as pd

from dashboard import data
from dashboard.data import ALL_SITES
from dashboard.exports import Export, export
from dashboard.filters import Filters


@export("patients", "the filtered patients with baseline fields and derived endpoints")
def patients_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    rows = data.query("patient_summary", snapshot, filters, scope, order_by=("patient_id",))
    return Export("patients", rows, len(rows))


@export("enrollment", "per site: patients enrolled in the filter against the target")
def enrollment_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    rows = data.query("enrollment", snapshot, filters, scope, order_by=("site_id",))
    rows = rows[["site_id", "site_name", "n_enrolled", "target_enrollment",
                 "first_enrollment_date", "last_enrollment_date"]]
    return Export("enrollment", rows, int(rows["n_enrolled"].sum()))


@export("accrual", "cumulative patients by month, per site and pooled (site_id 'all'), against targets")
def accrual_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    per_site = data.query("accrual_monthly", snapshot, filters, scope, order_by=("site_id", "month"))
    pooled = (per_site.groupby("month", as_index=False)
              .agg(n_enrolled=("n_enrolled", "sum"), cum_enrolled=("cum_enrolled", "sum"),
                   target_enrollment=("target_enrollment", "sum"))
              .assign(site_id="all", site_name="All sites"))
    rows = pd.concat([pooled, per_site], ignore_index=True)[
        ["site_id", "site_name", "month", "n_enrolled", "cum_enrolled", "target_enrollment"]]
    return Export("accrual", rows, int(per_site["n_enrolled"].sum()))


@export("baseline-table", "Table 1: baseline characteristics overall and by BCLC stage (long form)")
def baseline_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    from dashboard.analytics.baseline import baseline_table
    cohort = data.query("cohort", snapshot, filters, scope)
    return Export("baseline-table", baseline_table(cohort, by="bclc_stage"), len(cohort))


@export("followup-status", "follow-up status (alive on study, died, off study by reason) and median "
                           "follow-up by reverse Kaplan-Meier")
def followup_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    from dashboard.analytics.baseline import followup_status
    from dashboard.analytics.survival import median_followup
    cohort = data.query("cohort", snapshot, filters, scope)
    os_ = data.execute("select time_days, is_event from patient_endpoints where endpoint = 'os'",
                       snapshot, filters, scope)
    med, lo, hi = median_followup(os_["time_days"], os_["is_event"]) if len(os_) else (None, None, None)
    return Export("followup-status", followup_status(cohort), len(cohort),
                  {"median_followup_days": med, "median_followup_ci_lower_days": lo,
                   "median_followup_ci_upper_days": hi})
