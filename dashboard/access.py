"""Who is asking, and what the numbers of their request may show.

The bottom of the import graph: the data seam (dashboard/data.py), the result cache and the
exports read the request's `Scope` from here; this module imports only the standard library and
Flask. The sign-in layer (dashboard/auth) puts the signed-in `User` on the request; the command
line sets the user a process runs as (`export --as-user`).

Roles (docs/access.md):
- committee: every site, patient level.
- investigator: patient-level rows only of their own sites; pooled aggregates over every site,
  with small-cell suppression unless the site filter keeps only their own sites.
- sponsor: aggregates only, with small-cell suppression; never a patient id, date or patient row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("committee", "investigator", "sponsor")
SMALL_CELL = 5              # a count from 1 to SMALL_CELL - 1 is shown as SUPPRESSED
SUPPRESSED = "<5"
MIN_GROUP = 10              # curves, waterfalls and box plots of fewer patients are not drawn
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


class AccessDenied(Exception):
    """The request's user may not see this (a patient-level view for a sponsor, no sign-in)."""


@dataclass(frozen=True)
class User:
    """A signed-in person: name, role and, for an investigator, their own sites. `demo` marks the
    README's demo without sign-in (committee level, synthetic data cuts only)."""
    name: str
    role: str
    sites: tuple[str, ...] = ()
    demo: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not USER_NAME.fullmatch(self.name):
            raise ValueError(f"user name {self.name!r}: 1-64 letters, digits, '.', '_', '@' or '-'")
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} of user {self.name!r}: one of {', '.join(ROLES)}")
        sites = tuple(self.sites or ())
        if any(not isinstance(s, str) or not SITE_ID.fullmatch(s) for s in sites):
            raise ValueError(f"sites of user {self.name!r}: site ids such as S01, got {list(sites)!r}")
        object.__setattr__(self, "sites", tuple(sorted(set(sites))))
        if self.role == "investigator" and not self.sites:
            raise ValueError(f"investigator {self.name!r} needs at least one site (--site S01)")


DEMO_USER = User("demo", "committee", demo=True)


@dataclass(frozen=True)
class Scope:
    """What one request's numbers may show.

    sites:          the cohort: sites whose patients enter any number (None: every site).
    patient_sites:  sites whose patient-level rows may leave the server (None: every site in the
                    cohort; (): none, aggregates only).
    suppress:       small-cell suppression: counts 1-4 shown as "<5", percentages of them withheld,
                    curves, waterfalls and box plots of groups under MIN_GROUP patients not drawn.

    The data seam binds `bound_sites()` on every query, so a code path that reads patient rows with
    a request's scope gets only the rows that request may see (none for a sponsor). Only the exports
    layer computes aggregates over the whole cohort (`pooled()`) and suppresses their small cells.
    """
    sites: tuple[str, ...] | None = None
    patient_sites: tuple[str, ...] | None = None
    suppress: bool = False

    @classmethod
    def all_sites(cls) -> "Scope":
        return cls()

    @property
    def patient_level(self) -> bool:
        """True when some patient-level rows may be shown."""
        return self.patient_sites != ()

    def bound_sites(self) -> tuple[str, ...] | None:
        """The sites whose rows a query with this scope reads (None: every site)."""
        if self.patient_sites is None:
            return self.sites
        if self.sites is None:
            return self.patient_sites
        return tuple(s for s in self.sites if s in self.patient_sites)

    def pooled(self) -> "Scope":
        """The scope an aggregate is computed over: the whole cohort, before suppression."""
        return Scope(sites=self.sites)

    def key(self) -> dict:
        """The scope's part of a cache key."""
        return {"sites": None if self.sites is None else sorted(self.sites),
                "patient_sites": None if self.patient_sites is None else sorted(self.patient_sites),
                "suppress": self.suppress}


ALL_SITES = Scope.all_sites()


def scope_for(user: User | None, site_filter=()) -> Scope:
    """The scope of a user's request, given the site filter it asks for. No user: the command line
    without --as-user, which reads the files with the operating system's permissions: every site."""
    if user is None or user.role == "committee":
        return ALL_SITES
    if user.role == "investigator":
        own_only = bool(site_filter) and set(site_filter) <= set(user.sites)
        return Scope(patient_sites=user.sites, suppress=not own_only)
    return Scope(patient_sites=(), suppress=True)


# --- small cells -------------------------------------------------------------------------------
def is_small(n) -> bool:
    """A count from 1 to SMALL_CELL - 1 (0 is not small: it reveals no one)."""
    try:
        return 0 < n < SMALL_CELL
    except TypeError:
        return False


def shown_count(n, scope: Scope):
    """A count as this scope may show it: the number, or "<5"."""
    return SUPPRESSED if scope.suppress and is_small(n) else n


def count_text(n, scope: Scope) -> str:
    """A count for a sentence or a label: "<5" or the number with thousands separators."""
    shown = shown_count(n, scope)
    return shown if isinstance(shown, str) else f"{shown:,}"


# --- the user of this request or process -------------------------------------------------------
_process = {"user": None}


def set_process_user(user: User | None) -> None:
    """The user a command-line process runs as (export --as-user); None: no user."""
    _process["user"] = user


def current_user() -> User | None:
    """The signed-in user of the current request (set by dashboard/auth before any callback runs);
    outside a request, the user the process runs as. A request without a user is refused: a code
    path that skipped sign-in gets nothing."""
    import flask
    if flask.has_request_context():
        user = flask.g.get("user")
        if not isinstance(user, User):
            raise AccessDenied("not signed in")
        return user
    return _process["user"]


def request_memo(name: str) -> dict | None:
    """A dict living as long as the current request (None outside one): flask.g is per request."""
    import flask
    if not flask.has_request_context():
        return None
    return flask.g.__dict__.setdefault("memo_" + name, {})
