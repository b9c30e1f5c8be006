"""The data-quality rules (dashboard/quality.py, docs/quality.md), each on the hand-written mini registry
(tests/fixtures.py, cut-off 2024-12-31) changed so that the rule fires for one known patient and not
for a near miss (120 vs 121 days, day 151 vs day 152, a date equal to the last contact...). The
expected patients are worked out by hand from the fixture's dates in the comments; the unchanged mini
registry's findings are worked out the same way in test_the_mini_registry_by_hand.

Each changed registry is also a valid cut (the export runs only on cuts that validate), and on each
the export's rows of every rule the validator shares equal the validator's warning count.
"""
from __future__ import annotations

import copy
import datetime as dt
import itertools

import pytest

from fixtures import D, mini_registry, review, session, write_snapshot, ae
from dashboard import data, exports
from dashboard.filters import Filters
from dashboard.quality import RULES, validator_rules

_ids = itertools.count()


def by_id(rows, pid, **match):
    """The one row of a table's rows with this patient (and the other matched keys)."""
    found = [r for r in rows if r["patient_id"] == pid and all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (pid, match)
    return found[0]


def findings(tmp_path_factory, reg):
    """(export rows, validation report) of the registry published as a cut."""
    root = tmp_path_factory.mktemp(f"quality{next(_ids)}")
    write_snapshot(root, "2024-12-31", reg)
    snapshot = data.resolve("latest", root)          # raises unless the changed registry validates
    return exports.compute_export("data-quality", snapshot, Filters()), data.report_for(snapshot)


def patients_of(exp, label) -> set[str]:
    return set(exp.rows.loc[exp.rows.rule == label, "patient_id"])


def details_of(exp, label) -> list[str]:
    return sorted(exp.rows.loc[exp.rows.rule == label, "detail"])


def assert_shared_counts_equal_the_validator(exp, report):
    warnings = {(f.table, f.rule, f.column): f.count for f in report.warnings}
    for r in validator_rules():
        rows = int(((exp.rows.table == r.table) & (exp.rows.rule == r.label)).sum())
        assert rows == warnings.get((r.table, r.rule, r.column), 0), r.label


LABEL = {r.label: r for r in RULES}
NO_CONTACT = "no contact for more than 120 days before the cut-off while alive and on study"
RESTAGING = "restaging missing at 6 months"


def test_every_label_used_below_is_a_rule():
    assert NO_CONTACT in LABEL and RESTAGING in LABEL
    assert len({(r.table, r.label) for r in RULES}) == len(RULES), "two rules share a table and a label"


def test_the_mini_registry_by_hand(tmp_path_factory):
    """Unchanged: P5's lesion L2 has no diameter at M1; restaging missing for P2 (alive on day 334,
    last review day 43), P5 (day 213, no review) and P3 (off study on day 214, no review); P1 died on
    day 182 exactly (not over six months)."""
    exp, report = findings(tmp_path_factory, mini_registry())
    assert patients_of(exp, "target lesion not measured at a scan") == {"P5"}
    assert patients_of(exp, RESTAGING) == {"P2", "P3", "P5"}
    assert len(exp.rows) == 4
    assert list(exp.rows.columns) == ["site_id", "patient_id", "table", "rule", "detail"]
    assert exp.rows.loc[exp.rows.patient_id == "P3", "site_id"].tolist() == ["S02"]
    assert details_of(exp, "target lesion not measured at a scan") == \
        ["visit M1: target lesion L2 has no viable_diameter_mm"]
    assert_shared_counts_equal_the_validator(exp, report)


# --- one case per rule (or pair of rules): (changes, {rule label: expected patients}) -----------------
def off_study_pair(reg):
    by_id(reg["patients"], "P2").update(off_study_date=D("2024-12-01"))                   # reason missing
    by_id(reg["patients"], "P5").update(off_study_date=D("2024-12-01"), off_study_reason="withdrawn")


def death_not_off_study(reg):
    by_id(reg["patients"], "P1").update(off_study_reason="withdrawn")         # died 2024-07-10
    by_id(reg["patients"], "P2").update(off_study_date=D("2024-12-01"), off_study_reason="withdrawn")  # alive


def before_activation(reg):
    reg["sites"][0]["activation_date"] = D("2024-01-11")       # S01: P1 treated 2024-01-10, a day before
    reg["sites"][1]["activation_date"] = D("2024-03-01")       # S02: P3 treated on the day: no finding


def no_session_1(reg):
    by_id(reg["treatments"], "P3").update(session_number=2)    # P3's only session renumbered; P1 keeps 1 and 2


def baseline_responses(reg):
    by_id(reg["imaging"], "P1", visit="baseline").update(overall_response="SD")
    by_id(reg["imaging"], "P2", visit="baseline").update(local_response="SD")


def six_months_no_imaging(reg):
    # P4 (baseline scan only) now dies on day 183 (2024-05-01 + 183); P3 loses its M1 scan and is
    # followed exactly 182 days (to 2024-08-30): over six months means > 182
    by_id(reg["patients"], "P4").update(death_date=D("2024-10-31"), last_known_alive_date=D("2024-10-31"),
                                        off_study_date=D("2024-10-31"))
    reg["imaging"] = [r for r in reg["imaging"] if not (r["patient_id"] == "P3" and r["visit"] == "M1")]
    reg["lesion_measurements"] = [r for r in reg["lesion_measurements"]
                                  if not (r["patient_id"] == "P3" and r["visit"] == "M1")]
    by_id(reg["patients"], "P3").update(last_known_alive_date=D("2024-08-30"), off_study_date=D("2024-08-30"))


def unmeasured_target(reg):
    by_id(reg["lesion_measurements"], "P2", visit="M3").update(viable_diameter_mm=None)   # P3's 0 mm is a value


def missing_rows(reg):
    # P1 at M3 keeps L2's row: a missing row of a measured scan; P3 at M1 has no row left: the scan's rule
    reg["lesion_measurements"] = [r for r in reg["lesion_measurements"]
                                  if (r["patient_id"], r["lesion_id"], r["visit"]) not in {("P1", "L1", "M3"),
                                                                                           ("P3", "L1", "M1")}]


def contradiction(reg):
    # P3 at M1: 0 mm (implies CR) recorded PR, no non-target lesion; P2 at M1: 28 mm of 40 is exactly
    # -30%, PR as recorded (and later: M3 30 mm is under 1.2 x 28, SD; M5 37 mm is PD, as recorded)
    by_id(reg["imaging"], "P3", visit="M1").update(overall_response="PR")
    by_id(reg["imaging"], "P2", visit="M1").update(overall_response="PR")
    by_id(reg["lesion_measurements"], "P2", visit="M1").update(viable_diameter_mm=28.0)


def misspelt_term(reg):
    by_id(reg["adverse_events"], "P1", ae_id="A4").update(term="Nausia")      # soc kept from Nausea


def no_contact(reg):
    # cut-off 2024-12-31: 2024-09-01 is 121 days before it, 2024-09-02 120 days; P3 (lost to follow-up
    # on 2024-10-01, 91 days) is off study
    by_id(reg["patients"], "P2").update(last_known_alive_date=D("2024-09-01"))
    by_id(reg["patients"], "P5").update(last_known_alive_date=D("2024-09-02"))


def restaging(reg):
    # P2 (treated 2024-02-01) reviewed on day 152 (2024-07-02): restaged; P5 (treated 2024-06-01)
    # reviewed on day 151 (2024-10-30): still missing; P3 unchanged (off study on day 214, no review)
    reg["staging"] += [review("P2", "M6", "2024-07-02", "C", False), review("P5", "M5", "2024-10-30", "B", False)]


def resolved_after_death(reg):
    by_id(reg["adverse_events"], "P1", ae_id="A1").update(resolution_date=D("2024-07-11"))   # died 2024-07-10
    by_id(reg["adverse_events"], "P1", ae_id="A2").update(resolution_date=D("2024-07-10"))   # the day of death


def off_study_death_no_date(reg):
    by_id(reg["patients"], "P2").update(off_study_date=D("2024-12-31"), off_study_reason="death")


def no_baseline(reg):
    reg["imaging"] = [r for r in reg["imaging"] if r["patient_id"] != "P4"]
    reg["lesion_measurements"] = [r for r in reg["lesion_measurements"] if r["patient_id"] != "P4"]


def after_last_contact(reg):
    # P2 last seen 2024-12-30, then a scan, a session, a review and an AE on 2024-12-31; P5 the same
    # records on the day of its last contact (2024-12-31): not after it. P4 (died 2024-06-01) last seen
    # 2024-05-20: an AE on 2024-05-25 is after it; a grade 5 AE on the day of death is the death itself
    by_id(reg["patients"], "P2").update(last_known_alive_date=D("2024-12-30"))
    by_id(reg["patients"], "P4").update(last_known_alive_date=D("2024-05-20"))
    for pid in ("P2", "P5"):
        reg["imaging"].append(dict(by_id(reg["imaging"], pid, visit="M1"), visit="M9", imaging_date=D("2024-12-31")))
        reg["lesion_measurements"] += [dict(m, visit="M9") for m in reg["lesion_measurements"]
                                       if m["patient_id"] == pid and m["visit"] == "M1"]
        reg["treatments"].append(session(pid, 2, "2024-12-31"))
        reg["staging"].append(review(pid, "M9", "2024-12-31", "B", False))
        reg["adverse_events"].append(ae(pid, "A9", "Fever", 1, "2024-12-31", session_number=2))
    reg["adverse_events"] += [ae("P4", "A1", "Fever", 2, "2024-05-25"),
                              ae("P4", "A2", "Hepatic failure", 5, "2024-06-01")]


CASES = {
    "off_study_pair": (off_study_pair, {"off_study_date and off_study_reason should be given together": {"P2"}}),
    "death_not_off_study": (death_not_off_study, {"a patient with a death_date should be off study for 'death'": {"P1"}}),
    "before_activation": (before_activation, {"before the site's activation_date": {"P1"}}),
    "no_session_1": (no_session_1, {"has no session 1 in treatments": {"P3"}}),
    "baseline_responses": (baseline_responses, {"a response recorded at baseline (overall_response)": {"P1"},
                                                "a response recorded at baseline (local_response)": {"P2"}}),
    "six_months_no_imaging": (six_months_no_imaging,
                              {"patient followed over six months with no post-baseline imaging": {"P4"}}),
    "unmeasured_target": (unmeasured_target, {"target lesion not measured at a scan": {"P2", "P5"}}),
    "missing_rows": (missing_rows, {"target lesion has no measurement row at a scan": {"P1"},
                                    "follow-up scan with no lesion measurements": {"P3"}}),
    "contradiction": (contradiction, {
        "recorded response contradicts the target-lesion response implied by the measurements": {"P3"}}),
    "misspelt_term": (misspelt_term, {"term not in the registry's CTCAE v4.0 list (check spelling)": {"P1"}}),
    "no_contact": (no_contact, {NO_CONTACT: {"P2"}}),
    "restaging": (restaging, {RESTAGING: {"P3", "P5"}}),
    "resolved_after_death": (resolved_after_death, {"AE resolved after the patient's death": {"P1"}}),
    "off_study_death_no_date": (off_study_death_no_date, {"off study for 'death' with no death_date": {"P2"}}),
    "no_baseline": (no_baseline, {"no baseline imaging": {"P4"}}),
    "after_last_contact": (after_last_contact, {
        "imaging after the last contact (last_known_alive_date)": {"P2"},
        "DEB-TACE session after the last contact (last_known_alive_date)": {"P2"},
        "restaging review after the last contact (last_known_alive_date)": {"P2"},
        "AE onset after the last contact (last_known_alive_date)": {"P2", "P4"}}),
}


def test_every_rule_has_a_case():
    covered = {label for _, expected in CASES.values() for label in expected}
    assert covered == set(LABEL), f"rules without a case: {set(LABEL) - covered}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_rule_fires_for_the_patient_and_not_the_near_miss(case, tmp_path_factory):
    change, expected = CASES[case]
    reg = copy.deepcopy(mini_registry())
    change(reg)
    exp, report = findings(tmp_path_factory, reg)
    for label, patients in expected.items():
        assert patients_of(exp, label) == patients, label
    assert_shared_counts_equal_the_validator(exp, report)


def test_details_name_the_record_and_its_values(tmp_path_factory):
    reg = copy.deepcopy(mini_registry())
    contradiction(reg)
    resolved_after_death(reg)
    no_contact(reg)
    exp, _ = findings(tmp_path_factory, reg)
    assert details_of(exp, "recorded response contradicts the target-lesion response implied by the measurements") \
        == ["visit M1: recorded PR, measurements imply CR (target sum 0.0 mm, baseline 25.0 mm, nadir before 25.0 mm)"]
    assert details_of(exp, "AE resolved after the patient's death") == \
        ["AE A1 (Fever, grade 1): resolved 2024-07-11, death 2024-07-10"]
    assert details_of(exp, NO_CONTACT) == ["last contact 2024-09-01, 121 days before the cut-off 2024-12-31"]


def test_the_filters_and_the_site_filter_apply(tmp_path_factory, mini_snapshot):
    every = exports.compute_export("data-quality", mini_snapshot, Filters())
    s02 = exports.compute_export("data-quality", mini_snapshot, Filters(site=("S02",)))
    assert set(s02.rows.patient_id) == {"P3"} and s02.n_patients == 2          # P3, P4 at S02
    assert s02.rows.to_dict("records") == every.rows[every.rows.site_id == "S02"].to_dict("records")
    bclc_c = exports.compute_export("data-quality", mini_snapshot, Filters(bclc=("C",)))     # P2, P4
    assert set(bclc_c.rows.patient_id) == {"P2"}
    nobody = exports.compute_export("data-quality", mini_snapshot, Filters(age_min=99))
    assert nobody.n_patients == 0 and nobody.rows.empty and list(nobody.rows.columns) == list(every.rows.columns)
    assert dt.date(2024, 12, 31) == mini_snapshot.cutoff_date
