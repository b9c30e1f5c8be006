"""Response exports (registered with @export; see dashboard/exports/__init__.py): waterfall,
response-summary (BOR counts, ORR and DCR), spider, swimmer and response-consistency.

Every export takes the response scope ('overall' or 'local') as `response_scope` (the command
line's --scope arrives under that name).

The page's swimmer plot does not read the `swimmer` export (every lane's marks: a million rows at
100,000 patients); it reads the lane order (`swimmer_lanes`: the ids sorted in SQL, cached) and
the marks of the lanes on the current page only (`swimmer_page_rows`), which are the rows of the
export for those lanes. Likewise the waterfall card does not read the `waterfall` export (a row
per evaluable patient) above MAX_BARS patients: `waterfall_bars` counts in SQL and loads only the
bars drawn. The response-summary export counts patients per group, BOR and evaluability in SQL.
"""
from __future__ import annotations

import numpy as np

from dashboard import data
from dashboard.access import MIN_GROUP, AccessDenied, is_small, shown_count
from dashboard.analytics import response as resp
from dashboard.data import ALL_SITES, Scope
from dashboard.exports import AGGREGATE, PATIENT, Export, Suppression, export, n_patients
from dashboard.filters import Filters
from dashboard.grouping import check_by, group_sql

OPTIONS = ("scope",)


def _scopes(sites, response_scope) -> tuple[Scope, str]:
    """(site scope, response scope), each checked; no site scope means every site."""
    return sites if sites is not None else ALL_SITES, resp.check_scope(response_scope)


def _patient_level(scope: Scope, name: str) -> None:
    """Refuse a helper that reads patient rows outside an export to a scope without patient-level
    access (the data seam would give it no row; this says why)."""
    if not scope.patient_level:
        raise AccessDenied(f"{name}: patient-level rows are not available to your role")


def best_response(snapshot, filters: Filters, sites: Scope, response_scope: str):
    """best_response rows of one scope, by patient id."""
    return data.execute("select * from best_response where scope = ? order by patient_id",
                        snapshot, filters, sites, params=[response_scope])


# Each bar's response implied by its measurements (mRECIST thresholds on the best % change, analysis plan:
# CR = every target at 0 mm (-100%), PR <= -30%, PD >= +20% (at the best scan the nadir before it is the
# baseline), else SD), its recorded response (the BOR) and whether the BOR contradicts the measurements: the
# data-quality rule of response_consistency (a recorded PD explained by a new lesion or non-target progression,
# or a recorded PR at 0 mm while a non-target lesion persists, is not a contradiction; a recorded NE is none),
# read at the bar's scan from response_consistency_all. Every later query selects from `flagged`.
FLAGGED_CTE = """
bars as (
    select b.scope, b.patient_id, b.site_id, b.bclc_stage, b.best_pct_change, b.best_visit, b.bor,
        b.not_evaluable_reason,
        case when b.best_pct_change is null then null
             when b.best_pct_change <= -100 then 'CR'
             when b.best_pct_change <= -30 then 'PR'
             when b.best_pct_change >= 20 then 'PD'
             else 'SD' end as implied_response,
        r.has_new_lesion, r.has_non_target_progression, r.has_non_target_present
    from best_response b
    left join response_consistency_all r
        on r.scope = b.scope and r.patient_id = b.patient_id and r.visit = b.best_visit
    where b.scope = $scope
),
flagged as (
    select *, bor as recorded_response,
        coalesce(implied_response is not null and bor <> 'NE' and bor <> implied_response
            and not (scope = 'overall' and bor = 'PD'
                     and (has_new_lesion is distinct from false or coalesce(has_non_target_progression, false)))
            and not (scope = 'overall' and bor = 'PR' and implied_response = 'CR'
                     and coalesce(has_non_target_present, false)), false) as contradicts
    from bars
)
"""
BAR_COLUMNS = "patient_id, site_id, bclc_stage, best_pct_change, best_visit, bor, implied_response, " \
              "recorded_response, contradicts"
# the columns the waterfall needs, evaluable rows first in plotting order (largest increase first,
# ties by patient id: resp.waterfall_rows then has nothing to sort), the not-evaluable rows after
WATERFALL_SQL = f"""
with {FLAGGED_CTE}
select {BAR_COLUMNS}, not_evaluable_reason
from flagged order by best_pct_change desc nulls last, patient_id
"""


def _scoped(view: str, snapshot, filters, sites, response_scope, order: str):
    # the view name is one of this module's constants, never user text; the scope is bound
    return data.execute(f"select * from {view} where scope = ? order by {order}",
                        snapshot, filters, sites, params=[response_scope])


# --- the waterfall for a role without patient-level access (a sponsor) -----------------------------
# a bar's best change, BOR and implied response only: no patient id, site, stage or visit; bars in the order drawn
DEIDENTIFIED_COLUMNS = ["best_pct_change", "bor", "implied_response", "recorded_response", "contradicts"]


def not_drawn_note(n_evaluable) -> str:
    return (f"Fewer than {MIN_GROUP} evaluable patients ({n_evaluable}) in the current filter: "
            "the waterfall is not drawn for your role.")


def _deidentified_counts(bars: dict, scope: Scope) -> dict:
    """A waterfall's counts as a suppressing scope may show them: 1-4 as "<5"."""
    return {"n_patients": shown_count(bars["n_patients"], scope),
            "n_evaluable": shown_count(bars["n_evaluable"], scope),
            "n_not_evaluable": shown_count(bars["n_not_evaluable"], scope),
            "not_evaluable_reasons": {k: shown_count(v, scope) for k, v in bars["not_evaluable_reasons"].items()},
            "bor_counts": {k: shown_count(v, scope) for k, v in bars["bor_counts"].items()},
            "implied_counts": {k: shown_count(v, scope) for k, v in bars.get("implied_counts", {}).items()},
            "n_contradicts": shown_count(bars.get("n_contradicts", 0), scope)}


def waterfall_deidentified(exp: Export, scope: Scope) -> Export:
    """The `waterfall` export a sponsor gets: the bars of every patient in the filter (the export
    computed over the pooled cohort) as drawn, with best change and BOR only; no bar when fewer than
    MIN_GROUP patients are evaluable; counts 1-4 shown as "<5"."""
    rows = exp.rows
    counts = _deidentified_counts({"n_patients": exp.n_patients, "n_evaluable": len(rows),
                                   "n_not_evaluable": exp.extra["n_not_evaluable"],
                                   "not_evaluable_reasons": exp.extra["not_evaluable_reasons"],
                                   "bor_counts": {}, "n_contradicts": exp.extra.get("n_contradicts", 0)}, scope)
    drawn = len(rows) >= MIN_GROUP
    extra = {"scope": exp.extra["scope"], "n_evaluable": counts["n_evaluable"],
             "n_not_evaluable": counts["n_not_evaluable"], "not_evaluable_reasons": counts["not_evaluable_reasons"],
             "n_contradicts": counts["n_contradicts"]}
    if not drawn:
        extra["not_drawn"] = not_drawn_note(counts["n_evaluable"])
    rows = rows[DEIDENTIFIED_COLUMNS] if drawn else rows[DEIDENTIFIED_COLUMNS].iloc[0:0]
    return Export("waterfall", rows.reset_index(drop=True), counts["n_patients"], extra)


@export("waterfall", "per evaluable patient: best % change in the sum of viable target diameters (mRECIST), "
                     "sorted as drawn, with BOR, the response the measurements imply and whether the BOR "
                     "contradicts them; n_not_evaluable", options=OPTIONS,
        level=PATIENT, deidentified=waterfall_deidentified)
def waterfall_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    best = data.execute(WATERFALL_SQL, snapshot, filters, sites, params={"scope": response_scope})
    reasons = resp.not_evaluable_counts(best)
    rows = resp.waterfall_rows(best)
    return Export("waterfall", rows, len(best),
                  {"scope": response_scope, "n_not_evaluable": sum(reasons.values()),
                   "not_evaluable_reasons": reasons, "n_contradicts": int(rows["contradicts"].sum())})


# --- the waterfall card: the bars it draws, not every patient's row ---------------------------------
# patients per BOR, not-evaluable reason and evaluability (a few rows)
WATERFALL_COUNTS_SQL = f"""
with {FLAGGED_CTE}
select bor, implied_response, contradicts, not_evaluable_reason, best_pct_change is not null as evaluable,
    count(*) as n
from flagged
group by all
"""
# every evaluable patient's bar, in plotting order (the waterfall export's rows)
WATERFALL_BARS_SQL = f"""
with {FLAGGED_CTE}
select {BAR_COLUMNS}
from flagged
where best_pct_change is not null
order by best_pct_change desc, patient_id
"""
# the bars at the given positions of that order (0-based), and the patient $highlight's
WATERFALL_SAMPLED_SQL = f"""
with {FLAGGED_CTE},
ranked as (
    select {BAR_COLUMNS},
        row_number() over (order by best_pct_change desc, patient_id) - 1 as position
    from flagged
    where best_pct_change is not null
)
select {BAR_COLUMNS}
from ranked
where position in (select unnest($positions::bigint[])) or patient_id = $highlight
order by position
"""


def waterfall_bars(snapshot, filters: Filters = Filters(), sites: Scope = ALL_SITES, response_scope=None,
                   highlight: str | None = None, max_bars: int | None = None) -> dict:
    """What the waterfall card shows the scope (`_waterfall_bars`). For a scope without patient-level
    access (a sponsor), the bars of every patient in the filter de-identified as the `waterfall`
    export's de-identified form: best change and BOR only, none when fewer than MIN_GROUP patients
    are evaluable (`withheld` is then True), counts 1-4 as "<5"."""
    sites, response_scope = _scopes(sites, response_scope)
    if sites.patient_level:
        return _waterfall_bars(snapshot, filters, sites, response_scope, highlight, max_bars)
    bars = _waterfall_bars(snapshot, filters, sites.pooled(), response_scope, None, max_bars)
    withheld = bars["n_evaluable"] < MIN_GROUP
    rows = None if withheld or bars["rows"] is None else bars["rows"][DEIDENTIFIED_COLUMNS].reset_index(drop=True)
    return {**_deidentified_counts(bars, sites), "rows": rows, "withheld": withheld}


def _waterfall_bars(snapshot, filters: Filters, sites: Scope, response_scope: str, highlight: str | None,
                    max_bars: int | None) -> dict:
    """The waterfall card's bars and counts over the scope's patients, without the `waterfall`
    export's row per patient (100,000 at the stress scale, most of the card's time to load and to
    cache): n_patients, n_evaluable,
    n_not_evaluable and not_evaluable_reasons (the export's n_patients, len(rows) and extra),
    bor_counts (evaluable patients per BOR) and rows, the bars the figure draws
    (figures.response.waterfall_bars_figure): the export's rows at the positions
    analytics.response.waterfall_positions gives for max_bars (figures.response.MAX_BARS), and the
    highlighted patient's. Above max_bars the highlighted patient is part of the query (the card is
    cached per highlight); up to it every bar is loaded and the highlight changes nothing. With no
    more patients in the filter than max_bars, one query: the export's (every bar is drawn)."""
    from dashboard.figures.response import MAX_BARS
    max_bars = MAX_BARS if max_bars is None else max_bars
    if n_patients(snapshot, filters, sites) <= max_bars:
        # few patients (the count is cached, and the banner asks for it too): one query, the
        # waterfall export's, every bar drawn
        best = data.execute(WATERFALL_SQL, snapshot, filters, sites, params={"scope": response_scope})
        rows = resp.waterfall_rows(best)
        reasons = resp.not_evaluable_counts(best)
        return {"n_patients": len(best), "n_evaluable": len(rows), "n_not_evaluable": sum(reasons.values()),
                "not_evaluable_reasons": reasons, "bor_counts": rows["bor"].value_counts().to_dict(),
                "implied_counts": rows["implied_response"].value_counts().to_dict(),
                "n_contradicts": int(rows["contradicts"].sum()), "rows": rows, "withheld": False}
    counts = data.execute(WATERFALL_COUNTS_SQL, snapshot, filters, sites, params={"scope": response_scope})
    evaluable = counts["evaluable"].to_numpy(dtype=bool)
    n = counts["n"].to_numpy(dtype=np.int64)
    bor = counts["bor"].to_numpy(dtype=object)
    n_evaluable = int(n[evaluable].sum())
    # as resp.not_evaluable_counts: the known reasons in their order, then any other, most first
    reasons = {r: 0 for r in resp.NOT_EVALUABLE_REASONS}
    other: dict[str, int] = {}
    for reason, k in zip(counts["not_evaluable_reason"].to_numpy(dtype=object)[~evaluable], n[~evaluable]):
        if reason is None or reason != reason:
            continue
        target = reasons if reason in reasons else other
        target[str(reason)] = target.get(str(reason), 0) + int(k)
    reasons.update(sorted(other.items(), key=lambda item: -item[1]))
    bor_counts: dict = {}
    for level, k in zip(bor[evaluable], n[evaluable]):
        bor_counts[level] = bor_counts.get(level, 0) + int(k)
    implied_counts: dict = {}
    for level, k in zip(counts["implied_response"].to_numpy(dtype=object)[evaluable], n[evaluable]):
        implied_counts[level] = implied_counts.get(level, 0) + int(k)
    n_contradicts = int(n[evaluable & counts["contradicts"].to_numpy(dtype=bool)].sum())
    positions = resp.waterfall_positions(n_evaluable, max_bars)
    if n_evaluable == 0:
        rows = None
    elif positions is None:
        rows = data.execute(WATERFALL_BARS_SQL, snapshot, filters, sites, params={"scope": response_scope})
    else:
        rows = data.execute(WATERFALL_SAMPLED_SQL, snapshot, filters, sites,
                            params={"scope": response_scope, "positions": positions.tolist(),
                                    "highlight": highlight})
    return {"n_patients": int(n.sum()), "n_evaluable": n_evaluable, "n_not_evaluable": sum(reasons.values()),
            "not_evaluable_reasons": reasons, "bor_counts": bor_counts, "implied_counts": implied_counts,
            "n_contradicts": n_contradicts, "rows": rows, "withheld": False}


# the patients of the filter counted per group (grouping.group_sql, the grouping bound as $by),
# BOR and evaluability: a few rows instead of one per patient (100,000 at the stress scale). The
# rows of best_response_all joined to cohort are the rows of best_response with their cohort
# fields (best_response itself would apply cohort twice: half the query's time)
SUMMARY_COUNTS_SQL = f"""
select {group_sql("c")} as "group", b.bor, b.best_pct_change is not null as evaluable, count(*) as n,
       count(*) filter (where b.n_scans_not_assessed > 0) as n_not_assessed,
       sum(b.n_scans_not_assessed) as n_scans_not_assessed
from best_response_all b
join cohort c using (patient_id)
where b.scope = $scope
group by all
"""


# withheld with the count they divide by when it is 1-4
SUMMARY_RATES = tuple(f"{r}{s}" for r in ("orr", "dcr") for s in ("", "_ci_lower", "_ci_upper"))
EVALUABLE_RATES = tuple(f"{r}_evaluable{s}" for r in ("orr", "dcr") for s in ("", "_ci_lower", "_ci_upper"))
SUMMARY_COUNTS = Suppression({"n": SUMMARY_RATES, "n_evaluable": EVALUABLE_RATES,
                              "cr": (), "pr": (), "sd": (), "pd": (), "ne": (),
                              "n_patients_not_assessed": (), "n_scans_not_assessed": ()})


def suppress_summary(exp: Export, scope: Scope) -> Export:
    """The response-summary rows a suppressing scope may see: a rate (with its CI) is withheld when
    its numerator (responders, controlled patients) or its denominator is 1-4, and every count
    from 1 to 4 is shown as "<5" (SUMMARY_COUNTS)."""
    rows = exp.rows.copy()
    value = {c: rows[c].to_numpy(dtype=float) for c in ("cr", "pr", "sd", "n_evaluable", "orr_evaluable",
                                                         "dcr_evaluable")}
    numerators = {"orr": value["cr"] + value["pr"], "dcr": value["cr"] + value["pr"] + value["sd"],
                  # the evaluable patients' responses are not a column: back from the rate, exactly
                  "orr_evaluable": np.round(value["orr_evaluable"] * value["n_evaluable"]),
                  "dcr_evaluable": np.round(value["dcr_evaluable"] * value["n_evaluable"])}
    for rate, x in numerators.items():
        small = np.array([is_small(v) for v in x.tolist()], dtype=bool)
        if small.any():
            for column in (rate, f"{rate}_ci_lower", f"{rate}_ci_upper"):
                rows[column] = rows[column].astype(object).where(~small, None)
    return SUMMARY_COUNTS(Export(exp.name, rows, exp.n_patients, exp.extra), scope)


@export("response-summary", "per group: BOR counts, ORR and DCR with exact 95% CIs over all patients and over "
                            "evaluable patients", options=("scope", "by"),
        level=AGGREGATE, suppress=suppress_summary)
def response_summary_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, by=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    by = check_by(by)
    counts = data.execute(SUMMARY_COUNTS_SQL, snapshot, filters, sites, params={"scope": response_scope, "by": by})
    # local scope: follow-ups whose treated lesions were not assessed apart (counted NE), and their patients
    return Export("response-summary", resp.response_summary_counts(counts, by), int(counts["n"].sum()),
                  {"scope": response_scope, "by": by,
                   "n_patients_not_assessed": int(counts["n_not_assessed"].sum()),
                   "n_scans_not_assessed": int(counts["n_scans_not_assessed"].fillna(0).sum())})


SPIDER_MAX_PATIENTS = 500

# The patients the spider plot draws: every evaluable patient (a waterfall bar, which is exactly
# the patients of spider_points), at most SPIDER_MAX_PATIENTS of them: a fixed pseudo-random sample
# ordered by the SHA-256 (hex) of the patient id, the same for every filter that contains the
# patient (best_response's sample_rank: that order, computed once per snapshot; hashing every id at
# each query was 34 of the query's 87 ms at 100,000 patients). Chosen here, before any point is
# loaded; n_evaluable counts them all.
SPIDER_SAMPLE_SQL = """
select patient_id, count(*) over () as n_evaluable
from best_response
where scope = ? and best_pct_change is not null
order by sample_rank
limit ?
"""
# One query: the sample above, then the points of the drawn patients only, read from
# spider_points_all (the drawn patients are in `cohort` already, so these are their rows of
# spider_points) through a hash join on the sample, with n_evaluable on every row. Every
# evaluable patient has points (best_pct_change is one of its pct_change), so no row means no
# evaluable patient.
SPIDER_SQL = f"""
with drawn as ({SPIDER_SAMPLE_SQL})
select p.* exclude (scope), d.n_evaluable
from spider_points_all p
join drawn d using (patient_id)
where p.scope = ?
order by p.patient_id, p.imaging_date
"""


@export("spider", "per evaluable patient and imaging visit: % change from baseline over time (days from the "
                  "first DEB-TACE), with BOR", options=OPTIONS,
        level=PATIENT)
def spider_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    # thousands of lines are unreadable and slow: above the cap a fixed sample, and the CSV holds
    # the same rows as the plot
    rows = data.execute(SPIDER_SQL, snapshot, filters, sites,
                        params=[response_scope, SPIDER_MAX_PATIENTS, response_scope])
    n_evaluable = int(rows["n_evaluable"].iloc[0]) if len(rows) else 0
    rows = rows.drop(columns=["n_evaluable"])
    return Export("spider", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_patients_drawn": int(rows["patient_id"].nunique()),
                   "n_patients_evaluable": n_evaluable, "max_patients": SPIDER_MAX_PATIENTS})


# marks of a lane by day; same-day marks of one kind by session number, then visit (so that a page
# of lanes and the export list a lane's marks in the same order)
SWIMMER_MARK_ORDER = "patient_id, day, session_number, visit"


# the lanes' patient ids in the page's order, sorted in SQL as resp.swimmer_order sorts them in
# numpy (ties by patient id; a missing time on study last; for 'bor' a missing or unknown BOR
# last): only the ids are loaded, not a row per lane to sort in Python
SWIMMER_BOR_RANK = "case bor " + " ".join(f"when '{b}' then {i}" for i, b in enumerate(resp.BOR_ORDER)) + \
    f" else {len(resp.BOR_ORDER)} end"
SWIMMER_LANE_ORDER = {
    "time_desc": "time_on_study_days desc nulls last, patient_id",
    "time_asc": "time_on_study_days asc nulls last, patient_id",
    "bor": f"{SWIMMER_BOR_RANK}, time_on_study_days desc nulls last, patient_id",
    "patient": "patient_id",
}
SWIMMER_LANE_ORDER_SQL = """
select patient_id
from swimmer_events
where scope = ? and event in ('death', 'last_contact')
order by {order}
"""


@export("swimmer", "per patient lane (first DEB-TACE to death or last contact): sessions, scans with their "
                   "response, first PD, death; lanes longest first", options=OPTIONS,
        level=PATIENT)
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
    _patient_level(sites, "swimmer")
    sort = sort if sort in resp.SWIMMER_SORTS else "time_desc"

    def compute():
        return join_lanes(data.execute(SWIMMER_LANE_ORDER_SQL.format(order=SWIMMER_LANE_ORDER[sort]), snapshot,
                                       filters, sites, params=[response_scope])["patient_id"].tolist())
    return split_lanes(cache.cached("swimmer-lanes", snapshot, filters, sites, compute,
                                    response_scope=response_scope, sort=sort))


LANE_SEPARATOR = "\x1f"         # ASCII unit separator


def join_lanes(ids: list[str]):
    """The lane order as stored in the cache: one text, the ids joined by LANE_SEPARATOR (a list of
    100,000 ids took 17 ms to pickle and 11 to read back; the text under 1 ms and its split about
    4); the list itself if an id holds that character."""
    joined = LANE_SEPARATOR.join(ids)
    return joined if joined.count(LANE_SEPARATOR) == max(len(ids) - 1, 0) else list(ids)


def split_lanes(stored) -> list[str]:
    """The ids join_lanes stored."""
    if isinstance(stored, list):
        return stored
    return stored.split(LANE_SEPARATOR) if stored else []


# the marks of the given lanes that are patients of `cohort` (so these are their rows of
# swimmer_events: a lane of a site outside the scope gets no mark), the ids joined as a list (a hash
# semi-join: list_contains over every mark of the snapshot was most of the query at 100,000 patients), in
# the order resp.swimmer_rows gives the export's rows (lanes longest first, ties by patient id;
# a lane's marks by day, then session < scan < first PD < lane end, then SWIMMER_MARK_ORDER's
# session number and visit), so they need no sorting in Python
SWIMMER_KIND_SQL = "case event " + " ".join(f"when '{e}' then {k}" for e, k in resp.SWIMMER_KIND.items()) + " end"
SWIMMER_PAGE_SQL = f"""
select * exclude (scope)
from swimmer_events_all
where scope = ? and patient_id in (
    select patient_id from cohort where patient_id in (select unnest(?::varchar[])))
order by time_on_study_days desc nulls last, patient_id, day nulls last, {SWIMMER_KIND_SQL} nulls last,
    session_number, visit
"""


def swimmer_page_rows(snapshot, filters: Filters = Filters(), sites: Scope = ALL_SITES, response_scope=None,
                      lanes=()):
    """The `swimmer` export's rows of the given lanes only (the lanes of one page), in the
    export's order: the marks of those lanes, fetched with the lane ids bound as a list."""
    sites, response_scope = _scopes(sites, response_scope)
    _patient_level(sites, "swimmer")
    return data.execute(SWIMMER_PAGE_SQL, snapshot, filters, sites, params=[response_scope, [str(p) for p in lanes]])


CONSISTENCY_COLUMNS = ["patient_id", "site_id", "bclc_stage", "visit", "imaging_date", "recorded", "implied",
                       "sum_mm", "baseline_mm", "nadir_before_mm", "pct_change", "pct_from_nadir"]
# patients checked = patients with at least one row of response_consistency (a cheap count: its
# rows come from response_consistency_all, computed once per snapshot)
CHECKED_SQL = """
select count(distinct patient_id) as n
from response_consistency
where scope = ?
"""
# the discrepant scans only (the filter on is_discrepant is pushed into the view, so the checks for
# new and non-target lesions run on the candidate scans only), with the count of patients checked
# on every row: one query instead of two (one binding and planning of the views). The count is
# CHECKED_SQL's, written as the patients of `cohort` having a row of response_consistency_all in
# the scope (the rows of response_consistency are those of cohort's patients): cheaper than a
# distinct count over every checked scan. Only when no scan disagrees does it need CHECKED_SQL.
CONSISTENCY_SQL = f"""
select {", ".join(CONSISTENCY_COLUMNS)},
    (select count(*)
     from cohort c
     where exists (select 1 from response_consistency_all r
                   where r.scope = $scope and r.patient_id = c.patient_id)) as n_checked
from response_consistency
where scope = $scope and is_discrepant
order by patient_id, imaging_date, visit
"""


@export("response-consistency", "scans whose recorded response disagrees with the target-lesion response "
                                "implied by the measurements (mRECIST)", options=OPTIONS,
        level=PATIENT)
def consistency_export(snapshot, filters=Filters(), sites=ALL_SITES, response_scope=None, **_):
    sites, response_scope = _scopes(sites, response_scope)
    rows = data.execute(CONSISTENCY_SQL, snapshot, filters, sites, params={"scope": response_scope})
    if len(rows):
        n_checked = int(rows["n_checked"].iloc[0])
    else:
        n_checked = int(data.execute(CHECKED_SQL, snapshot, filters, sites, params=[response_scope])["n"].iloc[0])
    rows = rows.drop(columns=["n_checked"])
    return Export("response-consistency", rows, n_patients(snapshot, filters, sites),
                  {"scope": response_scope, "n_patients_checked": n_checked,
                   "n_patients_flagged": int(rows["patient_id"].nunique())})
