"""The validator on files a clumsy data manager or an attacker could leave (issue 14, items 4 and 9).

Every snapshot is the hand-written mini registry (tests/fixtures.py), published as the
generator publishes it, then damaged on disk. Where a publisher would have recorded the damaged
file's checksum, the manifest is re-stamped so that only the damage itself is wrong. The
expected findings are the contract's words (docs/snapshot-contract.md) and the fixture's rows.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

from dashboard.contract import MANIFEST, TABLES  # noqa: E402
from dashboard.snapshots import list_snapshots, manifest_problems, read_manifest, sha256_file  # noqa: E402
from dashboard.validate import validate_folder  # noqa: E402
from fixtures import mini_registry, write_snapshot  # noqa: E402

SNAPSHOT_ID = "2024-12-31"


# --- helpers ------------------------------------------------------------------------------------
def publish_mini(root: Path, registry: dict | None = None, snapshot_id: str = SNAPSHOT_ID) -> Path:
    return write_snapshot(root, snapshot_id, registry or mini_registry(), cutoff=SNAPSHOT_ID)


def edit_manifest(folder: Path, change) -> None:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def restamp(folder: Path, table: str) -> None:
    """Record the file's current checksum in the manifest, as a publisher that wrote the damaged
    file would have (the row count stays the one it meant to write)."""
    path = folder / f"{table}.parquet"
    edit_manifest(folder, lambda m: m["tables"][table].__setitem__("sha256", sha256_file(path)))


def data_pages(path: Path) -> tuple[int, int]:
    """Byte range of the column chunks (after the 4-byte magic, before the footer)."""
    meta = pq.ParquetFile(path).metadata
    return 4, path.stat().st_size - 8 - meta.serialized_size


def damage_pages(fill):
    """Overwrite the middle third of the data pages, footer intact."""
    def damage(path: Path):
        data = bytearray(path.read_bytes())
        start, end = data_pages(path)
        a, b = start + (end - start) // 3, start + 2 * (end - start) // 3
        data[a:b] = fill(b - a)
        path.write_bytes(bytes(data))
    return damage


def truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path):
    path.write_bytes(b"")


def directory(path: Path):
    path.unlink()
    path.mkdir()
    (path / "part-0.parquet").write_bytes(b"PAR1")


DAMAGE = {
    # footer intact, page bodies damaged: DuckDB raised "ZSTD Decompression failure" (issue 14 item 4)
    "zeroed-pages": damage_pages(lambda n: bytes(n)),
    # random bytes: DuckDB raised IOException "Could not read enough bytes" (a garbled page header)
    "garbage-pages": damage_pages(lambda n: random.Random(14).randbytes(n)),
    # 0xff: DuckDB raised a bare duckdb.Error from the Thrift page-header decoder
    "ff-pages": damage_pages(lambda n: b"\xff" * n),
    "truncated": truncate,
    "empty": empty,
}


def published_with_damage(root: Path, table: str, kind: str, other_fault: bool = True,
                          snapshot_id: str = SNAPSHOT_ID) -> Path:
    """The mini registry with `table` damaged; with other_fault, adverse event P1/A1 also has
    grade 7 (the contract's bound is 1..5), an independent error that must still be found."""
    reg = mini_registry()
    if other_fault:
        next(r for r in reg["adverse_events"] if (r["patient_id"], r["ae_id"]) == ("P1", "A1"))["grade"] = 7
    folder = publish_mini(root, reg, snapshot_id)
    path = folder / f"{table}.parquet"
    if kind == "directory":
        directory(path)
    else:
        DAMAGE[kind](path)
        restamp(folder, table)
    return folder


def grade_error(report) -> list:
    return [e for e in report.errors if (e.table, e.column) == ("adverse_events", "grade")
            and e.rule == "must be <= 5" and "P1/A1=7" in e.examples]


# --- 1. the validator never raises --------------------------------------------------------------
@pytest.mark.parametrize("kind", list(DAMAGE) + ["directory"])
def test_damaged_patients_file_is_an_error_naming_the_table(tmp_path, kind):
    folder = published_with_damage(tmp_path, "patients", kind)
    report = validate_folder(folder)                  # raised for the three *-pages kinds before
    summary = report.summary()
    assert not report.ok, summary
    named = [e for e in report.errors if e.table == "patients" and e.column == "" and "patients.parquet" in e.rule]
    assert named, summary
    if kind.endswith("-pages"):
        assert any(e.rule.startswith("file patients.parquet cannot be read (data pages corrupt: ") for e in named), summary
    # the other tables are still checked: the adverse event's grade is reported
    assert grade_error(report), summary
    # and the damaged table's content rules were not run on it (no finding on a patients column)
    assert not [e for e in report.findings if e.table == "patients" and e.column], summary


@pytest.mark.parametrize("table", list(TABLES))
def test_zeroed_pages_in_any_table_are_an_error(tmp_path, table):
    if table == "adverse_events":          # the planted grade error lives there
        folder = published_with_damage(tmp_path, table, "zeroed-pages", other_fault=False)
    else:
        folder = published_with_damage(tmp_path, table, "zeroed-pages")
    report = validate_folder(folder)
    assert any(e.table == table and e.rule.startswith(f"file {table}.parquet cannot be read (")
               for e in report.errors), report.summary()
    if table != "adverse_events":
        assert grade_error(report), report.summary()


def test_latest_skips_a_new_cut_with_damaged_pages(tmp_path):
    # issue 14 item 4: "latest raised on every request"; the previous good cut is served instead
    from dashboard import data
    publish_mini(tmp_path)
    published_with_damage(tmp_path, "patients", "zeroed-pages", other_fault=False, snapshot_id=SNAPSHOT_ID + "_reissue")
    # both are complete (files match the manifest); the reissue sorts last, so it is looked at first
    assert [s.snapshot_id for s in list_snapshots(tmp_path)] == [SNAPSHOT_ID, SNAPSHOT_ID + "_reissue"]
    assert data.resolve("latest", tmp_path).snapshot_id == SNAPSHOT_ID


def test_a_table_file_that_is_a_directory_is_not_listed_and_manifest_check_does_not_raise(tmp_path):
    folder = published_with_damage(tmp_path, "lesions", "directory", other_fault=False)
    problems = manifest_problems(folder, read_manifest(folder))        # IsADirectoryError before
    assert "lesions: file lesions.parquet is not a regular file" in problems
    assert list_snapshots(tmp_path) == []


def test_a_table_file_that_is_a_fifo_is_not_opened(tmp_path):
    # opening a FIFO blocks until a writer comes: a crafted file must not hang every request
    folder = publish_mini(tmp_path)
    path = folder / "staging.parquet"
    path.unlink()
    os.mkfifo(path)
    result = {}
    worker = threading.Thread(target=lambda: result.update(report=validate_folder(folder)), daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():
        with open(path, "wb"):                # unblock the reader so the thread can end
            pass
        pytest.fail("validate_folder blocked on a FIFO")
    assert any(e.table == "staging" and "not a regular file" in e.rule for e in result["report"].errors)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 100_000], ids=["lists", "objects"])
def test_a_deeply_nested_manifest_is_no_valid_manifest(tmp_path, text):
    folder = publish_mini(tmp_path)
    (folder / MANIFEST).write_text(text)              # RecursionError out of json.loads before
    assert read_manifest(folder) is None
    assert list_snapshots(tmp_path) == []
    report = validate_folder(folder)
    assert any("no valid manifest.json" in e.rule for e in report.errors), report.summary()


class _FailingConnection:
    """A DuckDB connection whose reads fail for queries containing `needle`: an I/O error in the
    middle of a validation (EIO from a failing disk cannot be made on demand)."""

    def __init__(self, con, needle):
        self._con, self._needle = con, needle

    def execute(self, sql, *args, **kw):
        if self._needle in sql:
            import duckdb
            raise duckdb.IOException('IO Error: Could not read file "x": Input/output error')
        return self._con.execute(sql, *args, **kw)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_an_exception_inside_one_check_is_an_error_naming_its_rule(tmp_path, monkeypatch):
    import duckdb
    folder = publish_mini(tmp_path)
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **kw: _FailingConnection(real_connect(*a, **kw),
                                                                               "child_pugh_score <= 6"))
    report = validate_folder(folder)
    [failed] = [e for e in report.errors if (e.table, e.column) == ("patients", "child_pugh_class")]
    assert failed.rule.startswith("check 'must agree with child_pugh_score (A 5-6, B 7-9, C 10-15)' "
                                  "could not run (IOException: "), report.summary()
    # the other checks ran: the fixture's one known warning (P5's L2 unmeasured at M1) is there
    assert any("P5/L2/M1" in w.examples for w in report.warnings), report.summary()


def _cli(*args, data: Path):
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_DATA"}
    return subprocess.run([sys.executable, "-m", "dashboard", *args, "--data", str(data)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_the_damaged_table_and_exits_1_without_traceback(tmp_path):
    published_with_damage(tmp_path, "patients", "zeroed-pages")
    for args in (("validate", "--snapshot", SNAPSHOT_ID), ("validate",)):
        proc = _cli(*args, data=tmp_path)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "ERROR patients: file patients.parquet cannot be read (data pages corrupt: " in proc.stdout, proc.stdout
        assert "ERROR adverse_events.grade: must be <= 5 (1 row, e.g. P1/A1=7)" in proc.stdout
        assert f"snapshot {SNAPSHOT_ID}: REJECTED" in proc.stdout


# --- 2. the manifest's rows and created_at -------------------------------------------------------
@pytest.mark.parametrize("rows,shown", [("5", "'5'"), (True, "True"), (5.0, "5.0"), (None, "None")])
def test_manifest_rows_must_be_an_integer(tmp_path, rows, shown):
    folder = publish_mini(tmp_path)
    edit_manifest(folder, lambda m: m["tables"]["patients"].__setitem__("rows", rows))
    problems = manifest_problems(folder, read_manifest(folder))
    # before: "file has 5 rows, manifest says 5" for the text '5', and True/5.0 passed as 1/5
    assert f"{MANIFEST}: table 'patients' rows must be an integer, got {shown}" in problems, problems
    assert not [p for p in problems if "file has" in p], problems
    report = validate_folder(folder)
    assert any(e.table == MANIFEST and e.rule == f"table 'patients' rows must be an integer, got {shown}"
               for e in report.errors), report.summary()


@pytest.mark.parametrize("created_at", [
    "2025-07-01T06:00:00Z",
    "2025-07-01T06:00:00+00:00",                  # dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    "2025-07-01T06:00:00.123456Z",
    "2025-07-01T06:00:00.123456+00:00",           # dt.datetime.now(dt.timezone.utc).isoformat()
    "2025-07-01T06:00:00.123+00:00",              # isoformat(timespec="milliseconds")
])
def test_created_at_in_utc_is_accepted(tmp_path, created_at):
    folder = publish_mini(tmp_path)
    edit_manifest(folder, lambda m: m.__setitem__("created_at", created_at))
    assert manifest_problems(folder, read_manifest(folder)) == []
    assert [s.snapshot_id for s in list_snapshots(tmp_path)] == [SNAPSHOT_ID]


def test_python_isoformat_of_a_utc_datetime_is_accepted(tmp_path):
    import datetime as dt
    folder = publish_mini(tmp_path)
    stamp = dt.datetime(2025, 7, 1, 6, 0, 0, 123456, tzinfo=dt.timezone.utc).isoformat()
    assert stamp == "2025-07-01T06:00:00.123456+00:00"
    edit_manifest(folder, lambda m: m.__setitem__("created_at", stamp))
    assert manifest_problems(folder, read_manifest(folder)) == []


@pytest.mark.parametrize("created_at,why", [
    ("2025-07-01T06:00:00+08:00", "offset +08:00: UTC is required"),
    ("2025-07-01T06:00:00-00:00", "offset -00:00: UTC is required"),
    ("2025-07-01T06:00:00", "no time zone: UTC is required"),
    ("2025-07-01T06:00:00.5", "no time zone: UTC is required"),
    ("2025-07-01 06:00:00Z", "not an ISO 8601 date and time"),
    ("2025-13-01T06:00:00Z", "not an ISO 8601 date and time"),
    ("2025-07-01", "not an ISO 8601 date and time"),
    (1751349600, "not an ISO 8601 date and time"),
])
def test_created_at_not_in_utc_is_rejected(tmp_path, created_at, why):
    folder = publish_mini(tmp_path)
    edit_manifest(folder, lambda m: m.__setitem__("created_at", created_at))
    problems = manifest_problems(folder, read_manifest(folder))
    assert [p for p in problems if p.startswith(f"{MANIFEST}: created_at {created_at!r} ") and why in p], problems
    assert list_snapshots(tmp_path) == []


# --- 3. a target lesion with no measurement row at a scan ------------------------------------------
MISSING_ROW = "target lesion has no measurement row at a scan"


def _without_measurements(*keys) -> dict:
    reg = mini_registry()
    reg["lesion_measurements"] = [m for m in reg["lesion_measurements"]
                                  if (m["patient_id"], m["lesion_id"], m["visit"]) not in keys]
    return reg


def _missing_row_warnings(report) -> list:
    return [w for w in report.warnings
            if (w.table, w.column) == ("lesion_measurements", "viable_diameter_mm") and w.rule == MISSING_ROW]


def test_a_target_lesion_without_a_row_at_a_follow_up_scan_is_a_warning(tmp_path):
    # fixture: P5 has target lesions L1 and L2 and scans at baseline and M1; drop L1's M1 row
    folder = publish_mini(tmp_path, _without_measurements(("P5", "L1", "M1")))
    report = validate_folder(folder)
    assert report.ok, report.summary()
    [warning] = _missing_row_warnings(report)
    assert (warning.count, warning.examples) == (1, ("P5/L1/M1",)), report.summary()
    assert "WARNING lesion_measurements.viable_diameter_mm: target lesion has no measurement row at a scan " \
           "(1 row, e.g. P5/L1/M1)" in report.summary()


def test_a_target_lesion_without_a_baseline_row_is_a_warning(tmp_path):
    # fixture: P4's only scan is baseline, with L1 its only (target) lesion: no row at all at baseline
    folder = publish_mini(tmp_path, _without_measurements(("P4", "L1", "baseline")))
    report = validate_folder(folder)
    [warning] = _missing_row_warnings(report)
    assert warning.examples == ("P4/L1/baseline",), report.summary()


def test_a_follow_up_scan_with_no_rows_at_all_is_reported_once(tmp_path):
    # P3's M1 scan loses its one row: the existing "follow-up scan with no lesion measurements"
    # says it, the per-lesion rule does not repeat it
    folder = publish_mini(tmp_path, _without_measurements(("P3", "L1", "M1")))
    report = validate_folder(folder)
    assert any(w.rule == "follow-up scan with no lesion measurements" and w.examples == ("P3/M1",)
               for w in report.warnings), report.summary()
    assert not _missing_row_warnings(report), report.summary()


def test_the_mini_registry_has_every_target_row(tmp_path):
    # every target lesion of tests/fixtures.py has a row at each of its patient's scans
    report = validate_folder(publish_mini(tmp_path))
    assert not _missing_row_warnings(report), report.summary()


# --- 4. paths: symbolic links out of the data root, --snapshot ------------------------------------
def test_a_snapshot_folder_linked_from_outside_is_not_listed_nor_read(tmp_path):
    outside = publish_mini(tmp_path / "elsewhere")            # a complete, valid cut outside the root
    root = tmp_path / "root"
    (root / "snapshots").mkdir(parents=True)
    link = root / "snapshots" / SNAPSHOT_ID
    link.symlink_to(outside, target_is_directory=True)
    assert list_snapshots(root) == []                         # it was listed (and served) before
    report = validate_folder(link)
    assert not report.ok
    assert any(e.table == SNAPSHOT_ID and "symbolic link out of the snapshots folder" in e.rule
               for e in report.errors), report.summary()
    # nothing was read through the link: no table finding
    assert not [f for f in report.findings if f.table in TABLES], report.summary()


def test_a_table_file_linked_from_outside_is_an_error_naming_the_file(tmp_path):
    folder = publish_mini(tmp_path / "root")
    outside = tmp_path / "outside.parquet"
    shutil.copyfile(folder / "patients.parquet", outside)    # same bytes: the checksum matches
    (folder / "patients.parquet").unlink()
    (folder / "patients.parquet").symlink_to(outside)
    assert list_snapshots(tmp_path / "root") == []
    report = validate_folder(folder)
    assert any(e.table == "patients" and e.rule == "file patients.parquet is a symbolic link out of the snapshots folder"
               for e in report.errors), report.summary()
    assert not [f for f in report.findings if f.table == "patients" and f.column], report.summary()


def test_a_table_file_linked_within_the_snapshots_folder_is_accepted(tmp_path):
    # an unchanged table shared with the previous cut, linked rather than copied
    older = write_snapshot(tmp_path, "2024-09-30", mini_registry(), cutoff="2024-12-31")
    folder = publish_mini(tmp_path)
    (folder / "sites.parquet").unlink()
    (folder / "sites.parquet").symlink_to(Path("..") / older.name / "sites.parquet")
    assert SNAPSHOT_ID in [s.snapshot_id for s in list_snapshots(tmp_path)]
    assert validate_folder(folder).ok


def test_a_manifest_linked_from_outside_is_an_error(tmp_path):
    folder = publish_mini(tmp_path / "root")
    outside = tmp_path / "manifest.json"
    shutil.copyfile(folder / MANIFEST, outside)
    (folder / MANIFEST).unlink()
    (folder / MANIFEST).symlink_to(outside)
    assert list_snapshots(tmp_path / "root") == []
    assert not validate_folder(folder).ok


@pytest.mark.parametrize("command", ["validate", "export"])
@pytest.mark.parametrize("snapshot", ["/etc", "../../etc", f"{SNAPSHOT_ID}/../../..", "", "2024-12-31\n",
                                      "２０２４-12-31"])
def test_snapshot_argument_must_be_an_id_or_latest(tmp_path, capsys, command, snapshot):
    from dashboard.__main__ import main
    publish_mini(tmp_path)
    args = [command] + (["patients"] if command == "export" else []) + ["--data", str(tmp_path), "--snapshot", snapshot]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--snapshot" in err and "must be a snapshot id (YYYY-MM-DD, optionally _suffix) or 'latest'" in err, err


def test_snapshot_argument_accepts_ids_and_latest(tmp_path, capsys):
    from dashboard.__main__ import main
    publish_mini(tmp_path)
    assert main(["validate", "--data", str(tmp_path), "--snapshot", SNAPSHOT_ID]) == 0
    assert main(["validate", "--data", str(tmp_path), "--snapshot", "latest"]) == 0
    assert f"snapshot {SNAPSHOT_ID}: valid" in capsys.readouterr().out


# --- 5. concurrent validations in one process ------------------------------------------------------
def test_eight_threads_validating_one_folder_agree(tmp_path):
    folder = published_with_damage(tmp_path, "imaging", "zeroed-pages")   # errors and warnings
    serial = validate_folder(folder).to_json()
    barrier = threading.Barrier(8)
    results, failures = [None] * 8, []

    def run(i):
        try:
            barrier.wait(30)
            results[i] = validate_folder(folder).to_json()
        except BaseException as e:       # reported below, not lost in the thread
            failures.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures and all(not t.is_alive() for t in threads), failures
    normal = lambda doc: sorted(json.dumps(f, sort_keys=True) for f in doc["findings"])  # noqa: E731
    assert all(normal(r) == normal(serial) for r in results), results
    assert any(f["rule"].startswith("file imaging.parquet cannot be read") for f in serial["findings"])
