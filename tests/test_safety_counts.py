"""The ae-incidence export's counting pieces (dashboard/exports/safety.py), on several registries:
the attribution of episodes to sessions, the integer codes, the SQL grouping against
dashboard/grouping.py, the denominators and sessions, the per-snapshot worst grades against the
ae_worst_grade view, the pooled counts against the ungrouped query, and the SQL text binding no value.

The comparisons with a frozen copy of the previous pipeline (its views' SQL and the pandas
computation, 44 of the 66 tests) were retired (issue 14 item 10): the export's numbers are checked
independently by hand in tests/test_safety_page.py and tests/test_safety_hand.py (every option
alone and combined, a window, filters, a group without sessions) and against plain pandas on
random.cdisc.data's ADAE (tests/test_safety_page.py).
"""
from __future__ import annotations

import pandas as pd
import pytest

from dashboard import data
from dashboard.analytics import safety as an
from dashboard.exports.safety import (COUNTS_NO_WINDOW_SQL, COUNTS_SQL, GROUPS_SQL, NO_EPISODE_FILTER,
                                      counts_sql, episode_variables, incidence_counts)
from dashboard.filters import Filters
from dashboard.grouping import GROUPINGS, group_column
from fixtures import D, ae, patient, session, write_snapshot
from test_safety_page import safety_registry


# --- helpers ---------------------------------------------------------------------------------------
def run(sql, snap, filters=Filters(), variables=None):
    try:
        return data.execute(sql, snap, filters, variables=variables or NO_EPISODE_FILTER)
    finally:
        data.execute("select 1", snap, filters, variables=NO_EPISODE_FILTER)


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
