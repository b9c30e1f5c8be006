"""What the dashboard serves when files go wrong after (or during) publication: issue 14, items 2,
3, 4 (serving half) and 8. Each test reproduces a fault seen on this machine; real parquet files,
real DuckDB, real subprocesses where a restart is part of the fault."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dashboard import data
from dashboard.filters import Filters
from dashboard.snapshots import SnapshotError, sha256_file
from fixtures import mini_registry, write_snapshot

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = "2024-12-31", "2025-03-31"


def n_male(snapshot) -> int:
    return int(data.value("select count(*) from cohort", snapshot, Filters(sex=("M",))))


def truth_male(folder: Path) -> int:
    """The independent count: the parquet file read with pyarrow, not through our views."""
    sex = pq.read_table(folder / "patients.parquet", columns=["sex"])["sex"]
    return int(pc.sum(pc.equal(sex, "M")).as_py() or 0)


def all_female(rows):
    return dict(rows, patients=[dict(p, sex="F") for p in rows["patients"]])


@pytest.fixture
def two_cuts(tmp_path):
    """The mini registry published twice: the older cut and a newer one with the same rows."""
    rows = mini_registry()
    write_snapshot(tmp_path, OLD, rows)
    write_snapshot(tmp_path, NEW, rows)
    return tmp_path


def rewrite_sex_in_place(folder: Path) -> None:
    """What a clumsy data manager does: same row count, `sex` swapped, manifest untouched."""
    path = folder / "patients.parquet"
    table = pq.read_table(path)
    swapped = pc.if_else(pc.equal(table["sex"], "M"), "F", "M")
    table = table.set_column(table.schema.get_field_index("sex"), "sex", swapped)
    pq.write_table(table, path, compression="zstd")


def test_a_file_changed_after_publication_is_never_served(two_cuts):
    latest = data.resolve("latest", two_cuts)
    assert latest.snapshot_id == NEW
    before = n_male(latest)
    assert before == truth_male(two_cuts / "snapshots" / NEW) > 0
    rewrite_sex_in_place(two_cuts / "snapshots" / NEW)
    served = data.resolve("latest", two_cuts)
    assert served.snapshot_id == OLD, "the changed cut must be rejected and the previous good one served"
    assert n_male(served) == truth_male(two_cuts / "snapshots" / OLD)
    with pytest.raises(SnapshotError, match="patients.*changed after publication"):
        data.resolve(NEW, two_cuts)
    changed = next(s for s in data.complete_snapshots(two_cuts) if s.snapshot_id == NEW)
    report = data.known_report(changed)
    assert report is not None and not report.ok
    assert report.errors[0].table == "patients" and "checksum" in report.errors[0].rule


def test_a_changed_file_is_rejected_after_a_restart_despite_an_ok_report_on_disk(two_cuts, tmp_path_factory):
    cache = tmp_path_factory.mktemp("restart-cache")
    env = dict(os.environ, REGISTRY_CACHE=str(cache))
    script = ("import sys; from dashboard import data; from dashboard.filters import Filters;"
              "s = data.resolve('latest', sys.argv[1]);"
              "print(s.snapshot_id, int(data.value('select count(*) from cohort', s, Filters(sex=('M',)))))")
    run = lambda: subprocess.run([sys.executable, "-c", script, str(two_cuts)], cwd=ROOT, env=env,
                                 capture_output=True, text=True, check=True).stdout.split()
    assert run() == [NEW, str(truth_male(two_cuts / "snapshots" / NEW))]       # reports stored "ok"
    from dashboard.cache import DOC_PREFIX
    assert any(cache.glob(DOC_PREFIX + "validation-*"))
    rewrite_sex_in_place(two_cuts / "snapshots" / NEW)
    assert run() == [OLD, str(truth_male(two_cuts / "snapshots" / OLD))]


def test_a_restored_file_is_served_again(two_cuts):
    folder = two_cuts / "snapshots" / NEW
    original = (folder / "patients.parquet").read_bytes()
    data.resolve("latest", two_cuts)
    rewrite_sex_in_place(folder)
    assert data.resolve("latest", two_cuts).snapshot_id == OLD
    (folder / "patients.parquet").write_bytes(original)
    assert data.resolve("latest", two_cuts).snapshot_id == NEW


def test_republication_replaces_the_schema_and_the_cached_numbers(two_cuts, tmp_path_factory, monkeypatch):
    """publish(replace=True) of the served cut while the process runs: the old materialized tables
    and cached results must not answer for the new files, now or after a restart."""
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path_factory.mktemp("republish-cache")))
    from dashboard import exports
    first = data.resolve("latest", two_cuts)
    males = truth_male(two_cuts / "snapshots" / NEW)
    assert n_male(first) == males > 0
    assert exports.n_patients(first, Filters(sex=("M",)), data.ALL_SITES) == males   # now in the result cache
    write_snapshot(two_cuts, NEW, all_female(mini_registry()))
    second = data.resolve("latest", two_cuts)
    assert second.snapshot_id == NEW and second.fingerprint != first.fingerprint
    assert truth_male(two_cuts / "snapshots" / NEW) == 0
    assert n_male(second) == 0
    assert exports.n_patients(second, Filters(sex=("M",)), data.ALL_SITES) == 0
    assert data.schema_name(first) not in [r[0] for r in data.connection().execute(
        "select schema_name from duckdb_schemas() where database_name = ?", [data.DATABASE]).fetchall()]
    script = ("import sys; from dashboard import data, exports; from dashboard.filters import Filters;"
              "s = data.resolve('latest', sys.argv[1]);"
              "print(exports.n_patients(s, Filters(sex=('M',)), data.ALL_SITES))")
    out = subprocess.run([sys.executable, "-c", script, str(two_cuts)], cwd=ROOT, env=dict(os.environ),
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0"


def test_a_cut_copied_manifest_first_is_shown_once_its_tables_arrive(tmp_path):
    """rsync copies files in name order: manifest.json lands before some tables. The cut is not
    complete then, and must be looked at again when the rest arrives."""
    source = tmp_path / "source"
    write_snapshot(source, OLD, mini_registry())
    write_snapshot(source, NEW, mini_registry())
    target = tmp_path / "target"
    shutil.copytree(source / "snapshots" / OLD, target / "snapshots" / OLD)
    partial = target / "snapshots" / NEW
    partial.mkdir()
    files = sorted(p.name for p in (source / "snapshots" / NEW).iterdir())
    arrived = [f for f in files if f <= "manifest.json"]
    for name in arrived:
        shutil.copy2(source / "snapshots" / NEW / name, partial / name)
    assert "manifest.json" in arrived and len(arrived) < len(files)
    assert data.resolve("latest", target).snapshot_id == OLD
    for name in files:
        if name not in arrived:
            shutil.copy2(source / "snapshots" / NEW / name, partial / name)
    assert data.resolve("latest", target).snapshot_id == NEW


def damage_pages(path: Path) -> None:
    """Overwrite bytes in the middle of the file (data pages), keeping the footer intact."""
    raw = bytearray(path.read_bytes())
    footer = int.from_bytes(raw[-8:-4], "little") + 8
    for i in range(4, len(raw) - footer - 4):
        raw[i] = (raw[i] * 7 + 13) % 256
    path.write_bytes(bytes(raw))


def test_a_new_cut_with_corrupt_pages_never_takes_latest_down(two_cuts):
    """A publisher that checksummed the damaged file: the checksums match, the pages do not decode."""
    folder = two_cuts / "snapshots" / NEW
    damage_pages(folder / "patients.parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tables"]["patients"]["sha256"] = sha256_file(folder / "patients.parquet")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    served = data.resolve("latest", two_cuts)
    assert served.snapshot_id == OLD
    report = data.known_report(next(s for s in data.complete_snapshots(two_cuts) if s.snapshot_id == NEW))
    assert report is not None and not report.ok
    with pytest.raises(SnapshotError, match="rejected"):
        data.resolve(NEW, two_cuts)


def test_concurrent_first_loads_validate_a_new_cut_once(two_cuts, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path_factory.mktemp("concurrent-cache")))
    calls = []
    real = data.validate_folder

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(data, "validate_folder", counting)
    results, errors = [], []

    def load():
        try:
            results.append(data.resolve("latest", two_cuts).snapshot_id)
        except Exception as e:       # noqa: BLE001  (the test reports any failure)
            errors.append(e)
    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results == [NEW] * 8
    assert calls == [two_cuts / "snapshots" / NEW]


def test_a_symlinked_cut_pointing_outside_the_data_root_is_not_served(tmp_path):
    outside = tmp_path / "outside"
    write_snapshot(outside, NEW, mini_registry())
    root = tmp_path / "root"
    write_snapshot(root, OLD, mini_registry())
    (root / "snapshots" / NEW).symlink_to(outside / "snapshots" / NEW, target_is_directory=True)
    assert [s.snapshot_id for s in data.complete_snapshots(root)] == [OLD]
    assert data.resolve("latest", root).snapshot_id == OLD


def test_a_symlinked_table_file_is_rejected(two_cuts, tmp_path):
    folder = two_cuts / "snapshots" / NEW
    elsewhere = tmp_path / "elsewhere.parquet"
    shutil.copy2(folder / "sites.parquet", elsewhere)
    (folder / "sites.parquet").unlink()
    (folder / "sites.parquet").symlink_to(elsewhere)
    assert data.resolve("latest", two_cuts).snapshot_id == OLD
    with pytest.raises(SnapshotError):
        data.resolve(NEW, two_cuts)


def test_a_process_keeps_a_bounded_number_of_snapshot_schemas(tmp_path, monkeypatch):
    """Each cut visited used to keep its materialized tables for the life of the worker."""
    rows = mini_registry()
    ids = ["2024-12-31", "2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"]
    for sid in ids:
        write_snapshot(tmp_path, sid, rows)
    monkeypatch.setattr(data, "MAX_SCHEMAS", 2)
    for sid in ids:
        snap = data.resolve(sid, tmp_path)
        assert n_male(snap) == truth_male(tmp_path / "snapshots" / sid)
    names = [r[0] for r in data.connection().execute(
        "select schema_name from duckdb_schemas() where database_name = ?", [data.DATABASE]).fetchall()]
    mine = [n for n in names if any(n.startswith(f"snap_{sid}_") for sid in ids)]
    assert len(mine) <= 2 and any(n.startswith(f"snap_{ids[-1]}_") for n in mine)
    # an evicted cut is built again when asked for
    assert n_male(data.resolve(ids[0], tmp_path)) == truth_male(tmp_path / "snapshots" / ids[0])


def test_a_check_that_could_not_run_is_not_stored_and_is_tried_again(two_cuts, tmp_path_factory, monkeypatch):
    """An I/O error during validation says nothing about the data: the cut is not served meanwhile,
    the rejection is not stored for other processes, and the cut is validated again later."""
    from dashboard import cache
    from dashboard.validate import Finding, Report
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path_factory.mktemp("transient-cache")))
    real = data.validate_folder
    monkeypatch.setattr(data, "validate_folder", lambda path, *a, **k: real(path, *a, **k) if path.name == OLD else Report(
        path.name, [Finding("error", "patients", "", "check 'codes' could not run (IOException: disk)")]))
    assert data.resolve("latest", two_cuts).snapshot_id == OLD
    new = next(s for s in data.complete_snapshots(two_cuts) if s.snapshot_id == NEW)
    assert cache.get_doc(data._report_key(new)) is None
    monkeypatch.setattr(data, "validate_folder", real)
    monkeypatch.setattr(data, "RETRY_SECONDS", 0)
    for key in list(data._retry_at):
        data._retry_at[key] = 0.0
    assert data.resolve("latest", two_cuts).snapshot_id == NEW


def test_a_cut_changed_during_a_request_is_refused_and_a_fresh_look_falls_back(two_cuts, dash_app):
    """The folders are listed once per request: a file changed after that listing, before the cut's
    tables were built, must not be read as if verified; listing again serves the previous cut."""
    with dash_app.server.test_request_context("/"):
        first = data.resolve("latest", two_cuts)
        assert first.snapshot_id == NEW
        rewrite_sex_in_place(two_cuts / "snapshots" / NEW)
        with pytest.raises(SnapshotError):
            n_male(data.resolve("latest", two_cuts))       # same listing: the tables' build sees the change
        data.forget_listing()
        served = data.resolve("latest", two_cuts)
        assert served.snapshot_id == OLD and n_male(served) == truth_male(two_cuts / "snapshots" / OLD)


def test_the_export_command_refuses_an_unbounded_list_of_risk_table_times(mini_root):
    """A km-risk-table with 500,000 times made a 55 MB cache entry: the command line is bounded too
    (5,000 here: an argument list that long is refused by the system)."""
    times = ",".join(str(i) for i in range(5_000))
    out = subprocess.run([sys.executable, "-m", "dashboard", "export", "km-risk-table", "--data", str(mini_root),
                          "--times", times], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "at most 100" in out.stderr and "Traceback" not in out.stderr
    ok = subprocess.run([sys.executable, "-m", "dashboard", "export", "km-risk-table", "--data", str(mini_root),
                         "--times", ",".join(str(i) for i in range(0, 1000, 10))], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
