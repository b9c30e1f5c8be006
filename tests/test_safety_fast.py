"""The ae-incidence export counts in DuckDB (dashboard/exports/safety.py); this proves it gives exactly
the rows of the pandas computation it replaced, on several registries, filters and options, by both
of its counting queries (per snapshot worst grades without an onset window, per query with one).

The reference is the pipeline as it was: the episodes and worst grades of the views as they were
written before `ae_episodes_all` was materialized (their SQL is copied below, run ad hoc against the
same snapshot), the patients of `cohort` with their number of sessions, the group of
dashboard/grouping.py `group_column`, and dashboard/analytics/safety.py `incidence` (pandas).
Equality is exact: same columns, values, dtypes, missing values (None) and row order.
"""
from __future__ import annotations

import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.analytics import safety as an
from dashboard.exports.safety import (COUNTS_NO_WINDOW_SQL, COUNTS_SQL, GROUPS_SQL, NO_EPISODE_FILTER,
                                      counts_sql, episode_variables, incidence_counts)
from dashboard.filters import Filters
from dashboard.grouping import GROUPINGS, group_column, ordered_levels
from fixtures import D, ae, patient, session, write_snapshot
from test_safety_page import safety_registry

# --- the reference: the views and the export as they were ----------------------------------------
# queries/ae_episodes.sql before the attribution moved to the materialized ae_episodes_all
OLD_EPISODES_SQL = """
with episodes as (
    select a.*, c.site_id, c.bclc_stage, c.child_pugh_class
    from stg_adverse_events a
    join cohort c using (patient_id)
),
attributed as (
    select e.*, coalesce(e.session_number, latest.session_number) as attributed_session_number
    from episodes e
    asof left join stg_treatments latest
        on latest.patient_id = e.patient_id and e.onset_date >= latest.treatment_date
),
with_days as (
    select
        a.patient_id, a.ae_id, a.site_id, a.bclc_stage, a.child_pugh_class,
        a.soc, a.term, a.grade, a.onset_date, a.resolution_date,
        a.is_serious, a.is_treatment_related,
        a.session_number,
        a.attributed_session_number,
        t.treatment_date as session_date,
        (a.onset_date - t.treatment_date)::integer as days_from_session
    from attributed a
    left join stg_treatments t
        on t.patient_id = a.patient_id and t.session_number = a.attributed_session_number
),
final as (
    select *
    from with_days
    where (getvariable('ae_related_only') is null or not getvariable('ae_related_only') or is_treatment_related)
      and (getvariable('ae_serious_only') is null or not getvariable('ae_serious_only') or is_serious)
      and (getvariable('ae_within_days') is null
           or days_from_session between 0 and getvariable('ae_within_days'))
)
select * from final
"""
# queries/ae_worst_grade.sql as it was (group by all over the columns of the old ae_episodes)
OLD_WORST_SQL = f"""
with old_episodes as ({OLD_EPISODES_SQL})
select patient_id, site_id, bclc_stage, child_pugh_class, soc, term,
       max(grade) as worst_grade, count(*) as n_episodes,
       bool_or(is_serious) as any_serious, bool_or(is_treatment_related) as any_related
from old_episodes
group by all
order by patient_id, term
"""
# the export's patients query as it was
SESSIONS_SQL = """
select c.*, count(t.session_number)::integer as n_sessions
from cohort c
left join stg_treatments t using (patient_id)
group by all
"""
EPISODE_COLUMNS = ["patient_id", "ae_id", "site_id", "bclc_stage", "child_pugh_class", "soc", "term", "grade",
                   "onset_date", "resolution_date", "is_serious", "is_treatment_related", "session_number",
                   "attributed_session_number", "session_date", "days_from_session"]


def run(sql, snap, filters=Filters(), variables=None):
    try:
        return data.execute(sql, snap, filters, variables=variables or NO_EPISODE_FILTER)
    finally:
        data.execute("select 1", snap, filters, variables=NO_EPISODE_FILTER)


def reference(snap, filters=Filters(), level="term", by="none", related_only=False, serious_only=False,
              within_days=None):
    """(rows, n_patients, extra) of the ae-incidence export as it was computed before: pandas `incidence`."""
    variables = episode_variables(related_only, serious_only, within_days)
    worst = run(OLD_WORST_SQL, snap, filters, variables)
    patients = data.execute(SESSIONS_SQL, snap, filters)
    patients["group"] = group_column(patients, by)
    groups = ordered_levels(by, patients["group"]) if len(patients) else []
    rows = an.incidence(worst, patients, level, groups)
    extra = {"level": level, "by": by, "related_only": bool(related_only), "serious_only": bool(serious_only),
             "within_days": variables["ae_within_days"], "n_patients_with_ae": int(worst["patient_id"].nunique()),
             "n_events": int(worst["n_episodes"].sum()), "n_sessions": int(patients["n_sessions"].sum())}
    return rows[an.COLUMNS], len(patients), extra


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame):
    assert list(got.columns) == list(expected.columns) == an.COLUMNS
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # missing terms are None in both (not NaN), so the CSV and the figures see the same thing
    assert [t is None for t in got["term"]] == [t is None for t in expected["term"]]
    assert got["term"].map(type).tolist() == expected["term"].map(type).tolist()


# --- registries ------------------------------------------------------------------------------------
def edge_registry() -> dict[str, list[dict]]:
    """Corner cases of the counting: a term filed under two classes (a validator warning), two
    sessions on one day, episodes without a recorded session (one before the patient's second
    session, one after it), a recorded session after the onset (negative days), a missing etiology
    (group 'unknown'), a patient without any AE, grades 1 to 5 on one term of one patient."""
    reg = safety_registry()
    reg["patients"] += [
        patient("P7", "S03", "2024-02-01", "A", death="2024-04-25", etiology=None, child_pugh_class="B",
                child_pugh_score=7, sex="F", ecog_ps=1, afp_ng_ml=None, largest_tumor_cm=9.0),
        patient("P8", "S03", "2024-03-01", "C", last_alive="2024-12-31", afp_ng_ml=800.0),
        patient("P9", "S01", "2024-07-01", "B", last_alive="2024-12-31"),
    ]
    reg["sites"] += [dict(site_id="S03", site_name="East Hospital", activation_date=D("2024-01-01"),
                          target_enrollment=5)]
    reg["treatments"] += [
        session("P7", 1, "2024-02-01"), session("P7", 2, "2024-04-01"), session("P7", 3, "2024-04-01"),
        session("P8", 1, "2024-03-01"), session("P8", 2, "2024-06-01"), session("P9", 1, "2024-07-01"),
    ]
    reg["adverse_events"] += [
        ae("P7", "A1", "Fever", 1, "2024-02-02"),
        ae("P7", "A2", "Fever", 2, "2024-04-03", session_number=None),              # tie on 04-01: day 2
        ae("P7", "A3", "Fever", 5, "2024-04-20", serious=True, session_number=3),
        ae("P7", "A4", "Fever", 4, "2024-03-01", related=False, session_number=None),
        ae("P7", "A5", "Fever", 3, "2024-02-10", serious=True, related=False),
        ae("P7", "A6", "Nausea", 2, "2024-02-05", soc="Investigations"),          # a second SOC for Nausea
        ae("P8", "A1", "Nausea", 3, "2024-03-03", serious=True),
        ae("P8", "A2", "Vomiting", 1, "2024-05-20", session_number=2),             # session after onset
        ae("P8", "A3", "Hepatic failure", 4, "2024-06-02", serious=True, session_number=None),
        ae("P8", "A4", "Abdominal pain", 2, "2024-07-15", related=False, session_number=None),
    ]
    return reg


@pytest.fixture(scope="module")
def snaps(tmp_path_factory, mini_snapshot, synthetic_root):
    out = {"mini": mini_snapshot, "synthetic": data.resolve("latest", synthetic_root)}
    for name, rows in (("safety", safety_registry()), ("edge", edge_registry())):
        root = tmp_path_factory.mktemp(name)
        write_snapshot(root, "2024-12-31", rows)
        out[name] = data.resolve("latest", root)
    return out


FILTERS = {
    "all": Filters(),
    "bclc C": Filters(bclc=("C",)),
    "two sites": Filters(site=("S01", "S02")),
    "none": Filters(bclc=("0",), age_max=20),
}
OPTIONS = {
    "all AEs": {},
    "related": {"related_only": True},
    "serious": {"serious_only": True},
    "within 7": {"within_days": 7},
    "within 0": {"within_days": 0},
    "related serious": {"related_only": True, "serious_only": True},
    "related serious within 30": {"related_only": True, "serious_only": True, "within_days": 30},
}
PAGE_BY = ("none", "site_id", "bclc_stage", "child_pugh_class")
# every episode option without a filter, and every filter with some options
COMBOS = [("all", option) for option in OPTIONS] + [
    ("bclc C", "all AEs"), ("bclc C", "within 7"), ("two sites", "related"), ("two sites", "serious"),
    ("none", "all AEs"), ("none", "within 0")]
FEW_COMBOS = [("all", "all AEs"), ("bclc C", "serious"), ("two sites", "within 7")]


def check(snap, filters, level="term", by="none", **options):
    exp = exports.EXPORTS["ae-incidence"].func(snap, filters, level=level, by=by, **options)
    rows, n, extra = reference(snap, filters, level=level, by=by, **options)
    assert_same_rows(exp.rows, rows)
    assert exp.n_patients == n and exp.extra == extra
    variables = episode_variables(**options)
    if variables["ae_within_days"] is None:
        # the per-query path gives the same rows as the per-snapshot one the export took
        counts, groups = incidence_counts(snap, filters, by=by, variables=variables, sql=COUNTS_SQL)
        order = ordered_levels(by, groups["group"]) if n else []
        assert_same_rows(an.incidence_from_counts(counts, groups, level, order)[an.COLUMNS], rows)
    return exp


# --- the export: fast path == pandas reference -----------------------------------------------------
@pytest.mark.parametrize("registry", ["mini", "synthetic", "safety", "edge"])
@pytest.mark.parametrize("level", ["term", "soc"])
@pytest.mark.parametrize("by", PAGE_BY)
def test_export_equals_pandas_reference_for_every_filter_and_option(snaps, registry, level, by):
    snap = snaps[registry]
    for fname, oname in COMBOS if by in ("none", "site_id") else FEW_COMBOS:
        try:
            check(snap, FILTERS[fname], level=level, by=by, **OPTIONS[oname])
        except AssertionError as e:
            raise AssertionError(f"{registry}, filter {fname!r}, options {oname!r}: {e}") from e


@pytest.mark.parametrize("by", [key for key in GROUPINGS if key not in PAGE_BY])
def test_export_equals_pandas_reference_for_the_other_groupings(snaps, by):
    for registry in ("synthetic", "edge"):
        for level, options in (("term", {}), ("soc", {"related_only": True, "within_days": 30})):
            check(snaps[registry], Filters(), level=level, by=by, **options)


def test_export_through_run_export_is_the_same(snaps):
    """The registered export (as the page and the CLI call it, cached) gives the same rows."""
    snap = snaps["synthetic"]
    exp = exports.run_export("ae-incidence", snap, Filters(bclc=("B", "C")), level="term", by="site_id",
                             serious_only=True)
    rows, n, _ = reference(snap, Filters(bclc=("B", "C")), level="term", by="site_id", serious_only=True)
    assert_same_rows(exp.rows, rows)
    assert exp.n_patients == n


def test_reference_is_not_trivial(snaps):
    """The comparisons above are about real numbers: many terms, groups, grades and zero cells."""
    rows, n, extra = reference(snaps["synthetic"], level="term", by="site_id")
    assert n > 100 and extra["n_events"] > 100
    assert rows["group"].nunique() > 5 and rows["term"].nunique() > 5
    assert (rows["n_patients_any"] == 0).any() and (rows["grade_5"] > 0).any()
    edge, _, _ = reference(snaps["edge"], level="term", by="none")
    nausea = edge[edge.term == "Nausea"]
    assert sorted(nausea.soc) == ["Gastrointestinal disorders", "Investigations"]   # one row per class


# --- the views: the same episodes and worst grades as before ------------------------------------
@pytest.mark.parametrize("registry", ["mini", "synthetic", "safety", "edge"])
def test_ae_episodes_are_the_episodes_of_the_view_before_materialization(snaps, registry):
    snap = snaps[registry]
    for fname, oname in COMBOS:
        filters, variables = FILTERS[fname], episode_variables(**OPTIONS[oname])
        order = " order by patient_id, ae_id"
        got = run("select * from ae_episodes" + order, snap, filters, variables)
        expected = run(f"select * from ({OLD_EPISODES_SQL})" + order, snap, filters, variables)
        pd.testing.assert_frame_equal(got[EPISODE_COLUMNS], expected, check_exact=True)
        got = run("select * from ae_worst_grade order by patient_id, term", snap, filters, variables)
        pd.testing.assert_frame_equal(got, run(OLD_WORST_SQL, snap, filters, variables), check_exact=True)


def test_attribution_corner_cases(snaps):
    ep = data.query("ae_episodes", snaps["edge"]).set_index(["patient_id", "ae_id"])
    assert ep.loc[("P7", "A2"), "days_from_session"] == 2                       # sessions 2 and 3 both on 04-01
    assert ep.loc[("P7", "A4"), "attributed_session_number"] == 1               # before session 2
    assert ep.loc[("P8", "A2"), "days_from_session"] < 0                        # recorded session after onset
    assert ep.loc[("P8", "A4"), "attributed_session_number"] == 2


@pytest.mark.parametrize("registry", ["mini", "synthetic", "edge"])
def test_integer_codes_are_one_to_one_with_the_names(snaps, registry):
    ep = data.query("ae_episodes_all", snaps[registry])
    assert len(ep) == len(data.query("stg_adverse_events", snaps[registry]))
    for key, names in (("patient_key", ["patient_id"]), ("soc_key", ["soc"]), ("term_key", ["soc", "term"])):
        pairs = ep[[key, *names]].drop_duplicates()
        assert not pairs[key].duplicated().any() and not pairs[names].duplicated().any(), key
        assert pairs[key].notna().all()


# --- the pieces ----------------------------------------------------------------------------------
@pytest.mark.parametrize("by", list(GROUPINGS))
def test_group_sql_is_group_column(snaps, by):
    """The group label computed in SQL is dashboard/grouping.py group_column, for every grouping."""
    for registry in ("synthetic", "edge"):
        snap = snaps[registry]
        patients = data.execute("select * from cohort order by patient_id", snap)
        sql = GROUPS_SQL.replace("select * from final", 'select patient_id, "group" from patients order by patient_id')
        got = data.execute(sql, snap, params={"by": by})
        assert got["patient_id"].tolist() == patients["patient_id"].tolist()
        assert got["group"].tolist() == group_column(patients, by).astype(object).tolist()


def test_groups_give_denominators_and_sessions(snaps):
    snap = snaps["safety"]
    _, groups = incidence_counts(snap, by="site_id")
    # S01: P1, P2, P5 with 2 + 1 + 1 sessions; S02: P3, P4, P6 with 2 + 1 + 1
    assert groups.sort_values("group").to_dict("records") == [
        {"group": "S01", "denominator": 3, "n_sessions": 4}, {"group": "S02", "denominator": 3, "n_sessions": 4}]


def test_counts_are_per_patient_at_the_worst_grade(snaps):
    """COUNTS_SQL on the hand-built registry of tests/test_safety_page.py (worked answers there)."""
    counts, _ = incidence_counts(snaps["safety"])
    overall = counts[counts.level == "overall"].iloc[0]
    assert (overall.n_patients_any, overall.grade_3, overall.grade_4, overall.grade_5, overall.n_events) == \
        (4, 2, 1, 1, 10)
    fever = counts[(counts.level == "term") & (counts.term == "Fever")].iloc[0]
    assert (fever.n_patients_any, fever.grade_2, fever.grade_3, fever.n_events) == (2, 1, 1, 3)
    gi = counts[(counts.level == "soc") & (counts.soc == "Gastrointestinal disorders")].iloc[0]
    assert (gi.n_patients_any, gi.grade_2, gi.grade_3, gi.n_events) == (2, 1, 1, 4)
    assert counts[counts.level != "term"].term.isna().all() and counts[counts.level == "overall"].soc.isna().all()


def test_counting_sql_binds_no_value_into_its_text():
    """The grouping is a bound parameter, the episode options are variables: the SQL text is constant."""
    assert all("$by" in sql for sql in (COUNTS_SQL, COUNTS_NO_WINDOW_SQL, GROUPS_SQL))
    assert "getvariable" not in COUNTS_SQL                      # ae_episodes reads the options
    assert counts_sql(episode_variables(within_days=3)) is COUNTS_SQL
    assert counts_sql(episode_variables(related_only=True, serious_only=True)) is COUNTS_NO_WINDOW_SQL


@pytest.mark.parametrize("registry", ["synthetic", "edge"])
def test_worst_grades_per_snapshot_are_those_of_ae_worst_grade(snaps, registry):
    """ae_worst_grade_all, per kind of episodes, equals the ae_worst_grade view with those options."""
    snap = snaps[registry]
    pre = data.query("ae_worst_grade_all", snap)
    pre = pre[pre.level == "term"].merge(data.query("ae_episodes_all", snap)[["term_key", "soc", "term"]]
                                         .drop_duplicates(), on="term_key")
    for kind, options in (("", {}), ("_related", {"related_only": True}), ("_serious", {"serious_only": True}),
                          ("_related_serious", {"related_only": True, "serious_only": True})):
        worst = run("select * from ae_worst_grade", snap, variables=episode_variables(**options))
        mine = pre[pre[f"n{kind or '_episodes'}"] > 0]
        got = sorted(zip(mine.patient_id, mine.soc, mine.term, mine[f"worst_grade{kind}"],
                         mine[f"n{kind or '_episodes'}"]))
        assert got == sorted(zip(worst.patient_id, worst.soc, worst.term, worst.worst_grade, worst.n_episodes))


@pytest.mark.filterwarnings("ignore:Downcasting object dtype:FutureWarning")      # pandas, in `incidence`
def test_incidence_from_counts_with_no_episode_and_no_patient():
    counts = pd.DataFrame(columns=["level", "soc", "term", "group", "n_patients_any", "grade_1", "grade_2",
                                   "grade_3", "grade_4", "grade_5", "n_serious", "n_related", "n_events"])
    groups = pd.DataFrame({"group": ["all"], "denominator": [3], "n_sessions": [0]})
    rows = an.incidence_from_counts(counts, groups, "term", ["all"])
    expected = an.incidence(pd.DataFrame(columns=["patient_id", "soc", "term", "worst_grade", "n_episodes",
                                                  "any_serious", "any_related"]),
                            pd.DataFrame({"patient_id": ["a", "b", "c"], "group": "all", "n_sessions": 0}),
                            "term", ["all"])
    assert_same_rows(rows, expected)
    assert rows.events_per_100_sessions.isna().all()                   # no session: no rate
    empty = an.incidence_from_counts(counts, groups.iloc[0:0], "soc", [])
    assert empty.empty and list(empty.columns) == an.COLUMNS


@pytest.mark.parametrize("registry", ["synthetic", "edge"])
def test_counts_without_grouping_are_the_counts_by_site_summed(snaps, registry):
    """The export takes its ungrouped counts from the counts by site (shared with the heatmap by site):
    they equal the counting query run with no grouping, row for row."""
    from dashboard.exports.safety import COUNTED, COUNTS_NO_WINDOW_SQL, pooled
    snap = snaps[registry]
    for filters in (Filters(), Filters.parse_pairs([("bclc", "B,C")])[0]):
        direct, direct_groups = incidence_counts(snap, filters, by="none", sql=COUNTS_NO_WINDOW_SQL)
        by_site, site_groups = incidence_counts(snap, filters, by="site_id", sql=COUNTS_NO_WINDOW_SQL)
        assert by_site["group"].nunique() > 1
        summed, summed_groups = pooled(by_site, site_groups)
        keys = ["level", "soc", "term"]
        a = direct.sort_values(keys, na_position="first").reset_index(drop=True)
        b = summed.sort_values(keys, na_position="first").reset_index(drop=True)
        assert a[keys].fillna("-").equals(b[keys].fillna("-"))
        assert (a[COUNTED].astype("int64").to_numpy() == b[COUNTED].to_numpy()).all()
        assert (b["group"] == "all").all()
        assert direct_groups[["group", "denominator", "n_sessions"]].astype(str).values.tolist() == \
            summed_groups.astype(str).values.tolist()
