"""The filter value object shared by the URL, the callbacks and the command line.

URL form:           ?site=S01,S02&bclc=B,C&age_min=50
command-line form:  --filter site=S01,S02 --filter bclc=B,C

Filters never reach SQL as text: `as_variables()` gives the values that the data seam binds as
DuckDB variables, which the `cohort` view reads (queries/cohort.sql).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields, replace
from urllib.parse import parse_qsl, urlencode

from dashboard.contract import BCLC_STAGES, CHILD_PUGH_CLASSES, ETIOLOGIES, SEXES

UNKNOWN = "unknown"              # a value the source did not record (null in the data): filterable as 'unknown'


class FilterError(ValueError):
    """An unknown filter key or value; the message says which and what is allowed."""


LIST_KEYS = {
    "site": None,                                   # checked against the snapshot's sites
    "bclc": BCLC_STAGES + (UNKNOWN,),
    "child_pugh": CHILD_PUGH_CLASSES + (UNKNOWN,),
    "etiology": ETIOLOGIES + (UNKNOWN,),
    "sex": SEXES,
    "ecog": ("0", "1", "2", "3", "4", UNKNOWN),
}
INT_KEYS = ("age_min", "age_max")
DATE_KEYS = ("enrolled_from", "enrolled_to")
KEYS = tuple(LIST_KEYS) + INT_KEYS + DATE_KEYS

LABELS = {
    "site": "Site", "bclc": "BCLC", "child_pugh": "Child-Pugh", "etiology": "Etiology",
    "sex": "Sex", "ecog": "ECOG", "age_min": "Age ≥", "age_max": "Age ≤",
    "enrolled_from": "Enrolled from", "enrolled_to": "Enrolled to",
}


@dataclass(frozen=True)
class Filters:
    site: tuple[str, ...] = ()
    bclc: tuple[str, ...] = ()
    child_pugh: tuple[str, ...] = ()
    etiology: tuple[str, ...] = ()
    sex: tuple[str, ...] = ()
    ecog: tuple[str, ...] = ()
    age_min: int | None = None
    age_max: int | None = None
    enrolled_from: dt.date | None = None
    enrolled_to: dt.date | None = None

    # --- parsing ---------------------------------------------------------------------------
    @classmethod
    def parse_pairs(cls, pairs, known_sites=None, strict=True) -> tuple["Filters", list[str]]:
        """Filters from (key, value) pairs. strict: raise on the first problem; otherwise drop
        the offending key and return a message for each problem."""
        values: dict = {}
        problems: list[str] = []
        for key, raw in pairs:
            try:
                values[key] = _parse_value(key, raw, known_sites)
            except FilterError as e:
                if strict:
                    raise
                problems.append(str(e))
                values.pop(key, None)
        f = cls(**values)
        if f.age_min is not None and f.age_max is not None and f.age_min > f.age_max:
            msg = f"age_min ({f.age_min}) is greater than age_max ({f.age_max})"
            if strict:
                raise FilterError(msg)
            problems.append(msg + "; the age filter was ignored")
            f = replace(f, age_min=None, age_max=None)
        if f.enrolled_from and f.enrolled_to and f.enrolled_from > f.enrolled_to:
            msg = f"enrolled_from ({f.enrolled_from}) is after enrolled_to ({f.enrolled_to})"
            if strict:
                raise FilterError(msg)
            problems.append(msg + "; the enrollment window was ignored")
            f = replace(f, enrolled_from=None, enrolled_to=None)
        return f, problems

    @classmethod
    def from_query(cls, query: str, known_sites=None, strict=False) -> tuple["Filters", list[str]]:
        """From a URL query string ('?site=S01,S02&bclc=B'). Lenient by default: a bad key or
        value is dropped and described, never raised (a shared link must not crash a page)."""
        pairs = [(k, v) for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True)
                 if k not in NON_FILTER_PARAMS]
        return cls.parse_pairs(pairs, known_sites, strict)

    @classmethod
    def from_cli(cls, items: list[str] | None, known_sites=None) -> "Filters":
        """From repeated --filter K=V[,V...] arguments. Strict: raises FilterError."""
        pairs = []
        for item in items or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise FilterError(f"--filter {item!r}: expected KEY=VALUE[,VALUE...]")
            pairs.append((key.strip(), value.strip()))
        return cls.parse_pairs(pairs, known_sites, strict=True)[0]

    # --- output ----------------------------------------------------------------------------
    def to_pairs(self) -> list[tuple[str, str]]:
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or v == ():
                continue
            out.append((f.name, ",".join(v) if isinstance(v, tuple) else str(v)))
        return out

    def to_query(self) -> str:
        """URL query string without '?', keys in canonical order ('' when no filter)."""
        return urlencode(self.to_pairs(), safe=",")

    def to_dict(self) -> dict:
        """JSON-friendly dict of the active filters (for exports)."""
        return {k: (list(v) if isinstance(v, tuple) else v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in asdict(self).items() if v not in (None, ())}

    def is_empty(self) -> bool:
        return not self.to_pairs()

    def without(self, key: str, value: str | None = None) -> "Filters":
        """A copy with one key (or one value of a list key) removed."""
        current = getattr(self, key)
        if isinstance(current, tuple) and value is not None:
            return replace(self, **{key: tuple(v for v in current if v != value)})
        return replace(self, **{key: () if isinstance(current, tuple) else None})

    def as_variables(self) -> dict:
        """Values bound as DuckDB variables f_<key> for the cohort view (None = no filter)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            out["f_" + f.name] = v if v not in ([], ()) else None
        return out


# query-string parameters that are page state, not filters (kept in the URL beside them)
NON_FILTER_PARAMS = {"snapshot", "endpoint", "by", "ci", "bands", "ref", "scope", "view", "tab", "mode", "sort",
                     "level", "measure", "events", "within_days", "metric", "page", "since",
                     "min_grade", "serious_only", "forest_by", "forest_ref", "forest_compare", "forest_form"}


def _parse_value(key: str, raw: str, known_sites=None):
    if key in LIST_KEYS:
        raw_items = [x.strip() for x in raw.split(",") if x.strip()]
        allowed = LIST_KEYS[key] if key != "site" else (tuple(known_sites) if known_sites else None)
        if allowed is not None and len(raw_items) > len(allowed):       # a list never longer than its choices
            raise FilterError(f"{key}: {len(raw_items)} values; at most {len(allowed)} ({', '.join(allowed)})")
        items = tuple(dict.fromkeys(raw_items))
        if allowed is not None:
            bad = [x for x in items if x not in allowed]
            if bad:
                raise FilterError(f"{key}: unknown value {', '.join(map(repr, bad))}; "
                                  f"allowed: {', '.join(allowed)}")
        return items
    if key in INT_KEYS:
        try:
            n = int(raw)
        except ValueError:
            raise FilterError(f"{key}: {raw!r} is not a whole number of years") from None
        if not 0 <= n <= 120:
            raise FilterError(f"{key}: {n} is outside 0..120")
        return n
    if key in DATE_KEYS:
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise FilterError(f"{key}: {raw!r} is not a date YYYY-MM-DD") from None
    raise FilterError(f"unknown filter {key!r}; known filters: {', '.join(KEYS)}")
