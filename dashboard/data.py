"""The one seam between the dashboard and DuckDB.

Every query goes through `query()` / `execute()`: they pick the snapshot's schema, bind the
filters and the user's site scope as DuckDB variables (read by queries/cohort.sql and
queries/sites_in_scope.sql) and run SQL from queries/ with bound parameters. Scope is applied
here, once, for every query; a caller cannot forget it.

One DuckDB connection per process, opened lazily (opening at import would break gunicorn
--preload), and one cursor per thread (a DuckDB connection is not thread-safe).
Each snapshot gets a schema holding every view of queries/, created on first use.
"""
from __future__ import annotations

import hashlib
import json
import os
import logging
import re
import stat
import threading
import time
from collections import Counter, OrderedDict
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd

from dashboard.access import ALL_SITES, Scope
from dashboard.filters import Filters
from dashboard.snapshots import Snapshot, SnapshotError, data_root
from dashboard.validate import Finding, Report, validate_folder

QUERIES = Path(__file__).resolve().parent.parent / "queries"

log = logging.getLogger(__name__)

DATABASE = "registry"          # the attached in-memory database holding every snapshot's schema
_lock = threading.Lock()
_state = {"pid": None, "con": None, "schemas": OrderedDict(), "in_use": Counter()}
_local = threading.local()


class QueryError(Exception):
    """A named query does not exist or failed."""




# --- views ------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def view_files() -> dict[str, str]:
    """View name -> SQL text, one view per file in queries/, named after the file."""
    return {p.stem: p.read_text() for p in sorted(QUERIES.glob("*.sql"))}


def view_order() -> list[str]:
    """View names in dependency order (a view after every view it reads)."""
    views = view_files()
    deps = {name: {other for other in views if other != name
                   and re.search(rf"\b{re.escape(other)}\b", _strip_comments(sql))}
            for name, sql in views.items()}
    order, seen = [], set()

    def visit(name, stack=()):
        if name in seen:
            return
        if name in stack:
            raise QueryError(f"views depend on each other in a cycle: {' -> '.join(stack + (name,))}")
        for d in sorted(deps[name]):
            visit(d, stack + (name,))
        seen.add(name)
        order.append(name)

    for name in sorted(views):
        visit(name)
    return order


MATERIALIZED = re.compile(r"^-- Materialized once per snapshot", re.M)
FILTERED = {"cohort", "sites_in_scope"}


@lru_cache(maxsize=1)
def materialized_views() -> frozenset[str]:
    """Views computed once per snapshot into a table (their header says "Materialized once per
    snapshot"): filter-independent, heavy per-patient derivations that several views read. Such a
    view must not read the filters or the scope, directly or through another view."""
    views = view_files()
    deps = {name: {o for o in views if o != name and re.search(rf"\b{re.escape(o)}\b", _strip_comments(sql))}
            for name, sql in views.items()}

    def reads_filters(name, seen=()):
        return any(d in FILTERED or "getvariable(" in views[d] or (d not in seen and reads_filters(d, seen + (d,)))
                   for d in deps[name])

    flagged = frozenset(name for name, sql in views.items() if MATERIALIZED.search(sql))
    for name in flagged:
        if name in FILTERED or "getvariable(" in views[name] or reads_filters(name):
            raise QueryError(f"queries/{name}.sql is materialized once per snapshot but reads the filters or scope")
    return flagged


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def schema_name(snapshot: Snapshot) -> str:
    """The snapshot's schema: named after what this process verified (its fingerprint), so a cut
    re-published at the same path, or whose files changed, never reads another's tables."""
    return f"snap_{snapshot.snapshot_id}_{verified(snapshot).fingerprint[:16]}"


# --- connection -------------------------------------------------------------------------------
def connection() -> duckdb.DuckDBPyConnection:
    """This process's connection, opened on first use (and again after a fork)."""
    with _lock:
        if _state["pid"] != os.getpid():
            con = duckdb.connect(":memory:")
            con.execute("set enable_progress_bar = false")
            # snapshot schemas live in a compressed in-memory database: a checkpoint compresses the
            # materialized tables (measured at 100,000 patients: 450 MB -> about 45 MB, and scans are faster)
            con.execute(f"attach ':memory:' as {DATABASE} (compress)")
            _state.update(pid=os.getpid(), con=con, schemas=OrderedDict(), in_use=Counter())
            _local.__dict__.clear()
        return _state["con"]


def cursor() -> duckdb.DuckDBPyConnection:
    """This thread's cursor on the process connection."""
    con = connection()
    cur = getattr(_local, "cursor", None)
    if cur is None or getattr(_local, "con", None) is not con:
        cur = con.cursor()
        _local.cursor, _local.con = cur, con
    return cur


MAX_SCHEMAS = int(os.environ.get("REGISTRY_MAX_SCHEMAS", "3"))   # snapshot schemas a process keeps


def ensure_schema(snapshot: Snapshot) -> str:
    """Create the snapshot's schema and all views in it, once per process (verified first)."""
    return _acquire(snapshot, hold=False)


def _acquire(snapshot: Snapshot, hold: bool = True) -> str:
    """The snapshot's schema, created if needed; with `hold`, counted as in use until _release(),
    so that evicting least recently used schemas never drops one a query is reading."""
    snapshot = verified(snapshot)
    name = schema_name(snapshot)
    con = connection()
    with _lock:
        schemas = _state["schemas"]
        if name not in schemas:
            _build_schema(con, snapshot, name)
            schemas[name] = snapshot
        schemas.move_to_end(name)
        if hold:
            _state["in_use"][name] += 1
        _evict(con, keep=name)
    return name


def _release(name: str) -> None:
    with _lock:
        _state["in_use"][name] -= 1


def _evict(con, keep: str) -> None:
    """Drop schemas not in use: those of an older fingerprint of the kept one's folder (a cut
    re-published or changed), then the least recently used beyond MAX_SCHEMAS. Caller holds _lock."""
    schemas, in_use = _state["schemas"], _state["in_use"]
    path = schemas[keep].path
    stale = [n for n, s in schemas.items() if n != keep and s.path == path]
    extra = [n for n in schemas if n != keep and n not in stale]
    stale += extra[:max(0, len(schemas) - len(stale) - MAX_SCHEMAS)]
    dropped = False
    for name in stale:
        if in_use[name] > 0:
            continue
        con.execute(f"drop schema if exists {DATABASE}.{_ident(name)} cascade")
        del schemas[name]
        in_use.pop(name, None)
        dropped = True
    if dropped:
        con.execute(f"checkpoint {DATABASE}")       # give the dropped tables' blocks back


def _build_schema(con, snapshot: Snapshot, name: str) -> None:
    """Views and materialized tables of queries/ for a verified snapshot; caller holds _lock.
    The files are checked again after they were read: one changed meanwhile drops the schema."""
    s = f"{DATABASE}.{_ident(name)}"
    folder = _literal(str(snapshot.path) + "/")
    try:
        con.execute(f"create schema if not exists {s}")
        # paths and the cut-off come from a verified manifest, escaped as literals
        con.execute(f"create or replace macro {s}.snapshot_file(t) as {folder} || t || '.parquet'")
        con.execute(f"create or replace macro {s}.snapshot_cutoff() as date {_literal(snapshot.cutoff_date.isoformat())}")
        files = view_files()
        for view in view_order():
            sql = files[view]
            try:
                if view in materialized_views():
                    # a table's query binds names in the current schema (a view's, in its own)
                    con.execute(f"use {s}")
                    try:
                        con.execute(f"create or replace table {s}.{_ident(view)} as {sql}")
                    finally:
                        con.execute("use memory.main")
                    con.execute(f"checkpoint {DATABASE}")     # compress it now: keeps the peak low
                else:
                    con.execute(f"create or replace view {s}.{_ident(view)} as {sql}")
            except duckdb.Error as e:
                raise QueryError(f"queries/{view}.sql: {e}") from e
        if _folder_identity(snapshot.path) != _identities.get(snapshot.fingerprint):
            raise SnapshotError(f"snapshot {snapshot.snapshot_id!r}: its files changed while they were read")
    except BaseException:
        con.execute(f"drop schema if exists {s} cascade")
        raise


# --- the seam ---------------------------------------------------------------------------------
def _bind(cur, filters: Filters, scope: Scope, extra: dict | None = None):
    """Bind filters, scope and extra variables on this thread's cursor. Every variable is set
    for every query (None resets it), so nothing leaks from one query to the next; a variable
    already holding the wanted value on this cursor is not set again."""
    variables = filters.as_variables()
    bound_sites = scope.bound_sites()
    variables["scope_sites"] = list(bound_sites) if bound_sites is not None else None
    variables.update(extra or {})
    bound = _local.__dict__.setdefault("bound", {})
    if bound.get("_cursor") is not cur:
        bound.clear()
        bound["_cursor"] = cur
    for name in set(bound) - set(variables) - {"_cursor"}:
        variables[name] = None          # a variable an earlier query set: reset it
    for name, value in variables.items():
        if name in bound and bound[name] == value:
            continue
        if value is None:
            cur.execute(f"reset variable {_ident(name)}")
        elif name == "scope_sites":          # typed: an empty scope (no site) is an empty list of ids
            cur.execute("set variable scope_sites = cast(? as varchar[])", [value])
        else:
            cur.execute(f"set variable {_ident(name)} = ?", [value])
        bound[name] = value


def execute(sql: str, snapshot: Snapshot, filters: Filters = Filters(), scope: Scope = ALL_SITES,
            params: list | dict | None = None, variables: dict | None = None) -> pd.DataFrame:
    """Run SQL (project code, never user text) against the snapshot's views, with the filters and
    scope bound, and values in `params` bound as parameters. Returns a DataFrame."""
    return _run(sql, snapshot, filters, scope, params, variables, _frame)


def value(sql: str, snapshot: Snapshot, filters: Filters = Filters(), scope: Scope = ALL_SITES,
          params: list | dict | None = None, variables: dict | None = None):
    """The first value of the first row of a query (None when it has no row), bound as execute()
    binds: for counts, without building a DataFrame for one number."""
    rows = _run(sql, snapshot, filters, scope, params, variables, _rows)
    return rows[0][0] if rows else None


def _run(sql, snapshot, filters, scope, params, variables, fetch):
    """The one place a query runs: schema, bound filters, scope and variables, then `fetch` of
    its result (a DataFrame for execute, rows for value)."""
    schema = _acquire(snapshot)
    try:
        cur = cursor()
        _bind(cur, filters, scope, variables)
        cur.execute(f"use {DATABASE}.{_ident(schema)}")
        return fetch(cur.execute(sql, params or []))
    except duckdb.Error as e:
        raise QueryError(str(e)) from e
    finally:
        _release(schema)


def _frame(result) -> pd.DataFrame:
    return result.df()


def _rows(result) -> list[tuple]:
    return result.fetchall()


def query(view: str, snapshot: Snapshot, filters: Filters = Filters(), scope: Scope = ALL_SITES,
          order_by: tuple[str, ...] = (), variables: dict | None = None) -> pd.DataFrame:
    """All rows of a named view of queries/ for the snapshot, filters and scope."""
    if view not in view_files():
        raise QueryError(f"no query named {view!r}; known: {', '.join(sorted(view_files()))}")
    order = (" order by " + ", ".join(_ident(c) for c in order_by)) if order_by else ""
    return execute(f"select * from {_ident(view)}{order}", snapshot, filters, scope, variables=variables)


# --- snapshots this process verified -----------------------------------------------------------
# A snapshot is served only after this process has read every file of it and found the checksum
# the manifest names; what it verified is the snapshot's fingerprint: the manifest's bytes and each
# file's identity (name, size, mtime_ns, ctime_ns, inode, type). Every request lists the folders
# again (a few stat calls), so a file changed afterwards, or a cut re-published at the same path,
# has a new fingerprint, is verified again and is rejected if its checksums no longer match.
# Schemas, validation reports and cache entries are keyed by fingerprint.

def _folder_identity(path) -> tuple:
    """(name, size, mtime_ns, ctime_ns, inode, type) of every entry of a snapshot folder."""
    files = []
    try:
        with os.scandir(path) as entries:
            for e in entries:
                st = e.stat(follow_symlinks=False)
                files.append((e.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, stat.S_IFMT(st.st_mode)))
    except OSError:
        return ()
    return tuple(sorted(files))


def _scan(root=None) -> tuple:
    """(root, ((folder name, identity), ...)) of the snapshot folders, once per request. A symlinked
    folder, and a hidden one (a publication in progress), is not a snapshot."""
    memo = _request_memo()
    folder = str(data_root(root) / "snapshots")
    if memo is not None and folder in memo:
        return memo[folder]
    listing = []
    try:
        with os.scandir(folder) as entries:        # os, not pathlib: this runs on every request
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                    listing.append((entry.name, _folder_identity(entry.path)))
    except OSError:
        listing = []
    out = (os.path.dirname(folder), tuple(sorted(listing)))
    if memo is not None:
        memo[folder] = out
    return out


def forget_listing() -> None:
    """List the snapshot folders again on the next look in this request (a cut changed under it)."""
    memo = _request_memo()
    if memo is not None:
        memo.clear()


def _request_memo() -> dict | None:
    """A dict that lives as long as the current Flask request (None outside one)."""
    try:
        import flask
        if not flask.has_request_context():
            return None
        return flask.g.__dict__.setdefault("data_scan", {})
    except ImportError:
        return None


def _fingerprint(path: Path, manifest: dict, identity: tuple) -> str:
    doc = json.dumps([str(path), manifest, identity], sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


@lru_cache(maxsize=512)
def _candidate(root: str, name: str, identity: tuple) -> Snapshot | None:
    """The folder as an unverified snapshot when its manifest is complete (files present, row
    counts as the manifest says), else None. Keyed by the files' identity: a cut copied manifest
    first (as rsync does) is looked at again as its tables arrive."""
    from dashboard.snapshots import manifest_problems, read_manifest
    folder = Path(root) / "snapshots" / name
    manifest = read_manifest(folder)
    try:
        if manifest_problems(folder, manifest, verify_checksums=False):
            return None
    except Exception:                  # an unreadable folder is not a snapshot, never a failed request
        log.exception("snapshot folder %s could not be read", folder)
        return None
    return Snapshot(name, folder, manifest, _fingerprint(folder, manifest, identity))


def complete_snapshots(root=None) -> list[Snapshot]:
    """Complete snapshots (manifest present and matching the files' row counts), oldest cut-off
    first, not yet verified or validated. Their `fingerprint` is what verified() will check."""
    root_text, listing = _scan(root)
    found = [s for name, identity in listing if (s := _candidate(root_text, name, identity)) is not None]
    identities = dict(listing)
    for s in found:
        _identities.setdefault(s.fingerprint, identities[s.snapshot_id])
    return sorted(found, key=lambda s: (str(s.manifest["cutoff_date"]), s.snapshot_id))


# fingerprint -> problem text (None when the checksums matched); fingerprint -> files' identity
_verdicts: dict[str, str | None] = {}
_identities: dict[str, tuple] = {}
_verify_locks: dict[str, threading.Lock] = {}


def verification_problem(snapshot: Snapshot) -> str | None:
    """Why the snapshot's files are not the ones its manifest names (None when they are),
    checked once per fingerprint per process: every table's SHA-256, read now."""
    key = snapshot.fingerprint
    if key in _verdicts:
        return _verdicts[key]
    with _lock:
        lock = _verify_locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _verdicts:
            _verdicts[key] = _check_files(snapshot)
    return _verdicts[key]


def _check_files(snapshot: Snapshot) -> str | None:
    from dashboard.contract import TABLE_NAMES
    from dashboard.snapshots import sha256_file
    tables = snapshot.manifest.get("tables", {})
    for table in TABLE_NAMES:
        path = snapshot.table_path(table)
        try:
            if path.is_symlink() or not path.is_file():
                return f"{table}: {path.name} is not a regular file in the snapshot folder"
            if sha256_file(path) != tables[table]["sha256"]:
                return (f"{table}: {path.name} changed after publication: its checksum does not match "
                        f"the manifest")
        except OSError as e:
            return f"{table}: {path.name} cannot be read ({e.strerror or e.__class__.__name__})"
    if _folder_identity(snapshot.path) != _identities.get(snapshot.fingerprint):
        return "files changed while they were being verified"
    return None


def verified(snapshot: Snapshot) -> Snapshot:
    """The snapshot as this process verified it (SnapshotError naming the file otherwise). A
    snapshot from complete_snapshots() carries the fingerprint to check; one made elsewhere
    (snapshots.get_snapshot) is looked up in the listing of its data root first."""
    if snapshot.fingerprint not in _identities:
        root = snapshot.path.parent.parent
        match = [s for s in complete_snapshots(root) if s.path == snapshot.path]
        if not match:
            raise SnapshotError(f"snapshot {snapshot.snapshot_id!r} is not a complete snapshot under {root}")
        snapshot = match[0]
    problem = verification_problem(snapshot)
    if problem:
        raise SnapshotError(f"snapshot {snapshot.snapshot_id!r} was rejected: {problem}")
    return snapshot


@lru_cache(maxsize=1)
def _validator_version() -> str:
    from dashboard import contract, validate
    code = Path(validate.__file__).read_bytes() + Path(contract.__file__).read_bytes()
    return hashlib.sha256(code).hexdigest()[:12]


_reports: dict[str, Report] = {}
_report_locks: dict[str, threading.Lock] = {}


def _report_key(snapshot: Snapshot) -> str:
    return f"validation-{snapshot.snapshot_id}-" + hashlib.sha256(
        (snapshot.fingerprint + _validator_version()).encode()).hexdigest()[:32]


def _problem_report(snapshot: Snapshot, problem: str) -> Report:
    table, _, rule = problem.partition(": ")
    return Report(snapshot.snapshot_id, [Finding("error", table if rule else "", "", rule or problem)])


def known_report(snapshot: Snapshot) -> Report | None:
    """The validation report if one was already made in this process or stored under this
    snapshot's fingerprint, a rejection if its files did not verify, else None (not looked at yet)."""
    problem = _verdicts.get(snapshot.fingerprint)
    if problem:
        return _problem_report(snapshot, problem)
    if snapshot.fingerprint not in _verdicts:
        return None
    key = _report_key(snapshot)
    if (report := _memo_report(key)) is not None:
        return report
    from dashboard import cache
    doc = cache.get_doc(key)
    return _report_from_doc(doc)


def _report_from_doc(doc) -> Report | None:
    try:
        return Report.from_json(doc) if doc is not None else None
    except (ValueError, KeyError, TypeError):
        return None


def report_for(snapshot: Snapshot) -> Report:
    """The validation report of a snapshot: its files verified first (a rejection naming the file
    otherwise), then every contract rule, once per fingerprint per process at a time, stored in
    the result cache under the fingerprint so that workers and restarts do not validate again."""
    try:
        snapshot = verified(snapshot)
    except SnapshotError as e:
        problem = _verdicts.get(snapshot.fingerprint) or str(e)
        return _logged(snapshot, _problem_report(snapshot, problem))
    key = _report_key(snapshot)
    report = _memo_report(key)
    if report is not None:
        return report
    with _lock:
        lock = _report_locks.setdefault(key, threading.Lock())
    with lock:
        report = _memo_report(key)
        if report is not None:
            return report
        from dashboard import cache
        report = _report_from_doc(cache.get_doc(key))
        if report is None:
            try:
                report = validate_folder(snapshot.path)
            except Exception as e:      # the validator reports problems; this is a last resort
                log.exception("validating %s failed", snapshot.path)
                report = Report(snapshot.snapshot_id, [Finding(
                    "error", "", "", f"validation failed ({e.__class__.__name__}): the cut cannot be checked")])
            if _transient(report):
                _retry_at[key] = time.monotonic() + RETRY_SECONDS
            else:
                cache.put_doc(key, report.to_json())
        _reports[key] = _logged(snapshot, report)
    return report


_logged_rejections: set[str] = set()


def _logged(snapshot: Snapshot, report: Report) -> Report:
    """The report, its rejection logged once per process and fingerprint (a rejected cut is also
    listed on the Overview and in the data-cut menu, disabled)."""
    if not report.ok and snapshot.fingerprint not in _logged_rejections:
        _logged_rejections.add(snapshot.fingerprint)
        log.warning("data cut %s rejected, not served: %s", snapshot.snapshot_id,
                    "; ".join(str(f) for f in report.errors[:3]))
    return report


# a check that could not run (an I/O error, memory) says nothing about the data: such a report is
# kept in memory only, and the cut validated again after RETRY_SECONDS
TRANSIENT = ("could not run", "validation failed")
RETRY_SECONDS = 300
_retry_at: dict[str, float] = {}


def _transient(report: Report) -> bool:
    return any(word in f.rule for f in report.errors for word in TRANSIENT)


def _memo_report(key: str) -> Report | None:
    if key in _retry_at and time.monotonic() > _retry_at[key]:
        _retry_at.pop(key, None)
        _reports.pop(key, None)
    return _reports.get(key)


def resolve(snapshot_id: str | None = "latest", root=None) -> Snapshot:
    """A verified, valid snapshot by id; 'latest' is the greatest cut-off date whose files verify
    and that validates. Only the snapshots needed are looked at: newest first for 'latest', the
    one asked for otherwise."""
    snaps = complete_snapshots(root)
    if snapshot_id in (None, "", "latest"):
        for s in reversed(snaps):
            if report_for(s).ok:
                return verified(s)
        raise SnapshotError(f"no valid snapshot under {data_root(root) / 'snapshots'}")
    for s in snaps:
        if s.snapshot_id == snapshot_id:
            report = report_for(s)
            if report.ok:
                return verified(s)
            raise SnapshotError(f"snapshot {snapshot_id!r} was rejected: {report.errors[0]}")
    raise SnapshotError(f"snapshot {snapshot_id!r} not found; available: "
                        f"{', '.join(s.snapshot_id for s in snaps) or 'none'}")


def sites(snapshot: Snapshot, scope: Scope = ALL_SITES) -> list[tuple[str, str]]:
    """(site_id, site_name) of the sites in scope, ordered by id. A snapshot never changes, so
    this is queried once per snapshot (path and manifest) and scope."""
    key = (verified(snapshot).fingerprint, scope.bound_sites())
    with _lock:
        hit = _site_lists.get(key)
    if hit is None:
        rows = query("sites_in_scope", snapshot, Filters(), scope, order_by=("site_id",))
        hit = list(zip(rows["site_id"], rows["site_name"]))
        with _lock:
            _site_lists[key] = hit
    return list(hit)


_site_lists: dict[tuple, list] = {}


def site_ids(snapshot: Snapshot, scope: Scope = ALL_SITES) -> list[str]:
    return [site_id for site_id, _ in sites(snapshot, scope)]
