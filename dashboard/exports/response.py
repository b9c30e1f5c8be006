"""Response exports (registered with @export; see dashboard/exports/__init__.py): waterfall,
response-summary (BOR counts, ORR and DCR), spider, swimmer and response-consistency.

Every export takes the response scope ('overall' or 'local') as `response_scope` (the command
line's --scope arrives under that name).
"""
from __future__ import annotations

import hashlib

from dashboard import data
from dashboard.analytics import response as resp
from dashboard.data import ALL_SITES, Scope
from dashboard.exports import Export, export, n_patients
from dashboard.filters import Filters
from dashboard.grouping import check_by

OPTIONS = ("scope",)


def _scopes(sites, response_scope) -> tuple[Scope, str]:
    """(site scope, response scope), each checked; no site scope means every site."""
    return sites if sites is not None else ALL_SITES, resp.check_scope(response_scope)


def best_response(snapshot, filters: Filters, sites: Scope, response_scope: str):
    """best_response rows of one scope, by patient id."""
    return data.execute("select * from best_response where scope = ? order by patient_id",
                        snapshot, filters, sites, params=[response_scope])


def _scoped(view: str, snapshot, filters, sites, response_scope, order: str):
    # the view name is one of this module's constants, never user text; the scope is bound
    return data.execute(f"select * from {view} where scope = ? order by {order}",
                        snapshot, filters, sites, params=[response_scope])


@export("waterfall", "per evaluable patient: best % change in the sum of viable target diameters (mRECIST), "
                     "sorted as drawn, with BOR; n_not_evaluable", options=OPTIONS)
def waterfall_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    best = best_response(snapshot, filters, sites, response_scope)
    reasons = resp.not_evaluable_counts(best)
    return Export("waterfall", resp.waterfall_rows(best), len(best),
                  {"scope": response_scope, "n_not_evaluable": sum(reasons.values()),
                   "not_evaluable_reasons": reasons})


@export("response-summary", "per group: BOR counts, ORR and DCR with exact 95% CIs over all patients and over "
                            "evaluable patients", options=("scope", "by"))
def response_summary_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, by=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    by = check_by(by)
    best = best_response(snapshot, filters, sites, response_scope)
    cohort = data.query("cohort", snapshot, filters, sites)
    return Export("response-summary", resp.response_summary(best, cohort, by), len(best),
                  {"scope": response_scope, "by": by})


SPIDER_MAX_PATIENTS = 500


@export("spider", "per evaluable patient and imaging visit: % change from baseline over time (days from the "
                  "first DEB-TACE), with BOR", options=OPTIONS)
def spider_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    rows = _scoped("spider_points", snapshot, filters, sites, response_scope, "patient_id, imaging_date")
    rows = rows.drop(columns=["scope"])
    evaluable = rows["patient_id"].unique()
    if len(evaluable) > SPIDER_MAX_PATIENTS:
        # thousands of lines are unreadable and slow: a fixed pseudo-random sample, the same for
        # every filter that contains the patient (hash of the id), and the CSV holds the same rows
        keep = sorted(evaluable, key=lambda p: hashlib.sha256(p.encode()).hexdigest())[:SPIDER_MAX_PATIENTS]
        rows = rows[rows["patient_id"].isin(keep)].reset_index(drop=True)
    return Export("spider", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_patients_drawn": int(rows["patient_id"].nunique()),
                   "n_patients_evaluable": int(len(evaluable)), "max_patients": SPIDER_MAX_PATIENTS})


@export("swimmer", "per patient lane (first DEB-TACE to death or last contact): sessions, scans with their "
                   "response, first PD, death; lanes longest first", options=OPTIONS)
def swimmer_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    events = _scoped("swimmer_events", snapshot, filters, sites, response_scope, "patient_id, day")
    rows = resp.swimmer_rows(events)
    return Export("swimmer", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_lanes": int(rows["patient_id"].nunique())})


@export("response-consistency", "scans whose recorded response disagrees with the target-lesion response "
                                "implied by the measurements (mRECIST)", options=OPTIONS)
def consistency_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    rows = _scoped("response_consistency", snapshot, filters, sites, response_scope, "patient_id, imaging_date")
    rows = rows[rows["is_discrepant"]][
        ["patient_id", "site_id", "bclc_stage", "visit", "imaging_date", "recorded", "implied", "sum_mm",
         "baseline_mm", "nadir_before_mm", "pct_change", "pct_from_nadir"]].reset_index(drop=True)
    n_checked = int(data.execute("select count(distinct patient_id) as n from response_consistency where scope = ?",
                                 snapshot, filters, sites, params=[response_scope])["n"].iloc[0])
    return Export("response-consistency", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_patients_checked": n_checked,
                   "n_patients_flagged": int(rows["patient_id"].nunique())})
