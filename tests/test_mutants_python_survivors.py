"""Tests for the Python mutants that no test killed (docs/mutation-testing.md, "Python (mutmut 3
mutants)"): each test names its mutant and the independent source of its expected value. Each
was seen to fail with its mutant applied by hand and to pass without it."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from fixtures import mini_registry, write_snapshot
from dashboard import data, exports
from dashboard.analytics import baseline, competing, safety, staging
from dashboard.filters import Filters
from dashboard.validate import Finding, Report, validate_folder


def table_one(snapshot):
    rows = exports.compute_export("baseline-table", snapshot, Filters(), data.ALL_SITES).rows
    return rows.set_index(["group", "variable", "level"])


# --- analytics.baseline ---------------------------------------------------------------------------
def test_table_one_reference_shows_missing_row_of_a_nullable_variable_with_nothing_missing(mini_snapshot):
    """baseline._group_rows mutmut_38 (`or` -> `and`). Plan: "Missing values are counted, never
    silently dropped"; a contract-nullable variable (albi_grade: every mini patient has grade 1)
    shows its missing row with 0, as the counted export the page reads does."""
    cohort = data.execute("select * from cohort", mini_snapshot)
    reference = baseline.baseline_table(cohort).set_index(["group", "variable", "level"])
    assert reference.loc[("Overall", "albi_grade", "missing"), "text"] == "0 (0.0%)"
    assert table_one(mini_snapshot).loc[("Overall", "albi_grade", "missing"), "text"] == "0 (0.0%)"


def test_baseline_wide_rows_by_hand():
    """baseline.baseline_wide_rows mutmut_6 (`cells = {}` -> None): the Table 1 card's rows, by its
    docstring: groups in order of first appearance, one row per (variable, label, level), None
    where a group lacks the level."""
    long = pd.DataFrame({
        "variable": ["n", "n", "etiology", "etiology", "etiology"],
        "label": ["Patients", "Patients", "Etiology", "Etiology", "Etiology"],
        "level": ["", "", "HBV", "HBV", "missing"],
        "group": ["Overall", "BCLC B", "Overall", "BCLC B", "Overall"],
        "text": ["5", "3", "4 (80.0%)", "3 (100.0%)", "1 (20.0%)"],
    })
    groups, rows = baseline.baseline_wide_rows(long)
    assert groups == ["Overall", "BCLC B"]
    assert rows == [("n", "Patients", "", ["5", "3"]),
                    ("etiology", "Etiology", "HBV", ["4 (80.0%)", "3 (100.0%)"]),
                    ("etiology", "Etiology", "missing", ["1 (20.0%)", None])]


def test_followup_status_counts_an_off_study_patient_without_reason_as_other(tmp_path):
    """baseline.followup_status_counted mutmut_20 ("other" -> "XXotherXX"). docs/analysis.md
    (Follow-up status): "a missing reason counts as 'other'". Mini registry with P3 (alive, off
    study 2024-10-01) given no reason: alive on study P2 P5, died P1 P4, off study: other P3."""
    reg = mini_registry()
    next(p for p in reg["patients"] if p["patient_id"] == "P3")["off_study_reason"] = None
    write_snapshot(tmp_path, "2024-12-31", reg)
    snapshot = data.resolve("latest", tmp_path)
    exp = exports.compute_export("followup-status", snapshot, Filters(), data.ALL_SITES)
    assert exp.rows[["status", "n"]].values.tolist() == [
        ["alive on study", 2], ["died", 2], ["off study: other", 1]]


def test_sql_text_of_booleans_is_what_duckdb_prints():
    """baseline.sql_text mutmut_2 (`if value` -> `if value or True`): DuckDB's own text of a boolean."""
    printed = duckdb.connect().execute("select cast(true as varchar), cast(false as varchar)").fetchone()
    assert (baseline.sql_text(True), baseline.sql_text(False)) == printed == ("true", "false")
    assert baseline.sql_text(np.bool_(False)) == "false"


def test_table_one_no_level_of_a_boolean_variable(mini_snapshot):
    """baseline.sql_text mutmut_2 through the export: mini fixture macrovascular invasion is
    bclc == 'C' (P2, P4): yes 2, no 3 of 5; no patient has extrahepatic spread: yes 0, no 5."""
    t = table_one(mini_snapshot)
    assert [t.loc[("Overall", "has_macrovascular_invasion", lv), "n"] for lv in ("yes", "no")] == [2, 3]
    assert [t.loc[("Overall", "has_extrahepatic_spread", lv), "n"] for lv in ("yes", "no")] == [0, 5]


# --- analytics.competing ----------------------------------------------------------------------------
def test_competing_time_and_status_of_different_lengths_say_why():
    """competing._clean mutmut_7 (message mangled): the message names the fault."""
    with pytest.raises(ValueError, match="^time and status must have the same length$"):
        competing._clean([1.0, 2.0], [1])


def test_competing_object_input_with_a_missing_time_drops_that_patient():
    """competing._numeric mutmut_15 (the object path raises): an object array with None (what
    pandas gives for a nullable integer column) is NaN there, and _clean drops that row: times 5, 7
    with statuses 1, 0 remain."""
    t, s, w = competing._clean(np.array([5, None, 7], dtype=object), [1, 2, 0])
    assert t.tolist() == [5.0, 7.0] and s.tolist() == [1, 0] and w.tolist() == [1, 1]


# --- analytics.safety -------------------------------------------------------------------------------
def test_check_level_defaults_to_term():
    """safety.check_level mutmut_3: the README's ae-incidence `level` default is the term."""
    assert safety.check_level(None) == "term"
    assert safety.check_level("") == "term"


def test_terms_within_a_class_are_ordered_by_pooled_patients():
    """safety.incidence_from_counts mutmut_80 (`lvl == "term"` -> "TERM"): docs/analysis.md orders
    terms within a class by incidence pooled over the groups, names breaking ties. Fever has
    1 + 1 = 2 patients, Abdominal pain 1 + 0 = 1: Fever first although its name sorts later."""
    zero = dict(grade_1=0, grade_2=0, grade_3=0, grade_4=0, grade_5=0, n_serious=0, n_related=0, n_events=0)
    rows = [
        dict(level="overall", soc=None, term=None, group="B", n_patients_any=2),
        dict(level="overall", soc=None, term=None, group="C", n_patients_any=1),
        dict(level="soc", soc="General", term=None, group="B", n_patients_any=2),
        dict(level="soc", soc="General", term=None, group="C", n_patients_any=1),
        dict(level="term", soc="General", term="Abdominal pain", group="B", n_patients_any=1),
        dict(level="term", soc="General", term="Fever", group="B", n_patients_any=1),
        dict(level="term", soc="General", term="Fever", group="C", n_patients_any=1),
    ]
    counts = pd.DataFrame([dict(zero, **r) for r in rows])
    groups = pd.DataFrame({"group": ["B", "C"], "denominator": [3, 2], "n_sessions": [4, 2]})
    out = safety.incidence_from_counts(counts, groups, "term")
    terms = list(dict.fromkeys(out.term.dropna()))
    assert terms == ["Fever", "Abdominal pain"]


# --- analytics.staging -------------------------------------------------------------------------------
def test_step_at_after_the_third_step_is_the_last_step_in_force():
    """staging.step_at mutmut_8 (`.iloc[-1]` -> `.iloc[+1]`): a right-continuous step curve with
    steps at 0, 10, 20, 30 days: at 25 the step of day 20 is in force."""
    curve = pd.DataFrame({"time_days": [0, 10, 20, 30], "estimate": [0.0, 0.1, 0.2, 0.3]})
    assert staging.step_at(curve, 25)["estimate"] == 0.2
    assert staging.step_at(curve, 30)["estimate"] == 0.3


def test_one_minus_km_on_counted_rows_by_hand():
    """staging._one_minus_km_counted mutmut_58 (errstate argument raises): counted rows, 4 patients:
    day 10 two downstaged, day 20 one censored, day 30 one downstaged. KM: 1 - 2/4 = 0.5 after day
    10; at day 30 one at risk, one event: 0. So 1 - KM is 0.5 at 25 and 1.0 at 30 (the uncounted
    path, one row per patient, agrees)."""
    counted = pd.DataFrame({"time_days": [10, 20, 30], "status": [1, 0, 1], "n": [2, 1, 1]})
    assert staging.one_minus_km(counted, 25) == pytest.approx(0.5)
    assert staging.one_minus_km(counted, 30) == pytest.approx(1.0)
    per_patient = pd.DataFrame({"time_days": [10, 10, 20, 30], "status": [1, 1, 0, 1]})
    assert staging.one_minus_km(per_patient, 25) == pytest.approx(0.5)


# --- validate ---------------------------------------------------------------------------------------
def test_printed_finding_has_the_readme_format():
    """validate.Finding.__str__ mutmut_24: README `LEVEL table.column: rule (n rows, e.g. keys)`;
    the example line of docs/snapshot-contract.md."""
    f = Finding("error", "patients", "sex", "value outside the accepted codes 'M', 'F'", 1, ("P1=X",))
    assert str(f) == "ERROR patients.sex: value outside the accepted codes 'M', 'F' (1 row, e.g. P1=X)"
    assert str(Finding("warning", "patients", "", "r", 2)) == "WARNING patients: r (2 rows)"


def test_report_read_back_from_json_keeps_its_examples():
    """validate.Report.from_json mutmut_8: a report cached as JSON (dashboard/data.py) and read
    back is the same report, example keys included."""
    report = Report("2024-12-31", [Finding("error", "patients", "sex", "bad", 2, ("P1=X", "P2=Y"))])
    back = Report.from_json(json.loads(json.dumps(report.to_json())))
    assert back == report
    assert back.findings[0].examples == ("P1=X", "P2=Y")


def test_unreadable_patients_file_skips_the_site_activation_rule(tmp_path):
    """validate._Checker.rules mutmut_144 (`both("sites", "patients")` -> `both("sites")`): with
    patients.parquet corrupt, the rules needing patients are skipped, so no check "could not run"
    (validate_folder's docstring: whatever goes wrong is reported, and the rules after it still run)."""
    from test_validate_faults import published_with_damage
    report = validate_folder(published_with_damage(tmp_path, "patients", "zeroed-pages", other_fault=False))
    assert not [f for f in report.findings if "could not run" in f.rule], report.summary()
