"""Snapshot validation: every rule of the contract (docs/snapshot-contract.md).

Errors make a snapshot unusable: it is rejected and the dashboard keeps serving the last one
that passed. Warnings are softer inconsistencies a data manager must chase; the snapshot is
served and the warnings are listed. Each finding names the table, the column, the rule and a
few offending keys.

The checks run in DuckDB directly over the parquet files, so they scale to stress-size
registries. Column rules come from contract.py (null, codes, bounds, keys, references); the other
rules are SQL queries returning the offending keys; values are bound, never formatted into SQL.

validate_folder() never raises: a file that cannot be read, or any check that fails to run, is an
error finding naming the table (and the rule), and the other tables are still checked. Each call
opens its own in-memory DuckDB database, so concurrent calls share nothing.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dashboard.contract import TABLES, Table
from dashboard.quality import bound_params, validator_rules
from dashboard.snapshots import Snapshot, escapes, manifest_problems, read_manifest

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    level: str          # "error" or "warning"
    table: str
    column: str
    rule: str
    count: int = 0
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{self.level.upper()} {where}: {self.rule}"
        if self.count:
            text += f" ({self.count} row{'s' if self.count != 1 else ''}"
            if self.examples:
                text += ", e.g. " + ", ".join(self.examples)
            text += ")"
        return text


@dataclass
class Report:
    snapshot_id: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {"snapshot_id": self.snapshot_id,
                "findings": [dict(f.__dict__, examples=list(f.examples)) for f in self.findings]}

    @classmethod
    def from_json(cls, doc: dict) -> "Report":
        return cls(doc["snapshot_id"], [Finding(**dict(f, examples=tuple(f["examples"]))) for f in doc["findings"]])

    def summary(self) -> str:
        lines = [str(f) for f in self.errors + self.warnings]
        verdict = "valid" if self.ok else "REJECTED"
        lines.append(f"snapshot {self.snapshot_id}: {verdict}, "
                     f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join(lines)


def _short(e: BaseException, folder: Path | None = None) -> str:
    """An exception as one short line, without the snapshot's path (findings are shown to users)."""
    text = (str(e).strip().splitlines() or [""])[0]
    if folder is not None:
        text = text.replace(str(folder) + "/", "").replace(str(folder), "")
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return "VARCHAR"
    mapping = {pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.int16(): "SMALLINT", pa.int8(): "TINYINT",
               pa.float64(): "DOUBLE", pa.float32(): "FLOAT", pa.bool_(): "BOOLEAN", pa.date32(): "DATE"}
    return mapping.get(t, str(t))


class _Checker:
    def __init__(self, snapshot_id: str, folder: Path, cutoff: dt.date | None):
        self.report = Report(snapshot_id)
        self.folder = folder
        self.cutoff = cutoff
        self.con = duckdb.connect()
        self.con.execute("set enable_progress_bar = false")
        self.usable: set[str] = set()       # tables whose columns and types are right

    def add(self, level, table, column, rule, count=0, examples=()):
        finding = Finding(level, table, column, rule, count, tuple(examples))
        if finding not in self.report.findings:     # a missing file is found by the manifest check and by load()
            self.report.findings.append(finding)

    def offenders(self, level, table, column, rule, sql, params=()):
        """Run a query returning one key string per offending row; record a finding if any.
        A query that fails (a page unreadable after all, an I/O error) is an error naming the rule."""
        try:
            rows = self.con.execute(f"select count(*) over (), k from ({sql}) q(k) limit {MAX_EXAMPLES}",
                                    list(params)).fetchall()
        except Exception as e:
            self.failed(table, column, f"check {rule!r}", e)
            return
        if rows:
            self.add(level, table, column, rule, rows[0][0], [str(r[1]) for r in rows])

    def failed(self, table, column, what, e: BaseException):
        """An unexpected exception in a check: an error finding, never a raise."""
        self.add("error", table, column, f"{what} could not run ({_short(e, self.folder)})")

    @staticmethod
    def key_expr(table: Table) -> str:
        return " || '/' || ".join(f"cast({_ident(k)} as varchar)" for k in table.key)

    # --- structure -------------------------------------------------------------------------
    def load(self):
        for name in TABLES:
            try:
                self.load_table(name)
            except Exception as e:
                self.failed(name, "", f"file {name}.parquet: the structure check", e)

    def load_table(self, name: str):
        table = TABLES[name]
        path = self.folder / f"{name}.parquet"
        if not os.path.lexists(path):
            self.add("error", name, "", f"file {name}.parquet missing")
            return
        if escapes(path, self.folder):       # never read a file outside the data root's snapshots
            self.add("error", name, "", f"file {name}.parquet is a symbolic link out of the snapshots folder")
            return
        if not path.is_file():               # a directory, a FIFO (opening it blocks), a device
            self.add("error", name, "", f"file {name}.parquet is not a regular file")
            return
        if any(c in str(path) for c in "*?["):   # DuckDB's read_parquet would expand it as a glob
            self.add("error", name, "", f"file {name}.parquet: its path has a glob character (* ? [), not read")
            return
        try:
            schema = pq.read_schema(path)
        except Exception as e:
            self.add("error", name, "", f"file {name}.parquet is not readable parquet ({e.__class__.__name__})")
            return
        ok = True
        for col in table.columns:
            if col.name not in schema.names:
                self.add("error", name, col.name, "column missing")
                ok = False
                continue
            got, want = _duck_type(schema.field(col.name).type), _duck_type(col.type)
            if got != want:
                self.add("error", name, col.name, f"type is {got}, contract says {want}")
                ok = False
        for extra in set(schema.names) - set(table.column_names):
            self.add("warning", name, extra, "column not in the contract (ignored)")
        # the path is ours (a checked folder), escaped as a literal; it is not user input
        literal = "'" + str(path).replace("'", "''") + "'"
        # every page of every column decoded once: the footer can be intact while a data page is
        # not, and a rule's query may skip such a page (statistics) where a dashboard query reads it
        every = ", ".join(_ident(c) for c in schema.names) or "1"     # a file with no column: nothing to decode
        try:
            self.con.execute(f"select bit_xor(hash({every})) from read_parquet({literal})").fetchall()
        except Exception as e:
            self.add("error", name, "", f"file {name}.parquet cannot be read (data pages corrupt: {_short(e, self.folder)})")
            return
        self.con.execute(f"create view {_ident(name)} as select * from read_parquet({literal})")
        if ok:
            self.usable.add(name)

    def both(self, *tables):
        return all(t in self.usable for t in tables)

    # --- column rules -------------------------------------------------------------------------
    def columns(self):
        for name in self.usable:
            table = TABLES[name]
            key = self.key_expr(table)
            for c in table.columns:
                q = _ident(c.name)
                if not c.nullable:
                    self.offenders("error", name, c.name, "must not be null",
                                   f"select {key} from {_ident(name)} where {q} is null")
                if c.accepted is not None:
                    self.offenders("error", name, c.name,
                                   "value outside the accepted codes " + ", ".join(map(repr, c.accepted)),
                                   f"select {key} || '=' || {q} from {_ident(name)} "
                                   f"where {q} is not null and not list_contains(?, {q})", [list(c.accepted)])
                for op, bound, text in (("<", c.min, ">="), (">", c.max, "<="), ("<=", c.gt, ">")):
                    if bound is not None:
                        self.offenders("error", name, c.name, f"must be {text} {bound:g}",
                                       f"select {key} || '=' || cast({q} as varchar) from {_ident(name)} "
                                       f"where {q} {op} ?", [bound])
            keys = ", ".join(_ident(k) for k in table.key)
            self.offenders("error", name, ",".join(table.key), "duplicate key",
                           f"select {key} from {_ident(name)} group by {keys} having count(*) > 1")
            for cols, ref, ref_cols in table.references:
                if ref not in self.usable:
                    continue
                on = " and ".join(f"r.{_ident(rc)} = t.{_ident(c)}" for c, rc in zip(cols, ref_cols))
                notnull = " and ".join(f"t.{_ident(c)} is not null" for c in cols)
                row_key = " || '/' || ".join(f"cast(t.{_ident(k)} as varchar)" for k in table.key)
                shown = row_key + " || '=' || " + " || '/' || ".join(f"cast(t.{_ident(c)} as varchar)" for c in cols)
                self.offenders("error", name, ",".join(cols), f"must reference an existing {ref} row",
                               f"select {shown} from {_ident(name)} t where {notnull} and not exists "
                               f"(select 1 from {_ident(ref)} r where {on})")

    def dates_after_cutoff(self):
        if self.cutoff is None:
            return
        for name in self.usable:
            table = TABLES[name]
            for c in table.columns:
                if c.type == pa.date32():
                    self.offenders("error", name, c.name, f"date after the cut-off {self.cutoff}",
                                   f"select {self.key_expr(table)} from {_ident(name)} where {_ident(c.name)} > ?",
                                   [self.cutoff])

    # --- cross-table and date-order rules ------------------------------------------------------
    def rules(self):
        E, W = "error", "warning"
        if self.both("patients"):
            self.offenders(E, "patients", "child_pugh_class", "must agree with child_pugh_score (A 5-6, B 7-9, C 10-15)",
                           "select patient_id from patients where child_pugh_score is not null "
                           "and child_pugh_class <> case "
                           "when child_pugh_score <= 6 then 'A' when child_pugh_score <= 9 then 'B' else 'C' end")
            self.offenders(E, "patients", "last_known_alive_date", "must be on or after first_treatment_date",
                           "select patient_id from patients where last_known_alive_date < first_treatment_date")
            self.offenders(E, "patients", "death_date", "must be on or after first_treatment_date",
                           "select patient_id from patients where death_date < first_treatment_date")
            self.offenders(E, "patients", "last_known_alive_date", "must be on or before death_date",
                           "select patient_id from patients where last_known_alive_date > death_date")
            self.offenders(E, "patients", "off_study_date", "must be on or after first_treatment_date",
                           "select patient_id from patients where off_study_date < first_treatment_date")
        if self.both("treatments", "patients"):
            self.offenders(E, "treatments", "treatment_date", "session 1 must be on first_treatment_date",
                           "select t.patient_id from treatments t join patients p using (patient_id) "
                           "where t.session_number = 1 and t.treatment_date <> p.first_treatment_date")
            self.offenders(E, "treatments", "treatment_date", "must be on or after first_treatment_date",
                           "select t.patient_id || '/' || t.session_number from treatments t join patients p "
                           "using (patient_id) where t.treatment_date < p.first_treatment_date")
            self.offenders(E, "treatments", "treatment_date", "must be on or before death_date",
                           "select t.patient_id || '/' || t.session_number from treatments t join patients p "
                           "using (patient_id) where t.treatment_date > p.death_date")
        if self.both("lesions"):
            self.offenders(E, "lesions", "is_target", "at most 2 intrahepatic target lesions per patient",
                           "select patient_id from lesions where is_target and coalesce(segment, '') <> 'extrahepatic' "
                           "group by patient_id having count(*) > 2")
            self.offenders(E, "lesions", "is_target", "at most 5 target lesions per patient",
                           "select patient_id from lesions where is_target group by patient_id having count(*) > 5")
        if self.both("imaging", "patients"):
            self.offenders(E, "imaging", "imaging_date", "baseline must be on or before first_treatment_date",
                           "select i.patient_id from imaging i join patients p using (patient_id) "
                           "where i.visit = 'baseline' and i.imaging_date > p.first_treatment_date")
            self.offenders(E, "imaging", "imaging_date", "follow-up imaging must be after first_treatment_date",
                           "select i.patient_id || '/' || i.visit from imaging i join patients p using (patient_id) "
                           "where i.visit <> 'baseline' and i.imaging_date <= p.first_treatment_date")
            self.offenders(E, "imaging", "imaging_date", "must be on or before death_date",
                           "select i.patient_id || '/' || i.visit from imaging i join patients p using (patient_id) "
                           "where i.imaging_date > p.death_date")
            # a local response may be missing at a follow-up (a source that does not assess treated lesions apart)
            self.offenders(E, "imaging", "overall_response", "null only at baseline",
                           "select patient_id || '/' || visit from imaging where visit <> 'baseline' and overall_response is null")
        if self.both("lesion_measurements", "lesions"):
            self.offenders(E, "lesion_measurements", "non_target_status", "must be null for target lesions",
                           "select m.patient_id || '/' || m.lesion_id || '/' || m.visit from lesion_measurements m "
                           "join lesions l using (patient_id, lesion_id) where l.is_target and m.non_target_status is not null")
            self.offenders(E, "lesion_measurements", "non_target_status", "must be given for non-target lesions",
                           "select m.patient_id || '/' || m.lesion_id || '/' || m.visit from lesion_measurements m "
                           "join lesions l using (patient_id, lesion_id) where not l.is_target and m.non_target_status is null")
            self.offenders(E, "lesion_measurements", "viable_diameter_mm", "must be null for non-target lesions",
                           "select m.patient_id || '/' || m.lesion_id || '/' || m.visit from lesion_measurements m "
                           "join lesions l using (patient_id, lesion_id) where not l.is_target and m.viable_diameter_mm is not null")
        if self.both("adverse_events"):
            self.offenders(W, "adverse_events", "soc", "the same term is filed under more than one soc",
                           "select term || ' in ' || string_agg(distinct soc, ' / ') from adverse_events "
                           "group by term having count(distinct soc) > 1")
        if self.both("staging", "patients"):
            self.offenders(E, "staging", "review_date", "must be after first_treatment_date",
                           "select s.patient_id || '/' || s.visit from staging s join patients p using (patient_id) "
                           "where s.review_date <= p.first_treatment_date")
            self.offenders(E, "staging", "review_date", "must be on or before death_date",
                           "select s.patient_id || '/' || s.visit from staging s join patients p using (patient_id) "
                           "where s.review_date > p.death_date")
        if self.both("adverse_events", "patients"):
            self.offenders(E, "adverse_events", "onset_date", "must be on or after first_treatment_date",
                           "select a.patient_id || '/' || a.ae_id from adverse_events a join patients p using (patient_id) "
                           "where a.onset_date < p.first_treatment_date")
            self.offenders(E, "adverse_events", "resolution_date", "must be on or after onset_date",
                           "select patient_id || '/' || ae_id from adverse_events where resolution_date < onset_date")
            self.offenders(E, "adverse_events", "grade", "grade 5 requires the patient's death_date",
                           "select a.patient_id || '/' || a.ae_id from adverse_events a join patients p using (patient_id) "
                           "where a.grade = 5 and p.death_date is null")
            self.offenders(E, "adverse_events", "onset_date", "must be on or before death_date",
                           "select a.patient_id || '/' || a.ae_id from adverse_events a join patients p using (patient_id) "
                           "where a.onset_date > p.death_date")
        # the contract's warnings about a patient: one definition with the data-quality page's
        for r in validator_rules():
            if self.both(*r.reads):
                self.offenders(W, r.table, r.column, r.rule, f"select key from ({r.sql})", bound_params(r))


def validate_folder(folder: Path, verify_checksums: bool = True) -> Report:
    """Validate one snapshot folder: manifest, files, then every contract rule. Never raises:
    whatever goes wrong is an error finding in the report."""
    folder = Path(folder)
    try:
        checker = _Checker(folder.name, folder, None)
    except Exception as e:      # DuckDB could not start (memory, threads): the cut is not checked
        return Report(folder.name, [Finding("error", folder.name, "", f"validation could not run ({_short(e)})")])
    try:
        manifest = read_manifest(folder)
        for problem in manifest_problems(folder, manifest, verify_checksums):
            table, _, rule = problem.partition(": ")
            checker.add("error", table, "", rule)
        if escapes(folder, folder):          # reported above; nothing is read through the link
            return checker.report
        if manifest is not None:
            try:
                checker.cutoff = dt.date.fromisoformat(str(manifest.get("cutoff_date")))
            except ValueError:
                pass
        for step in (checker.load, checker.columns, checker.dates_after_cutoff, checker.rules):
            try:
                step()
            except Exception as e:
                checker.failed(folder.name, "", f"{step.__name__.replace('_', ' ')} checks", e)
        return checker.report
    except Exception as e:
        checker.failed(folder.name, "", "validation", e)
        return checker.report
    finally:
        try:
            checker.con.close()
        except Exception:
            pass


def validate_snapshot(snapshot: Snapshot) -> Report:
    return validate_folder(snapshot.path)
