"""Read a REDCap data dictionary and a flat records export (CSV) into typed frames, one per instrument.

The export may use raw names or labels in its header and raw codes or labels in its cells
(REDCap's "raw" and "labels" exports); both are turned back into raw names and codes. Every bad
cell is collected as a `Problem` naming record, event, instance and field, and the whole lot is
raised as one `ImportFailed`.

Types in `Records.form(name)`: dates (date_ymd/dmy/mdy) and datetimes (datetime_*) are pandas
`datetime64[ns]` columns (a date at midnight); integer and slider -> Int64; number* and calc ->
Float64; dropdown/radio -> string of the raw code; yesno/truefalse -> boolean; checkbox -> one
boolean column per option `name___code`; everything else -> string; `<form>_complete` -> Int64
(0 incomplete, 1 unverified, 2 complete). Blank is null.

Codes or labels are decided per column: a column whose values are all raw codes is read as codes,
one whose values are all labels as labels (turned into their codes); a mix is read the way more of
its distinct values fit (codes win a tie) and the others are reported. The same goes for yes/no,
checkbox (0/1, Unchecked/Checked, or the option's label), form status and the repeat instrument
(a form's name or label); event labels need the project's events (`read_events`).

How a column's cells are read: the whole file is read as text (pyarrow, blank = null), and each
column is dictionary-encoded, so every check and conversion runs once per distinct value and is
mapped back to the rows with one `take`; bad rows are found with vectorised masks.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import IO, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dashboard.importers import ImportFailed, Problem

# REDCap's data dictionary columns: the header of a dictionary downloaded from the Designer, and
# the names the API's metadata export gives the same columns.
DICTIONARY_HEADER = [
    ("Variable / Field Name", "field_name"),
    ("Form Name", "form_name"),
    ("Section Header", "section_header"),
    ("Field Type", "field_type"),
    ("Field Label", "field_label"),
    ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    ("Field Note", "field_note"),
    ("Text Validation Type OR Show Slider Number", "text_validation_type_or_show_slider_number"),
    ("Text Validation Min", "text_validation_min"),
    ("Text Validation Max", "text_validation_max"),
    ("Identifier?", "identifier"),
    ("Branching Logic (Show field only if...)", "branching_logic"),
    ("Required Field?", "required_field"),
    ("Custom Alignment", "custom_alignment"),
    ("Question Number (surveys only)", "question_number"),
    ("Matrix Group Name", "matrix_group_name"),
    ("Matrix Ranking?", "matrix_ranking"),
    ("Field Annotation", "field_annotation"),
]
# The columns a dictionary cannot do without (name, form, type, label, choices, validation, min,
# max); a hand-edited file that lost another one (a note, an annotation) reads it as blank.
ESSENTIAL = {0, 1, 3, 4, 5, 7, 8, 9}
FIELD_TYPES = {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc",
               "slider", "file", "descriptive", "sql"}
CHOICE_TYPES = {"dropdown", "radio", "checkbox"}
FIXED_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}
COMPLETE_CHOICES = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
CHECKBOX_CHOICES = {"0": "Unchecked", "1": "Checked"}
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

EVENT, INSTRUMENT, INSTANCE = "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"
DAG, SURVEY_ID = "redcap_data_access_group", "redcap_survey_identifier"
# Headers of REDCap's own columns in a labels export.
SPECIAL_LABELS = {EVENT: "Event Name", INSTRUMENT: "Repeat Instrument", INSTANCE: "Repeat Instance",
                  DAG: "Data Access Group", SURVEY_ID: "Survey Identifier"}

# Text validations read as dates or datetimes: accepted spellings (strptime formats) per validation;
# REDCap exports every date as Y-M-D whatever its display format, and a hand-edited file may use the
# field's own display order.
DATE_FORMATS = {
    "date_ymd": ["%Y-%m-%d"],
    "date_dmy": ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"],
    "date_mdy": ["%Y-%m-%d", "%m-%d-%Y", "%m/%d/%Y"],
}
DATETIME_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
INTEGER = re.compile(r"^[+-]?\d+$")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")


def checkbox_column(name: str, code: str) -> str:
    """The export column of checkbox option `code`: REDCap lower-cases the code and writes '-' and
    '.' as '_' (a code -99 is exported as name____99)."""
    return f"{name}___{re.sub(r'[-.]', '_', code.lower())}"


def kind(field: Field) -> str:
    """How a field's cells are read: date, datetime, time, integer, number, code, bool, or text."""
    v = field.validation or ""
    if field.type in ("dropdown", "radio"):
        return "code"
    if field.type in FIXED_CHOICES:
        return "bool"
    if field.type == "calc":
        return "number"
    if field.type == "slider":
        return "integer"
    if field.type != "text":
        return "text"
    if v in DATE_FORMATS:
        return "date"
    if v.startswith("datetime_"):
        return "datetime"
    if v in ("time", "time_hh_mm_ss"):
        return "time"
    if v == "integer":
        return "integer"
    if v.startswith("number"):
        return "number"
    return "text"


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
    calculation: str = ""       # a calc field's formula, a slider's labels, an sql field's query
    section: str = ""
    note: str = ""


@dataclass
class Dictionary:
    """A project's data dictionary: fields in file order (the first is the record id), forms in order."""
    fields: dict[str, Field]
    record_id: str
    forms: dict[str, list[str]] = dc_field(default_factory=dict)

    def export_columns(self, form: str) -> list[str]:
        """The raw export columns of `form`: its fields (the record id included for the first form,
        checkboxes expanded to name___code, descriptive fields left out), then `<form>_complete`."""
        if form not in self.forms:
            raise KeyError(f"no form {form!r} in the data dictionary")
        columns: list[str] = []
        for name in self.forms[form]:
            f = self.fields[name]
            if f.type == "checkbox":
                columns += [checkbox_column(name, code) for code in f.choices]
            elif f.type != "descriptive":
                columns.append(name)
        return columns + [f"{form}_complete"]


def _open_text(source) -> io.TextIOBase:
    if isinstance(source, (str, Path)):
        return open(source, encoding="utf-8-sig", newline="")
    if isinstance(source, bytes):
        return io.StringIO(source.decode("utf-8-sig"), newline="")
    data = source.read()
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    return io.StringIO(data.lstrip("\ufeff"), newline="")


def _name(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the file"


def parse_choices(text: str) -> dict[str, str]:
    """'1, Male | 2, Female' -> {'1': 'Male', '2': 'Female'}; raises ValueError on a choice without
    a code or a repeated code."""
    choices: dict[str, str] = {}
    for part in text.split("|"):
        if not part.strip():
            continue
        code, sep, label = part.partition(",")
        code = code.strip()
        if not code:
            raise ValueError(f"choice {part.strip()!r} has no code before its comma")
        if code in choices:
            raise ValueError(f"choice code {code!r} appears twice")
        choices[code] = label.strip() if sep else code
    return choices


def read_dictionary(source: str | bytes | IO) -> Dictionary:
    """Parse a data dictionary CSV (a path or a file-like object) by REDCap's 18 standard header
    texts (or the API metadata export's names for them; ESSENTIAL ones must be there); raises
    ImportFailed naming the field and the problem."""
    where = f"data dictionary {_name(source)}"
    try:
        with _open_text(source) as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ImportFailed(Problem(where, "", f"cannot be read: {e}")) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ImportFailed(Problem(where, "", "is empty"))
    header = [h.strip() for h in rows[0]]
    position: dict[int, int] = {}
    missing = []
    for i, (text, api) in enumerate(DICTIONARY_HEADER):
        found = [j for j, h in enumerate(header) if h in (text, api)]
        if found:
            position[i] = found[0]
        elif i in ESSENTIAL:
            missing.append(text)
    if missing:
        raise ImportFailed(Problem(where, "", "is not a REDCap data dictionary: no column "
                                   + ", ".join(repr(m) for m in missing)))
    problems: list[Problem] = []
    fields: dict[str, Field] = {}
    forms: dict[str, list[str]] = {}
    for line, row in enumerate(rows[1:], start=2):
        cell = [row[position[i]].strip() if i in position and position[i] < len(row) else "" for i in range(18)]
        name, form, ftype = cell[0], cell[1], cell[3].lower()
        at = f"{where} line {line}"

        def bad(message: str) -> None:
            problems.append(Problem(at, name, message))
        if not FIELD_NAME.match(name):
            bad(f"field name {name!r} is not lower-case letters, digits and _ starting with a letter")
            continue
        if name in fields:
            bad("is defined twice")
            continue
        if not FIELD_NAME.match(form):
            bad(f"form name {form!r} is not lower-case letters, digits and _ starting with a letter")
            continue
        if ftype not in FIELD_TYPES:
            bad(f"field type {ftype!r} is not one of {', '.join(sorted(FIELD_TYPES))}")
            continue
        if forms and form in forms and list(forms)[-1] != form:
            bad(f"form {form} is split: its fields must be together")
            continue
        choices: dict[str, str] = {}
        calculation = ""
        if ftype in CHOICE_TYPES:
            try:
                choices = parse_choices(cell[5])
            except ValueError as e:
                bad(str(e))
                continue
            if not choices:
                bad(f"{ftype} field has no choices")
                continue
            if ftype == "checkbox":
                columns = [checkbox_column(name, c) for c in choices]
                if len(set(columns)) < len(columns):
                    bad("two checkbox codes give the same export column (REDCap writes - and . as _)")
                    continue
        elif ftype in FIXED_CHOICES:
            choices = dict(FIXED_CHOICES[ftype])
        else:
            calculation = cell[5]
        validation = cell[7].lower() or None
        if ftype == "slider":
            validation = None       # this column holds "number" when the slider shows its value
        field = Field(name=name, form=form, type=ftype, label=cell[4], choices=choices,
                      validation=validation, min=cell[8] or None, max=cell[9] or None,
                      branching=cell[11], required=cell[12].lower() == "y",
                      identifier=cell[10].lower() == "y", annotation=cell[17],
                      calculation=calculation, section=cell[2], note=cell[6])
        for bound in (field.min, field.max):
            if bound is not None and kind(field) in ("date", "datetime", "integer", "number"):
                try:
                    _bound(field, bound)
                except ValueError:
                    bad(f"validation bound {bound!r} is not a valid {field.validation or field.type} value")
        fields[name] = field
        forms.setdefault(form, []).append(name)
    if not fields and not problems:
        problems.append(Problem(where, "", "has no fields"))
    if problems:
        raise ImportFailed(problems)
    record_id = next(iter(fields))
    return Dictionary(fields=fields, record_id=record_id, forms=forms)


def _bound(field: Field, text: str):
    """A min/max as the value it bounds (None for a bound REDCap evaluates itself, like [field])."""
    k = kind(field)
    if text.startswith("["):
        return None
    if k in ("date", "datetime"):
        if text in ("today", "now"):
            return pd.Timestamp(dt.date.today()) if text == "today" else pd.Timestamp.now().floor("s")
        parsed = _parse_dates(np.array([text], dtype=object), DATE_FORMATS.get(field.validation or "", DATETIME_FORMATS)
                              + DATETIME_FORMATS + ["%Y-%m-%d"])
        if pd.isna(parsed[0]):
            raise ValueError(text)
        return parsed[0]
    value = float(text.replace(",", ".") if k == "number" else text)
    if k == "integer" and not value.is_integer():
        raise ValueError(text)
    return value


def _parse_dates(values: np.ndarray, formats: list[str]) -> pd.DatetimeIndex:
    """Parse text with the first format that fits each value; NaT where none does (30 February too)."""
    out = pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[ns]")
    text = pd.Series(values, dtype=object)
    for fmt in formats:
        todo = out.isna().to_numpy()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return pd.DatetimeIndex(out)


# --- reading the records ---------------------------------------------------------------------


@dataclass
class _Column:
    """What one export column holds: its raw name, the field, and for a checkbox its code."""
    name: str
    field: Field | None = None
    code: str | None = None
    form: str | None = None        # the form a field / checkbox / _complete column belongs to
    complete: bool = False


@dataclass
class Records:
    """A records export, checked and typed; `form(name)` gives one instrument's rows."""
    dictionary: Dictionary
    longitudinal: bool          # the export has redcap_event_name
    table: pa.Table = dc_field(repr=False, default=None)          # typed columns, raw names
    columns: dict[str, _Column] = dc_field(repr=False, default_factory=dict)
    repeating: set[str] = dc_field(default_factory=set)            # forms seen as repeat instruments

    def form(self, name: str) -> pd.DataFrame:
        """The rows that hold instrument `name`: its rows as a repeating instrument, and the rows without
        a repeat instrument on which any of the form's fields (or its _complete) has a value (in a
        longitudinal project a form can repeat in one event and not in another). Columns:
        the record id, redcap_event_name (longitudinal), redcap_repeat_instance (a repeating
        instrument, or a form on a repeating event), then the form's export columns present in the
        file, typed (see the module docstring)."""
        if name not in self.dictionary.forms:
            raise KeyError(f"no form {name!r} in the data dictionary")
        rid = self.dictionary.record_id
        own = [c for c in self.dictionary.export_columns(name) if c in self.columns and c != rid]
        instrument = self.table.column(INSTRUMENT) if INSTRUMENT in self.columns else None
        has = pa.array(np.zeros(self.table.num_rows, dtype=bool))
        for c in own:
            has = pc.or_(has, pc.is_valid(self.table.column(c)))
        mask = has
        if instrument is not None:      # a form may repeat in one event and not in another
            mask = pc.or_(pc.equal(instrument, name).fill_null(False), pc.and_(has, pc.is_null(instrument)))
        rows = self.table.filter(mask)
        keys = [rid] + ([EVENT] if self.longitudinal else [])
        if INSTANCE in self.columns and (name in self.repeating or rows.column(INSTANCE).null_count < rows.num_rows):
            keys.append(INSTANCE)
        frame = rows.select(keys + own).to_pandas(types_mapper=_PANDAS_TYPES.get)
        return frame.reset_index(drop=True)

    def data_access_groups(self) -> dict[str, str]:
        """Record id -> its data access group (the export's redcap_data_access_group), for records
        that have one; empty when the export has no such column."""
        if DAG not in self.columns:
            return {}
        pairs = self.table.select([self.dictionary.record_id, DAG]).filter(pc.is_valid(self.table.column(DAG)))
        return dict(zip(pairs.column(0).to_pylist(), pairs.column(1).to_pylist()))

    def record_ids(self) -> list[str]:
        """Every record id in the export, in first-seen order."""
        ids = self.table.column(self.dictionary.record_id)
        return pc.unique(ids).to_pylist()


_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype(),
                 pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def _normal_label(text: str) -> str:
    """A label as compared with a header: HTML tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())


def _form_key(text: str) -> str:
    """REDCap derives a form's name from its label: lower case, runs of other characters as '_'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _candidates(dictionary: Dictionary) -> tuple[list[_Column], dict[str, list[int]]]:
    """Every column a raw export of the project can have, in export order, and label -> positions."""
    columns: list[_Column] = [_Column(dictionary.record_id, dictionary.fields[dictionary.record_id],
                                      form=next(iter(dictionary.forms)))]
    for special in (EVENT, INSTRUMENT, INSTANCE, DAG, SURVEY_ID):
        columns.append(_Column(special))
    labels: dict[str, list[int]] = {}

    def add(column: _Column, *texts: str) -> None:
        columns.append(column)
        for t in texts:
            labels.setdefault(_normal_label(t), []).append(len(columns) - 1)
    for form, names in dictionary.forms.items():
        add(_Column(f"{form}_timestamp", form=form), "Survey Timestamp")
        for name in names:
            f = dictionary.fields[name]
            if name == dictionary.record_id or f.type == "descriptive":
                continue
            if f.type == "checkbox":
                for code, label in f.choices.items():
                    add(_Column(checkbox_column(name, code), f, code, form),
                        f"{f.label} (choice={label})")
            else:
                add(_Column(name, f, form=form), f.label)
        add(_Column(f"{form}_complete", form=form, complete=True), "Complete?")
    labels.setdefault(_normal_label(dictionary.fields[dictionary.record_id].label), []).insert(0, 0)
    labels.setdefault("Record ID", []).insert(0, 0)
    for i, special in enumerate((EVENT, INSTRUMENT, INSTANCE, DAG, SURVEY_ID), start=1):
        labels.setdefault(SPECIAL_LABELS[special], []).insert(0, i)
    return columns, labels


def _map_header(header: list[str], dictionary: Dictionary, where: str) -> list[_Column]:
    """Each header cell as the export column it is. A raw name is taken as it is; a label is looked
    up among the project's labels, and a label several columns share (two fields both labelled
    "Date", every form's "Complete?") is the one that lies, in the dictionary's column order,
    between the columns mapped before and after it. Unknown or still ambiguous headers are errors."""
    columns, labels = _candidates(dictionary)
    by_name = {c.name: i for i, c in enumerate(columns)}
    for i, c in enumerate(list(columns)):
        if c.code is not None:      # a checkbox code also read as written (name___-99)
            by_name.setdefault(f"{c.field.name}___{c.code}", i)
    problems: list[Problem] = []
    options: list[list[int]] = []
    for h in header:
        found = [by_name[h]] if h in by_name else labels.get(_normal_label(h), [])
        options.append(list(dict.fromkeys(found)))
    pos: list[int | None] = [o[0] if len(o) == 1 else None for o in options]
    if any(len(o) > 1 for o in options):
        pos = _align(options) or pos
    for j, h in enumerate(header):
        if pos[j] is not None:
            continue
        if not options[j]:
            near = [c.name for c in columns if c.name.startswith(h.split("___")[0] + "___")] if "___" in h else []
            hint = f" (its checkbox columns are {', '.join(near)})" if near else ""
            problems.append(Problem(where, h, "is not in the data dictionary (a dictionary that does not "
                                    f"match the records?){hint}"))
        else:
            names = ", ".join(columns[p].name for p in options[j])
            problems.append(Problem(where, h, f"header is ambiguous: it could be any of {names}"))
    seen: dict[int, str] = {}
    for j, p in enumerate(pos):
        if p is None:
            continue
        if p in seen:
            problems.append(Problem(where, header[j], f"is the same column as {seen[p]!r} "
                                    f"({columns[p].name}), which comes earlier"))
        seen[p] = header[j]
    rid = dictionary.record_id
    if 0 not in pos:
        problems.insert(0, Problem(where, rid, f"no record id column: the first field of the data dictionary, "
                                   f"{rid!r}, is not in the header ({', '.join(header[:5])}, ...)"))
    if problems:
        raise ImportFailed(problems)
    return [columns[p] for p in pos]


def _align(options: list[list[int]]) -> list[int | None] | None:
    """Positions for header cells whose candidate columns are `options`, increasing left to right as
    REDCap writes them: a cell gets the one position that every increasing choice gives it (the
    earliest and the latest choice agree), else None. None overall if no increasing choice exists."""
    known = [j for j, o in enumerate(options) if o]
    earliest, latest = {}, {}
    before = -1
    for j in known:
        fits = [p for p in options[j] if p > before]
        if not fits:
            return None
        earliest[j] = before = min(fits)
    after = float("inf")
    for j in reversed(known):
        after = latest[j] = max(p for p in options[j] if p < after)
    return [earliest[j] if j in earliest and earliest[j] == latest[j] else None for j in range(len(options))]


DELIMITERS = ",;\t|^"     # REDCap lets a user pick any of these for a CSV export


def _read_table(source, where: str) -> tuple[list[str], pa.Table, np.ndarray]:
    """The file's header cells, its rows as text columns (blank = null) and each row's number in the
    file (1 = the first row under the header). The delimiter is the
    one of DELIMITERS the header line holds most of; rows whose cells are all blank (a spreadsheet's
    trailing ",,,," lines) are dropped; a row with more or fewer cells than the header is an error."""
    try:
        if isinstance(source, (str, Path)):
            with open(source, encoding="utf-8-sig", newline="") as fh:
                first = fh.readline()
            data = source
        else:
            raw = source if isinstance(source, (bytes, str)) else source.read()
            raw = raw.encode("utf-8") if isinstance(raw, str) else raw
            first = io.StringIO(raw.decode("utf-8-sig"), newline="").readline()
            data = io.BytesIO(raw)
    except (OSError, UnicodeDecodeError) as e:
        raise ImportFailed(Problem(where, "", f"cannot be read: {e}")) from None
    delimiter = max(DELIMITERS, key=first.count) if first.strip() else ","
    header = next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter), [])
    header = [h.strip().lstrip("\ufeff") for h in header]
    if not any(header):
        raise ImportFailed(Problem(where, "", "is empty (no header line)"))
    names = [f"c{i}" for i in range(len(header))]
    bad_rows: list[Problem] = []

    def bad_row(row) -> str:
        text = row.text if len(row.text) <= 40 else row.text[:40] + "..."
        bad_rows.append(Problem(f"the row {text!r}", "", f"has {row.actual_columns} cells where the header has "
                                f"{row.expected_columns} (a stray {delimiter!r} or a missing one?)"))
        return "skip"
    try:
        table = pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                              invalid_row_handler=bad_row),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 null_values=[""], strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as e:
        message = str(e)
        if "UTF8" in message or "utf8" in message.lower():
            message = "is not UTF-8 text (save it as 'CSV UTF-8')"
        raise ImportFailed(Problem(where, "", f"cannot be read as CSV: {message[:300]}")) from None
    if bad_rows:
        raise ImportFailed([Problem(f"{where}, {p.where}", p.field, p.message) for p in bad_rows])
    numbers = np.arange(1, table.num_rows + 1)
    blank = None
    for column in table.columns:
        blank = pc.is_null(column) if blank is None else pc.and_(blank, pc.is_null(column))
    if blank is not None and pc.any(blank).as_py():
        keep = pc.invert(blank)
        table, numbers = table.filter(keep), numbers[keep.to_numpy(zero_copy_only=False)]
    return header, table, numbers


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values stripped of surrounding spaces, each row's index into them; -1 = blank)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    enc = pc.dictionary_encode(arr)
    values = np.array([v.strip() for v in enc.dictionary.to_pylist()], dtype=object)
    index = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    blank = values == ""
    if blank.any():
        index = np.where(np.append(blank, True)[index], -1, index)
    return values, index


def _take(converted: pa.Array, index: np.ndarray) -> pa.Array:
    """Row values from per-distinct-value results (index -1 -> null)."""
    idx = pa.array(index, mask=index < 0) if len(index) else pa.array([], pa.int64())
    return converted.take(idx)


def _labels_or_codes(values: np.ndarray, choices: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Codes for distinct values and a mask of those that are neither. A column is read as codes
    when all its values are codes, as labels when all are labels, else by whichever fits more
    values (the rest are errors); codes win a tie, so a choice '1, 1' is always read as a code."""
    codes = np.array([v in choices for v in values], dtype=bool)
    by_label: dict[str, str] = {}
    for code, label in choices.items():
        by_label.setdefault(label, code)
    labelled = np.array([v in by_label for v in values], dtype=bool)
    if codes.all() or codes.sum() >= labelled.sum():
        return values.copy(), ~codes
    return np.array([by_label.get(v, v) for v in values], dtype=object), ~labelled


def _checkbox(values: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """A checkbox cell: 0/1, Unchecked/Checked, or (REDCap's checkbox-label export) the choice's label."""
    truth = {"1": True, "0": False, "Checked": True, "Unchecked": False, label: True}
    ok = np.array([v in truth for v in values], dtype=bool)
    return np.array([truth.get(v, False) for v in values], dtype=bool), ~ok


class _Reader:
    """One pass over an export's columns; collects problems with where each one is."""

    def __init__(self, header: list[str], raw: pa.Table, dictionary: Dictionary, where: str,
                 events: dict[str, str] | None, instruments: dict[str, str] | None):
        self.header, self.raw, self.dictionary, self.where = header, raw, dictionary, where
        self.events, self.instruments = events, instruments
        self.problems: list[Problem] = []
        self.n = raw.num_rows
        self.record = self.event = self.instrument = self.instance = None   # per-row key arrays
        self.numbers = np.arange(1, self.n + 1)     # each row's number in the file

    def at(self, row: int) -> str:
        """'record 12, event baseline_arm_1, instance 2' for a row (the parts the export has)."""
        parts = [f"record {self.record[row]}"] if self.record is not None and self.record[row] is not None \
            else [f"row {self.numbers[row]}"]
        if self.event is not None and self.event[row] is not None:
            parts.append(f"event {self.event[row]}")
        if self.instance is not None and self.instance[row] is not None:
            parts.append(f"instance {self.instance[row]}")
        return ", ".join(parts)

    def report(self, rows: np.ndarray, field: str, message: Callable[[int], str]) -> None:
        for row in rows:
            self.problems.append(Problem(self.at(int(row)), field, message(int(row))))


def read_records(source: str | bytes | IO, dictionary: Dictionary, progress: bool = False,
                 events: dict[str, str] | None = None, instruments: dict[str, str] | None = None) -> Records:
    """Read a flat records export CSV (a path or a file-like object), check every cell against
    `dictionary` and return the typed `Records`; raises ImportFailed with every problem found.

    `events` (unique event name -> label, e.g. from `read_events`) and `instruments` (form name ->
    label) are only needed to read a labels export whose event or repeat instrument cells are labels;
    without `instruments` a form's label is matched the way REDCap derives form names from labels."""
    where = f"records {_name(source)}"
    header, raw, numbers = _read_table(source, where)
    steps = _progress(progress, raw.num_columns + 3)
    columns = _map_header(header, dictionary, where)
    names = [c.name for c in columns]
    raw = raw.rename_columns(names)
    steps.update()
    r = _Reader(header, raw, dictionary, where, events, instruments)
    r.numbers = numbers
    typed: dict[str, pa.Array] = {}
    _keys(r, raw, names, typed)
    steps.update()
    for column in columns:
        if column.name in typed:
            continue
        typed[column.name] = _convert(r, column, raw.column(column.name))
        steps.update()
    repeating = _structure(r, columns, raw, typed)
    steps.update()
    steps.close()
    if r.problems:
        raise ImportFailed(r.problems)
    table = pa.table({n: typed[n] for n in names})
    return Records(dictionary=dictionary, longitudinal=EVENT in names, table=table,
                   columns={c.name: c for c in columns}, repeating=repeating)


def _progress(on: bool, total: int):
    from tqdm import tqdm
    return tqdm(total=total, desc="reading REDCap records", unit="column", disable=not on, leave=False)


def _keys(r: _Reader, raw: pa.Table, names: list[str], typed: dict[str, pa.Array]) -> None:
    """Record id, event, repeat instrument and instance: checked, converted to raw names, and kept
    per row (as Python lists, used only to name where a problem is)."""
    rid = r.dictionary.record_id
    record = raw.column(rid).combine_chunks()
    record = pc.utf8_trim_whitespace(record)
    record = pc.if_else(pc.equal(record, ""), pa.scalar(None, pa.string()), record)
    typed[rid] = record
    r.record = record.to_numpy(zero_copy_only=False)
    for row in np.flatnonzero(pc.is_null(record).to_numpy(zero_copy_only=False)):
        r.problems.append(Problem(f"row {r.numbers[row]}", rid, "the record id is blank"))
    if EVENT in names:
        values, index = _encode(raw.column(EVENT))
        unique = np.array([bool(re.match(r"^[a-z0-9_]+_arm_\d+$", v)) for v in values], dtype=bool)
        if r.events:        # labels become unique names, and a name must be one of the project's
            by_label = _event_labels(r.events)
            known = set(r.events)
            values = np.array([v if v in known else by_label.get(v, v) for v in values], dtype=object)
            unique = np.array([v in known for v in values], dtype=bool)
        event = _take(pa.array(values, pa.string()), index)
        typed[EVENT] = event
        r.event = event.to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(np.append(~unique, False)[index])
        hint = " of the project's events" if r.events else \
            " (an event label? pass the project's events to read a labels export)"
        r.report(bad, EVENT, lambda row: f"{r.event[row]!r} is not a unique event name{hint}")
        r.report(np.flatnonzero(index < 0), EVENT, lambda row: "the event name is blank")
    if INSTANCE in names:
        values, index = _encode(raw.column(INSTANCE))
        ok = np.array([bool(re.match(r"^\d+$", v)) and int(v) > 0 for v in values], dtype=bool)
        numbers = pa.array([int(v) if good else None for v, good in zip(values, ok)], pa.int64())
        instance = _take(numbers, index)
        typed[INSTANCE] = instance
        text = _take(pa.array(values, pa.string()), index)
        r.instance = text.to_numpy(zero_copy_only=False)
        r.report(np.flatnonzero(np.append(~ok, False)[index]), INSTANCE,
                 lambda row: f"{r.instance[row]!r} is not a repeat instance (a whole number from 1)")
    if INSTRUMENT in names:
        forms = r.dictionary.forms
        values, index = _encode(raw.column(INSTRUMENT))
        labels = {_normal_label(label): form for form, label in (r.instruments or {}).items()}
        keys = {_form_key(f): f for f in forms}
        mapped = np.array([v if v in forms else labels.get(_normal_label(v), keys.get(_form_key(v), v))
                           for v in values], dtype=object)
        ok = np.array([v in forms for v in mapped], dtype=bool)
        instrument = _take(pa.array(mapped, pa.string()), index)
        typed[INSTRUMENT] = instrument
        shown = instrument.to_numpy(zero_copy_only=False)
        r.report(np.flatnonzero(np.append(~ok, False)[index]), INSTRUMENT,
                 lambda row: f"repeat instrument {shown[row]!r} is not a form of the data dictionary")


def _event_labels(events: dict[str, str]) -> dict[str, str]:
    """Label -> unique event name; an event's bare name ("Enrollment" for "Enrollment (Arm 1: Drug A)")
    too when only one arm has it."""
    by_label: dict[str, str] = {}
    bare: dict[str, list[str]] = {}
    for name, label in events.items():
        by_label.setdefault(label, name)
        m = re.match(r"^(.*) \(Arm \d+:.*\)$", label)
        bare.setdefault(m.group(1) if m else label, []).append(name)
    for label, names in bare.items():
        if len(names) == 1:
            by_label.setdefault(label, names[0])
    return by_label


def _convert(r: _Reader, column: _Column, cells: pa.ChunkedArray) -> pa.Array:
    """One column typed; its bad cells reported."""
    if column.field is None and not column.complete or column.field is not None and column.code is None \
            and kind(column.field) == "text":
        return cells.combine_chunks()       # free text is kept as written (blank is already null)
    values, index = _encode(cells)
    name = column.name
    if column.complete:
        codes, bad = _labels_or_codes(values, COMPLETE_CHOICES)
        converted = pa.array([int(c) if not b else None for c, b in zip(codes, bad)], pa.int64())
        message = "is not a form status (0 Incomplete, 1 Unverified, 2 Complete)"
    elif column.code is not None:
        flags, bad = _checkbox(values, column.field.choices[column.code])
        converted = pa.array(flags, pa.bool_())
        message = "is not a checkbox value (0 or 1)"
    else:
        converted, bad, message = _typed(column.field, values)
    rows = np.flatnonzero(np.append(bad, False)[index])
    if len(rows):
        text = message if isinstance(message, np.ndarray) else np.full(len(values), message, dtype=object)
        r.report(rows, name, lambda row: f"{values[index[row]]!r} {text[index[row]]}")
    return _take(converted, index)


def _typed(f: Field, values: np.ndarray) -> tuple[pa.Array, np.ndarray, str | np.ndarray]:
    """Distinct values of a field converted to its type, a mask of the bad ones, and what is wrong
    (one message, or one per distinct value)."""
    k = kind(f)
    if k == "code":
        codes, bad = _labels_or_codes(values, f.choices)
        shown = ", ".join(f.choices) if len(f.choices) <= 12 else ", ".join(list(f.choices)[:12]) + ", ..."
        return pa.array(codes, pa.string()), bad, f"is not one of the field's choices ({shown})"
    if k == "bool":
        codes, bad = _labels_or_codes(values, f.choices)
        return (pa.array(codes == "1", pa.bool_()), bad,
                f"is not {' or '.join(f'{c} ({l})' for c, l in f.choices.items())}")
    if k in ("date", "datetime"):
        formats = DATE_FORMATS[f.validation] if k == "date" else DATETIME_FORMATS
        parsed = _parse_dates(values, formats)
        bad = np.asarray(parsed.isna())
        if k == "date":
            bad |= np.asarray((parsed.hour != 0) | (parsed.minute != 0)) & ~bad
        converted = pa.array(parsed.to_numpy(), pa.timestamp("ns"), from_pandas=True)
        what = "a date YYYY-MM-DD" if k == "date" else "a date and time YYYY-MM-DD HH:MM"
        return _range(f, converted, bad, f"is not {what}", parsed)
    if k == "integer":
        ok = np.array([bool(INTEGER.match(v)) and len(v.lstrip("+-")) <= 18 for v in values], dtype=bool)
        numbers = pd.array([int(v) if good else None for v, good in zip(values, ok)], dtype="Int64")
        converted = pa.array(numbers, pa.int64(), from_pandas=True)
        return _range(f, converted, ~ok, "is not a whole number", numbers)
    if k == "number":
        # A decimal comma: number_comma_decimal, or an export made with REDCap's decimal character ','
        # (REDCap never writes a thousands separator).
        text = np.array([v.replace(",", ".") for v in values], dtype=object)
        ok = np.array([bool(NUMBER.match(v)) for v in text], dtype=bool)
        if f.type == "calc":        # REDCap writes NaN for a calculation it could not do: not computed
            not_computed = text == "NaN"
            ok |= not_computed
            text = np.where(not_computed, None, text)
        numbers = pd.to_numeric(pd.Series(np.where(ok, text, None)), errors="coerce").astype("Float64")
        converted = pa.array(numbers, pa.float64(), from_pandas=True)
        return _range(f, converted, ~ok, "is not a number", numbers)
    if k == "time":
        ok = np.array([bool(TIME.match(v)) for v in values], dtype=bool)
        return pa.array(values, pa.string()), ~ok, "is not a time HH:MM"
    raise AssertionError(f"field {f.name} of kind {k} has no conversion")


def _range(f: Field, converted: pa.Array, bad: np.ndarray, message: str, parsed) -> tuple[pa.Array, np.ndarray, str | np.ndarray]:
    """Add values outside the dictionary's min/max to the bad ones, with a message saying which bound."""
    lo = _bound(f, f.min) if f.min else None
    hi = _bound(f, f.max) if f.max else None
    if lo is None and hi is None:
        return converted, bad, message
    series = pd.Series(parsed)
    below = (series < lo).fillna(False).to_numpy(dtype=bool) & ~bad if lo is not None else np.zeros(len(bad), bool)
    above = (series > hi).fillna(False).to_numpy(dtype=bool) & ~bad if hi is not None else np.zeros(len(bad), bool)
    if not (below.any() or above.any()):
        return converted, bad, message
    detail = np.where(below, f"is below the minimum {f.min}", np.where(above, f"is above the maximum {f.max}", message))
    return converted, bad | below | above, detail


def _structure(r: _Reader, columns: list[_Column], raw: pa.Table, typed: dict[str, pa.Array]) -> set[str]:
    """Rows against REDCap's shape: a repeat instrument with its instance (and the reverse, except on a
    repeating event of a longitudinal project), no other form's values on a repeating instrument's
    row, and each (record, event, instrument, instance) once. Returns the repeating instruments."""
    names = {c.name for c in columns}
    longitudinal = EVENT in names
    if INSTRUMENT in names and INSTANCE not in names:
        r.problems.append(Problem(r.where, INSTRUMENT, f"the export has {INSTRUMENT} but no {INSTANCE} column"))
        return set()
    if INSTANCE in names and INSTRUMENT not in names and not longitudinal:
        r.problems.append(Problem(r.where, INSTANCE, f"the export has {INSTANCE} but no {INSTRUMENT} column"))
        return set()
    if INSTRUMENT not in names and INSTANCE not in names:
        return _duplicates(r, typed) or set()
    instance = typed[INSTANCE]
    has_instance = pc.is_valid(instance).to_numpy(zero_copy_only=False)
    if INSTRUMENT in names:
        instrument = typed[INSTRUMENT]
        has_instrument = pc.is_valid(instrument).to_numpy(zero_copy_only=False)
        forms_of_rows = instrument.to_numpy(zero_copy_only=False)
    else:
        instrument, has_instrument = None, np.zeros(r.n, dtype=bool)
    # Instances that failed their own check are already reported; do not report them again here.
    blank_instance = pc.is_null(raw.column(INSTANCE)).to_numpy(zero_copy_only=False)
    r.report(np.flatnonzero(has_instrument & blank_instance), INSTANCE,
             lambda row: f"repeat instrument {forms_of_rows[row]} has no repeat instance")
    if not longitudinal:
        r.report(np.flatnonzero(has_instance & ~has_instrument), INSTRUMENT,
                 lambda row: "a repeat instance without its repeat instrument")
    repeating: set[str] = set()
    if instrument is not None:
        valid = [f for f in pc.unique(instrument).to_pylist() if f in r.dictionary.forms]
        repeating = set(valid)
        keys = {r.dictionary.record_id, EVENT, INSTRUMENT, INSTANCE, DAG, SURVEY_ID}
        # Rows whose instrument is not a form are reported once, not again for each of their values.
        known = pc.is_in(instrument, value_set=pa.array(valid, pa.string())).fill_null(False)
        for column in columns:
            if column.name in keys or column.form is None:
                continue
            stray = pc.and_(pc.and_(pc.is_valid(typed[column.name]), known),
                            pc.not_equal(instrument, column.form).fill_null(False))
            rows = np.flatnonzero(stray.to_numpy(zero_copy_only=False))
            r.report(rows, column.name, lambda row, form=column.form: (
                f"a value of form {form} on a row of repeating instrument {forms_of_rows[row]}"))
        _stray_repeating(r, columns, typed, repeating)
    _duplicates(r, typed)
    return repeating


def _stray_repeating(r: _Reader, columns: list[_Column], typed: dict[str, pa.Array], repeating: set[str]) -> None:
    """A repeating instrument's value on a row without a repeat instrument (in an event where that
    form repeats) would be lost: report it."""
    instrument = typed[INSTRUMENT]
    plain = pc.is_null(instrument)
    event = typed.get(EVENT)
    for form in repeating:
        where_plain = plain
        if event is not None:
            events = pc.unique(event.filter(pc.equal(instrument, form).fill_null(False)))
            where_plain = pc.and_(plain, pc.is_in(event, value_set=events).fill_null(False))
        for column in columns:
            if column.form != form or column.name == r.dictionary.record_id:
                continue
            rows = np.flatnonzero(pc.and_(where_plain, pc.is_valid(typed[column.name]))
                                  .to_numpy(zero_copy_only=False))
            r.report(rows, column.name, lambda row, form=form: (
                f"a value of repeating instrument {form} on a row without {INSTRUMENT}"))


def _duplicates(r: _Reader, typed: dict[str, pa.Array]) -> None:
    """Report every (record, event, repeat instrument, instance) that is on more than one row."""
    parts = {}
    for name in (r.dictionary.record_id, EVENT, INSTRUMENT, INSTANCE):
        if name in typed:
            parts[name] = pc.dictionary_encode(typed[name]).indices.fill_null(-1).to_numpy(zero_copy_only=False)
    keys = pd.DataFrame(parts)
    twice = keys.duplicated(keep=False).to_numpy()
    if not twice.any():
        return
    groups = keys[twice].groupby(list(parts), sort=False).groups
    instrument = typed[INSTRUMENT].to_numpy(zero_copy_only=False) if INSTRUMENT in typed else None
    for rows in groups.values():
        rows = list(rows)
        form = f" (repeat instrument {instrument[rows[0]]})" if instrument is not None and instrument[rows[0]] else ""
        r.problems.append(Problem(r.at(rows[0]), "", f"{len(rows)} rows have this record{form}: rows "
                                  + ", ".join(str(r.numbers[x]) for x in rows[:10])))


def read_events(source: str | bytes | IO, arms: str | bytes | IO | None = None) -> dict[str, str]:
    """A longitudinal project's events CSV (REDCap's event export: event_name, arm_num,
    unique_event_name, ...) as unique event name -> the label a labels export shows: the event's
    name, followed by " (Arm 1: Drug A)" when the project has several arms (names from `arms`, the
    arms export arm_num, name)."""
    events = _dict_rows(source, "events", ("event_name", "arm_num", "unique_event_name"))
    names = {r["arm_num"]: r["name"] for r in _dict_rows(arms, "arms", ("arm_num", "name"))} if arms else {}
    several = len({r["arm_num"] for r in events}) > 1
    return {r["unique_event_name"]: (f"{r['event_name']} (Arm {r['arm_num']}: {names.get(r['arm_num'], '')})"
                                     if several else r["event_name"]) for r in events}


def _dict_rows(source, what: str, needed: tuple[str, ...]) -> list[dict[str, str]]:
    where = f"{what} {_name(source)}"
    try:
        with _open_text(source) as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ImportFailed(Problem(where, "", f"cannot be read: {e}")) from None
    if not rows or any(n not in rows[0] for n in needed):
        raise ImportFailed(Problem(where, "", f"is not a REDCap {what} export (columns {', '.join(needed)})"))
    return rows
