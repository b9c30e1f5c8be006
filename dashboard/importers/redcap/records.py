"""Read a REDCap data dictionary and a flat records export (CSV) into typed frames, one per instrument.

The export may use raw names or labels in its header and raw codes or labels in its cells
(REDCap's "raw" and "labels" exports); both are turned back into raw names and codes. Every bad
cell is collected as a `Problem` naming record, event, instance and field, and the whole lot is
raised as one `ImportFailed`.

Types in `Records.form(name)`: dates (date_ymd/dmy/mdy) and datetimes (datetime_*) are pandas
`datetime64[ns]` columns (a date at midnight); integer -> Int64; number* and calc -> Float64;
dropdown/radio -> string of the raw code; yesno/truefalse -> boolean; checkbox -> one boolean column
per option `name___code`; everything else -> string; `<form>_complete` -> Int64. Blank is null.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import IO

import pandas as pd

from dashboard.importers import ImportFailed, Problem  # noqa: F401  (used by the implementation)


@dataclass(frozen=True)
class Field:
    """One row of the data dictionary."""
    name: str
    form: str
    type: str            # text, notes, dropdown, radio, checkbox, yesno, truefalse, calc, slider, file, descriptive, sql
    label: str
    choices: dict[str, str]     # raw code -> label, in order; yesno/truefalse get their fixed ones
    validation: str | None      # date_ymd, integer, number_1dp, ... or None
    min: str | None
    max: str | None
    branching: str
    required: bool
    identifier: bool
    annotation: str


@dataclass
class Dictionary:
    """A project's data dictionary: fields in file order (the first is the record id), forms in order."""
    fields: dict[str, Field]
    record_id: str
    forms: dict[str, list[str]] = dc_field(default_factory=dict)

    def export_columns(self, form: str) -> list[str]:
        """The raw export columns of `form`: its fields (checkboxes expanded to name___code, descriptive
        fields left out), then `<form>_complete`."""
        raise NotImplementedError


def read_dictionary(source: str | bytes | IO) -> Dictionary:
    """Parse a data dictionary CSV (a path or a file-like object) by REDCap's 18 standard header
    texts; raises ImportFailed naming the field and the problem."""
    raise NotImplementedError


@dataclass
class Records:
    """A records export, checked and typed; `form(name)` gives one instrument's rows."""
    dictionary: Dictionary
    longitudinal: bool          # the export has redcap_event_name

    def form(self, name: str) -> pd.DataFrame:
        """The rows that hold instrument `name` (see the module docstring for the column types)."""
        raise NotImplementedError

    def record_ids(self) -> list[str]:
        """Every record id in the export, in first-seen order."""
        raise NotImplementedError


def read_records(source: str | bytes | IO, dictionary: Dictionary, progress: bool = False) -> Records:
    """Read a flat records export CSV (a path or a file-like object), check every cell against
    `dictionary` and return the typed `Records`; raises ImportFailed with every problem found."""
    raise NotImplementedError
