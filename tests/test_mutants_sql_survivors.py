"""The 14 SQL mutants of docs/mutation-testing.md that no test killed (issue 14 item 10), each killed
here on a small hand-written registry (one patient per case), each expected value worked out by
hand from the analysis plan (../shared/specs/analysis-plan.md, docs/analysis.md) in the comment
beside it. Each test names the mutant it kills (`python -m scripts.mutation.sql --list --only ID`).

Day arithmetic: day of the year 2024 (a leap year): Jan 10 = 10, Mar 1 = 61, Mar 11 = 71,
Mar 12 = 72, May 1 = 122.
"""
import pandas as pd
import pytest

from fixtures import D, ae, lesion, meas, patient, scan, session, write_snapshot

from dashboard import data
from dashboard.validate import validate_folder

GI = "Gastrointestinal disorders"


def nontarget(pid, lid, visit, status):
    return dict(patient_id=pid, lesion_id=lid, visit=visit, viable_diameter_mm=None, non_target_status=status)


def survivor_registry() -> dict[str, list[dict]]:
    """Seven patients at one site, cut-off 2024-12-31, all first treated 2024-01-10 but W7.

    W1 PD at M1 and again at M3 (overall and local)
    W2 two target lesions, L2 without a measurement row at M1
    W3 CR at M1 (sum 0), then PD at M3 (sum 10 mm): the nadir before M3 is 0
    W4 recorded PD at M1, target sum -25% (implied SD), a non-target lesion 'present', no new lesion
    W5 recorded SD at M1 with a new lesion, target sum -50% (implied PR)
    W6 two sessions (the second with the other drug and microsphere size) and three serious related
       AEs: Nausea 3 on the day of session 2 without session number, Vomiting 2, Fever 2
    W7 first treated on the cut-off date, largest tumour 7.5 cm
    """
    t0 = "2024-01-10"
    pids = ["W1", "W2", "W3", "W4", "W5", "W6"]
    patients = [patient(p, "S01", t0, "B", last_alive="2024-12-31") for p in pids]
    patients.append(patient("W7", "S01", "2024-12-31", "B", last_alive="2024-12-31", largest_tumor_cm=7.5))
    treatments = [session(p, 1, t0) for p in pids] + [session("W7", 1, "2024-12-31")]
    treatments.append(dict(session("W6", 2, "2024-03-11"), drug="epirubicin", microsphere_size="100-150"))
    lesions = [lesion(p, "L1") for p in pids if p != "W6"] + [lesion("W2", "L2"), lesion("W4", "N1", target=False),
                                                             lesion("W7", "L1")]
    imaging = [scan(p, "baseline", "2024-01-05") for p in pids if p != "W6"] + [
        scan("W1", "M1", "2024-03-01", "PD", "PD"), scan("W1", "M3", "2024-05-01", "PD", "PD"),
        scan("W2", "M1", "2024-03-01", "SD", "SD"),
        scan("W3", "M1", "2024-03-01", "CR", "CR"), scan("W3", "M3", "2024-05-01", "PD", "PD"),
        scan("W4", "M1", "2024-03-01", "PD", "PD"),
        scan("W5", "M1", "2024-03-01", "SD", "SD", new=True),
        scan("W7", "baseline", "2024-12-28"),
    ]
    measurements = [
        meas("W1", "L1", "baseline", 20.0), meas("W1", "L1", "M1", 30.0), meas("W1", "L1", "M3", 40.0),
        meas("W2", "L1", "baseline", 30.0), meas("W2", "L2", "baseline", 20.0), meas("W2", "L1", "M1", 25.0),
        meas("W3", "L1", "baseline", 20.0), meas("W3", "L1", "M1", 0.0), meas("W3", "L1", "M3", 10.0),
        meas("W4", "L1", "baseline", 40.0), meas("W4", "L1", "M1", 30.0),
        nontarget("W4", "N1", "baseline", "present"), nontarget("W4", "N1", "M1", "present"),
        meas("W5", "L1", "baseline", 40.0), meas("W5", "L1", "M1", 20.0),
        meas("W7", "L1", "baseline", 75.0),
    ]
    aes = [
        ae("W6", "A1", "Nausea", 3, "2024-03-11", serious=True, session_number=None),
        ae("W6", "A2", "Vomiting", 2, "2024-03-12", serious=True, session_number=2),
        ae("W6", "A3", "Fever", 2, "2024-01-12", serious=True, session_number=1),
    ]
    return {
        "sites": [dict(site_id="S01", site_name="North Hospital", activation_date=D("2024-01-01"),
                       target_enrollment=10)],
        "patients": patients, "treatments": treatments, "lesions": lesions, "imaging": imaging,
        "lesion_measurements": measurements, "adverse_events": aes,
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("survivors")
    write_snapshot(root, "2024-12-31", survivor_registry())
    return root


@pytest.fixture(scope="module")
def snap(root):
    return data.resolve("latest", root)


def rows(snap, view, **where):
    df = data.query(view, snap)
    for k, v in where.items():
        df = df[df[k] == v]
    return df


def one(snap, view, **where):
    df = rows(snap, view, **where)
    assert len(df) == 1, df
    return df.iloc[0]


def test_survivor_registry_is_valid(root):
    # contract rules: docs/snapshot-contract.md; W2's L2 without a row at M1 is a warning on purpose
    report = validate_folder(root / "snapshots" / "2024-12-31")
    assert report.ok, report.summary()
    assert sorted(ex for w in report.warnings for ex in w.examples) == [
        "W2/L2/M1", "W4/M1 recorded PD, measurements imply SD", "W5/M1 recorded SD, measurements imply PR",
        "W6"], report.summary()


# --- patient_endpoints_all.sql ------------------------------------------------------------------
def endpoint(snap, pid, name):
    r = one(snap, "patient_endpoints_all", patient_id=pid, endpoint=name)
    return int(r.time_days), bool(r.is_event)


def test_ttp_ends_at_the_first_of_two_progressions(snap):
    """Kills patient_endpoints_all:1 (first PD date min -> max). Plan: TTP = time to the first PD.
    W1: t0 Jan 10, PD Mar 1 and May 1 -> 61 - 10 = 51 days, an event (the mutant: 122 - 10 = 112);
    PFS (no death) ends there too."""
    assert endpoint(snap, "W1", "ttp") == (51, True)
    assert endpoint(snap, "W1", "pfs") == (51, True)


def test_local_ttp_ends_at_the_first_of_two_local_progressions(snap):
    """Kills patient_endpoints_all:4 (first local PD date min -> max). Plan: local TTP = time to the
    first local PD. W1: local PD Mar 1 and May 1 -> 51 days (the mutant: 112)."""
    assert endpoint(snap, "W1", "local_ttp") == (51, True)


# --- tumour_burden_all.sql ----------------------------------------------------------------------
def test_a_target_lesion_without_a_row_leaves_the_sum_not_evaluable(snap):
    """Kills tumour_burden_all:9 (left join of the measurements -> join). Plan (mRECIST): the sum
    of the target diameters needs every target lesion measured. W2 at M1: L1 25 mm, L2 no row ->
    sum null, no percent change (the mutant sums L1 alone: 25 mm, (25 - 50) / 50 = -50%); two
    lesions counted; baseline 30 + 20 = 50 mm."""
    r = one(snap, "tumour_burden_all", scope="overall", patient_id="W2", visit="M1")
    assert int(r.n_lesions) == 2
    assert r.baseline_mm == 50.0
    assert pd.isna(r["sum_mm"])
    assert pd.isna(r["pct_change"])


# --- response_consistency_all.sql ---------------------------------------------------------------
def test_no_percent_from_a_nadir_of_zero(snap):
    """Kills response_consistency_all:13 (nadir_before_mm > 0 -> >= 0). A change from a nadir of 0
    is not a percentage. W3: baseline 20 mm, CR at M1 (0 mm), 10 mm at M3 -> nadir before M3 is
    min(20, 0) = 0, pct_from_nadir null (the mutant: 100 * 10 / 0.0 = inf); implied PD (10 > 0),
    recorded PD, so not discrepant; pct_change (10 - 20) / 20 = -50%."""
    r = one(snap, "response_consistency_all", scope="overall", patient_id="W3", visit="M3")
    assert r.nadir_before_mm == 0.0
    assert pd.isna(r["pct_from_nadir"])
    assert r["pct_change"] == -50.0
    assert (r.implied, r.recorded, bool(r.is_discrepant)) == ("PD", "PD", False)


def test_a_recorded_pd_without_non_target_progression_stays_discrepant(snap):
    """Kills response_consistency_all:26 and :28 (`and` -> `or` in the non-target progression
    check). Plan: a recorded PD is explained only by a new lesion or unequivocal progression of
    non-target lesions. W4 at M1: sum 40 -> 30 mm (-25%: not >= +20% from the nadir 40, not <= -30%:
    implied SD), recorded PD, no new lesion, its non-target lesion N1 'present' -> no non-target
    progression, discrepant (:26 finds any measurement row of the scan, :28 any non-target row)."""
    r = one(snap, "response_consistency_all", scope="overall", patient_id="W4", visit="M1")
    assert (r.recorded, r.implied) == ("PD", "SD")
    assert not bool(r.has_non_target_progression)
    assert bool(r.has_non_target_present)
    assert bool(r.is_discrepant)


def test_a_new_lesion_does_not_excuse_a_scan_not_recorded_pd(snap):
    """Kills response_consistency_all:48 (`and (new lesion or non-target PD)` -> `or`). Plan: a new
    lesion explains a recorded PD only. W5 at M1: sum 40 -> 20 mm (-50% <= -30%: implied PR),
    recorded SD with a new lesion -> discrepant (the mutant excuses every scan with a new lesion)."""
    r = one(snap, "response_consistency_all", scope="overall", patient_id="W5", visit="M1")
    assert (r.recorded, r.implied, bool(r.has_new_lesion)) == ("SD", "PR", True)
    assert bool(r.is_discrepant)


# --- ae_episodes_all.sql ------------------------------------------------------------------------
def test_an_ae_on_a_session_day_belongs_to_that_session(snap):
    """Kills ae_episodes_all:4 (attribution onset >= session date -> >). Plan: an AE without a
    session number follows the latest session on or before its onset. W6's Nausea on Mar 11, the
    day of session 2 -> session 2, 0 days (the mutant: session 1, 71 - 10 = 61 days)."""
    r = one(snap, "ae_episodes_all", patient_id="W6", ae_id="A1")
    assert (int(r.attributed_session_number), int(r.days_from_session)) == (2, 0)
    assert pd.Timestamp(r.session_date).date() == D("2024-03-11")


# --- ae_worst_grade_all.sql ---------------------------------------------------------------------
def soc_key(snap, soc):
    return int(rows(snap, "ae_episodes_all", soc=soc).soc_key.iloc[0])


def test_worst_related_serious_grade_of_a_class_is_its_maximum(snap):
    """Kills ae_worst_grade_all:12 (per-class related-and-serious worst grade max -> min). Plan:
    each patient counted once at the worst grade. W6 in Gastrointestinal disorders: Nausea 3 and
    Vomiting 2, both related and serious -> 3 (the mutant: 2); 2 episodes."""
    r = one(snap, "ae_worst_grade_all", level="soc", patient_id="W6", soc_key=soc_key(snap, GI))
    assert int(r.worst_grade_related_serious) == 3
    assert int(r.n_related_serious) == 2


def test_worst_serious_grade_of_a_patient_is_its_maximum(snap):
    """Kills ae_worst_grade_all:15 (per-patient serious worst grade max -> min). W6's serious AEs:
    Gastrointestinal worst 3 (Nausea), General disorders 2 (Fever) -> 3 (the mutant: min(3, 2) = 2);
    3 serious episodes."""
    r = one(snap, "ae_worst_grade_all", level="overall", patient_id="W6")
    assert int(r.worst_grade_serious) == 3
    assert int(r.n_serious) == 3


# --- cohort_all.sql -----------------------------------------------------------------------------
def test_drug_and_microspheres_are_those_of_the_first_session(snap):
    """Kills cohort_all:3 (first session = 1 -> 2). Plan: drug and microsphere size of the first
    DEB-TACE. W6: session 1 doxorubicin 30-60, session 2 epirubicin 100-150 -> doxorubicin, 30-60
    (the mutant: epirubicin, 100-150)."""
    r = one(snap, "cohort_all", patient_id="W6")
    assert (r.drug, r.microsphere_size) == ("doxorubicin", "30-60")


def test_a_tumour_of_7_5_cm_is_in_the_over_7_group(snap):
    """Kills cohort_all:11 (`> 7` -> `> 8`). Plan: tumour size groups <= 7 cm and > 7 cm. W7: 7.5 cm
    -> '> 7 cm' (the mutant: '<= 7 cm')."""
    assert one(snap, "cohort_all", patient_id="W7").tumor_size_group == "> 7 cm"


# --- downsizing_all.sql -------------------------------------------------------------------------
def test_a_patient_first_treated_on_the_cut_off_is_in_the_downsizing_rows(snap):
    """Kills downsizing_all:1 (first_treatment_date <= cut-off -> <). Enrolled = first DEB-TACE on
    or before the cut-off (cohort_all uses <=). W7, treated on the cut-off Dec 31: a row, index
    lesion L1 75 mm, no follow-up measurement (the mutant leaves W7 out)."""
    r = one(snap, "downsizing_all", patient_id="W7")
    assert (r.lesion_id, r.baseline_diameter_mm, int(r.n_followup_measurements)) == ("L1", 75.0, 0)
    assert r.not_evaluable_reason == "no follow-up measurement"
    assert set(rows(snap, "downsizing_all").patient_id) == set(rows(snap, "cohort_all").patient_id)


def test_follow_up_measurements_of_an_evaluable_patient_are_counted(snap):
    """Kills downsizing_all:38 (coalesce(n, 0) -> coalesce(0, n)). W3: index lesion L1 20 mm,
    measured at M1 (0 mm) and at M3 (10 mm, the first PD, counted: up to and including it) -> 2
    measurements (the mutant: 0), best change (0 - 20) / 20 = -100% at M1."""
    r = one(snap, "downsizing_all", patient_id="W3")
    assert int(r.n_followup_measurements) == 2
    assert (r.best_pct_change, r.best_visit) == (-100.0, "M1")
