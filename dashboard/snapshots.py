"""Finding, reading and publishing registry snapshots (docs/snapshot-contract.md).

A snapshot is a folder ``<data root>/snapshots/<snapshot_id>/`` holding one parquet file per
table and a ``manifest.json`` written last. Readers ignore folders without a manifest and
folders whose files do not match the manifest's row counts and checksums.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dashboard.contract import MANIFEST, SCHEMA_VERSION, TABLE_NAMES, TABLES

SNAPSHOT_ID = re.compile(r"^(\d{4}-\d{2}-\d{2})(_[A-Za-z0-9-]+)?$")
DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent / "data"


class SnapshotError(Exception):
    """A snapshot cannot be found or read."""


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: the explicit argument, else $REGISTRY_DATA, else the project's data/."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("REGISTRY_DATA")
    return Path(env) if env else DEFAULT_DATA_ROOT


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    path: Path
    manifest: dict
    # what this process verified: the manifest's hash and every file's identity (size, mtime_ns,
    # inode) after their checksums matched; empty until verified (dashboard/data.py resolve()).
    # Schemas and cache entries are keyed by it, so changed or re-published files never share them.
    fingerprint: str = ""

    @property
    def cutoff_date(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["cutoff_date"])

    @property
    def source(self) -> str:
        return self.manifest.get("source", "")

    def table_path(self, table: str) -> Path:
        return self.path / f"{table}.parquet"

    def read_table(self, table: str) -> pa.Table:
        return pq.read_table(self.table_path(table))


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None when it has none or it is not valid JSON."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_problems(folder: Path, manifest: dict | None, verify_checksums: bool = True) -> list[str]:
    """Why this folder is not a complete snapshot (empty list when it is)."""
    if manifest is None:
        return [f"{folder.name}: no valid {MANIFEST}"]
    problems = []
    for key in ("schema_version", "snapshot_id", "cutoff_date", "created_at", "source", "tables"):
        if key not in manifest:
            problems.append(f"{MANIFEST}: key {key!r} missing")
    if problems:
        return problems
    if manifest["schema_version"] != SCHEMA_VERSION:
        problems.append(f"{MANIFEST}: schema_version {manifest['schema_version']!r}, expected {SCHEMA_VERSION}")
    if manifest["snapshot_id"] != folder.name:
        problems.append(f"{MANIFEST}: snapshot_id {manifest['snapshot_id']!r} is not the folder name {folder.name!r}")
    id_match = SNAPSHOT_ID.match(folder.name)
    if not id_match:
        problems.append(f"{folder.name}: snapshot_id must be YYYY-MM-DD, optionally _suffix")
    try:
        cutoff = dt.date.fromisoformat(str(manifest["cutoff_date"]))
        if id_match and id_match.group(1) != cutoff.isoformat():
            problems.append(f"{MANIFEST}: snapshot_id {folder.name!r} does not start with the cutoff_date {cutoff}")
    except ValueError:
        problems.append(f"{MANIFEST}: cutoff_date {manifest['cutoff_date']!r} is not a date YYYY-MM-DD")
    try:
        dt.datetime.strptime(str(manifest["created_at"]), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        problems.append(f"{MANIFEST}: created_at {manifest['created_at']!r} is not ISO 8601 UTC (YYYY-MM-DDTHH:MM:SSZ)")
    tables = manifest["tables"] if isinstance(manifest["tables"], dict) else {}
    for name in TABLE_NAMES:
        entry = tables.get(name)
        path = folder / f"{name}.parquet"
        if not isinstance(entry, dict) or "rows" not in entry or "sha256" not in entry:
            problems.append(f"{MANIFEST}: table {name!r} missing or without rows/sha256")
            continue
        if not path.exists():
            problems.append(f"{name}: file {path.name} missing")
            continue
        if verify_checksums and sha256_file(path) != entry["sha256"]:
            problems.append(f"{name}: file checksum does not match the manifest")
            continue
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as e:  # a corrupt file is a problem to report, not a crash
            problems.append(f"{name}: file {path.name} is not readable parquet ({e.__class__.__name__})")
            continue
        if rows != entry["rows"]:
            problems.append(f"{name}: file has {rows} rows, manifest says {entry['rows']}")
    return problems


def list_snapshots(root: Path | None = None, verify_checksums: bool = True) -> list[Snapshot]:
    """Complete snapshots under the data root, oldest cut-off first.

    A folder without a valid manifest, or whose files disagree with it, is not a snapshot
    (it may be mid-publication) and is skipped. Content validation is separate (validate.py).
    """
    folder = data_root(root) / "snapshots"
    if not folder.is_dir():
        return []
    found = []
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        manifest = read_manifest(sub)
        if manifest_problems(sub, manifest, verify_checksums):
            continue
        found.append(Snapshot(sub.name, sub, manifest))
    return sorted(found, key=lambda s: (s.manifest["cutoff_date"], s.snapshot_id))


def get_snapshot(snapshot_id: str | None = "latest", root: Path | None = None) -> Snapshot:
    """One complete snapshot by id; 'latest' (or None) is the greatest cut-off date."""
    snaps = list_snapshots(root)
    if not snaps:
        raise SnapshotError(f"no complete snapshot under {data_root(root) / 'snapshots'}")
    if snapshot_id in (None, "", "latest"):
        return snaps[-1]
    for s in snaps:
        if s.snapshot_id == snapshot_id:
            return s
    raise SnapshotError(
        f"snapshot {snapshot_id!r} not found; available: {', '.join(s.snapshot_id for s in snaps)}")


def publish(root: Path, snapshot_id: str, cutoff_date: dt.date, tables: dict[str, pa.Table],
            source: str, created_at: dt.datetime | None = None, replace: bool = False) -> Path:
    """Write a snapshot atomically: build under a temporary name, manifest last, rename."""
    if not SNAPSHOT_ID.match(snapshot_id):
        raise ValueError(f"bad snapshot id {snapshot_id!r}")
    snapshots = Path(root) / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    final = snapshots / snapshot_id
    if final.exists() and not replace:
        raise FileExistsError(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{snapshot_id}.", dir=snapshots))
    try:
        entries = {}
        for name in TABLE_NAMES:
            table = tables[name]
            path = tmp / f"{name}.parquet"
            pq.write_table(table, path, compression="zstd")
            entries[name] = {"rows": table.num_rows, "sha256": sha256_file(path)}
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "snapshot_id": snapshot_id,
            "cutoff_date": cutoff_date.isoformat(),
            "created_at": (created_at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": source,
            "tables": entries,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        old = None
        if final.exists():      # replacing: move the old one aside first, so the gap is two renames
            old = snapshots / f".{snapshot_id}.old.{os.getpid()}"
            os.rename(final, old)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def empty_table(name: str) -> pa.Table:
    """A table of the contract with no rows and the full schema."""
    return TABLES[name].arrow_schema().empty_table()
