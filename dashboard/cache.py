"""An explicit, read-only-by-key cache of derived results, shared by workers on disk.

Keys name everything a result depends on: the snapshot (path and manifest bytes, which hold
every file's checksum), the filters, the site scope, the export and its options, and the code
version. A snapshot never changes once published, so an entry never goes stale; a new snapshot
has a new key. Set REGISTRY_CACHE to share the folder between hosts; REGISTRY_CACHE=off disables.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from cachelib import FileSystemCache

CODE = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    env = os.environ.get("REGISTRY_CACHE")
    path = Path(env) if env and env != "off" else Path(tempfile.gettempdir()) / "hcc-registry-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def enabled() -> bool:
    return os.environ.get("REGISTRY_CACHE") != "off"


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the SQL and Python that compute results: a code change never reads old entries."""
    h = hashlib.sha256()
    for p in sorted(list((CODE / "queries").glob("*.sql")) + list((CODE / "dashboard").rglob("*.py"))):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


MAX_ENTRIES = 5000      # above this many results on disk the oldest are removed (down to 80%)
PRUNE_EVERY = 200       # writes of a process between two looks at the folder


class Store(FileSystemCache):
    """cachelib's FileSystemCache without its file count: with a threshold, every write also reads
    and rewrites a shared count file (three times the cost of the write itself, measured 0.3 ms
    against 0.09). The folder is pruned here instead, every PRUNE_EVERY writes of a process: oldest
    entries first, as cachelib prunes."""

    def __init__(self, folder: str):
        super().__init__(folder, threshold=0, default_timeout=0)
        self._writes = 0
        self._writes_lock = threading.Lock()

    def set(self, key, value, timeout=None, mgmt_element=False):
        ok = super().set(key, value, timeout, mgmt_element)
        with self._writes_lock:
            self._writes += 1
            due = self._writes % PRUNE_EVERY == 0
        if due:
            self.prune()
        return ok

    def prune(self, limit: int | None = None) -> int:
        """Remove the oldest entries while more than `limit` (MAX_ENTRIES) are stored, down to 80%
        of it. Returns how many were removed. Safe with other processes pruning at the same time."""
        limit = MAX_ENTRIES if limit is None else limit
        entries = []
        for name in self._list_dir():
            try:
                entries.append((os.stat(name).st_mtime, name))
            except OSError:
                pass                       # removed by another process meanwhile
        if len(entries) <= limit:
            return 0
        entries.sort()
        removed = 0
        for _, name in entries[:len(entries) - int(0.8 * limit)]:
            try:
                os.remove(name)
                removed += 1
            except OSError:
                pass
        return removed


@lru_cache(maxsize=4)
def _store(folder: str) -> Store:
    return Store(folder)


def store() -> FileSystemCache:
    return _store(str(cache_dir() / "results"))


@lru_cache(maxsize=256)
def snapshot_key(path: str, manifest_mtime_ns: int) -> str:
    return hashlib.sha256(path.encode() + (Path(path) / "manifest.json").read_bytes()).hexdigest()


def key(kind: str, snapshot, filters, scope, **options) -> str:
    parts = {
        "kind": kind, "code": code_version(),
        "snapshot": snapshot.fingerprint,
        "filters": filters.to_query(), "scope": None if scope.sites is None else sorted(scope.sites),
        "options": {k: options[k] for k in sorted(options)},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# keys being computed in this process now -> their lock: concurrent callbacks of one page update
# that need the same result (Safety's three cards read one export) wait for the first to finish
# instead of computing it again. Coordination only: results live in the store, never here.
_inflight: dict[str, threading.Lock] = {}
_inflight_guard = threading.Lock()


def cached(kind: str, snapshot, filters, scope, compute, **options):
    """compute() once per key, across threads, workers and restarts."""
    if not enabled() or not snapshot.fingerprint:
        return compute()
    k = key(kind, snapshot, filters, scope, **options)
    s = store()
    hit = s.get(k)
    if hit is not None:
        return hit
    with _inflight_guard:
        lock = _inflight.setdefault(k, threading.Lock())
    with lock:
        try:
            hit = s.get(k)                 # computed by another thread while this one waited
            if hit is not None:
                return hit
            value = compute()
            s.set(k, value)
            return value
        finally:
            with _inflight_guard:
                _inflight.pop(k, None)


def cached_view(name: str):
    """Cache a page callback whose first argument is the shell's filter state: the result is
    keyed by snapshot, filters, scope, the other arguments (page options) and today's date (it
    appears in download file names). Used under @callback, on the thin wrapper. The result is
    returned as plain JSON values (dashboard/wire.py: Dash serialises it without walking it) and
    stored as orjson's JSON of them (wire.encode), not pickled: a figure's thousands of hover
    texts pickled in 3.5 ms (the Tumour response spider), orjson writes them in 1.2. A result
    read back is the same JSON values, so Dash sends the same bytes (lists where the fresh result
    had numpy arrays: both are written as JSON lists; tests/test_wire.py checks every page)."""
    import datetime as dt
    from functools import wraps

    from dashboard import wire

    def decorate(func):
        @wraps(func)
        def wrapper(state, *args):
            from dashboard.callbacks.shell import state_context
            snapshot, filters, scope = state_context(state)
            fresh = []

            def compute():
                fresh.append(wire.plain(func(state, *args)))
                return wire.encode(fresh[0])
            raw = cached("view:" + name, snapshot, filters, scope, compute,
                         args=json.dumps(args, default=str, sort_keys=True), day=dt.date.today().isoformat())
            return fresh[0] if fresh else wire.decode(raw)
        return wrapper
    return decorate


def get_doc(key: str) -> dict | None:
    """A JSON document stored under key (a validation report), or None."""
    if not enabled():
        return None
    try:
        return json.loads((cache_dir() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def put_doc(key: str, doc: dict) -> None:
    """Store a JSON document under key, atomically; a failure only loses the document."""
    if not enabled():
        return
    try:
        file = cache_dir() / f"{key}.json"
        tmp = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, file)
    except OSError:
        pass
