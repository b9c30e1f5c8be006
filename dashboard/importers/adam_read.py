"""Reading CDISC ADaM datasets (parquet, SAS XPORT, CSV) into pandas, and converting their
columns with every bad value reported as a Problem that names the dataset, row, USUBJID and column.

A dataset is a `Dataset`: the frame with upper-case column names and `_row` (the record's
1-based number in the file). Text is stripped and "" is missing (SAS XPORT stores missing text as
""); dates come out as datetime64 at midnight.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from dashboard.importers import ImportFailed, Problem

ROW = "_row"
MAX_PER_COLUMN = 20     # problems collected per column before the rest are only counted


@dataclass
class Dataset:
    name: str           # ADSL, ADTTE, ...
    path: Path
    frame: pd.DataFrame
    cleaned: dict = field(default_factory=dict)     # column -> raw() of it, computed once
    key: str = "USUBJID"                             # the column that names a row in messages

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def where(self, rows: pd.DataFrame | pd.Series) -> list[str]:
        """'ADTTE row 12 (USUBJID 01-701-1015)' for each row of a subset of the frame."""
        frame = self.frame.loc[rows.index]
        ids = frame[self.key].astype("string").fillna("?") if self.key in frame else pd.Series("?", frame.index)
        return [f"{self.name} row {r} ({self.key} {u})" for r, u in zip(frame[ROW], ids)]

    def problems(self, mask: pd.Series, column: str, message) -> list[Problem]:
        """One Problem per row where `mask` holds; `message(value)` or a fixed text."""
        bad = self.frame.loc[mask.fillna(False).astype(bool)]
        out = []
        for (where, value) in zip(self.where(bad)[:MAX_PER_COLUMN], bad[column].tolist()[:MAX_PER_COLUMN]
                                  if column in bad else [None] * min(len(bad), MAX_PER_COLUMN)):
            out.append(Problem(where, column, message(value) if callable(message) else message))
        if len(bad) > MAX_PER_COLUMN:
            out.append(Problem(f"{self.name}", column, f"... and {len(bad) - MAX_PER_COLUMN} more row(s) like these"))
        return out


def read_dataset(path: str | Path, name: str, columns: tuple[str, ...] | None = None) -> Dataset:
    """The dataset in `path`, read by its extension (only `columns`, compared in upper case, when
    given: an ADRS has some 90 columns of which the importer reads 9); an unreadable file is an
    ImportFailed naming it."""
    path = Path(path)
    where = f"{name} file {path}"
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".xpt", ".csv"):
        raise ImportFailed(Problem(where, "", f"unknown file type {suffix or '(none)'!r}: "
                                              "give a .parquet, .xpt (SAS XPORT) or .csv file"))
    if not path.is_file():
        raise ImportFailed(Problem(where, "", "no such file"))
    try:
        frame = _read(path, suffix, {c.upper() for c in columns} if columns else None)
    except Exception as e:     # every reader's own error type: the file is not what its name says
        raise ImportFailed(Problem(where, "", f"cannot be read as {suffix[1:]}: "
                                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    dupes = frame.columns[frame.columns.duplicated()].tolist()
    if dupes:
        raise ImportFailed(Problem(where, dupes[0], "the column appears twice (names compared in upper case)"))
    frame[ROW] = np.arange(1, len(frame) + 1)
    return Dataset(name, path, frame.reset_index(drop=True))


def _read(path: Path, suffix: str, wanted: set[str] | None) -> pd.DataFrame:
    def keep(names):
        return [n for n in names if wanted is None or str(n).strip().upper() in wanted]
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        names = pq.read_schema(path).names
        arrow_text = pd.StringDtype("pyarrow")        # strings stay in Arrow memory, not Python objects
        return pq.read_table(path, columns=keep(names)).to_pandas(
            date_as_object=False, types_mapper={pa.string(): arrow_text, pa.large_string(): arrow_text}.get)
    if suffix == ".xpt":
        import pyreadstat
        _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
        frame, _ = pyreadstat.read_xport(str(path), usecols=keep(meta.column_names))
        return frame
    usecols = (lambda c: str(c).strip().upper() in wanted) if wanted is not None else None
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", usecols=usecols)
    except UnicodeDecodeError:          # a CSV saved by Excel on Windows: cp1252, not UTF-8
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="cp1252", usecols=usecols)


def raw(ds: Dataset, name: str) -> pd.Series:
    """The raw column with text stripped and "" as missing (SAS XPORT stores missing text as "");
    other values (numbers, dates) as read."""
    if name in ds.cleaned:
        return ds.cleaned[name]
    s = ds.frame[name]
    if isinstance(s.dtype, pd.StringDtype) or (
            s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")):
        s = s.astype(pd.StringDtype("pyarrow")).str.strip()
        s = s.mask(s == "")
    ds.cleaned[name] = s
    return s


def isin(s: pd.Series, values) -> pd.Series:
    """s.isin(values) for text, through Arrow's is_in (pandas' Arrow-string isin walks the values in
    Python: 20 s of a 100,000-subject import); missing is never in."""
    import pyarrow.compute as pc
    column = pa.array(s.astype(pd.StringDtype("pyarrow")), type=pa.string())
    value_set = pa.array(pd.Series(list(values) if not isinstance(values, (pd.Series, pd.Index)) else values,
                                   dtype=pd.StringDtype("pyarrow")), type=pa.string())
    hit = pc.fill_null(pc.is_in(column, value_set=value_set, skip_nulls=True), False)
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=s.index)


def require(ds: Dataset, *columns: str, why: str = "") -> None:
    missing = [c for c in columns if not ds.has(c)]
    if missing:
        raise ImportFailed([Problem(f"{ds.name} file {ds.path.name}", c,
                                    f"column missing{': ' + why if why else ''}") for c in missing])


def text(ds: Dataset, column: str) -> pd.Series:
    """The column as stripped text (pandas string), missing where absent or ""."""
    if not ds.has(column):
        return pd.Series(pd.NA, index=ds.frame.index, dtype="string")
    s = raw(ds, column)
    if isinstance(s.dtype, pd.StringDtype):
        return s
    out = s.astype("string").str.strip()
    if pd.api.types.is_float_dtype(s):          # 1.0 -> "1": a code stored as a SAS number
        whole = s.notna() & (s == np.floor(s))
        out = out.mask(whole, s[whole].astype("Int64").astype("string"))
    return out.mask(out == "")


DATE_FORMATS = ("ISO8601", "%d%b%Y", "%d%b%Y:%H:%M:%S")     # ISO 8601, SAS DATE9 and DATETIME as text


def dates(ds: Dataset, column: str, problems: list[Problem]) -> pd.Series:
    """The column as datetime64 at midnight (NaT where missing); a value that is not a date is a Problem."""
    if not ds.has(column):
        return pd.Series(pd.NaT, index=ds.frame.index, dtype="datetime64[ns]")
    s = raw(ds, column)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None).dt.normalize() if getattr(s.dt, "tz", None) else s.dt.normalize()
    if pd.api.types.is_numeric_dtype(s) and s.notna().any():
        problems.append(Problem(f"{ds.name} file {ds.path.name}", column,
                                "holds numbers, not dates (a SAS date needs its DATE format in the file)"))
        return pd.Series(pd.NaT, index=ds.frame.index, dtype="datetime64[ns]")
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("date", "datetime", "empty"):
        return pd.to_datetime(s).dt.normalize()
    txt = s.astype("string").str.strip()
    txt = txt.mask(txt == "")
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    for fmt in DATE_FORMATS:
        todo = txt.notna() & out.isna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(txt[todo], format=fmt, errors="coerce")
    bad = txt.notna() & out.isna()
    if bad.any():
        problems.extend(ds.problems(bad, column, lambda v: f"{v!r} is not a date (YYYY-MM-DD)"))
    return out.dt.normalize()


def integers(ds: Dataset, column: str, problems: list[Problem]) -> pd.Series:
    """The column as nullable integers; text or a fraction is a Problem."""
    if not ds.has(column):
        return pd.Series(pd.NA, index=ds.frame.index, dtype="Int64")
    s = raw(ds, column)
    num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s) else s.astype("float64")
    present = s.notna()
    bad = present & (num.isna() | (num != np.floor(num)))
    if bad.any():
        problems.extend(ds.problems(bad, column, lambda v: f"{v!r} is not an integer"))
    return num.where(~bad).round().astype("Int64")


def numbers(ds: Dataset, column: str, problems: list[Problem]) -> pd.Series:
    """The column as floats (NaN where missing); text that is not a number is a Problem."""
    if not ds.has(column):
        return pd.Series(np.nan, index=ds.frame.index, dtype="float64")
    s = raw(ds, column)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & num.isna()
    if bad.any():
        problems.extend(ds.problems(bad, column, lambda v: f"{v!r} is not a number"))
    return num.astype("float64")


def first_present(ds: Dataset, *columns: str) -> str | None:
    """The first of `columns` the dataset has."""
    return next((c for c in columns if ds.has(c)), None)
