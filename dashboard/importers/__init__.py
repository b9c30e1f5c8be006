"""Importers: build a snapshot from what a real registry holds (a REDCap project, a sponsor's
CDISC ADaM datasets), validate it, and publish it only if it passes.

Every importer raises `ImportFailed` with `Problem`s that name where the bad value is (record,
event or instance, field) and what is wrong with it; the command line prints them and exits 2,
and nothing is published.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dashboard.snapshots import SNAPSHOT_ID, publish

EXIT_BAD_INPUT = 2
MAX_SHOWN = 20          # problems printed; the rest are counted


@dataclass(frozen=True)
class Problem:
    """One bad value: `where` locates it in the source (e.g. "record 12, event baseline_arm_1,
    instance 2" or "ADAE row 31 (USUBJID 01-701-1015)"), `field` is the source's field name."""
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        parts = [p for p in (self.where, f"field {self.field}" if self.field else "") if p]
        return f"{', '.join(parts)}: {self.message}" if parts else self.message


class ImportFailed(Exception):
    """The source cannot become a snapshot; nothing was published."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, (Problem, str)):
            problems = [problems]
        self.problems = [p if isinstance(p, Problem) else Problem("", "", p) for p in problems]
        super().__init__(self.text())

    def text(self) -> str:
        lines = [str(p) for p in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:
            lines.append(f"... and {len(self.problems) - MAX_SHOWN} more problem(s)")
        return "\n".join(lines)


def publish_checked(root: Path, cutoff: dt.date, tables: dict[str, pa.Table], source: str,
                    snapshot_id: str | None = None, replace: bool = False) -> tuple[Path, list[str]]:
    """Publish `tables` as the snapshot of `cutoff` if the validator finds no error; returns the
    folder and the validator's warnings. A rejected snapshot raises ImportFailed with the
    validator's findings (table, column, rule, keys) and leaves the data root as it was."""
    from dashboard.validate import validate_folder
    snapshot_id = snapshot_id or cutoff.isoformat()
    if not SNAPSHOT_ID.match(snapshot_id) or not snapshot_id.startswith(cutoff.isoformat()):
        raise ImportFailed(f"snapshot id {snapshot_id!r} must be the cut-off date {cutoff}, optionally _suffix")
    final = Path(root) / "snapshots" / snapshot_id
    if final.exists() and not replace:
        raise ImportFailed(f"snapshot {snapshot_id} already exists under {final.parent} "
                           "(--replace to replace it, or --snapshot-id with a _suffix)")
    warnings: list[str] = []

    def check(folder: Path) -> None:
        report = validate_folder(folder)
        if not report.ok:
            raise ImportFailed([Problem(f"snapshot table {f.table}", f.column, str(f).split(": ", 1)[1])
                                for f in report.errors])
        warnings.extend(str(f) for f in report.warnings)

    return publish(Path(root), snapshot_id, cutoff, tables, source=source, replace=replace, check=check), warnings


def parse_cutoff(text: str) -> dt.date:
    """--cutoff YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ImportFailed(f"--cutoff {text!r} is not a date YYYY-MM-DD") from None
