"""The snapshot validator against the contract's "Validation" section.

Every broken snapshot is the hand-written mini registry (tests/fixtures.py) with exactly ONE rule
broken; the test checks the snapshot is rejected with an error naming the table, the column and
the rule, and that an offending key is among the examples. Validation costs ~0.3 s per snapshot
(one DuckDB query per rule), so every scenario is built up front and the folders are validated
concurrently in one module-scoped fixture; the tests then only read the reports.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

from dashboard.contract import MANIFEST, TABLES  # noqa: E402
from dashboard.snapshots import SnapshotError, get_snapshot, list_snapshots, publish, sha256_file  # noqa: E402
from dashboard.validate import validate_folder  # noqa: E402
from fixtures import D, ae, lesion, meas, mini_registry, review, scan, session, table_from_rows, write_snapshot  # noqa: E402

CUTOFF = "2024-12-31"
SNAPSHOT_ID = "2024-12-31"


# --- editing the row dicts before publishing --------------------------------------------------
def the_row(reg: dict, table: str, **match) -> dict:
    hits = [r for r in reg[table] if all(r.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, f"fixture row {table} {match} matched {len(hits)} rows"
    return hits[0]


def edit(table: str, match: dict, **changes) -> Callable[[dict], None]:
    """Change some values of the one row of `table` matching `match`."""
    def mutate(reg):
        the_row(reg, table, **match).update(changes)
    return mutate


def add(table: str, *rows: dict) -> Callable[[dict], None]:
    def mutate(reg):
        reg[table].extend(copy.deepcopy(list(rows)))
    return mutate


def duplicate(table: str, **match) -> Callable[[dict], None]:
    def mutate(reg):
        reg[table].append(copy.deepcopy(the_row(reg, table, **match)))
    return mutate


def remove(table: str, **match) -> Callable[[dict], None]:
    def mutate(reg):
        reg[table].remove(the_row(reg, table, **match))
    return mutate


def both(*mutations) -> Callable[[dict], None]:
    def mutate(reg):
        for m in mutations:
            m(reg)
    return mutate


# --- editing the published folder (bypasses table_from_rows and the publisher) ---------------
def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def rewrite(name: str, change: Callable[[pa.Table], pa.Table], fix_manifest: bool = True):
    """Replace a published table file; by default recompute its manifest entry so only the
    content rule is broken, not the file/manifest agreement."""
    def after(folder: Path):
        path = folder / f"{name}.parquet"
        table = change(pq.read_table(path))
        pq.write_table(table, path)
        if fix_manifest:
            entry = {"rows": table.num_rows, "sha256": sha256_file(path)}
            edit_manifest(folder, lambda m: m["tables"].__setitem__(name, entry))
    return after


def retype(column: str, type_: pa.DataType) -> Callable[[pa.Table], pa.Table]:
    def change(t):
        return t.set_column(t.schema.get_field_index(column), pa.field(column, type_), t[column].cast(type_))
    return change


def drop(column: str) -> Callable[[pa.Table], pa.Table]:
    return lambda t: t.drop_columns([column])


def delete_file(name: str, fix_manifest: bool = False):
    def after(folder: Path):
        (folder / f"{name}.parquet").unlink()
        if fix_manifest:
            edit_manifest(folder, lambda m: m["tables"].pop(name))
    return after


def garbage_file(name: str):
    def after(folder: Path):
        path = folder / f"{name}.parquet"
        path.write_bytes(b"this is not parquet\n")
        edit_manifest(folder, lambda m: m["tables"].__setitem__(name, {"rows": 0, "sha256": sha256_file(path)}))
    return after


def age_61(t: pa.Table) -> pa.Table:
    rows = [{**r, "age_years": 61} if r["patient_id"] == "P1" else r for r in t.to_pylist()]
    return table_from_rows("patients", rows)


# --- scenarios --------------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    table: str = ""
    column: str = ""
    rule: str = ""                     # a substring of the rule text
    example: str | None = None         # a substring of one of the examples (an offending key)
    mutate: Callable | None = None     # edits the row dicts before publishing
    after: Callable | None = None      # edits the published folder
    allow: tuple = ()                  # (table, rule substring) of other errors this break implies
    nullable: bool = False             # write every column as nullable (arrow refuses nulls otherwise)
    unlisted: bool = False             # list_snapshots must skip the folder (file/manifest mismatch)


BROKEN = [
    # structure: files, columns, types, manifest agreement
    Case("missing-table-file", "adverse_events", "", "file adverse_events.parquet missing",
         after=delete_file("adverse_events"), unlisted=True),
    Case("missing-table-file-and-manifest-entry", "adverse_events", "", "file adverse_events.parquet missing",
         after=delete_file("adverse_events", fix_manifest=True), unlisted=True,
         allow=(("manifest.json", "'adverse_events'"),)),
    Case("unreadable-table-file", "staging", "", "file staging.parquet is not readable parquet",
         after=garbage_file("staging"), unlisted=True),
    Case("missing-column", "patients", "etiology", "column missing", after=rewrite("patients", drop("etiology"))),
    Case("empty-table-without-full-schema", "adverse_events", "ae_id", "column missing",
         after=rewrite("adverse_events", lambda t: t.select(["patient_id"]).slice(0, 0))),
    Case("wrong-type-age-string", "patients", "age_years", "type is VARCHAR, contract says INTEGER",
         after=rewrite("patients", retype("age_years", pa.string()))),
    Case("wrong-type-age-int64", "patients", "age_years", "type is BIGINT, contract says INTEGER",
         after=rewrite("patients", retype("age_years", pa.int64()))),
    Case("wrong-type-date-as-timestamp", "treatments", "treatment_date", "contract says DATE",
         after=rewrite("treatments", retype("treatment_date", pa.timestamp("ms")))),
    Case("checksum-mismatch", "patients", "", "checksum does not match the manifest",
         after=rewrite("patients", age_61, fix_manifest=False), unlisted=True),
    Case("row-count-mismatch", "patients", "", "file has 5 rows, manifest says 6",
         after=lambda f: edit_manifest(f, lambda m: m["tables"]["patients"].__setitem__("rows", 6)), unlisted=True),
    Case("manifest-schema-version", "manifest.json", "", "schema_version 2, expected 1",
         after=lambda f: edit_manifest(f, lambda m: m.__setitem__("schema_version", 2)), unlisted=True),
    # nulls
    Case("null-sex", "patients", "sex", "must not be null", "P3", edit("patients", dict(patient_id="P3"), sex=None),
         nullable=True),
    Case("null-dose", "treatments", "dose_mg", "must not be null", "P1/2",
         edit("treatments", dict(patient_id="P1", session_number=2), dose_mg=None), nullable=True),
    # keys
    Case("duplicate-patient", "patients", "patient_id", "duplicate key", "P5", duplicate("patients", patient_id="P5")),
    Case("duplicate-imaging-composite-key", "imaging", "patient_id,visit", "duplicate key", "P3/M1",
         duplicate("imaging", patient_id="P3", visit="M1")),
    # references
    Case("dangling-site", "patients", "site_id", "must reference an existing sites row", "P5=S99",
         edit("patients", dict(patient_id="P5"), site_id="S99")),
    Case("dangling-treatment-patient", "treatments", "patient_id", "must reference an existing patients row", "P9/1=P9",
         add("treatments", session("P9", 1, "2024-06-01"))),
    Case("dangling-measurement-lesion", "lesion_measurements", "patient_id,lesion_id",
         "must reference an existing lesions row", "P3/L9/M1=P3/L9",
         add("lesion_measurements", meas("P3", "L9", "M1", 10.0))),
    Case("dangling-measurement-visit", "lesion_measurements", "patient_id,visit",
         "must reference an existing imaging row", "P3/L1/M9=P3/M9",
         add("lesion_measurements", meas("P3", "L1", "M9", 0.0))),
    Case("dangling-ae-session", "adverse_events", "patient_id,session_number",
         "must reference an existing treatments row", "P1/A4=P1/7",
         edit("adverse_events", dict(patient_id="P1", ae_id="A4"), session_number=7)),
    # codes
    Case("code-sex", "patients", "sex", "accepted codes", "P1=X", edit("patients", dict(patient_id="P1"), sex="X")),
    Case("code-bclc", "patients", "bclc_stage", "accepted codes", "P2=5",
         edit("patients", dict(patient_id="P2"), bclc_stage="5")),
    Case("code-overall-response", "imaging", "overall_response", "accepted codes", "P3/M1=XX",
         edit("imaging", dict(patient_id="P3", visit="M1"), overall_response="XX")),
    Case("code-drug", "treatments", "drug", "accepted codes", "P2/1=cisplatin",
         edit("treatments", dict(patient_id="P2", session_number=1), drug="cisplatin")),
    # ranges
    Case("range-age-17", "patients", "age_years", "must be >= 18", "P1=17",
         edit("patients", dict(patient_id="P1"), age_years=17)),
    Case("range-age-101", "patients", "age_years", "must be <= 100", "P1=101",
         edit("patients", dict(patient_id="P1"), age_years=101)),
    Case("range-ecog-5", "patients", "ecog_ps", "must be <= 4", "P2=5",
         edit("patients", dict(patient_id="P2"), ecog_ps=5)),
    Case("range-ae-grade-6", "adverse_events", "grade", "must be <= 5", "P1/A1=6",
         edit("adverse_events", dict(patient_id="P1", ae_id="A1"), grade=6)),
    Case("range-dose-0", "treatments", "dose_mg", "must be > 0", "P1/1",
         edit("treatments", dict(patient_id="P1", session_number=1), dose_mg=0.0)),
    Case("range-largest-tumor-0", "patients", "largest_tumor_cm", "must be > 0", "P3",
         edit("patients", dict(patient_id="P3"), largest_tumor_cm=0.0)),
    Case("range-viable-diameter-negative", "lesion_measurements", "viable_diameter_mm", "must be >= 0", "P2/L1/M3",
         edit("lesion_measurements", dict(patient_id="P2", lesion_id="L1", visit="M3"), viable_diameter_mm=-1.0)),
    Case("child-pugh-class-disagrees", "patients", "child_pugh_class", "must agree with child_pugh_score", "P1",
         edit("patients", dict(patient_id="P1"), child_pugh_score=8)),
    # date order
    Case("death-before-first-treatment", "patients", "death_date", "must be on or after first_treatment_date", "P4",
         edit("patients", dict(patient_id="P4"), death_date=D("2024-04-30")),
         # dying before the first session necessarily puts the session and the last contact after death
         allow=(("patients", "must be on or before death_date"), ("treatments", "must be on or before death_date"))),
    Case("alive-after-death", "patients", "last_known_alive_date", "must be on or before death_date", "P1",
         edit("patients", dict(patient_id="P1"), last_known_alive_date=D("2024-08-01"))),
    Case("ae-resolution-before-onset", "adverse_events", "resolution_date", "must be on or after onset_date", "P1/A1",
         edit("adverse_events", dict(patient_id="P1", ae_id="A1"), resolution_date=D("2024-01-10"))),
    Case("ae-onset-before-first-treatment", "adverse_events", "onset_date", "on or after first_treatment_date",
         "P2/A1", edit("adverse_events", dict(patient_id="P2", ae_id="A1"), onset_date=D("2024-01-20"))),
    Case("baseline-scan-after-first-treatment", "imaging", "imaging_date", "baseline must be on or before", "P3",
         edit("imaging", dict(patient_id="P3", visit="baseline"), imaging_date=D("2024-03-05"))),
    Case("follow-up-scan-before-first-treatment", "imaging", "imaging_date", "follow-up imaging must be after",
         "P3/M1", edit("imaging", dict(patient_id="P3", visit="M1"), imaging_date=D("2024-02-28"))),
    Case("session-1-not-on-first-treatment-date", "treatments", "treatment_date",
         "session 1 must be on first_treatment_date", "P2",
         edit("treatments", dict(patient_id="P2", session_number=1), treatment_date=D("2024-02-02"))),
    Case("staging-review-before-first-treatment", "staging", "review_date", "must be after first_treatment_date",
         "P2/M1", edit("staging", dict(patient_id="P2", visit="M1"), review_date=D("2024-01-30"))),
    # date order against death and the first treatment (issue 14 item 10: deleting any of these rules
    # from validate.py left every test passing). P4 died 2024-06-01; P3 and P2 are alive.
    Case("imaging-after-death", "imaging", "imaging_date", "must be on or before death_date", "P4/M1",
         add("imaging", scan("P4", "M1", "2024-06-15", "SD", "SD"))),
    Case("staging-review-after-death", "staging", "review_date", "must be on or before death_date", "P4/M1",
         add("staging", review("P4", "M1", "2024-06-20", "C", False))),
    Case("treatment-after-death", "treatments", "treatment_date", "must be on or before death_date", "P4/2",
         add("treatments", session("P4", 2, "2024-06-10"))),
    Case("ae-onset-after-death", "adverse_events", "onset_date", "must be on or before death_date", "P4/A1",
         add("adverse_events", ae("P4", "A1", "Fever", 2, "2024-06-05"))),
    # P3's first treatment is 2024-03-01
    Case("off-study-before-first-treatment", "patients", "off_study_date", "must be on or after first_treatment_date",
         "P3", edit("patients", dict(patient_id="P3"), off_study_date=D("2024-02-15"))),
    # P2's first treatment is 2024-02-01
    Case("last-alive-before-first-treatment", "patients", "last_known_alive_date",
         "must be on or after first_treatment_date", "P2",
         edit("patients", dict(patient_id="P2"), last_known_alive_date=D("2024-01-15"))),
    # P1's first treatment is 2024-01-10
    Case("session-before-first-treatment", "treatments", "treatment_date", "must be on or after first_treatment_date",
         "P1/3", add("treatments", session("P1", 3, "2024-01-05"))),
    # Child-Pugh class against score (A 5-6, B 7-9, C 10-15): each side of each boundary
    Case("child-pugh-B-with-score-10", "patients", "child_pugh_class", "must agree with child_pugh_score", "P1",
         edit("patients", dict(patient_id="P1"), child_pugh_class="B", child_pugh_score=10)),
    Case("child-pugh-B-with-score-6", "patients", "child_pugh_class", "must agree with child_pugh_score", "P1",
         edit("patients", dict(patient_id="P1"), child_pugh_class="B", child_pugh_score=6)),
    Case("child-pugh-C-with-score-9", "patients", "child_pugh_class", "must agree with child_pugh_score", "P1",
         edit("patients", dict(patient_id="P1"), child_pugh_class="C", child_pugh_score=9)),
    Case("child-pugh-A-with-score-7", "patients", "child_pugh_class", "must agree with child_pugh_score", "P1",
         edit("patients", dict(patient_id="P1"), child_pugh_class="A", child_pugh_score=7)),
    # the cut-off
    Case("date-after-cutoff-patients", "patients", "last_known_alive_date", "date after the cut-off 2024-12-31", "P2",
         edit("patients", dict(patient_id="P2"), last_known_alive_date=D("2025-01-05"))),
    Case("date-after-cutoff-adverse-events", "adverse_events", "onset_date", "date after the cut-off 2024-12-31",
         "P5/A1", add("adverse_events", ae("P5", "A1", "Fatigue", 1, "2025-01-02"))),
    # cross-table rules
    Case("grade-5-without-death", "adverse_events", "grade", "grade 5 requires the patient's death_date", "P2/A1",
         edit("adverse_events", dict(patient_id="P2", ae_id="A1"), grade=5)),
    Case("three-intrahepatic-targets", "lesions", "is_target", "at most 2 intrahepatic target lesions", "P1",
         add("lesions", lesion("P1", "L3", segment="S6"))),
    Case("six-targets-in-all", "lesions", "is_target", "at most 5 target lesions", "P1",
         add("lesions", *[lesion("P1", f"L{i}", treated=False, segment="extrahepatic") for i in range(3, 7)])),
    Case("overall-response-null-at-follow-up", "imaging", "overall_response", "null only at baseline", "P3/M1",
         edit("imaging", dict(patient_id="P3", visit="M1"), overall_response=None)),
    Case("viable-diameter-on-non-target", "lesion_measurements", "viable_diameter_mm",
         "must be null for non-target lesions", "P3/L2/baseline",
         both(add("lesions", lesion("P3", "L2", target=False)),
              add("lesion_measurements", dict(meas("P3", "L2", "baseline", 12.0), non_target_status="present")))),
    Case("non-target-without-status", "lesion_measurements", "non_target_status",
         "must be given for non-target lesions", "P3/L2/baseline",
         both(add("lesions", lesion("P3", "L2", target=False)),
              add("lesion_measurements", dict(meas("P3", "L2", "baseline", None), non_target_status=None)))),
    Case("non-target-status-on-target", "lesion_measurements", "non_target_status", "must be null for target lesions",
         "P3/L1/baseline", edit("lesion_measurements", dict(patient_id="P3", lesion_id="L1", visit="baseline"),
                                non_target_status="present")),
]


def non_target(pid, lid, visit, status):
    return dict(patient_id=pid, lesion_id=lid, visit=visit, viable_diameter_mm=None, non_target_status=status)


WARNED = [
    Case("follow-up-scan-without-measurements", "imaging", "visit", "follow-up scan with no lesion measurements",
         "P5/M3", add("imaging", scan("P5", "M3", "2024-09-15", "SD", "SD"))),
    # P2 M1: 36 mm of 40 at baseline is -10%: SD, not PR
    Case("recorded-PR-measurements-imply-SD", "imaging", "overall_response", "contradicts",
         "P2/M1 recorded PR, measurements imply SD",
         edit("imaging", dict(patient_id="P2", visit="M1"), overall_response="PR")),
    # P2 M5: 37 mm is below the baseline 40 but +23% from the nadir 30: PD, not SD
    Case("recorded-SD-measurements-imply-PD-from-nadir", "imaging", "overall_response", "contradicts",
         "P2/M5 recorded SD, measurements imply PD",
         edit("imaging", dict(patient_id="P2", visit="M5"), overall_response="SD")),
    # P3 is followed 2024-03-01 .. 2024-10-01 (214 days): drop the only follow-up scan
    Case("no-imaging-after-six-months", "imaging", "visit", "patient followed over six months with no post-baseline",
         "P3", both(remove("imaging", patient_id="P3", visit="M1"),
                    remove("lesion_measurements", patient_id="P3", visit="M1"))),
    # control for the new-lesion case below: a PD the measurements (CR) do not explain
    Case("recorded-PD-unexplained", "imaging", "overall_response", "contradicts",
         "P3/M1 recorded PD, measurements imply CR",
         edit("imaging", dict(patient_id="P3", visit="M1"), overall_response="PD")),
]

# the other warnings of docs/snapshot-contract.md, one each
WARNED += [
    Case("column-not-in-contract", "patients", "favourite_colour", "column not in the contract",
         None, after=rewrite("patients", lambda t: t.append_column("favourite_colour", pa.array(["red"] * t.num_rows)))),
    Case("off-study-date-without-reason", "patients", "off_study_reason",
         "off_study_date and off_study_reason should be given together", "P3",
         edit("patients", dict(patient_id="P3"), off_study_reason=None)),
    Case("death-but-off-study-for-another-reason", "patients", "off_study_reason",
         "a patient with a death_date should be off study for 'death'", "P1",
         edit("patients", dict(patient_id="P1"), off_study_reason="withdrawn")),
    # S01 activated after P1's first treatment (2024-01-10)
    Case("treated-before-site-activation", "patients", "first_treatment_date", "before the site's activation_date",
         "P1", edit("sites", dict(site_id="S01"), activation_date=D("2024-01-15"))),
    Case("no-session-1", "patients", "patient_id", "has no session 1 in treatments", "P3",
         remove("treatments", patient_id="P3", session_number=1)),
    Case("overall-response-at-baseline", "imaging", "overall_response", "a response recorded at baseline", "P3",
         edit("imaging", dict(patient_id="P3", visit="baseline"), overall_response="SD")),
    Case("local-response-at-baseline", "imaging", "local_response", "a response recorded at baseline", "P3",
         edit("imaging", dict(patient_id="P3", visit="baseline"), local_response="SD")),
    Case("target-lesion-not-measured", "lesion_measurements", "viable_diameter_mm",
         "target lesion not measured at a scan", "P3/L1/M1",
         edit("lesion_measurements", dict(patient_id="P3", lesion_id="L1", visit="M1"), viable_diameter_mm=None)),
    Case("term-under-two-socs", "adverse_events", "soc", "the same term is filed under more than one soc", "Fever",
         add("adverse_events", ae("P2", "A2", "Fever", 1, "2024-02-11", soc="Investigations"))),
    Case("term-not-in-ctcae-list", "adverse_events", "term", "term not in the registry's CTCAE v4.0 list", "P2/A2=Fevr",
         add("adverse_events", ae("P2", "A2", "Fevr", 1, "2024-02-11", soc="General disorders and administration site conditions"))),
]

# the columns the contract lets a source leave unrecorded (written out from docs/snapshot-contract.md,
# not read from contract.py)
NOT_RECORDED = {
    "patients": ("ecog_ps", "child_pugh_score", "child_pugh_class", "tumor_count", "largest_tumor_cm",
                 "has_macrovascular_invasion", "has_extrahepatic_spread", "bclc_stage", "is_within_milan",
                 "is_within_up_to_seven", "is_resectable"),
    "sites": ("activation_date", "target_enrollment"),
    "imaging": ("modality", "has_new_lesion", "local_response"),
}

# valid variants: nothing may be reported as an error
VALID_VARIANTS = [
    # the Child-Pugh class boundaries, on the valid side: A 5-6, B 7-9, C 10-15
    Case("child-pugh-every-boundary", mutate=both(
        edit("patients", dict(patient_id="P1"), child_pugh_class="A", child_pugh_score=6),
        edit("patients", dict(patient_id="P2"), child_pugh_class="B", child_pugh_score=7),
        edit("patients", dict(patient_id="P3"), child_pugh_class="B", child_pugh_score=9),
        edit("patients", dict(patient_id="P4"), child_pugh_class="C", child_pugh_score=10),
        edit("patients", dict(patient_id="P5"), child_pugh_class="C", child_pugh_score=15))),
    # death after the last contact, and everything on the day of death
    Case("events-on-the-day-of-death", mutate=both(
        edit("patients", dict(patient_id="P4"), last_known_alive_date=D("2024-05-20")),
        add("imaging", scan("P4", "M1", "2024-06-01", "SD", "SD")),
        add("lesion_measurements", meas("P4", "L1", "M1", 50.0)),
        add("staging", review("P4", "M1", "2024-06-01", "C", False)),
        add("treatments", session("P4", 2, "2024-06-01")),
        add("adverse_events", ae("P4", "A1", "Fever", 2, "2024-06-01")))),
    # a source that does not assess the treated lesions apart leaves local_response null at a follow-up
    Case("local-response-null-at-follow-up", mutate=edit("imaging", dict(patient_id="P3", visit="M1"),
                                                         local_response=None)),
    # every column the contract lets a source leave unrecorded, null for every row
    Case("every-unrecorded-column-null", mutate=lambda rows: [
        row.update({c: None for c in columns}) for table, columns in NOT_RECORDED.items() for row in rows[table]]),
    # a source that records the Child-Pugh class but not the score: nothing to disagree with
    Case("child-pugh-class-without-score", mutate=edit("patients", dict(patient_id="P1"), child_pugh_score=None)),
]

NOT_WARNED = [
    # PD driven by a new lesion: target lesions alone say CR, but that is no contradiction
    Case("recorded-PD-explained-by-new-lesion", "imaging", "overall_response", "contradicts", "P3/M1",
         edit("imaging", dict(patient_id="P3", visit="M1"), overall_response="PD", has_new_lesion=True)),
    # P2 gets a second target lesion measured at baseline only (40+20 mm); at M1 only L1 (36 mm) has a
    # row: the partial sum (-40%) must not be read as a PR contradicting the recorded SD
    Case("target-lesion-without-a-row-is-not-judged", "imaging", "overall_response", "contradicts", "P2/M1",
         both(add("lesions", lesion("P2", "L2")), add("lesion_measurements", meas("P2", "L2", "baseline", 20.0)))),
    # PD driven by unequivocal progression of a non-target lesion
    Case("recorded-PD-explained-by-non-target-progression", "imaging", "overall_response", "contradicts", "P3/M1",
         both(edit("imaging", dict(patient_id="P3", visit="M1"), overall_response="PD"),
              add("lesions", lesion("P3", "L2", target=False)),
              add("lesion_measurements", non_target("P3", "L2", "baseline", "present"),
                  non_target("P3", "L2", "M1", "unequivocal_progression")))),
]

VALID = Case("untouched-mini-registry")
SCENARIOS = {c.id: c for c in [VALID, *BROKEN, *WARNED, *NOT_WARNED, *VALID_VARIANTS]}
assert len(SCENARIOS) == 1 + len(BROKEN) + len(WARNED) + len(NOT_WARNED) + len(VALID_VARIANTS), "case ids must be unique"


def nullable_table(name: str, rows: list[dict]) -> pa.Table:
    """Like fixtures.table_from_rows, but every field nullable, as most parquet writers declare them."""
    schema = pa.schema([f.with_nullable(True) for f in TABLES[name].arrow_schema()])
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)


def build(root: Path, case: Case) -> Path:
    rows = mini_registry()
    if case.mutate:
        case.mutate(rows)
    if case.nullable:
        tables = {name: nullable_table(name, rows.get(name, [])) for name in TABLES}
        folder = publish(root, SNAPSHOT_ID, D(CUTOFF), tables, "test")
    else:
        folder = write_snapshot(root, SNAPSHOT_ID, rows, CUTOFF)
    if case.after:
        case.after(folder)
    return folder


@dataclass
class Outcome:
    folder: Path
    report: object = None
    error: BaseException | None = None

    @property
    def root(self) -> Path:
        return self.folder.parent.parent


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Every scenario published under its own data root, then validated (concurrently)."""
    base = tmp_path_factory.mktemp("validate")
    results = {}
    for i, case in enumerate(SCENARIOS.values()):
        root = base / f"{i:02d}-{case.id}"
        try:
            results[case.id] = Outcome(build(root, case))
        except Exception as e:  # reported by that case's test, not by every test
            results[case.id] = Outcome(root / "snapshots" / SNAPSHOT_ID, error=e)

    def run(outcome):
        if outcome.error is None:
            try:
                outcome.report = validate_folder(outcome.folder)
            except Exception as e:
                outcome.error = e

    with ThreadPoolExecutor(max_workers=min(4, max(2, os.cpu_count() or 2))) as pool:
        list(pool.map(run, results.values()))
    return results


def report_of(outcomes, case_id):
    outcome = outcomes[case_id]
    if outcome.error is not None:
        raise outcome.error
    return outcome.report


# --- 1. the valid registry ----------------------------------------------------------------------
def test_untouched_mini_registry_is_valid(outcomes):
    report = report_of(outcomes, VALID.id)
    assert report.ok, report.summary()
    assert report.errors == []
    # its one known soft issue: P5's second target lesion was not measured at M1
    assert [(w.table, w.column, w.examples) for w in report.warnings] == [
        ("lesion_measurements", "viable_diameter_mm", ("P5/L2/M1",))], report.summary()
    assert "valid, 0 error(s)" in report.summary()


# --- 2. one broken rule each ---------------------------------------------------------------------
@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.id)
def test_broken_snapshot_is_rejected(outcomes, case):
    report = report_of(outcomes, case.id)
    summary = report.summary()
    assert not report.ok, summary
    assert "REJECTED" in summary
    hits = [e for e in report.errors if (e.table, e.column) == (case.table, case.column) and case.rule in e.rule]
    assert hits, f"no error {case.table}.{case.column}: ...{case.rule}...\n{summary}"
    if case.example is not None:
        assert any(case.example in ex for h in hits for ex in h.examples), summary
        assert any(case.example in str(h) for h in hits), summary      # the printed message names it
        assert all(h.count >= 1 for h in hits)
    # exactly one rule is broken: every other error is one this break necessarily implies
    others = [e for e in report.errors if not (e.table == case.table and case.rule in e.rule)
              and not any(e.table == t and r in e.rule for t, r in case.allow)]
    assert not others, summary
    # each problem is reported once
    assert len(report.findings) == len(set(report.findings)), summary


@pytest.mark.parametrize("case", [c for c in BROKEN if c.unlisted], ids=lambda c: c.id)
def test_folder_disagreeing_with_its_manifest_is_not_listed(outcomes, case):
    outcome = outcomes[case.id]
    assert outcome.folder.is_dir()
    assert list_snapshots(outcome.root) == []
    with pytest.raises(SnapshotError):
        get_snapshot("latest", outcome.root)


def test_content_errors_do_not_unlist_a_complete_snapshot(outcomes):
    # list_snapshots checks completeness only; rejecting content is the validator's job
    outcome = outcomes["code-sex"]
    assert [s.snapshot_id for s in list_snapshots(outcome.root)] == [SNAPSHOT_ID]


# --- 3. warnings: the snapshot is still served --------------------------------------------------
@pytest.mark.parametrize("case", WARNED, ids=lambda c: c.id)
def test_soft_inconsistency_is_a_warning(outcomes, case):
    report = report_of(outcomes, case.id)
    assert report.ok, report.summary()
    hits = [w for w in report.warnings if (w.table, w.column) == (case.table, case.column) and case.rule in w.rule]
    assert hits, report.summary()
    if case.example is not None:
        assert any(case.example in ex for h in hits for ex in h.examples), report.summary()
        assert any(case.example in str(h) and str(h).startswith("WARNING") for h in hits)


@pytest.mark.parametrize("case", VALID_VARIANTS, ids=lambda c: c.id)
def test_valid_variant_has_no_error(outcomes, case):
    report = report_of(outcomes, case.id)
    assert report.ok and report.errors == [], report.summary()


@pytest.mark.parametrize("case", NOT_WARNED, ids=lambda c: c.id)
def test_explained_progression_is_not_flagged(outcomes, case):
    report = report_of(outcomes, case.id)
    assert report.ok, report.summary()
    flagged = [ex for w in report.warnings if case.rule in w.rule for ex in w.examples]
    assert not any(ex.startswith(case.example + " ") for ex in flagged), report.summary()


def test_mini_registry_responses_agree_with_measurements(outcomes):
    # P1 M3 (PD from the nadir), P1 M5, P2 M5 and P3 M1 are consistent as recorded
    report = report_of(outcomes, VALID.id)
    assert not [w for w in report.warnings if "contradicts" in w.rule], report.summary()


# --- 4. incomplete folders are not snapshots -----------------------------------------------------
def _two_snapshots(root: Path) -> Path:
    write_snapshot(root, "2024-12-31", mini_registry())
    return write_snapshot(root, "2025-03-31", mini_registry())


def test_folder_without_manifest_is_ignored(tmp_path):
    newer = _two_snapshots(tmp_path)
    (newer / MANIFEST).unlink()
    # a writer's temporary folder mid-publication: all files, no manifest yet
    tmp = tmp_path / "snapshots" / ".2025-06-30.abc123"
    tmp.mkdir()
    for name in TABLES:
        (tmp / f"{name}.parquet").write_bytes((newer / f"{name}.parquet").read_bytes())
    assert [s.snapshot_id for s in list_snapshots(tmp_path)] == ["2024-12-31"]
    assert get_snapshot("latest", tmp_path).snapshot_id == "2024-12-31"
    with pytest.raises(SnapshotError):
        get_snapshot("2025-03-31", tmp_path)


def test_folder_with_manifest_but_missing_file_is_ignored(tmp_path):
    newer = _two_snapshots(tmp_path)
    assert get_snapshot("latest", tmp_path).snapshot_id == "2025-03-31"
    (newer / "lesions.parquet").unlink()
    assert [s.snapshot_id for s in list_snapshots(tmp_path)] == ["2024-12-31"]
    assert get_snapshot("latest", tmp_path).snapshot_id == "2024-12-31"


def test_validating_a_folder_without_manifest_is_an_error(tmp_path):
    folder = write_snapshot(tmp_path, SNAPSHOT_ID, mini_registry())
    (folder / MANIFEST).unlink()
    report = validate_folder(folder)
    assert not report.ok
    assert any("no valid manifest.json" in e.rule for e in report.errors), report.summary()


# --- 5. the command line ------------------------------------------------------------------------
def _cli(root: Path, snapshot_id: str):
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_DATA"}
    return subprocess.run([sys.executable, "-m", "dashboard", "validate", "--data", str(root),
                           "--snapshot", snapshot_id], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_rejects_a_broken_snapshot(outcomes):
    outcome = outcomes["code-sex"]
    proc = _cli(outcome.root, SNAPSHOT_ID)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [finding] = [e for e in outcome.report.errors if e.column == "sex"]
    assert str(finding) in proc.stdout.splitlines()
    assert "ERROR patients.sex: value outside the accepted codes" in proc.stdout
    assert "P1=X" in proc.stdout
    assert f"snapshot {SNAPSHOT_ID}: REJECTED" in proc.stdout


def test_cli_accepts_the_valid_snapshot(outcomes):
    proc = _cli(outcomes[VALID.id].root, SNAPSHOT_ID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"snapshot {SNAPSHOT_ID}: valid, 0 error(s)" in proc.stdout
    assert "ERROR" not in proc.stdout


# --- the written-out rule list (tests/test_docs.py WRITTEN_OUT_RULES) against what fires ---------
def _all_findings(outcomes):
    return {f for o in outcomes.values() if o.report is not None for f in o.report.findings}


def test_every_written_out_rule_fires_on_a_broken_case(outcomes):
    """docs/snapshot-contract.md -> validate.py: each documented cross-table, date-order and
    warning rule (written out by hand in test_docs.py, not read from validate.py) is reported, at
    its level, table and column, by at least one case above; a rule deleted from validate.py fails here."""
    from test_docs import WRITTEN_OUT_RULES
    found = _all_findings(outcomes)
    missing = [w for w in WRITTEN_OUT_RULES
               if not any(f.level == w[0] and (w[1] is None or (f.table, f.column) == (w[1], w[2])) and f.rule == w[3]
                          for f in found)]
    assert not missing, f"documented rules no broken case made the validator report: {missing}"
    from test_docs import WRITTEN_OUT_COLUMN_RULES
    missing = [r for r in WRITTEN_OUT_COLUMN_RULES if not any(f.level == "error" and f.rule.startswith(r) for f in found)]
    assert not missing, f"documented column rules no broken case made the validator report: {missing}"


# rules generated from contract.py and the manifest/file checks (docs/snapshot-contract.md steps 1-3)
GENERATED = ("must not be null", "value outside the accepted codes ", "must be >= ", "must be <= ", "must be > ",
             "duplicate key", "must reference an existing ", "date after the cut-off ", "column missing", "type is ")


def test_every_rule_the_validator_reports_is_documented(outcomes):
    """validate.py -> docs: every finding of every case is a generated column rule or a written-out one."""
    from test_docs import WRITTEN_OUT_RULES
    undocumented = sorted({(f.level, f.table, f.column, f.rule) for f in _all_findings(outcomes)
                           if f.column and not f.rule.startswith(GENERATED)
                           and not any(f.level == w[0] and (w[1] is None or (f.table, f.column) == (w[1], w[2]))
                                       and f.rule == w[3] for w in WRITTEN_OUT_RULES)})
    assert not undocumented, f"reported but not in WRITTEN_OUT_RULES / docs/snapshot-contract.md: {undocumented}"
