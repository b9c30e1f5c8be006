"""Safety exports: CTCAE adverse-event incidence by worst grade (registered with @export).

`ae-incidence` is the data of the three incidence cards of the Safety page: the term-by-grade heatmap (level term, no
grouping), the term-by-group heatmap (level term, --by a grouping) and the incidence table.

The counting is done in DuckDB: the worst grade per patient per term, per system organ class and
overall, then the patients per worst grade and group. Without an onset window (the page's default)
the worst grades come from `ae_worst_grade_all`, taken once per snapshot for every patient and kind
of episodes (COUNTS_NO_WINDOW_SQL); with a window they are taken per query over the counted
episodes of `ae_episodes` (COUNTS_SQL). Python only lays the few hundred counts out as the export's
grid (dashboard/analytics/safety.py `incidence_from_counts`). The pandas computation over the
`ae_worst_grade` view (`incidence`) is the computation it replaced. The export's numbers are tested by
hand (tests/test_safety_page.py, tests/test_safety_hand.py) and against plain pandas on CDISC ADAE data.

`ae-listing` is the listing of serious safety signals (one row per adverse-event episode, patient level), with
a de-identified form for a role without patient-level access: events and patients per term x grade x serious.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard import data
from dashboard.analytics.safety import COLUMNS, check_level, incidence_from_counts
from dashboard.data import ALL_SITES
from dashboard.access import shown_count
from dashboard.exports import AGGREGATE, PATIENT, Export, Suppression, export
from dashboard.exports import n_patients as exports_n_patients
from dashboard.exports.complement import to_withhold
from dashboard.filters import Filters
from dashboard.grouping import ALL, check_by, group_sql, ordered_levels


# Patients by worst grade per (level, soc, term, group), level 'term' (per soc_key, term_key), 'soc' (per
# soc_key) or 'overall', from `worst`: one row per patient per level item with a counted episode (its group,
# worst grade, whether one was serious / treatment-related, and the number of counted episodes). Only items
# with a patient have rows: the export fills the zeros. Names are looked up from the integer codes at the end.
COUNT_BY_GROUP = """
counts as (
    select level, soc_key, term_key, "group",
           count(*) as n_patients_any,
           count_if(worst_grade = 1) as grade_1,
           count_if(worst_grade = 2) as grade_2,
           count_if(worst_grade = 3) as grade_3,
           count_if(worst_grade = 4) as grade_4,
           count_if(worst_grade = 5) as grade_5,
           count_if(any_serious) as n_serious,
           count_if(any_related) as n_related,
           sum(n_episodes)::bigint as n_events
    from worst
    group by level, soc_key, term_key, "group"
),

names as (
    select term_key, any_value(soc_key) as soc_key, any_value(soc) as soc, any_value(term) as term
    from ae_episodes_all
    group by term_key
)

select
    c.level,
    s.soc,
    t.term,
    c."group",
    c.n_patients_any, c.grade_1, c.grade_2, c.grade_3, c.grade_4, c.grade_5,
    c.n_serious, c.n_related, c.n_events
from counts c
left join (select soc_key, any_value(soc) as soc from names group by soc_key) s on s.soc_key = c.soc_key
left join names t on t.term_key = c.term_key
"""

# Any episode options: the worst grades per patient, taken over the counted episodes of ae_episodes (which
# reads the episode options), grouped by the integer codes of ae_episodes_all.
COUNTS_SQL = f"""
with episodes as (
    select e.patient_key, e.soc_key, e.term_key, e.grade, e.is_serious, e.is_treatment_related,
           {group_sql("e")} as "group"
    from ae_episodes e
),

per_term as (
    select patient_key, any_value("group") as "group", any_value(soc_key) as soc_key, term_key,
           max(grade) as worst_grade, bool_or(is_serious) as any_serious,
           bool_or(is_treatment_related) as any_related, count(*) as n_episodes
    from episodes
    group by patient_key, term_key
),

per_soc as (
    select patient_key, any_value("group") as "group", soc_key,
           max(worst_grade) as worst_grade, bool_or(any_serious) as any_serious,
           bool_or(any_related) as any_related, sum(n_episodes) as n_episodes
    from per_term
    group by patient_key, soc_key
),

per_patient as (
    select patient_key, any_value("group") as "group",
           max(worst_grade) as worst_grade, bool_or(any_serious) as any_serious,
           bool_or(any_related) as any_related, sum(n_episodes) as n_episodes
    from per_soc
    group by patient_key
),

worst as (
    select 'term' as level, soc_key, term_key, "group", worst_grade, any_serious, any_related, n_episodes
    from per_term
    union all
    select 'soc', soc_key, null, "group", worst_grade, any_serious, any_related, n_episodes from per_soc
    union all
    select 'overall', null, null, "group", worst_grade, any_serious, any_related, n_episodes from per_patient
),
""" + COUNT_BY_GROUP

# No onset window (the page's default): the same worst grades, taken once per snapshot for every patient and
# every kind of episodes (ae_worst_grade_all); this keeps the patients of the filter and the kind of the
# episode options (the variables ae_episodes reads: related only, serious only, or both).
COUNTS_NO_WINDOW_SQL = f"""
with options as (
    select coalesce(getvariable('ae_related_only'), false) as related_only,
           coalesce(getvariable('ae_serious_only'), false) as serious_only
),

patients as (   -- the patients of the filter with any episode, and their group
    select w.patient_key, {group_sql("c")} as "group"
    from ae_worst_grade_all w
    join cohort c using (patient_id)
    where w.level = 'overall'
),

kinds as (
    select w.level, w.soc_key, w.term_key, p."group",
           case when related_only and serious_only then w.worst_grade_related_serious
                when related_only then w.worst_grade_related
                when serious_only then w.worst_grade_serious
                else w.worst_grade end as worst_grade,
           case when related_only and serious_only then w.n_related_serious
                when related_only then w.n_related
                when serious_only then w.n_serious
                else w.n_episodes end as n_episodes,
           -- at least one counted episode was serious / treatment-related
           case when serious_only then true
                when related_only then w.n_related_serious > 0
                else w.n_serious > 0 end as any_serious,
           case when related_only then true
                when serious_only then w.n_related_serious > 0
                else w.n_related > 0 end as any_related
    from ae_worst_grade_all w
    join patients p using (patient_key)
    cross join options
),

worst as (
    select * from kinds where n_episodes > 0
),
""" + COUNT_BY_GROUP

# per group: the patients in the filter (the denominator, patients without any AE included) and
# their DEB-TACE sessions (the exposure of events per 100 sessions; not narrowed by the options)
GROUPS_SQL = f"""
with patients as (
    select c.patient_id, {group_sql("c")} as "group"
    from cohort c
),

sessions as (
    select p."group", count(*) as n_sessions
    from stg_treatments t
    join patients p using (patient_id)
    group by p."group"
),

final as (
    select p."group", count(*) as denominator, coalesce(any_value(s.n_sessions), 0)::bigint as n_sessions
    from patients p
    left join sessions s using ("group")
    group by p."group"
)

select * from final
"""


def episode_variables(related_only=False, serious_only=False, within_days=None) -> dict:
    """The DuckDB variables of the episode options, read by queries/ae_episodes.sql (and, for the kind
    of episodes, by COUNTS_NO_WINDOW_SQL); None = no restriction. Always the full set, so a value
    bound by an earlier query on the same cursor never lingers."""
    if within_days is not None and int(within_days) < 0:
        raise ValueError(f"--within-days must be 0 or more, got {within_days}")
    return {"ae_related_only": True if related_only else None,
            "ae_serious_only": True if serious_only else None,
            "ae_within_days": int(within_days) if within_days is not None else None}


NO_EPISODE_FILTER = episode_variables()


def counts_sql(variables: dict) -> str:
    """The counting query for these episode variables: from the per-snapshot worst grades unless an
    onset window is set (the window depends on each episode's days from its session)."""
    return COUNTS_SQL if variables.get("ae_within_days") is not None else COUNTS_NO_WINDOW_SQL


def incidence_counts(snapshot, filters=Filters(), scope=ALL_SITES, by="none", variables=NO_EPISODE_FILTER,
                     sql: str | None = None):
    """(counts, groups): the counting query (`counts_sql`, or `sql`) and GROUPS_SQL for a grouping
    and the episode variables. Cached by snapshot, filters, scope, grouping and variables. With no
    grouping they are the counts by site summed over the sites (`pooled`): each patient is in one
    site, so the sums are the counts of all patients, and the Safety page's three cards (two
    without grouping, the heatmap by site by default) share one pair of queries."""
    by = check_by(by)
    if sql is not None:
        return _counts_and_groups(snapshot, filters, scope, by, variables, sql)
    from dashboard import cache
    source = "site_id" if by == "none" else by
    counts, groups = cache.cached("ae-counts", snapshot, filters, scope,
                                  lambda: _counts_and_groups(snapshot, filters, scope, source, variables),
                                  by=source, **variables)
    return pooled(counts, groups) if by == "none" else (counts, groups)


def _counts_and_groups(snapshot, filters, scope, by, variables, sql=None):
    params = {"by": by}
    groups = data.execute(GROUPS_SQL, snapshot, filters, scope, params=params)
    # the seam binds the episode variables for this query only (and resets them for the next)
    counts = data.execute(sql or counts_sql(variables), snapshot, filters, scope, params=params,
                          variables=variables)
    return counts, groups


COUNTED = ["n_patients_any", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5", "n_serious", "n_related",
           "n_events"]


def pooled(counts, groups):
    """Counts and groups of a grouping summed over its groups: one group, 'all' (no grouping).
    A few hundred rows: summed in plain Python (a pandas groupby costs more than the sums)."""
    sums: dict[tuple, list[int]] = {}
    for level, soc, term, *values in counts[["level", "soc", "term", *COUNTED]].itertuples(index=False):
        key = (level, soc if isinstance(soc, str) else None, term if isinstance(term, str) else None)
        total = sums.setdefault(key, [0] * len(COUNTED))
        for i, v in enumerate(values):
            total[i] += int(v)
    keys = list(sums)
    out = pd.DataFrame({"level": [k[0] for k in keys], "soc": [k[1] for k in keys], "term": [k[2] for k in keys],
                        "group": ALL, **{c: np.array([sums[k][i] for k in keys], dtype="int64")
                                          for i, c in enumerate(COUNTED)}})
    if len(groups):
        groups = pd.DataFrame({"group": [ALL], "denominator": [int(groups["denominator"].sum())],
                               "n_sessions": [int(groups["n_sessions"].sum())]})
    return out, groups


# patients by worst grade 3, 4 or 5: the group heatmap's "grade >= 3" measure, counted here so that a
# suppressing scope gets it as one cell ("<5" or the count), not as a sum of two suppressed cells
GRADE_3_PLUS = "n_grade_3_plus"
ROW_COLUMNS = COLUMNS + [GRADE_3_PLUS]
AE_COUNTS = ("n_patients_any", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5", "n_grade_3_4", "n_grade_5",
             GRADE_3_PLUS, "n_serious", "n_related", "denominator", "n_patients_with_ae")
# a suppressing scope: every patient count of 1-4 is "<5"; events and sessions of 1-4 too, with the
# rate per 100 sessions computed from them
AE_SUPPRESSION = Suppression({c: () for c in AE_COUNTS} | {"n_events": ("events_per_100_sessions",),
                                                           "n_sessions": ("events_per_100_sessions",)})
# the sums within a row: any grade = grades 1-5, grade 3-4, grade >= 3, grade 5
GRADE_SUMS = [("n_patients_any", ["grade_1", "grade_2", "grade_3", "grade_4", "grade_5"]),
              ("n_grade_3_4", ["grade_3", "grade_4"]), (GRADE_3_PLUS, ["grade_3", "grade_4", "grade_5"]),
              ("n_grade_5", ["grade_5"])]


def suppress_incidence(exp: Export, scope) -> Export:
    """ae-incidence for a suppressing scope: counts of 1-4 as "<5" (AE_SUPPRESSION), then in each row
    one more count of a sum withheld (None) wherever a "<5" could be worked out from the others
    (dashboard/exports/complement.py)."""
    exp = AE_SUPPRESSION(exp, scope)
    rows = exp.rows
    columns = list(dict.fromkeys(c for total, parts in GRADE_SUMS for c in (total, *parts)))
    hidden: dict[str, list] = {}
    for label, values in zip(rows.index, rows[columns].to_dict("records")):
        for column in to_withhold(values, GRADE_SUMS):
            hidden.setdefault(column, []).append(label)
    for column, labels in hidden.items():
        rows[column] = rows[column].astype(object)
        rows.loc[labels, column] = None
    return exp


@export("ae-incidence", "CTCAE adverse events: patients by worst grade per term or SOC (--level), per group (--by "
                        "site_id|bclc_stage|child_pugh_class|none), any grade, grade 3-4, grade 5, serious, related, "
                        "events per 100 sessions; --related-only, --serious-only, --within-days N",
        options=("level", "by", "related_only", "serious_only", "within_days"),
        level=AGGREGATE, suppress=suppress_incidence)
def ae_incidence_export(snapshot, filters=Filters(), scope=ALL_SITES, level="term", by="none",
                        related_only=False, serious_only=False, within_days=None, **_):
    level, by = check_level(level), check_by(by)
    variables = episode_variables(related_only, serious_only, within_days)
    counts, groups = incidence_counts(snapshot, filters, scope, by, variables)
    n_patients = int(groups["denominator"].sum())
    order = ordered_levels(by, groups["group"]) if n_patients else []
    rows = incidence_from_counts(counts, groups, level, order)
    rows[GRADE_3_PLUS] = rows["n_grade_3_4"] + rows["n_grade_5"]
    overall = counts[counts["level"] == "overall"]
    return Export("ae-incidence", rows[ROW_COLUMNS], n_patients, {
        "level": level, "by": by, "related_only": bool(related_only), "serious_only": bool(serious_only),
        "within_days": variables["ae_within_days"],
        "n_patients_with_ae": int(overall["n_patients_any"].sum()),
        "n_events": int(overall["n_events"].sum()), "n_sessions": int(groups["n_sessions"].sum()),
    })


# --- the listing of serious safety signals ----------------------------------------------------------
LISTING_COLUMNS = ["patient_id", "site_id", "term", "soc", "grade", "is_serious", "onset_date",
                   "days_since_last_session", "session_number", "is_treatment_related", "resolution_date"]
GRADE_CHOICES = (1, 2, 3, 4, 5)
DEFAULT_SELECTION = "every grade 5 event, and every serious event of grade 3 or 4"

# the episodes the options select; $min_grade NULL = the default selection (grade 5, or grade >= 3 and serious)
SELECTED = """
where (case when $min_grade is null then grade = 5 or (grade >= 3 and is_serious) else grade >= $min_grade end)
  and (not $serious_only or is_serious)
"""
# the selected episodes of the patients in the filter and scope, most severe first
LISTING_SQL = f"""
select {", ".join(LISTING_COLUMNS)}
from ae_listing
{SELECTED}
order by grade desc, onset_date, patient_id, ae_id
"""
# the card's counts of the selection (its rows are the first $limit of LISTING_SQL)
LISTING_SUMMARY_SQL = f"""
select count(*) as n_events, count(distinct patient_id) as n_patients_listed,
       coalesce(count_if(grade = 5), 0) as n_grade_5
from ae_listing
{SELECTED}
"""
# the de-identified card: events and patients per term, grade and seriousness
LISTING_COUNTS_SQL = f"""
select soc, term, grade, is_serious, count(*) as n_events, count(distinct patient_id) as n_patients
from ae_listing
{SELECTED}
group by soc, term, grade, is_serious
order by grade desc, is_serious desc, soc, term
"""


def check_min_grade(min_grade) -> int | None:
    """--min-grade N: an integer grade 1-5, or None for the default selection; ValueError otherwise."""
    if min_grade is None or min_grade == "":
        return None
    try:
        grade = int(min_grade)
    except (TypeError, ValueError):
        grade = None
    if grade not in GRADE_CHOICES or isinstance(min_grade, bool) or str(grade) != str(min_grade).strip():
        raise ValueError(f"--min-grade must be a CTCAE grade 1-5, got {str(min_grade)[:20]!r}")
    return grade


def listing_selection(min_grade=None, serious_only=False) -> str:
    """What the listing holds, in words: 'every grade 5 event, and ...'; 'serious events of grade >= 4'."""
    min_grade = check_min_grade(min_grade)
    if min_grade is None:
        return "every serious event of grade 3, 4 or 5" if serious_only else DEFAULT_SELECTION
    kind = "serious events" if serious_only else "events"
    return f"every grade 5 {kind[:-1]}" if min_grade == 5 else f"every {kind[:-1]} of grade {min_grade} or more"


# the de-identified listing: per term, grade and seriousness, the events and the patients with one
DEIDENTIFIED_KEYS = ["soc", "term", "grade", "is_serious"]
DEIDENTIFIED_COLUMNS = DEIDENTIFIED_KEYS + ["n_events", "n_patients"]


def listing_deidentified(exp: Export, scope) -> Export:
    """The `ae-listing` a role without patient-level access (a sponsor) gets: no patient, site or date,
    only events and patients per (soc, term, grade, is_serious) of the same selection, most severe
    first, every count of 1-4 as "<5". No total of the cells is given, so no "<5" can be worked out by
    subtraction within the export (a patient may be in several cells: the patients do not add up)."""
    rows = exp.rows
    counts = (rows.groupby(DEIDENTIFIED_KEYS, as_index=False)
              .agg(n_events=("patient_id", "size"), n_patients=("patient_id", "nunique"))
              .sort_values(["grade", "is_serious", "soc", "term"], ascending=[False, False, True, True],
                           kind="stable").reset_index(drop=True))
    for column in ("n_events", "n_patients"):
        counts[column] = [shown_count(int(n), scope) for n in counts[column]]
    extra = {k: exp.extra[k] for k in ("min_grade", "serious_only", "selection")}
    return Export(exp.name, counts[DEIDENTIFIED_COLUMNS], shown_count(exp.n_patients, scope), extra)


@export("ae-listing", "serious safety signals, one row per adverse-event episode: by default every grade 5 event and "
                      "every serious event of grade 3-4; --min-grade N: events of grade >= N; --serious-only: serious "
                      "ones only; days since the last DEB-TACE session on or before onset (null: none); a role "
                      "without patient-level access gets events and patients per term x grade x serious",
        options=("min_grade", "serious_only"),
        level=PATIENT, deidentified=listing_deidentified)
def ae_listing_export(snapshot, filters=Filters(), scope=ALL_SITES, min_grade=None, serious_only=False, **_):
    min_grade = check_min_grade(min_grade)
    rows = data.execute(LISTING_SQL, snapshot, filters, scope,
                        params={"min_grade": min_grade, "serious_only": bool(serious_only)})
    rows["session_number"] = rows["session_number"].astype("Int64")
    rows["days_since_last_session"] = rows["days_since_last_session"].astype("Int64")
    n = int(data.value("select count(*) from cohort", snapshot, filters, scope))
    return Export("ae-listing", rows, n, {
        "min_grade": min_grade, "serious_only": bool(serious_only),
        "selection": listing_selection(min_grade, serious_only),
        "n_events": len(rows), "n_patients_listed": int(rows["patient_id"].nunique()),
        "n_grade_5": int((rows["grade"] == 5).sum())})


def listing_card_data(snapshot, filters=Filters(), scope=ALL_SITES, min_grade=None, serious_only=False,
                      max_rows: int = 500) -> dict:
    """What the listing card shows the scope, without the export's row per event (670,000 rows at 100,000
    patients with --min-grade 1, most of the card's time): for a patient-level scope the first `max_rows`
    rows of `ae-listing` read with the request's scope (an investigator's own sites) and the counts of the
    selection (n_events, n_patients_listed, n_grade_5); otherwise (a sponsor) the export's de-identified rows,
    counted in SQL over the pooled cohort, every count of 1-4 as "<5". Also n_patients and selection."""
    min_grade = check_min_grade(min_grade)
    params = {"min_grade": min_grade, "serious_only": bool(serious_only)}
    selection = listing_selection(min_grade, serious_only)
    if not scope.patient_level:
        counts = data.execute(LISTING_COUNTS_SQL, snapshot, filters, scope.pooled(), params=params)
        for column in ("n_events", "n_patients"):
            counts[column] = [shown_count(int(n), scope) for n in counts[column]]
        return {"rows": counts[DEIDENTIFIED_COLUMNS], "selection": selection, "patient_level": False,
                "n_patients": shown_count(exports_n_patients(snapshot, filters, scope.pooled()), scope)}
    rows = data.execute(LISTING_SQL + "limit $limit", snapshot, filters, scope, params={**params, "limit": max_rows})
    summary = data.execute(LISTING_SUMMARY_SQL, snapshot, filters, scope, params=params).iloc[0]
    return {"rows": rows, "selection": selection, "patient_level": True,
            "n_patients": exports_n_patients(snapshot, filters, scope),
            **{k: int(summary[k]) for k in ("n_events", "n_patients_listed", "n_grade_5")}}
