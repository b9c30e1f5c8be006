"""Hand-written registry fixtures with answers worked out by hand (see tests/test_views.py).

`write_snapshot` turns plain row dicts into a contract-shaped snapshot (missing tables are
written empty with the full schema), published the same way the generator publishes.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from dashboard.contract import TABLES
from dashboard.snapshots import publish

D = dt.date.fromisoformat


def table_from_rows(name: str, rows: list[dict]) -> pa.Table:
    schema = TABLES[name].arrow_schema()
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in cols.items()}, schema=schema)


def write_snapshot(root: Path, snapshot_id: str, rows: dict[str, list[dict]], cutoff: str | None = None,
                   source: str = "synthetic") -> Path:
    tables = {name: table_from_rows(name, rows.get(name, [])) for name in TABLES}
    return publish(Path(root), snapshot_id, D(cutoff or snapshot_id[:10]), tables, source,
                   created_at=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), replace=True)


def patient(pid, site, t0, bclc="B", last_alive=None, death=None, **kw):
    row = dict(patient_id=pid, site_id=site, first_treatment_date=D(t0), age_years=60, sex="M",
               etiology="HBV", ecog_ps=0 if bclc == "B" else 1, child_pugh_score=5, child_pugh_class="A",
               albi_grade=1, afp_ng_ml=20.0, tumor_count=3, largest_tumor_cm=6.0,
               has_macrovascular_invasion=bclc == "C", has_extrahepatic_spread=False, bclc_stage=bclc,
               is_within_milan=False, is_within_up_to_seven=False, is_resectable=False,
               last_known_alive_date=D(last_alive or death), death_date=D(death) if death else None,
               off_study_date=D(death) if death else None, off_study_reason="death" if death else None)
    row.update(kw)
    return row


def scan(pid, visit, date, overall=None, local=None, new=False):
    return dict(patient_id=pid, visit=visit, imaging_date=D(date), modality="CT",
                overall_response=overall, local_response=local, has_new_lesion=new)


def meas(pid, lesion, visit, mm):
    return dict(patient_id=pid, lesion_id=lesion, visit=visit, viable_diameter_mm=mm, non_target_status=None)


def session(pid, n, date):
    return dict(patient_id=pid, session_number=n, treatment_date=D(date), drug="doxorubicin",
                dose_mg=75.0, microsphere_size="30-60", is_superselective=True)


def lesion(pid, lid, target=True, treated=True, segment="S5"):
    return dict(patient_id=pid, lesion_id=lid, segment=segment, is_target=target, is_treated=treated)


def ae(pid, aid, term, grade, onset, soc=None, serious=False, related=True, session_number=1):
    from dashboard.contract import CTCAE_SOC
    return dict(patient_id=pid, ae_id=aid, term=term, soc=soc or CTCAE_SOC[term], grade=grade,
                onset_date=D(onset), resolution_date=None, is_serious=serious,
                is_treatment_related=related, session_number=session_number)


def review(pid, visit, date, bclc, milan, resectable=False, up7=False):
    return dict(patient_id=pid, visit=visit, review_date=D(date), bclc_stage=bclc, is_within_milan=milan,
                is_within_up_to_seven=up7, is_resectable=resectable)


def mini_registry() -> dict[str, list[dict]]:
    """Five patients at two sites, cut-off 2024-12-31. Worked answers in tests/test_views.py."""
    return {
        "sites": [
            dict(site_id="S01", site_name="North Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
            dict(site_id="S02", site_name="South Hospital", activation_date=D("2024-02-01"), target_enrollment=5),
        ],
        "patients": [
            patient("P1", "S01", "2024-01-10", "B", death="2024-07-10"),
            patient("P2", "S01", "2024-02-01", "C", last_alive="2024-12-31", sex="F", etiology=None),
            patient("P3", "S02", "2024-03-01", "B", last_alive="2024-10-01",
                    off_study_date=D("2024-10-01"), off_study_reason="lost_to_follow_up", is_within_milan=True),
            patient("P4", "S02", "2024-05-01", "C", death="2024-06-01"),
            patient("P5", "S01", "2024-06-01", "B", last_alive="2024-12-31"),
        ],
        "treatments": [
            session("P1", 1, "2024-01-10"), session("P1", 2, "2024-03-01"),
            session("P2", 1, "2024-02-01"), session("P3", 1, "2024-03-01"),
            session("P4", 1, "2024-05-01"), session("P5", 1, "2024-06-01"),
        ],
        "lesions": [
            lesion("P1", "L1", treated=True), lesion("P1", "L2", treated=False),
            lesion("P2", "L1"), lesion("P3", "L1"), lesion("P4", "L1"),
            lesion("P5", "L1"), lesion("P5", "L2"),
        ],
        "imaging": [
            # P1: PR at M1 (-40%), PD at M3 (+33% from the nadir 30), a later shrink that must not count
            scan("P1", "baseline", "2024-01-05"),
            scan("P1", "M1", "2024-02-20", "PR", "PR"),
            scan("P1", "M3", "2024-04-20", "PD", "SD"),
            scan("P1", "M5", "2024-06-15", "PR", "PR"),
            # P2: SD, SD at -25% (nadir 30), PD at 37 mm: +23% from the nadir, still below baseline
            scan("P2", "baseline", "2024-01-25"),
            scan("P2", "M1", "2024-03-15", "SD", "SD"),
            scan("P2", "M3", "2024-05-15", "SD", "SD"),
            scan("P2", "M5", "2024-07-15", "PD", "PD"),
            # P3: CR at M1
            scan("P3", "baseline", "2024-02-25"),
            scan("P3", "M1", "2024-04-10", "CR", "CR"),
            # P4: baseline only, died before any follow-up scan
            scan("P4", "baseline", "2024-04-28"),
            # P5: a target lesion unmeasured at M1
            scan("P5", "baseline", "2024-05-30"),
            scan("P5", "M1", "2024-07-15", "SD", "SD"),
        ],
        "lesion_measurements": [
            meas("P1", "L1", "baseline", 30.0), meas("P1", "L2", "baseline", 20.0),
            meas("P1", "L1", "M1", 10.0), meas("P1", "L2", "M1", 20.0),
            meas("P1", "L1", "M3", 10.0), meas("P1", "L2", "M3", 30.0),
            meas("P1", "L1", "M5", 5.0), meas("P1", "L2", "M5", 5.0),
            meas("P2", "L1", "baseline", 40.0), meas("P2", "L1", "M1", 36.0),
            meas("P2", "L1", "M3", 30.0), meas("P2", "L1", "M5", 37.0),
            meas("P3", "L1", "baseline", 25.0), meas("P3", "L1", "M1", 0.0),
            meas("P4", "L1", "baseline", 50.0),
            meas("P5", "L1", "baseline", 30.0), meas("P5", "L2", "baseline", 20.0),
            meas("P5", "L1", "M1", 28.0), meas("P5", "L2", "M1", None),
        ],
        "staging": [
            review("P1", "M1", "2024-02-20", "A", True),     # downstaged at the first review...
            review("P1", "M3", "2024-04-20", "B", False),    # ...then back out: still counts
            review("P2", "M1", "2024-03-15", "C", False, resectable=True),
        ],
        "adverse_events": [
            ae("P1", "A1", "Fever", 1, "2024-01-11"),
            ae("P1", "A2", "Fever", 3, "2024-03-02", serious=True, session_number=2),
            ae("P1", "A3", "Abdominal pain", 2, "2024-01-11"),
            ae("P1", "A4", "Nausea", 1, "2024-01-12"),
            ae("P2", "A1", "Alanine aminotransferase increased", 2, "2024-02-10", related=False),
        ],
    }


def varied_registry() -> dict[str, list[dict]]:
    """Six patients at two sites, cut-off 2024-12-31, varying what mini_registry holds constant:
    Child-Pugh B and C, a death after the last contact, PD then death, a response after PD, a
    responder without a waterfall bar, a patient with neither a baseline sum nor a follow-up scan.
    Worked answers in tests/test_mutants_views.py.

    V1 S01 CP B (8)  age 55  t0 2024-01-10  last contact 2024-05-01, died 2024-06-10   SD (-10%)
    V2 S01 CP C (10) age 60  t0 2024-02-01  PD 2024-04-01, died 2024-08-01              PD (+25%)
    V3 S01 CP B (7)  age 60  t0 2024-03-01  PD 2024-04-15, then PR 2024-06-15, alive    PD (+25%)
                     within Milan and resectable at baseline and at its review on 2024-04-15
    V4 S02 CP A (6)  age 70  t0 2024-04-01  PR with a target lesion unmeasured, alive   PR, no bar
                     outside Milan, not resectable at baseline; within Milan, resectable on 2024-05-15
    V5 S02 CP A (5)  age 45  t0 2024-05-01  baseline unmeasured, no follow-up, alive    NE, no bar
    V6 S02 CP A (5)  age 80  t0 2024-06-01  CR (-100%), alive                           CR (-100%)
    AFP 20 ng/mL but V4 401 and V6 400 (the '> 400' boundary)
    """
    return {
        "sites": [
            dict(site_id="S01", site_name="North Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
            dict(site_id="S02", site_name="South Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
        ],
        "patients": [
            patient("V1", "S01", "2024-01-10", "B", last_alive="2024-05-01", death="2024-06-10", age_years=55,
                    child_pugh_score=8, child_pugh_class="B"),
            patient("V2", "S01", "2024-02-01", "C", death="2024-08-01", age_years=60,
                    child_pugh_score=10, child_pugh_class="C"),
            patient("V3", "S01", "2024-03-01", "B", last_alive="2024-12-31", age_years=60,
                    child_pugh_score=7, child_pugh_class="B", is_within_milan=True, is_resectable=True),
            patient("V4", "S02", "2024-04-01", "B", last_alive="2024-12-31", age_years=70, child_pugh_score=6,
                    afp_ng_ml=401.0),
            patient("V5", "S02", "2024-05-01", "B", last_alive="2024-07-01", age_years=45),
            patient("V6", "S02", "2024-06-01", "B", last_alive="2024-12-31", age_years=80, afp_ng_ml=400.0),
        ],
        "treatments": [session(p, 1, d) for p, d in (
            ("V1", "2024-01-10"), ("V2", "2024-02-01"), ("V3", "2024-03-01"),
            ("V4", "2024-04-01"), ("V5", "2024-05-01"), ("V6", "2024-06-01"))],
        "lesions": [lesion("V1", "L1"), lesion("V2", "L1"), lesion("V3", "L1"),
                    lesion("V4", "L1"), lesion("V4", "L2"), lesion("V5", "L1"), lesion("V6", "L1")],
        "imaging": [
            scan("V1", "baseline", "2024-01-05"), scan("V1", "M1", "2024-03-01", "SD", "SD"),
            scan("V2", "baseline", "2024-01-28"), scan("V2", "M1", "2024-04-01", "PD", "PD"),
            scan("V3", "baseline", "2024-02-25"), scan("V3", "M1", "2024-04-15", "PD", "PD"),
            scan("V3", "M3", "2024-06-15", "PR", "PR"),
            scan("V4", "baseline", "2024-03-28"), scan("V4", "M1", "2024-05-15", "PR", "PR"),
            scan("V5", "baseline", "2024-04-28"),
            scan("V6", "baseline", "2024-05-28"), scan("V6", "M1", "2024-07-15", "CR", "CR"),
        ],
        "lesion_measurements": [
            meas("V1", "L1", "baseline", 30.0), meas("V1", "L1", "M1", 27.0),                # -10%
            meas("V2", "L1", "baseline", 40.0), meas("V2", "L1", "M1", 50.0),                # +25%
            meas("V3", "L1", "baseline", 40.0), meas("V3", "L1", "M1", 50.0),                # +25%: PD
            meas("V3", "L1", "M3", 20.0),                                                    # -50% after PD
            meas("V4", "L1", "baseline", 30.0), meas("V4", "L2", "baseline", 20.0),
            meas("V4", "L1", "M1", 15.0), meas("V4", "L2", "M1", None),                      # no sum at M1
            meas("V5", "L1", "baseline", None),                                              # no baseline sum
            meas("V6", "L1", "baseline", 20.0), meas("V6", "L1", "M1", 0.0),                 # -100%
        ],
        "staging": [
            # V3 within Milan and resectable at baseline and at its review: neither downstaged nor converted
            review("V3", "M1", "2024-04-15", "A", True, resectable=True),
            # V4 outside Milan and not resectable at baseline, within Milan and resectable at its review
            review("V4", "M1", "2024-05-15", "A", True, resectable=True),
        ],
        "adverse_events": [],
    }
