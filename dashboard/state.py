"""The request state of a page callback: data cut, filters and the user's scope, in one place.

The shell keeps the data cut and the filters in the URL and a dcc.Store; `state_context` turns
that store into (snapshot, filters, scope) for every card, download and cached view, with the
signed-in user's scope (dashboard/access.py). A user signed in as the demo (sign-in 'none') is
served only synthetic data cuts.
"""
from __future__ import annotations

import datetime as dt
import json
from functools import wraps

from dashboard import access, cache, data
from dashboard.access import Scope
from dashboard.filters import Filters
from dashboard.snapshots import Snapshot, SnapshotError

SYNTHETIC = "synthetic"


def demo_only() -> bool:
    """True when the current user is the demo without sign-in: only synthetic cuts are served."""
    user = access.current_user()
    return user is not None and user.demo


def servable(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The complete cuts the current user may be served (the demo: synthetic cuts only)."""
    return [s for s in snapshots if s.source == SYNTHETIC] if demo_only() else list(snapshots)


def resolve(snapshot_id: str | None = "latest") -> Snapshot:
    """data.resolve, for the current user: without sign-in, 'latest' is the latest synthetic cut and
    a cut from any other source is refused (SnapshotError, as for a cut that does not exist)."""
    if not demo_only():
        return data.resolve(snapshot_id)
    if snapshot_id in (None, "", "latest"):
        for candidate in reversed(servable(data.complete_snapshots())):
            try:
                return data.resolve(candidate.snapshot_id)
            except SnapshotError:
                continue
        raise SnapshotError("no synthetic data cut is available; real data is served only after sign-in")
    snapshot = data.resolve(snapshot_id)
    if snapshot.source != SYNTHETIC:
        raise SnapshotError(f"data cut {snapshot_id!r} is not synthetic (source {snapshot.source!r}): "
                            "it is served only after sign-in")
    return snapshot


def request_scope(filters: Filters = Filters()) -> Scope:
    """The scope of the current request (or process) for the site filter it asks for."""
    return access.scope_for(access.current_user(), filters.site)


def site_ids(snapshot: Snapshot) -> list[str]:
    """Every site of the cut: site ids and names are not patient data, and every role filters by site."""
    return data.site_ids(snapshot)


def state_context(state: dict | None):
    """(snapshot, filters, scope) of a page callback from the shell's state store. Resolved once
    per request (a callback asks for it two to four times: the result cache's key, then each card):
    resolving lists the snapshot folders and reads a manifest, and each of those system calls lets
    go of the GIL, which a thread then waits for while the page's other callbacks hold it (measured
    with py-spy on the Tumour response page: 7% of the callbacks' time sat in the listing)."""
    state = state if isinstance(state, dict) else {}
    key = (str(state.get("snapshot") or "latest"), str(state.get("query", "")))
    memo = access.request_memo("state_context")
    if memo is not None and key in memo:
        return memo[key]
    snapshot = resolve(key[0])
    filters, _ = Filters.from_query(key[1], known_sites=site_ids(snapshot))
    out = snapshot, filters, request_scope(filters)
    if memo is not None:
        memo[key] = out
    return out


def cached_view(name: str):
    """Cache a page callback whose first argument is the shell's filter state: the result is
    keyed by snapshot, filters, the user's scope, the other arguments (page options) and today's
    date (it appears in download file names). Used under @callback, on the thin wrapper. The result
    is returned as plain JSON values (dashboard/wire.py: Dash serialises it without walking it) and
    stored as orjson's JSON of them (wire.encode), not pickled: a figure's thousands of hover
    texts pickled in 3.5 ms (the Tumour response spider), orjson writes them in 1.2. A result
    read back is the same JSON values, so Dash sends the same bytes (lists where the fresh result
    had numpy arrays: both are written as JSON lists; tests/test_wire.py checks every page). A
    stored view that is not valid JSON is a miss (deleted, computed again)."""
    from dashboard import wire

    def decorate(func):
        @wraps(func)
        def wrapper(state, *args):
            snapshot, filters, scope = state_context(state)
            fresh = []

            def compute():
                fresh.append(wire.plain(func(state, *args)))
                return wire.encode(fresh[0])
            value = cache._cached("view:" + name, snapshot, filters, scope, compute, wire.decode,
                                  {"args": json.dumps(args, default=str, sort_keys=True),
                                   "day": dt.date.today().isoformat()})
            return fresh[0] if fresh else value
        return wrapper
    return decorate
