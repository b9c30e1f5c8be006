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

# ASCII digits only (\d also matches other scripts' digits) and no trailing newline ($ allows one)
SNAPSHOT_ID = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(_[A-Za-z0-9-]+)?\Z")
MAX_MANIFEST_BYTES = 1 << 20        # a manifest of eight entries is ~2 KB; a bigger file is not one
# created_at: ISO 8601 date and time, optional fraction, optional zone (checked to be UTC below)
CREATED_AT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?\Z")
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


def escapes(path: Path, folder: Path) -> bool:
    """Whether `path`, its symbolic links followed, lies outside the snapshots folder that holds
    `folder` (the data root's snapshots/): such a file or folder is never read or served."""
    try:
        base = Path(os.path.realpath(folder.parent))
        return not Path(os.path.realpath(path)).is_relative_to(base)
    except (OSError, ValueError):
        return True


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None when it has none, it is not a regular file inside the
    snapshots folder, it is too big, or it is not valid JSON."""
    path = folder / MANIFEST
    try:
        if escapes(folder, folder) or escapes(path, folder) or not path.is_file():
            return None         # not opened: a FIFO would block, a link out of the root is not ours
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            return None
        manifest = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def created_at_problem(value) -> str | None:
    """Why a manifest's created_at is not an ISO 8601 date and time in UTC (None when it is):
    2025-07-01T06:00:00Z, 2025-07-01T06:00:00+00:00 and fractional seconds, as isoformat() writes."""
    shape = "an ISO 8601 date and time in UTC (YYYY-MM-DDTHH:MM:SS[.ffffff] then Z or +00:00)"
    m = CREATED_AT.match(value) if isinstance(value, str) else None
    try:
        if m is None:
            raise ValueError
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"created_at {value!r} is not {shape}"
    zone = m.group(2)
    if zone is None:
        return f"created_at {value!r} has no time zone: UTC is required (Z or +00:00)"
    if zone not in ("Z", "+00:00"):
        return f"created_at {value!r} has the offset {zone}: UTC is required (Z or +00:00)"
    return None


def _table_problem(folder: Path, name: str, entry: dict, verify_checksums: bool) -> str | None:
    """Why one table file does not match its manifest entry (None when it does)."""
    path = folder / f"{name}.parquet"
    if not _is_int(entry["rows"]):
        return f"{MANIFEST}: table {name!r} rows must be an integer, got {entry['rows']!r}"
    if not os.path.lexists(path):
        return f"{name}: file {path.name} missing"
    if escapes(path, folder):
        return f"{name}: file {path.name} is a symbolic link out of the snapshots folder"
    if not path.is_file():      # a directory, a FIFO (opening it would block), a device, a broken link
        return f"{name}: file {path.name} is not a regular file"
    try:
        if verify_checksums and sha256_file(path) != entry["sha256"]:
            return f"{name}: file checksum does not match the manifest"
    except OSError as e:
        return f"{name}: file {path.name} cannot be read ({e.strerror or e.__class__.__name__})"
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as e:  # a corrupt file is a problem to report, not a crash
        return f"{name}: file {path.name} is not readable parquet ({e.__class__.__name__})"
    if rows != entry["rows"]:
        return f"{name}: file has {rows} rows, manifest says {entry['rows']}"
    return None


def manifest_problems(folder: Path, manifest: dict | None, verify_checksums: bool = True) -> list[str]:
    """Why this folder is not a complete snapshot (empty list when it is). Never raises."""
    folder = Path(folder)
    try:
        if escapes(folder, folder):
            return [f"{folder.name}: snapshot folder is a symbolic link out of the snapshots folder"]
        if escapes(folder / MANIFEST, folder):
            return [f"{MANIFEST}: is a symbolic link out of the snapshots folder"]
        return _manifest_problems(folder, manifest, verify_checksums)
    except Exception as e:      # any surprise is a reason not to serve the folder, never a crash
        return [f"{folder.name}: cannot be checked ({e.__class__.__name__}: {e})"]


def _manifest_problems(folder: Path, manifest: dict | None, verify_checksums: bool) -> list[str]:
    if manifest is None:
        return [f"{folder.name}: no valid {MANIFEST}"]
    problems = []
    for key in ("schema_version", "snapshot_id", "cutoff_date", "created_at", "source", "tables"):
        if key not in manifest:
            problems.append(f"{MANIFEST}: key {key!r} missing")
    if problems:
        return problems
    if not _is_int(manifest["schema_version"]) or manifest["schema_version"] != SCHEMA_VERSION:
        problems.append(f"{MANIFEST}: schema_version {manifest['schema_version']!r}, expected {SCHEMA_VERSION}")
    if manifest["snapshot_id"] != folder.name:
        problems.append(f"{MANIFEST}: snapshot_id {manifest['snapshot_id']!r} is not the folder name {folder.name!r}")
    id_match = SNAPSHOT_ID.match(folder.name)
    if not id_match:
        problems.append(f"{folder.name}: snapshot_id must be YYYY-MM-DD, optionally _suffix")
    cutoff_text = manifest["cutoff_date"]
    try:
        if not (isinstance(cutoff_text, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", cutoff_text)):
            raise ValueError
        cutoff = dt.date.fromisoformat(cutoff_text)
        if id_match and id_match.group(1) != cutoff.isoformat():
            problems.append(f"{MANIFEST}: snapshot_id {folder.name!r} does not start with the cutoff_date {cutoff}")
    except ValueError:
        problems.append(f"{MANIFEST}: cutoff_date {cutoff_text!r} is not a date YYYY-MM-DD")
    created = created_at_problem(manifest["created_at"])
    if created:
        problems.append(f"{MANIFEST}: {created}")
    tables = manifest["tables"] if isinstance(manifest["tables"], dict) else {}
    for name in TABLE_NAMES:
        entry = tables.get(name)
        if not isinstance(entry, dict) or "rows" not in entry or "sha256" not in entry:
            problems.append(f"{MANIFEST}: table {name!r} missing or without rows/sha256")
            continue
        problem = _table_problem(folder, name, entry, verify_checksums)
        if problem:
            problems.append(problem)
    return problems


def list_snapshots(root: Path | None = None, verify_checksums: bool = True) -> list[Snapshot]:
    """Complete snapshots under the data root, oldest cut-off first. Never raises.

    A folder without a valid manifest, or whose files disagree with it, is not a snapshot
    (it may be mid-publication) and is skipped; so is a folder or file that is a symbolic link
    out of <data root>/snapshots. Content validation is separate (validate.py).
    """
    folder = data_root(root) / "snapshots"
    try:
        subs = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return []
    found = []
    for sub in subs:
        try:
            if sub.name.startswith(".") or not SNAPSHOT_ID.match(sub.name) or not sub.is_dir():
                continue
            manifest = read_manifest(sub)
            if manifest_problems(sub, manifest, verify_checksums):
                continue
        except OSError:         # a folder that vanished or cannot be looked at is not a snapshot
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
            source: str, created_at: dt.datetime | None = None, replace: bool = False,
            check=None) -> Path:
    """Write a snapshot atomically: build under a temporary name, manifest last, rename.
    `check(folder)` runs on the complete temporary folder before the rename; whatever it raises
    leaves nothing published (importers validate there)."""
    if not SNAPSHOT_ID.match(snapshot_id):
        raise ValueError(f"bad snapshot id {snapshot_id!r}")
    snapshots = Path(root) / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    final = snapshots / snapshot_id
    if final.exists() and not replace:
        raise FileExistsError(final)
    work = Path(tempfile.mkdtemp(prefix=f".{snapshot_id}.", dir=snapshots))
    tmp = work / snapshot_id            # built under its own name, so a check sees the folder as published
    try:
        tmp.mkdir()
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
        if check is not None:
            check(tmp)
        old = None
        if final.exists():      # replacing: move the old one aside first, so the gap is two renames
            old = snapshots / f".{snapshot_id}.old.{os.getpid()}"
            os.rename(final, old)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def empty_table(name: str) -> pa.Table:
    """A table of the contract with no rows and the full schema."""
    return TABLES[name].arrow_schema().empty_table()
