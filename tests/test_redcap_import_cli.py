"""`python -m dashboard import redcap` as a data manager uses it: bad exports fail with exit 2, a
message naming record and field, and nothing published (an existing snapshot untouched); the data
cut drops what is dated after the cut-off; the API path works end to end against a REDCap API
(tests/redcap_server.py) without the token ever showing.

The export under test is the synthetic registry's (`write_synthetic_export`); expected values are
read from its records.csv with the csv module, not through the importer.
"""
import csv
import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dashboard.__main__ import main
from dashboard.importers.redcap.export import write_synthetic_export

REPO = Path(__file__).resolve().parents[1]
LAST = "2025-12-31"
CUT = dt.date(2024, 6, 30)
TOKEN = "0123456789ABCDEF0123456789ABCDEF"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    write_synthetic_export(out, n_patients=80, n_sites=4, seed=3, progress=False)
    return out


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def copy_export(export: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("records.csv", "dictionary.csv", "sites.csv"):
        (dest / name).write_bytes((export / name).read_bytes())
    return dest


def cli(*args) -> subprocess.CompletedProcess:
    """The real command line, in a child process."""
    return subprocess.run([sys.executable, "-m", "dashboard", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def fingerprint(root: Path) -> dict:
    """Every file under <root>/snapshots, hidden ones included, with its SHA-256."""
    base = root / "snapshots"
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()} if base.exists() else {}


@pytest.fixture(scope="module")
def published(export, tmp_path_factory):
    """A data root that already holds the good import of the export at its last cut-off."""
    root = tmp_path_factory.mktemp("data")
    assert main(["import", "redcap", "--records", str(export / "records.csv"), "--cutoff", LAST,
                 "--out", str(root), "--quiet"]) == 0
    return root


def first(rows, **match) -> dict:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


# --- bad exports: exit 2, message names record and field, nothing published ---------------------

def break_no_record_id(header, rows):
    header.remove("patient_id")
    for r in rows:
        del r["patient_id"]
    return ["patient_id", "record id"]


def break_unknown_field(header, rows):
    header.append("favourite_colour")
    rows[3]["favourite_colour"] = "blue"
    return ["favourite_colour"]


def break_invalid_date(header, rows):
    row = first(rows, redcap_repeat_instrument="")
    row["first_tx_date"] = "2024-02-30"
    return [f"record {row['patient_id']}", "first_tx_date", "2024-02-30"]


def break_grade_7(header, rows):
    row = first(rows, redcap_repeat_instrument="adverse_event")
    row["ae_grade"] = "7"
    return [f"record {row['patient_id']}", f"instance {row['redcap_repeat_instance']}", "ae_grade", "7"]


def break_instance_without_instrument(header, rows):
    row = first(rows, redcap_repeat_instrument="deb_tace_session", redcap_repeat_instance="2")
    row["redcap_repeat_instrument"] = ""
    return [f"record {row['patient_id']}", "redcap_repeat_instrument"]


def break_session_1_date(header, rows):
    row = first(rows, redcap_repeat_instrument="deb_tace_session", session_number="1")
    row["session_date"] = (dt.date.fromisoformat(row["session_date"]) + dt.timedelta(days=3)).isoformat()
    return [f"record {row['patient_id']}, instance {row['redcap_repeat_instance']}", "session_date",
            "not on the first treatment date"]


def break_death_without_flag(header, rows):
    row = first(rows, redcap_repeat_instrument="", dead="0")
    row["death_date"] = row["last_alive_date"]
    return [f"record {row['patient_id']}", "death_date", "dead"]


def break_nontarget_status_blank(header, rows):
    patient = first(rows, redcap_repeat_instrument="", les3_target="0")["patient_id"]
    row = first(rows, patient_id=patient, redcap_repeat_instrument="imaging_assessment")
    row["img_l3_nt_status"] = ""
    return [f"record {patient}, instance {row['redcap_repeat_instance']}", "img_l3_nt_status", "blank"]


def break_blank_sex(header, rows):
    row = first(rows, redcap_repeat_instrument="")
    row["sex"] = ""
    return [f"record {row['patient_id']}, field sex: required value is blank"]


def break_blank_last_alive(header, rows):
    row = first(rows, redcap_repeat_instrument="")
    row["last_alive_date"] = ""
    return [f"record {row['patient_id']}, field last_alive_date: required value is blank"]


def break_dead_without_date(header, rows):
    row = first(rows, redcap_repeat_instrument="", dead="0")
    row["dead"] = "1"
    return [f"record {row['patient_id']}, field death_date: 'Has the patient died?' is Yes but the death date is blank"]


def break_reason_without_date(header, rows):
    row = first(rows, redcap_repeat_instrument="", off_study_date="")
    row["off_study_reason"] = "4"
    return [f"record {row['patient_id']}, field off_study_reason: an off-study reason is given without an off-study date"]


def break_session_blank_dose(header, rows):
    row = first(rows, redcap_repeat_instrument="deb_tace_session", redcap_repeat_instance="2")
    row["dose_mg"] = ""
    return [f"record {row['patient_id']}, instance 2, field dose_mg: required value is blank"]


def break_session_number_twice(header, rows):
    row = first(rows, redcap_repeat_instrument="deb_tace_session", redcap_repeat_instance="2")
    row["session_number"] = "1"
    return [f"record {row['patient_id']}, instance 1, field session_number: session 1 appears more than once",
            f"record {row['patient_id']}, instance 2, field session_number: session 1 appears more than once"]


def break_session_without_date(header, rows):
    row = first(rows, redcap_repeat_instrument="deb_tace_session", redcap_repeat_instance="2")
    row["session_date"] = ""
    return [f"record {row['patient_id']}, instance 2, field session_date: required value is blank"]


def break_lesion_values_without_id(header, rows):
    row = first(rows, redcap_repeat_instrument="", les7_id="")
    row["les7_segment"] = "3"
    return [f"record {row['patient_id']}, field les7_segment: lesion 7 has a value but no lesion id (les7_id)"]


def break_lesion_id_twice(header, rows):
    row = first(rows, redcap_repeat_instrument="", les2_id="T2")
    row["les2_id"] = row["les1_id"]
    return [f"record {row['patient_id']}, field lesion_id: lesion id {row['les1_id']} appears more than once"]


def break_target_blank(header, rows):
    row = first(rows, redcap_repeat_instrument="", les1_id="T1")
    row["les1_target"] = ""
    return [f"record {row['patient_id']}, field les1_target: required value is blank"]


def break_visit_twice(header, rows):
    row = first(rows, redcap_repeat_instrument="imaging_assessment", redcap_repeat_instance="3")
    row["img_visit"] = "baseline"
    return [f"record {row['patient_id']}, instance 3, field img_visit: visit baseline appears more than once"]


def break_overall_blank_at_follow_up(header, rows):
    row = first(rows, redcap_repeat_instrument="imaging_assessment", redcap_repeat_instance="2")
    row["img_overall"] = ""
    return [f"record {row['patient_id']}, instance 2, field img_overall: the overall response is blank at a "
            "follow-up assessment"]


def break_diameter_of_a_non_target(header, rows):
    patient = first(rows, redcap_repeat_instrument="", les3_target="0")["patient_id"]
    row = first(rows, patient_id=patient, redcap_repeat_instrument="imaging_assessment")
    row["img_l3_viable_mm"] = "12"
    return [f"record {patient}, instance {row['redcap_repeat_instance']}, field img_l3_viable_mm: lesion "
            f"{first(rows, patient_id=patient, redcap_repeat_instrument='')['les3_id']} is a non-target lesion"]


def break_status_of_a_target(header, rows):
    row = first(rows, redcap_repeat_instrument="imaging_assessment")
    row["img_l1_nt_status"] = "2"
    return [f"record {row['patient_id']}, instance {row['redcap_repeat_instance']}, field img_l1_nt_status: "
            "lesion T1 is a target lesion: no non-target status"]


def break_measurement_without_lesion(header, rows):
    patient = first(rows, redcap_repeat_instrument="", les7_id="")["patient_id"]
    row = first(rows, patient_id=patient, redcap_repeat_instrument="imaging_assessment")
    row["img_l7_viable_mm"] = "10"
    return [f"record {patient}, instance {row['redcap_repeat_instance']}, field img_l7_viable_mm: lesion 7 is not "
            "in the lesion register"]


def break_review_blank_stage(header, rows):
    row = first(rows, redcap_repeat_instrument="restaging_review")
    row["rst_bclc_stage"] = ""
    return [f"record {row['patient_id']}, instance {row['redcap_repeat_instance']}, field rst_bclc_stage: "
            "required value is blank"]


def break_ae_blank_term(header, rows):
    row = first(rows, redcap_repeat_instrument="adverse_event")
    row["ae_term"] = ""
    return [f"record {row['patient_id']}, instance {row['redcap_repeat_instance']}, field ae_term: required value is blank"]


def break_ae_id_twice(header, rows):
    row = first(rows, redcap_repeat_instrument="adverse_event", redcap_repeat_instance="2")
    row["ae_id"] = "AE001"
    return [f"record {row['patient_id']}, instance 2, field ae_id: adverse event id AE001 appears more than once"]


BREAKS = [break_no_record_id, break_unknown_field, break_invalid_date, break_grade_7,
          break_instance_without_instrument, break_session_1_date, break_death_without_flag,
          break_nontarget_status_blank, break_blank_sex, break_blank_last_alive, break_dead_without_date,
          break_reason_without_date, break_session_blank_dose, break_session_number_twice, break_session_without_date,
          break_lesion_values_without_id, break_lesion_id_twice, break_target_blank, break_visit_twice,
          break_overall_blank_at_follow_up, break_diameter_of_a_non_target, break_status_of_a_target,
          break_measurement_without_lesion, break_review_blank_stage, break_ae_blank_term, break_ae_id_twice]


@pytest.mark.parametrize("damage", BREAKS, ids=[b.__name__[6:] for b in BREAKS])
def test_bad_export_is_refused_and_nothing_published(tmp_path, export, published, damage, capsys):
    folder = copy_export(export, tmp_path / "bad")
    header, rows = read_rows(folder / "records.csv")
    expected = damage(header, rows)
    write_rows(folder / "records.csv", header, rows)
    before = fingerprint(published)
    code = main(["import", "redcap", "--records", str(folder / "records.csv"), "--cutoff", LAST,
                 "--out", str(published), "--snapshot-id", f"{LAST}_bad", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("import redcap: nothing published:")
    for text in expected:
        assert text in err, (text, err)
    assert "Traceback" not in err
    assert fingerprint(published) == before


def refused(folder: Path, root: Path, capsys, *extra) -> str:
    """Import `folder`'s export into `root`: exit 2, nothing new under root; returns stderr."""
    before = fingerprint(root)
    code = main(["import", "redcap", "--records", str(folder / "records.csv"), "--cutoff", LAST, "--out", str(root),
                 "--snapshot-id", f"{LAST}_bad", "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert fingerprint(root) == before
    return err


def test_bad_sites_file(tmp_path, export, published, capsys):
    folder = copy_export(export, tmp_path / "sites")
    header, rows = read_rows(folder / "sites.csv")
    rows[1]["activation_date"] = "01/02/2023"
    rows[2]["target_enrollment"] = "-5"
    write_rows(folder / "sites.csv", header, rows)
    err = refused(folder, published, capsys)
    assert "sites file sites.csv, row 3, field activation_date: 01/02/2023 is not a date YYYY-MM-DD" in err
    assert "sites file sites.csv, row 4, field target_enrollment: -5 is not a whole number >= 0" in err
    write_rows(folder / "sites.csv", [h for h in header if h != "target_enrollment"],
               [{k: v for k, v in r.items() if k != "target_enrollment"} for r in rows])
    assert "field target_enrollment: column(s) missing" in refused(folder, published, capsys)


def test_patient_of_a_site_missing_from_the_sites_file(tmp_path, export, published, capsys):
    folder = copy_export(export, tmp_path / "sites")
    header, rows = read_rows(folder / "sites.csv")
    gone = rows.pop(1)["site_id"]
    write_rows(folder / "sites.csv", header, rows)
    _, records = read_rows(folder / "records.csv")
    patient = first(records, redcap_repeat_instrument="", site=gone)["patient_id"]
    err = refused(folder, published, capsys)
    assert f"record {patient}, field site: site {gone} is not in the sites file" in err


def test_code_the_registry_does_not_know(tmp_path, export, published, capsys):
    """A site added an etiology choice to its copy of the project: the reader accepts the code (it is
    in that dictionary) and the import names the records that use it."""
    folder = copy_export(export, tmp_path / "code")
    header, rows = read_rows(folder / "dictionary.csv")
    row = first(rows, **{"Variable / Field Name": "etiology"})
    row["Choices, Calculations, OR Slider Labels"] += " | 7, Hemochromatosis"
    write_rows(folder / "dictionary.csv", header, rows)
    header, records = read_rows(folder / "records.csv")
    patient = first(records, redcap_repeat_instrument="", etiology="1")
    patient["etiology"] = "7"
    write_rows(folder / "records.csv", header, records)
    err = refused(folder, published, capsys)
    assert f"record {patient['patient_id']}, field etiology: code 7 is not one of the registry's codes" in err


def test_field_of_another_kind_in_the_dictionary(tmp_path, export, published, capsys):
    """A site turned the date of death into free text: named before any record is read."""
    folder = copy_export(export, tmp_path / "kind")
    header, rows = read_rows(folder / "dictionary.csv")
    first(rows, **{"Variable / Field Name": "death_date"})["Text Validation Type OR Show Slider Number"] = ""
    first(rows, **{"Variable / Field Name": "dead"})["Field Type"] = "text"
    write_rows(folder / "dictionary.csv", header, rows)
    err = refused(folder, published, capsys)
    assert "data dictionary, field death_date: is a text field; in the registry's project it is a date field" in err
    assert "data dictionary, field dead: is a text field; in the registry's project it is a yes/no field" in err


def test_record_without_its_enrollment_form(tmp_path, export, published, capsys):
    folder = copy_export(export, tmp_path / "orphan")
    header, records = read_rows(folder / "records.csv")
    orphan = first(records, redcap_repeat_instrument="")
    records.remove(orphan)
    write_rows(folder / "records.csv", header, records)
    err = refused(folder, published, capsys)
    assert f"record {orphan['patient_id']}, field first_tx_date: the record has no enrollment_baseline form" in err


def test_dictionary_that_does_not_match_the_records(tmp_path, export, published):
    """The dictionary lacks a field the records have (an older version of the project): the real
    CLI exits 2 and names the field."""
    folder = copy_export(export, tmp_path / "old")
    header, rows = read_rows(folder / "dictionary.csv")
    rows = [r for r in rows if r["Variable / Field Name"] != "img_l7_nt_status"]
    write_rows(folder / "dictionary.csv", header, rows)
    before = fingerprint(published)
    run = cli("import", "redcap", "--records", folder / "records.csv", "--dictionary", folder / "dictionary.csv",
              "--cutoff", LAST, "--out", published, "--snapshot-id", f"{LAST}_old", "--quiet")
    assert run.returncode == 2, run.stderr
    assert "img_l7_nt_status" in run.stderr and "Traceback" not in run.stderr
    assert fingerprint(published) == before


def test_another_projects_export_is_not_the_registry(tmp_path, published):
    """A well-formed export of some other REDCap project (REDCapR's test project): the import names
    the registry fields the dictionary lacks."""
    fixture = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "redcap" / "repeating-instruments"
    if not fixture.is_dir():
        pytest.skip(f"public REDCap test data not found at {fixture}")
    run = cli("import", "redcap", "--records", fixture / "data.csv", "--dictionary", fixture / "dictionary.csv",
              "--cutoff", LAST, "--out", tmp_path / "data", "--quiet")
    assert run.returncode == 2
    assert "first_tx_date" in run.stderr and "registry's project" in run.stderr
    assert not (tmp_path / "data" / "snapshots").exists() or not any((tmp_path / "data" / "snapshots").iterdir())


def test_existing_snapshot_needs_replace(export, published, capsys):
    before = fingerprint(published)
    args = ["import", "redcap", "--records", str(export / "records.csv"), "--cutoff", LAST, "--out", str(published),
            "--quiet"]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert fingerprint(published) == before
    assert main(args + ["--replace"]) == 0
    assert capsys.readouterr().out.startswith(f"published snapshot {LAST}")


@pytest.mark.parametrize("args, message", [
    ([], "exactly one source"),
    (["--records", "R.csv", "--url", "https://redcap.example.org/api/", "--token-file", "t"], "exactly one source"),
    (["--url", "https://redcap.example.org/api/"], "--token-file"),
    (["--records", "nowhere.csv"], "no such file"),
])
def test_source_arguments(tmp_path, args, message, capsys):
    assert main(["import", "redcap", *args, "--cutoff", LAST, "--out", str(tmp_path), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_snapshot_id_must_start_with_the_cutoff(export, tmp_path, capsys):
    assert main(["import", "redcap", "--records", str(export / "records.csv"), "--cutoff", LAST,
                 "--snapshot-id", "2024-01-01", "--out", str(tmp_path), "--quiet"]) == 2
    assert "must be the cut-off date 2025-12-31" in capsys.readouterr().err
    assert not (tmp_path / "snapshots").exists()


def test_data_root_that_cannot_be_written(export, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["import", "redcap", "--records", str(export / "records.csv"), "--cutoff", LAST,
                 "--out", str(blocker), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"data root {blocker}: the snapshot cannot be written there" in err and "Traceback" not in err


def test_bad_cutoff(export, tmp_path, capsys):
    assert main(["import", "redcap", "--records", str(export / "records.csv"), "--cutoff", "2024-13-01",
                 "--out", str(tmp_path)]) == 2
    assert "--cutoff '2024-13-01' is not a date" in capsys.readouterr().err


FOLLOW_UP_COLUMNS = ("last_alive_date", "dead", "death_date", "off_study_date", "off_study_reason", "follow_up_complete")


def longitudinal(export: Path, dest: Path) -> tuple[Path, list[str], list[dict], list[dict]]:
    """The export as a longitudinal project would give it: everything at event baseline_arm_1
    except the follow-up instrument, on its own row at event month_12_arm_1."""
    folder = copy_export(export, dest)
    header, rows = read_rows(folder / "records.csv")
    header.insert(1, "redcap_event_name")
    later = []
    for r in rows:
        r["redcap_event_name"] = "baseline_arm_1"
        if r["redcap_repeat_instrument"] == "":
            moved = {c: "" for c in header} | {"patient_id": r["patient_id"], "redcap_event_name": "month_12_arm_1"}
            for c in FOLLOW_UP_COLUMNS:
                moved[c], r[c] = r[c], ""
            later.append(moved)
    return folder, header, rows, later


def test_longitudinal_export(tmp_path, export, published, capsys):
    folder, header, rows, later = longitudinal(export, tmp_path / "long")
    write_rows(folder / "records.csv", header, rows + later)
    root = tmp_path / "data"
    assert main(["import", "redcap", "--records", str(folder / "records.csv"), "--cutoff", LAST, "--out", str(root),
                 "--quiet"]) == 0
    for name in ("patients", "treatments", "lesion_measurements", "adverse_events"):
        assert pq.read_table(root / "snapshots" / LAST / f"{name}.parquet").equals(
            pq.read_table(published / "snapshots" / LAST / f"{name}.parquet")), name
    # the follow-up filled at two events: both named
    rows[0].update({c: later[0][c] for c in FOLLOW_UP_COLUMNS})
    write_rows(folder / "records.csv", header, rows + later)
    err = refused(folder, published, capsys)
    for event in ("baseline_arm_1", "month_12_arm_1"):
        assert (f"record {rows[0]['patient_id']}, event {event}, field last_alive_date: the follow_up instrument "
                "is filled more than once") in err


# --- the data cut --------------------------------------------------------------------------------

def test_data_cut_drops_rows_after_it_and_clears_deaths(tmp_path, export):
    """Expected values from records.csv itself: who was first treated by the cut-off, which sessions
    and AEs are dated by it, and whose death came after it."""
    _, rows = read_rows(export / "records.csv")
    base = {r["patient_id"]: r for r in rows if r["redcap_repeat_instrument"] == ""}
    enrolled = {p for p, r in base.items() if r["first_tx_date"] <= CUT.isoformat()}
    assert 0 < len(enrolled) < len(base)
    sessions = {(r["patient_id"], int(r["session_number"])) for r in rows
                if r["redcap_repeat_instrument"] == "deb_tace_session" and r["patient_id"] in enrolled
                and r["session_date"] <= CUT.isoformat()}
    aes = {(r["patient_id"], r["ae_id"]) for r in rows if r["redcap_repeat_instrument"] == "adverse_event"
           and r["patient_id"] in enrolled and r["ae_onset"] <= CUT.isoformat()}
    later_deaths = {p for p in enrolled if base[p]["death_date"] > CUT.isoformat()}
    assert later_deaths, "the fixture needs a death after the cut-off"

    root = tmp_path / "data"
    run = cli("import", "redcap", "--records", export / "records.csv", "--cutoff", CUT, "--out", root, "--quiet")
    assert run.returncode == 0, run.stderr
    assert f"{len(enrolled)} patient(s) first treated by then" in run.stdout
    late_sessions = sum(1 for r in rows if r["redcap_repeat_instrument"] == "deb_tace_session"
                        and r["patient_id"] in enrolled and r["session_date"] > CUT.isoformat())
    assert f"dated after the cut-off: {late_sessions} sessions, " in run.stdout
    assert f"; {len(later_deaths)} deaths, " in run.stdout
    snap = root / "snapshots" / CUT.isoformat()
    patients = {r["patient_id"]: r for r in pq.read_table(snap / "patients.parquet").to_pylist()}
    assert set(patients) == enrolled
    treatments = pq.read_table(snap / "treatments.parquet").to_pylist()
    assert {(r["patient_id"], r["session_number"]) for r in treatments} == sessions
    ae = pq.read_table(snap / "adverse_events.parquet").to_pylist()
    assert {(r["patient_id"], r["ae_id"]) for r in ae} == aes
    assert all(r["resolution_date"] is None or r["resolution_date"] <= CUT for r in ae)
    for p in later_deaths:
        assert patients[p]["death_date"] is None
        assert patients[p]["last_known_alive_date"] == min(CUT, dt.date.fromisoformat(base[p]["last_alive_date"]))
    assert max(r["last_known_alive_date"] for r in patients.values()) == CUT
    assert all(r["off_study_date"] is None or r["off_study_date"] <= CUT for r in patients.values())
    imaging = pq.read_table(snap / "imaging.parquet")
    assert max(imaging["imaging_date"].to_pylist()) <= CUT


def test_blank_ae_id_is_ae_and_the_instance(tmp_path, export):
    folder = copy_export(export, tmp_path / "aeid")
    header, rows = read_rows(folder / "records.csv")
    row = first(rows, redcap_repeat_instrument="adverse_event", redcap_repeat_instance="3")
    for other in rows:
        if other["patient_id"] == row["patient_id"] and other["redcap_repeat_instrument"] == "adverse_event":
            other["ae_id"] = f"X{other['redcap_repeat_instance']}"
    row["ae_id"] = ""
    write_rows(folder / "records.csv", header, rows)
    assert main(["import", "redcap", "--records", str(folder / "records.csv"), "--cutoff", LAST,
                 "--out", str(tmp_path / "data"), "--quiet"]) == 0
    ae = pq.read_table(tmp_path / "data" / "snapshots" / LAST / "adverse_events.parquet").to_pylist()
    ids = sorted(r["ae_id"] for r in ae if r["patient_id"] == row["patient_id"])
    assert "AE003" in ids and "X3" not in ids and "X1" in ids


# --- the REDCap API ------------------------------------------------------------------------------

def test_api_import_end_to_end(tmp_path, export, published):
    """The same export served by a REDCap API (tests/redcap_server.py): the snapshot equals the file
    import's, and the token appears nowhere in the output."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from redcap_server import serve
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    url, stop = serve(export / "records.csv", export / "dictionary.csv", TOKEN)
    try:
        root = tmp_path / "data"
        run = cli("import", "redcap", "--url", url, "--token-file", token_file, "--sites", export / "sites.csv",
                  "--cutoff", LAST, "--out", root)
        wrong = tmp_path / "wrong"
        wrong.write_text("F" * 32)
        wrong.chmod(0o600)
        refused = cli("import", "redcap", "--url", url, "--token-file", wrong, "--cutoff", LAST,
                      "--out", tmp_path / "data2", "--quiet")
    finally:
        stop()
    assert run.returncode == 0, run.stderr
    assert f"from REDCap API {url}" in run.stdout
    assert "import redcap" in run.stderr and "%" in run.stderr             # the progress bar, on stderr
    for name in ("patients", "treatments", "lesion_measurements", "adverse_events", "sites"):
        got = pq.read_table(root / "snapshots" / LAST / f"{name}.parquet")
        want = pq.read_table(published / "snapshots" / LAST / f"{name}.parquet")
        assert got.equals(want), name
    assert refused.returncode == 2 and url in refused.stderr
    for out in (run.stdout, run.stderr, refused.stdout, refused.stderr):
        assert TOKEN not in out and "F" * 32 not in out


def test_quiet_means_no_progress_bar(tmp_path, export):
    run = cli("import", "redcap", "--records", export / "records.csv", "--cutoff", LAST, "--out", tmp_path,
              "--quiet")
    assert run.returncode == 0 and run.stderr == ""
    assert "patients" in run.stdout and "rows" in run.stdout
