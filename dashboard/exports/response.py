"""Response exports (registered with @export; see dashboard/exports/__init__.py): waterfall,
response-summary (BOR counts, ORR and DCR), spider, swimmer and response-consistency.

Every export takes the response scope ('overall' or 'local') as `response_scope` (the command
line's --scope arrives under that name).

The page's swimmer plot does not read the `swimmer` export (every lane's marks: a million rows at
100,000 patients); it reads the lane order (`swimmer_lanes`, one small row per patient, cached)
and the marks of the lanes on the current page only (`swimmer_page_rows`), which are the rows of
the export for those lanes.
"""
from __future__ import annotations

from dashboard import data
from dashboard.analytics import response as resp
from dashboard.data import ALL_SITES, Scope
from dashboard.exports import Export, export, n_patients
from dashboard.filters import Filters
from dashboard.grouping import GROUPINGS, check_by

OPTIONS = ("scope",)


def _scopes(sites, response_scope) -> tuple[Scope, str]:
    """(site scope, response scope), each checked; no site scope means every site."""
    return sites if sites is not None else ALL_SITES, resp.check_scope(response_scope)


def best_response(snapshot, filters: Filters, sites: Scope, response_scope: str):
    """best_response rows of one scope, by patient id."""
    return data.execute("select * from best_response where scope = ? order by patient_id",
                        snapshot, filters, sites, params=[response_scope])


# the columns the waterfall needs, evaluable rows first in plotting order (largest increase first,
# ties by patient id: resp.waterfall_rows then has nothing to sort), the not-evaluable rows after
WATERFALL_SQL = """
select patient_id, site_id, bclc_stage, best_pct_change, best_visit, bor, not_evaluable_reason
from best_response where scope = ? order by best_pct_change desc nulls last, patient_id
"""


def _scoped(view: str, snapshot, filters, sites, response_scope, order: str):
    # the view name is one of this module's constants, never user text; the scope is bound
    return data.execute(f"select * from {view} where scope = ? order by {order}",
                        snapshot, filters, sites, params=[response_scope])


@export("waterfall", "per evaluable patient: best % change in the sum of viable target diameters (mRECIST), "
                     "sorted as drawn, with BOR; n_not_evaluable", options=OPTIONS)
def waterfall_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    best = data.execute(WATERFALL_SQL, snapshot, filters, sites, params=[response_scope])
    reasons = resp.not_evaluable_counts(best)
    return Export("waterfall", resp.waterfall_rows(best), len(best),
                  {"scope": response_scope, "n_not_evaluable": sum(reasons.values()),
                   "not_evaluable_reasons": reasons})


@export("response-summary", "per group: BOR counts, ORR and DCR with exact 95% CIs over all patients and over "
                            "evaluable patients", options=("scope", "by"))
def response_summary_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, by=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    by = check_by(by)
    # one row per patient: BOR, evaluability and the grouping field only (a column name from the
    # fixed GROUPINGS list, never user text; the scope is bound)
    field = f", c.{by}" if by in GROUPINGS and by != "none" else ""
    best = data.execute(f"select b.patient_id, b.bor, b.best_pct_change{field} from best_response b "
                        "join cohort c using (patient_id) where b.scope = ? order by b.patient_id",
                        snapshot, filters, sites, params=[response_scope])
    cohort = best[["patient_id"] + ([by] if field else [])]
    return Export("response-summary", resp.response_summary(best, cohort, by), len(best),
                  {"scope": response_scope, "by": by})


SPIDER_MAX_PATIENTS = 500

# The patients the spider plot draws: every evaluable patient (a waterfall bar, which is exactly
# the patients of spider_points), at most SPIDER_MAX_PATIENTS of them: a fixed pseudo-random sample
# ordered by the SHA-256 (hex) of the patient id, the same for every filter that contains the
# patient. Chosen here, before any point is loaded; n_evaluable counts them all.
SPIDER_SAMPLE_SQL = """
select patient_id, count(*) over () as n_evaluable
from best_response
where scope = ? and best_pct_change is not null
order by sha256(patient_id)
limit ?
"""


@export("spider", "per evaluable patient and imaging visit: % change from baseline over time (days from the "
                  "first DEB-TACE), with BOR", options=OPTIONS)
def spider_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    # thousands of lines are unreadable and slow: above the cap a fixed sample, and the CSV holds
    # the same rows as the plot
    drawn = data.execute(SPIDER_SAMPLE_SQL, snapshot, filters, sites, params=[response_scope, SPIDER_MAX_PATIENTS])
    n_evaluable = int(drawn["n_evaluable"].iloc[0]) if len(drawn) else 0
    rows = data.execute("select * exclude (scope) from spider_points where scope = ? and list_contains(?, patient_id) "
                        "order by patient_id, imaging_date", snapshot, filters, sites,
                        params=[response_scope, drawn["patient_id"].tolist()])
    return Export("spider", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_patients_drawn": int(rows["patient_id"].nunique()),
                   "n_patients_evaluable": n_evaluable, "max_patients": SPIDER_MAX_PATIENTS})


# marks of a lane by day; same-day marks of one kind by session number, then visit (so that a page
# of lanes and the export list a lane's marks in the same order)
SWIMMER_MARK_ORDER = "patient_id, day, session_number, visit"
# one row per lane: its end mark (every lane has exactly one, 'death' or 'last_contact')
SWIMMER_LANES_SQL = """
select patient_id, time_on_study_days, bor
from swimmer_events
where scope = ? and event in ('death', 'last_contact')
"""


@export("swimmer", "per patient lane (first DEB-TACE to death or last contact): sessions, scans with their "
                   "response, first PD, death; lanes longest first", options=OPTIONS)
def swimmer_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    events = _scoped("swimmer_events", snapshot, filters, sites, response_scope, SWIMMER_MARK_ORDER)
    rows = resp.swimmer_rows(events)
    return Export("swimmer", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_lanes": int(rows["patient_id"].nunique())})


def swimmer_lanes(snapshot, filters: Filters = Filters(), sites: Scope = ALL_SITES, response_scope=None,
                  sort: str = "time_desc") -> list[str]:
    """Every lane's patient id in the page's order (`resp.swimmer_order`), computed once per
    snapshot, filters, site scope, response scope and order (dashboard/cache.py): a page turn
    reads this list, never the marks of every lane."""
    from dashboard import cache
    sites, response_scope = _scopes(sites, response_scope)
    sort = sort if sort in resp.SWIMMER_SORTS else "time_desc"

    def compute():
        lanes = data.execute(SWIMMER_LANES_SQL, snapshot, filters, sites, params=[response_scope])
        return resp.swimmer_order(lanes, sort) if len(lanes) else []
    return cache.cached("swimmer-lanes", snapshot, filters, sites, compute, response_scope=response_scope, sort=sort)


def swimmer_page_rows(snapshot, filters: Filters = Filters(), sites: Scope = ALL_SITES, response_scope=None,
                      lanes=()):
    """The `swimmer` export's rows of the given lanes only (the lanes of one page), in the
    export's order: the marks of those lanes, fetched with the lane ids bound as a list."""
    sites, response_scope = _scopes(sites, response_scope)
    events = data.execute(f"select * from swimmer_events where scope = ? and list_contains(?, patient_id) "
                          f"order by {SWIMMER_MARK_ORDER}", snapshot, filters, sites,
                          params=[response_scope, [str(p) for p in lanes]])
    return resp.swimmer_rows(events)


CONSISTENCY_COLUMNS = ["patient_id", "site_id", "bclc_stage", "visit", "imaging_date", "recorded", "implied",
                       "sum_mm", "baseline_mm", "nadir_before_mm", "pct_change", "pct_from_nadir"]
# the discrepant scans only: the filter on is_discrepant is pushed into the view, so the checks
# for new and non-target lesions run on the candidate scans only
CONSISTENCY_SQL = f"""
select {", ".join(CONSISTENCY_COLUMNS)}
from response_consistency
where scope = ? and is_discrepant
order by patient_id, imaging_date, visit
"""
# patients checked = patients with at least one row of response_consistency (a cheap count: its
# rows come from response_consistency_all, computed once per snapshot)
CHECKED_SQL = """
select count(distinct patient_id) as n
from response_consistency
where scope = ?
"""


@export("response-consistency", "scans whose recorded response disagrees with the target-lesion response "
                                "implied by the measurements (mRECIST)", options=OPTIONS)
def consistency_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    rows = data.execute(CONSISTENCY_SQL, snapshot, filters, sites, params=[response_scope])
    n_checked = int(data.execute(CHECKED_SQL, snapshot, filters, sites, params=[response_scope])["n"].iloc[0])
    return Export("response-consistency", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_patients_checked": n_checked,
                   "n_patients_flagged": int(rows["patient_id"].nunique())})
