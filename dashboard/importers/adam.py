"""CDISC ADaM importer: a sponsor's ADSL (+ ADTTE, ADRS, ADTR, ADAE) as a registry snapshot.

`python -m dashboard import adam --adsl F [--adtte F] [--adrs F] [--adtr F] [--adae F] [--map F]
[--sites F] --cutoff D [--out ROOT]`. Every rule (what comes from which variable, what is left out
and why) is in docs/adam.md; `build` makes the eight tables and an `ImportReport` that says what
the ADaM could not supply, and `run` publishes them through the validator and prints the report.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from dashboard.contract import CTCAE_SOC, TABLES, child_pugh_class
from dashboard.importers import ImportFailed, Problem, parse_cutoff, publish_checked
from dashboard.importers.adam_read import (ROW, Dataset, dates, first_present, integers, isin, numbers, raw,
                                           read_dataset, require, text)

DATASETS = ("adsl", "adtte", "adrs", "adtr", "adae")

# Baseline columns ADaM does not define: from ADSL columns named in --map, else null.
BASELINE_COLUMNS = ("etiology", "ecog_ps", "child_pugh_score", "child_pugh_class", "albi_grade", "afp_ng_ml",
                    "tumor_count", "largest_tumor_cm", "has_macrovascular_invasion", "has_extrahepatic_spread",
                    "bclc_stage", "is_within_milan", "is_within_up_to_seven", "is_resectable")
MAPPABLE = BASELINE_COLUMNS + ("site_name",)
# ADSL names used without --map because they mean one thing: ECOG performance status at baseline.
STANDARD_NAMES = {"ecog_ps": ("ECOGBL", "ECOG")}

UNIT_DAYS = {"DAYS": 1.0, "DAY": 1.0, "D": 1.0, "WEEKS": 7.0, "WEEK": 7.0, "W": 7.0,
             "MONTHS": 30.4375, "MONTH": 30.4375, "M": 30.4375, "YEARS": 365.25, "YEAR": 365.25, "Y": 365.25}

RESPONSE_PARAMS = ("OVR", "OVRLRESP", "OVRINV", "OVRRESP")     # per-visit overall response
NEW_LESION_PARAMS = ("NEWLPROG", "NEWLES", "NEWLIND")          # per-visit new lesion Y/N
SUM_PARAMS = ("SUMDIAM", "SDIAM", "SLDINV")                   # per-visit sum of target diameters
RESPONSE_CODES = {"CR": "CR", "PR": "PR", "SD": "SD", "PD": "PD", "NE": "NE",
                  "NON-CR/NON-PD": "SD", "NON CR/NON PD": "SD", "NON-CR/NON-PD (NN)": "SD",
                  "NOT EVALUABLE": "NE", "MISSING": "NE", "NA": "NE", "ND": "NE", "NOT DONE": "NE",
                  "UNK": "NE", "UNKNOWN": "NE"}
BASELINE_VISITS = ("BASELINE", "SCREENING")       # in this order when no record has ABLFL = 'Y'
MM_PER_UNIT = {"MM": 1.0, "CM": 10.0}

RELATED = ("Y", "YES", "RELATED", "PROBABLE", "PROBABLY RELATED", "POSSIBLE", "POSSIBLY RELATED",
           "DEFINITE", "DEFINITELY RELATED", "CERTAIN")
NOT_RELATED = ("N", "NO", "NOT RELATED", "UNRELATED", "NONE", "UNLIKELY", "UNLIKELY RELATED", "REMOTE",
               "NOT LIKELY")
YES_NO = {"Y": True, "YES": True, "TRUE": True, "1": True, "N": False, "NO": False, "FALSE": False, "0": False}

# the columns read from each dataset (ADSL: all, since --map may name any)
COLUMNS = {
    "adtte": ("USUBJID", "PARAMCD", "CNSR", "STARTDT", "ADT", "ADTM", "AVAL", "AVALU"),
    "adrs": ("USUBJID", "PARAMCD", "AVALC", "AVISIT", "ABLFL", "ADT", "ADTM", "DTYPE", "ANL01FL"),
    "adtr": ("USUBJID", "PARAMCD", "AVAL", "BASE", "AVALU", "AVISIT", "ABLFL", "ADT", "ADTM", "DTYPE", "ANL01FL"),
    "adae": ("USUBJID", "ATOXGR", "AETOXGR", "AEDECOD", "AETERM", "AESOC", "AEBODSYS", "ASTDT", "ASTDTM", "AESTDTC",
             "AENDT", "AENDTM", "AEENDTC", "AREL", "AEREL", "AESEQ", "AESER"),
}


@dataclass
class ImportReport:
    """What the summary prints: facts about the conversion, contract columns the ADaM could not
    supply, and every row left out with its reason and count."""
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    comparisons: list[str] = field(default_factory=list)

    def leave_out(self, n: int, what: str) -> None:
        if n:
            self.left_out.append(f"{what}: {n}")

    def lines(self) -> list[str]:
        out = list(self.notes)
        out.append("missing (the ADaM could not supply these contract columns):" if self.missing
                   else "missing: none")
        out += [f"  {m}" for m in self.missing]
        out.append("left out:" if self.left_out else "left out: nothing")
        out += [f"  {x}" for x in self.left_out]
        out += self.comparisons
        return out


def check(problems: list[Problem]) -> None:
    if problems:
        raise ImportFailed(problems)


# --- the map file -----------------------------------------------------------------------------
def read_map(path: str | None, adsl: Dataset) -> dict[str, dict]:
    """--map FILE: {"<contract column>": "ADSLCOL" | {"column": "ADSLCOL", "values": {"src": "code"}}};
    returns contract column -> {"column", "values"}, with the standard names added where unmapped."""
    mapping: dict[str, dict] = {}
    if path:
        where = f"--map {path}"
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ImportFailed(Problem(where, "", f"cannot be read: {e.strerror or e}"))
        except ValueError as e:
            raise ImportFailed(Problem(where, "", f"is not JSON: {e}"))
        if not isinstance(doc, dict):
            raise ImportFailed(Problem(where, "", "must be a JSON object: contract column -> ADSL column"))
        problems = []
        for key, spec in doc.items():
            if key.startswith("_"):          # "_comment" and the like
                continue
            if key not in MAPPABLE:
                problems.append(Problem(where, key, f"not a column the map can fill; one of: {', '.join(MAPPABLE)}"))
                continue
            if isinstance(spec, str):
                spec = {"column": spec}
            if not isinstance(spec, dict) or not isinstance(spec.get("column"), str) or \
                    not isinstance(spec.get("values", {}), dict) or set(spec) - {"column", "values"}:
                problems.append(Problem(where, key, 'must be "ADSLCOLUMN" or {"column": "ADSLCOLUMN", '
                                                    '"values": {"source value": "contract value"}}'))
                continue
            name = spec["column"].strip().upper()
            if not adsl.has(name):
                problems.append(Problem(where, key, f"names ADSL column {name!r}, which {adsl.path.name} does not have"))
                continue
            mapping[key] = {"column": name, "values": {str(k).strip().upper(): v for k, v in spec.get("values", {}).items()},
                            "how": "--map"}
        check(problems)
    for key, names in STANDARD_NAMES.items():
        if key not in mapping:
            name = first_present(adsl, *names)
            if name:
                mapping[key] = {"column": name, "values": {}, "how": "standard name"}
    return mapping


def mapped_column(adsl: Dataset, key: str, spec: dict, problems: list[Problem]) -> pd.Series:
    """The ADSL column named for contract column `key`, through its value map, as the contract's type;
    a value the contract does not accept is a Problem naming the row and the ADSL column."""
    col = TABLES["patients"].column(key) if key != "site_name" else TABLES["sites"].column("site_name")
    source = text(adsl, spec["column"])
    upper = source.str.upper()
    values = spec["values"]
    if values:
        hit = isin(upper, list(values))
        mapped = upper.map(lambda v: values.get(v) if isinstance(v, str) else None).astype("object")
        source = source.astype("object").where(~hit, mapped)
        source = source.where(pd.notna(source), None).astype("string")
    label = f"{spec['column']} (for {key})"
    if col.type == pa.string():
        out = source
        if col.accepted:
            canon = {a.upper(): a for a in col.accepted}
            out = source.str.upper().map(canon.get).astype("string").where(source.notna())
            bad = source.notna() & out.isna()
            if bad.any():
                problems.extend(adsl.problems(bad, spec["column"], lambda v: f"{label}: {v!r} is not one of "
                                              f"{', '.join(col.accepted)} (give a value map in --map)"))
        return out
    if col.type == pa.bool_():
        out = source.str.upper().map(YES_NO).astype("boolean")
        bad = source.notna() & out.isna()
        if bad.any():
            problems.extend(adsl.problems(bad, spec["column"], lambda v: f"{label}: {v!r} is not Y/N "
                                                                         "(give a value map in --map)"))
        return out
    num = pd.to_numeric(source, errors="coerce")
    bad = source.notna() & num.isna()
    if col.type == pa.int32():
        bad |= num.notna() & (num != np.floor(num))
    lo, hi, gt = col.min, col.max, col.gt
    bad |= num.notna() & (((num < lo) if lo is not None else False) | ((num > hi) if hi is not None else False)
                          | ((num <= gt) if gt is not None else False))
    if bad.any():
        rng = f"{lo if lo is not None else ''}..{hi if hi is not None else ''}" if gt is None else f"> {gt}"
        problems.extend(adsl.problems(bad, spec["column"], lambda v: f"{label}: {v!r} is not a "
                                      f"{'whole ' if col.type == pa.int32() else ''}number in {rng}"))
    num = num.where(~bad)
    return num.round().astype("Int64") if col.type == pa.int32() else num.astype("float64")


def note_unused_params(ds: Dataset, used: set[str], report: ImportReport) -> None:
    """Say which PARAMCDs of a BDS dataset were not read, with their record counts."""
    counts = text(ds, "PARAMCD").str.upper().value_counts()
    unused = counts[~counts.index.isin(list(used))]
    if len(unused):
        report.notes.append(f"{ds.name} parameters not used: " + ", ".join(f"{k} ({v})" for k, v in unused.items()))


# --- patients and OS --------------------------------------------------------------------------
def check_subjects(ds: Dataset, known: pd.Index, problems: list[Problem]) -> pd.Series:
    """USUBJID of every row; a row without one, or one not in ADSL, is a Problem."""
    require(ds, "USUBJID", why="every ADaM dataset keys its rows on USUBJID")
    uid = text(ds, "USUBJID")
    if uid.isna().any():
        problems.extend(ds.problems(uid.isna(), "USUBJID", "empty USUBJID"))
    stray = uid.notna() & ~isin(uid, known)
    if stray.any():
        problems.extend(ds.problems(stray, "USUBJID", lambda v: f"{v!r} is not a USUBJID of ADSL"))
    return uid


def time_to_event_rows(tte: Dataset, paramcd: str, problems: list[Problem]) -> pd.DataFrame:
    """The ADTTE rows of one PARAMCD: USUBJID, start (STARTDT), date (ADT, ADTM's date, or STARTDT +
    AVAL converted from AVALU), is_event (CNSR 0), row. One row per subject, else a Problem."""
    f = tte.frame
    sel = text(tte, "PARAMCD").str.upper() == paramcd
    sel = sel.fillna(False)
    part = Dataset(tte.name, tte.path, f.loc[sel])
    if not len(part.frame):
        return empty_tte()
    uid = text(part, "USUBJID")
    dup = uid.duplicated(keep=False) & uid.notna()
    if dup.any():
        problems.extend(part.problems(dup, "USUBJID", f"more than one {paramcd} record for the subject"))
    cnsr = integers(part, "CNSR", problems)
    miss = cnsr.isna() & raw(part, "CNSR").isna()
    if miss.any():
        problems.extend(part.problems(miss, "CNSR", "CNSR is empty (0 = event, 1 or more = censored)"))
    neg = cnsr.notna() & (cnsr < 0)
    if neg.any():
        problems.extend(part.problems(neg, "CNSR", lambda v: f"{v!r}: CNSR is 0 (event) or a positive censoring code"))
    start = dates(part, "STARTDT", problems)
    adt = dates(part, "ADT", problems)
    if part.has("ADTM"):
        adt = adt.fillna(dates(part, "ADTM", problems))
    aval = numbers(part, "AVAL", problems)
    unit = text(part, "AVALU").str.upper()
    unknown = unit.notna() & ~isin(unit, list(UNIT_DAYS))
    if unknown.any():
        problems.extend(part.problems(unknown, "AVALU", lambda v: f"{v!r} is not a time unit "
                                                                  "(DAYS, WEEKS, MONTHS, YEARS)"))
    factor = unit.map(UNIT_DAYS).astype("float64").fillna(1.0)
    return pd.DataFrame({"USUBJID": uid, "start": start, "date": adt, "is_event": cnsr == 0, ROW: part.frame[ROW],
                         "aval_days": aval * factor, "unit_given": unit.notna()})


def empty_tte() -> pd.DataFrame:
    return pd.DataFrame({"USUBJID": pd.Series(dtype="string"), "start": pd.Series(dtype="datetime64[ns]"),
                         "date": pd.Series(dtype="datetime64[ns]"), "is_event": pd.Series(dtype="bool"),
                         ROW: pd.Series(dtype="int64"), "aval_days": pd.Series(dtype="float64"),
                         "unit_given": pd.Series(dtype="bool")})


def fill_dates_from_aval(rows: pd.DataFrame, origin: pd.Series, offset: int) -> pd.Series:
    """Event/censor date where ADT is missing: origin + AVAL in days (rounded) - offset."""
    need = rows["date"].isna() & rows["aval_days"].notna() & origin.notna()
    out = rows["date"].copy()
    out[need] = origin[need] + pd.to_timedelta((rows.loc[need, "aval_days"].round() - offset), unit="D")
    return out


def convention_offset(rows: pd.DataFrame, origin: pd.Series, report: ImportReport, label: str) -> int:
    """1 when AVAL = ADT - origin + 1 on most records with both (ADaM IG / pharmaverse), else 0;
    origin is STARTDT, else time zero."""
    both = rows["date"].notna() & origin.notna() & rows["aval_days"].notna()
    diff = (rows.loc[both, "aval_days"] - (rows.loc[both, "date"] - origin[both]).dt.days).round(6)
    plus, zero = int((diff == 1).sum()), int((diff == 0).sum())
    other = len(diff) - plus - zero
    checked = len(diff)
    if not checked:
        report.notes.append(f"{label} AVAL convention: not checkable (no record with both a date and AVAL); "
                            "AVAL taken as ADT - STARTDT")
        return 0
    offset = 1 if plus > zero else 0
    report.notes.append(
        f"{label} AVAL convention: AVAL = ADT - STARTDT + 1 on {plus}, = ADT - STARTDT on {zero}, neither on {other} "
        f"of {checked} records (STARTDT, else time zero); the dashboard counts calendar days ADT - STARTDT (analysis "
        f"plan), so its times are AVAL - 1 where a date comes from AVAL" if offset else
        f"{label} AVAL convention: AVAL = ADT - STARTDT on {zero}, + 1 on {plus}, neither on {other} of {checked} "
        "records (STARTDT, else time zero); the dashboard counts calendar days ADT - STARTDT"
        + (" (AVAL is not used where ADT/ADTM is present)" if other else ""))
    return offset


def build_patients(adsl: Dataset, tte: Dataset | None, mapping: dict, cutoff: pd.Timestamp,
                   report: ImportReport, problems: list[Problem]) -> tuple[pd.DataFrame, dict]:
    """One row per ADSL subject with a time zero on or before the cut-off, plus the ADTTE PFS/TTP
    rows (for the comparison after publishing)."""
    require(adsl, "USUBJID", why="the subject identifier")
    require(adsl, "SITEID", "AGE", "SEX")
    uid = text(adsl, "USUBJID")
    if uid.isna().any():
        problems.extend(adsl.problems(uid.isna(), "USUBJID", "empty USUBJID"))
    dup = uid.duplicated(keep=False) & uid.notna()
    if dup.any():
        problems.append(Problem(f"ADSL file {adsl.path.name}", "USUBJID",
                                f"{int(dup.sum())} of {len(dup)} rows share their USUBJID with another row; ADSL has "
                                "one row per subject (is this the ADSL file?)"))
        problems.extend(adsl.problems(dup, "USUBJID", lambda v: f"{v!r} appears on more than one ADSL row")[:5])
    site = text(adsl, "SITEID")
    if site.isna().any():
        problems.extend(adsl.problems(site.isna(), "SITEID", "empty SITEID"))
    age = integers(adsl, "AGE", problems)
    if adsl.has("AGEU"):
        ageu = text(adsl, "AGEU").str.upper()
        bad = ageu.notna() & ~isin(ageu, ["YEARS", "YEAR", "Y"])
        if bad.any():
            problems.extend(adsl.problems(bad, "AGEU", lambda v: f"{v!r}: age must be in years"))
    bad = age.isna() & raw(adsl, "AGE").isna()
    if bad.any():
        problems.extend(adsl.problems(bad, "AGE", "empty AGE"))
    bad = age.notna() & ((age < 18) | (age > 100))
    if bad.any():
        problems.extend(adsl.problems(bad, "AGE", lambda v: f"{v!r} is outside the registry's 18..100 years"))
    sex = text(adsl, "SEX").str.upper()
    bad = ~isin(sex, ["M", "F"])
    if bad.any():
        problems.extend(adsl.problems(bad, "SEX", lambda v: f"{v!r} is not M or F (the contract has no other code)"))
    lstalv = dates(adsl, "LSTALVDT", problems)
    dthdt = dates(adsl, "DTHDT", problems)
    trtsdt = dates(adsl, "TRTSDT", problems)
    trtsdtm = dates(adsl, "TRTSDTM", problems)
    randdt = dates(adsl, "RANDDT", problems)
    baseline = {key: mapped_column(adsl, key, spec, problems) for key, spec in mapping.items()}
    check(problems)

    p = pd.DataFrame({"patient_id": uid, "site_id": site, "age_years": age.astype("Int32"), "sex": sex,
                      "lstalvdt": lstalv, "dthdt": dthdt, ROW: adsl.frame[ROW]})
    known = pd.Index(uid.dropna())
    os_rows = empty_tte()
    others: dict[str, pd.DataFrame] = {}
    if tte is not None:
        check_subjects(tte, known, problems)
        require(tte, "PARAMCD", "CNSR")
        os_rows = time_to_event_rows(tte, "OS", problems)
        for code in ("PFS", "TTP"):
            others[code] = time_to_event_rows(tte, code, problems)
        check(problems)
        params = sorted(text(tte, "PARAMCD").dropna().str.upper().unique())
        note_unused_params(tte, {"OS", "PFS", "TTP"}, report)
        if not len(os_rows):
            report.notes.append(f"ADTTE has no OS record (PARAMCDs: {', '.join(params) or 'none'}): "
                                "OS from ADSL DTHDT / LSTALVDT")
    else:
        report.notes.append("no ADTTE given: OS from ADSL DTHDT / LSTALVDT")
    os_rows = os_rows.set_index("USUBJID")

    # time zero: ADTTE OS STARTDT, else TRTSDT, else TRTSDTM's date, else RANDDT
    os_start = p["patient_id"].map(os_rows["start"]) if len(os_rows) else pd.Series(pd.NaT, index=p.index)
    t0 = pd.Series(pd.NaT, index=p.index, dtype="datetime64[ns]")
    how = pd.Series("", index=p.index)
    for label, candidate in (("ADTTE OS STARTDT", os_start), ("ADSL TRTSDT", trtsdt),
                             ("ADSL TRTSDTM's date", trtsdtm), ("ADSL RANDDT", randdt)):
        take = t0.isna() & candidate.notna()
        t0[take] = candidate[take]
        how[take] = label
    p["t0"] = t0
    counts = how[how != ""].value_counts()
    report.notes.append("time zero (first_treatment_date): " + (", ".join(f"{k} for {v}" for k, v in counts.items())
                                                                 or "none found"))
    report.leave_out(int(t0.isna().sum()), "ADSL subjects with no time zero (no ADTTE OS STARTDT, TRTSDT, "
                                           "TRTSDTM or RANDDT; e.g. screen failures)")
    late = t0.notna() & (t0 > cutoff)
    report.leave_out(int(late.sum()), "ADSL subjects whose time zero is after the cut-off")
    p = p[t0.notna() & ~late].copy()
    if p.empty:
        raise ImportFailed(Problem(f"ADSL file {adsl.path.name}", "", f"no subject has a time zero on or before the "
                                   f"cut-off {cutoff.date()} ({', '.join(report.left_out)}): nothing to publish"))

    # OS: ADTTE first, then ADSL
    has_os = isin(p["patient_id"], os_rows.index)
    os_for = os_rows.reindex(p["patient_id"])
    os_for.index = p.index
    origin = pd.to_datetime(os_for["start"]).fillna(p["t0"])
    offset = convention_offset(os_for[has_os], origin[has_os], report, "ADTTE OS") if has_os.any() else 0
    for code, rows in others.items():          # PFS/TTP dates for the comparison, by the same rules
        start = pd.to_datetime(rows["start"]).fillna(rows["USUBJID"].map(p.set_index("patient_id")["t0"]))
        others[code] = rows.assign(date=fill_dates_from_aval(rows, start, offset))
    os_date = fill_dates_from_aval(os_for, origin, offset)
    no_date = has_os & os_date.isna()
    if no_date.any():
        problems.extend(Problem(f"ADTTE row {int(r)} (USUBJID {u})", "ADT", "the OS record has no ADT, ADTM or AVAL")
                        for r, u in zip(os_for.loc[no_date, ROW], p.loc[no_date, "patient_id"]))
    if has_os.any() and (os_for.loc[has_os, "date"].isna()).any():
        n = int((os_for.loc[has_os, "date"].isna() & os_date[has_os].notna()).sum())
        units = "AVALU" if os_for.loc[has_os, "unit_given"].astype(bool).all() else "AVALU, or days where AVALU is empty"
        report.notes.append(f"OS dates from STARTDT + AVAL ({units}) for {n} subject(s) without ADT/ADTM")
    early = os_date.notna() & (os_date < p["t0"])
    if early.any():
        problems.extend(Problem(f"ADTTE row {int(r)} (USUBJID {u})", "ADT", f"OS date {d.date()} is before time zero {t.date()}")
                        for r, u, d, t in zip(os_for.loc[early, ROW], p.loc[early, "patient_id"], os_date[early],
                                              p.loc[early, "t0"]))
    check(problems)
    event = has_os & os_for["is_event"].astype("boolean").fillna(False).astype(bool)
    death = os_date.where(event)
    censor = os_date.where(has_os & ~event)
    later_alive = censor.notna() & p["lstalvdt"].notna() & (p["lstalvdt"] > censor) & (p["lstalvdt"] <= cutoff)
    if later_alive.any():
        report.notes.append(f"OS censoring moved to ADSL LSTALVDT (later than the ADTTE censor date, not after the "
                            f"cut-off) for {int(later_alive.sum())} subject(s)")
    lka = censor.where(~later_alive, p["lstalvdt"])
    # subjects without an OS record: ADSL DTHDT, LSTALVDT, else time zero
    adsl_death = ~has_os & p["dthdt"].notna()
    death = death.where(~adsl_death, p["dthdt"])
    adsl_alive = ~has_os & ~adsl_death & p["lstalvdt"].notna()
    lka = lka.where(~adsl_alive, p["lstalvdt"])
    nothing = ~has_os & ~adsl_death & ~adsl_alive
    report.notes.append(f"OS: ADTTE OS for {int(has_os.sum())}, ADSL DTHDT for {int(adsl_death.sum())}, ADSL LSTALVDT "
                        f"for {int(adsl_alive.sum())}; no follow-up information (alive at time zero, censored at "
                        f"day 0) for {int(nothing.sum())}")
    lka = lka.where(~nothing, p["t0"])
    disagree = has_os & (p["dthdt"].notna() != event)
    if disagree.any():
        report.notes.append(f"ADSL DTHDT and ADTTE OS disagree on whether the subject died for {int(disagree.sum())} "
                            "subject(s): ADTTE OS is used")
    after_death = event & p["lstalvdt"].notna() & (p["lstalvdt"] > death)
    if after_death.any():
        report.notes.append(f"ADSL LSTALVDT after the OS death date for {int(after_death.sum())} subject(s): ignored")
    early = death.notna() & (death < p["t0"]) | lka.notna() & (lka < p["t0"])
    if early.any():
        problems.extend(Problem(f"ADSL row {int(r)} (USUBJID {u})", "DTHDT/LSTALVDT", "before time zero")
                        for r, u in zip(p.loc[early, ROW], p.loc[early, "patient_id"]))
    check(problems)
    # the data cut: a death after it is not known at the cut-off; follow-up ends at it
    lka = lka.where(death.isna(), death)        # the dead were last known alive on their death date
    late_death = death.notna() & (death > cutoff)
    report.leave_out(int(late_death.sum()), "deaths after the cut-off: cleared, censored at the cut-off")
    death = death.where(~late_death)
    late = lka > cutoff
    report.leave_out(int((late & ~late_death).sum()), "last-known-alive dates after the cut-off: set to the cut-off")
    lka = lka.where(~late, cutoff)

    out = pd.DataFrame({
        "patient_id": p["patient_id"], "site_id": p["site_id"], "first_treatment_date": p["t0"],
        "age_years": p["age_years"], "sex": p["sex"],
    })
    for key in BASELINE_COLUMNS:
        if key in baseline:
            out[key] = baseline[key].loc[p.index]
    if "child_pugh_score" in baseline:
        derived = out["child_pugh_score"].map(lambda s: child_pugh_class(int(s)) if pd.notna(s) else None)
        if "child_pugh_class" in baseline:
            clash = out["child_pugh_class"].notna() & derived.notna() & (out["child_pugh_class"] != derived)
            if clash.any():
                problems.extend(Problem(f"ADSL row {int(r)} (USUBJID {u})", mapping["child_pugh_class"]["column"],
                                        f"Child-Pugh class {c} does not agree with score {s}")
                                for r, u, c, s in zip(p.loc[clash[clash].index, ROW], out.loc[clash, "patient_id"],
                                                      out.loc[clash, "child_pugh_class"], out.loc[clash, "child_pugh_score"]))
            out["child_pugh_class"] = out["child_pugh_class"].fillna(derived)
        else:
            out["child_pugh_class"] = derived.astype("string")
            mapping = {**mapping, "child_pugh_class": {"column": mapping["child_pugh_score"]["column"],
                                                       "values": {}, "how": "derived from the score (A 5-6, B 7-9, C 10-15)"}}
    check(problems)
    out["last_known_alive_date"] = lka
    out["death_date"] = death
    out["off_study_date"] = death
    out["off_study_reason"] = pd.Series("death", index=out.index).where(death.notna())
    n = len(out)
    for key in BASELINE_COLUMNS:
        if key in mapping:
            nulls = int(out[key].isna().sum())
            report.notes.append(f"patients.{key}: from ADSL {mapping[key]['column']} ({mapping[key]['how']}); "
                                f"{nulls} of {n} null")
        else:
            report.missing.append(f"patients.{key}: not in ADSL (map a column with --map); {n} of {n} null")
    report.missing.append(f"patients.off_study_date/off_study_reason: only deaths (ADaM disposition is not "
                          f"mapped); {int(out['off_study_date'].isna().sum())} of {n} null")
    return out.reset_index(drop=True), {k: v.set_index("USUBJID") for k, v in others.items()}


# --- sites ------------------------------------------------------------------------------------
def build_sites(patients: pd.DataFrame, adsl: Dataset, mapping: dict, sites_csv: str | None,
                report: ImportReport, problems: list[Problem]) -> pd.DataFrame:
    """One row per SITEID of the imported subjects; names from --map site_name, --sites, else the id."""
    ids = pd.Series(sorted(patients["site_id"].unique()), dtype="string")
    names = pd.Series(ids.values, index=ids.values, dtype="string")
    how = "SITEID (no site name in ADSL; map one with --map site_name)"
    if "site_name" in mapping:
        col = mapping["site_name"]["column"]
        named = pd.DataFrame({"site": text(adsl, "SITEID"), "name": mapped_column(adsl, "site_name", mapping["site_name"],
                                                                                  problems)}).dropna()
        clash = named.drop_duplicates().duplicated("site", keep=False)
        if clash.any():
            for site in named.loc[clash.index[clash], "site"].unique()[:20]:
                problems.append(Problem(f"ADSL SITEID {site}", col, "more than one site name for the site: "
                                        + ", ".join(sorted(named.loc[named["site"] == site, "name"].unique()))))
        first = named.drop_duplicates("site").set_index("site")["name"]
        names = names.where(~names.index.isin(first.index), first.reindex(names.index))
        how = f"ADSL {col}"
    frame = pd.DataFrame({"site_id": ids.values, "site_name": names.values,
                          "activation_date": pd.NaT, "target_enrollment": pd.NA})
    if sites_csv:
        frame, how = apply_sites_csv(frame, sites_csv, problems, how)
    check(problems)
    report.notes.append(f"sites: {len(frame)}; site_name from {how}")
    for col in ("activation_date", "target_enrollment"):
        nulls = int(frame[col].isna().sum())
        if nulls:
            report.missing.append(f"sites.{col}: not in ADaM (give --sites CSV); {nulls} of {len(frame)} null")
    return frame


def apply_sites_csv(frame: pd.DataFrame, path: str, problems: list[Problem], how: str):
    """--sites CSV (site_id, site_name, activation_date, target_enrollment): its values replace the
    ADSL ones, and its sites without subjects are listed too."""
    where = f"--sites {path}"
    try:
        csv = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ImportFailed(Problem(where, "", f"cannot be read as CSV: {e}"))
    csv.columns = [str(c).strip().lower() for c in csv.columns]
    ds = Dataset("sites CSV", Path(path), csv.assign(**{ROW: np.arange(1, len(csv) + 1)}), key="site_id")
    if "site_id" not in ds.frame:
        raise ImportFailed(Problem(where, "site_id", "column missing (site_id, site_name, activation_date, "
                                                     "target_enrollment)"))
    sid = text(ds, "site_id")
    if sid.isna().any():
        problems.extend(ds.problems(sid.isna(), "site_id", "empty site_id"))
    act = dates(ds, "activation_date", problems)
    target = integers(ds, "target_enrollment", problems)
    neg = target.notna() & (target < 0)
    if neg.any():
        problems.extend(ds.problems(neg, "target_enrollment", lambda v: f"{v!r} is below 0"))
    given = pd.DataFrame({"site_id": sid, "site_name": text(ds, "site_name"), "activation_date": act,
                          "target_enrollment": target}).dropna(subset=["site_id"]).set_index("site_id")
    if given.index.duplicated().any():
        problems.append(Problem(where, "site_id", "a site appears twice: "
                                + ", ".join(given.index[given.index.duplicated()].unique()[:5])))
        return frame, how
    base = frame.set_index("site_id")
    index = base.index.union(given.index)
    merged = pd.DataFrame({
        "site_id": index,
        "site_name": given["site_name"].reindex(index).fillna(base["site_name"].reindex(index))
                                       .fillna(pd.Series(index, index=index)).values,
        "activation_date": given["activation_date"].reindex(index).values,
        "target_enrollment": given["target_enrollment"].reindex(index).values})
    return merged, f"--sites (else {how})"


# --- imaging, lesions, measurements -------------------------------------------------------------
def visit_rows(ds: Dataset, params: tuple[str, ...], value_col: str, problems: list[Problem],
               report: ImportReport) -> pd.DataFrame:
    """The per-visit records of the first of `params` the dataset has: USUBJID, visit ('baseline' for
    the baseline record), date, value, row. Derived records (DTYPE set) are left out."""
    codes = text(ds, "PARAMCD").str.upper()
    present = [c for c in params if (codes == c).any()]
    if not present:
        return pd.DataFrame(columns=["USUBJID", "visit", "date", "value", ROW, "param"])
    param = present[0]
    part = Dataset(ds.name, ds.path, ds.frame.loc[(codes == param).fillna(False)])
    if part.has("DTYPE"):
        derived = text(part, "DTYPE").notna()
        report.leave_out(int(derived.sum()), f"{ds.name} {param} derived records (DTYPE set, e.g. LOCF or MINIMUM)")
        part = Dataset(part.name, part.path, part.frame.loc[~derived])
    require(part, "AVISIT")
    uid = text(part, "USUBJID")
    avisit = text(part, "AVISIT")
    if avisit.isna().any():
        problems.extend(part.problems(avisit.isna(), "AVISIT", f"empty AVISIT on a {param} record"))
    upper = avisit.str.upper()
    ablfl = (text(part, "ABLFL").str.upper() == "Y").fillna(False)
    is_base = pd.Series(False, index=part.frame.index)
    flagged = isin(uid, uid[ablfl])
    is_base |= ablfl
    for name in BASELINE_VISITS:                  # subjects without a flagged baseline: by visit name
        cand = ~flagged & (upper == name).fillna(False) & ~isin(uid, uid[is_base])
        is_base |= cand
    date = dates(part, "ADT", problems)
    if part.has("ADTM"):
        date = date.fillna(dates(part, "ADTM", problems))
    visit = avisit.where(~is_base, "baseline")
    rows = pd.DataFrame({"USUBJID": uid, "visit": visit, "date": date, "value": raw(part, value_col)
                         if value_col in part.frame else pd.NA, ROW: part.frame[ROW], "param": param,
                         "anl": (text(part, "ANL01FL").str.upper() == "Y").fillna(False)})
    dup = rows.duplicated(["USUBJID", "visit"], keep=False) & rows["visit"].notna()
    if dup.any() and part.has("ANL01FL"):          # several records at a visit: the analysis record
        keep = ~dup | rows["anl"]
        report.leave_out(int((~keep).sum()), f"{ds.name} {param} records not flagged ANL01FL at a visit with several")
        rows = rows[keep]
        dup = rows.duplicated(["USUBJID", "visit"], keep=False)
    if dup.any():
        problems.extend(part.problems(dup.reindex(part.frame.index, fill_value=False), "AVISIT",
                                      lambda v: f"more than one {param} record at visit {v!r}"))
    return rows.drop(columns="anl")


def baseline_from_base(adtr: Dataset, sums: pd.DataFrame, report: ImportReport,
                       problems: list[Problem]) -> pd.DataFrame:
    """`sums` (value: AVAL as a number) with the baseline's value: the baseline record's AVAL, else the BASE
    (ADaM's baseline value) of the subject's records read, which must agree: two values are two baselines,
    a Problem naming the rows."""
    param = sums["param"].iloc[0]
    if not adtr.has("BASE"):
        report.notes.append(f"baseline sum of diameters ({param}): the baseline record's AVAL (ADTR has no BASE)")
        return sums
    part = Dataset(adtr.name, adtr.path, adtr.frame.loc[adtr.frame[ROW].isin(sums[ROW]).values])
    base = sums[ROW].map(pd.Series(numbers(part, "BASE", problems).to_numpy(), index=part.frame[ROW].to_numpy()))
    is_base = sums["visit"] == "baseline"
    value = sums["value"]
    need = is_base & value.isna()
    spread = base.groupby(sums["USUBJID"]).agg(["min", "max"])
    clash = spread.index[(spread["max"] - spread["min"]).abs() > 1e-9 * spread["max"].abs()]
    bad = isin(sums["USUBJID"], sums.loc[need, "USUBJID"]) & isin(sums["USUBJID"], clash) & base.notna()
    if bad.any():
        problems.extend(Problem(f"ADTR row {int(r)} (USUBJID {u})", "BASE",
                                f"{b!r}: the subject's {param} records disagree on BASE and its baseline record has "
                                "no AVAL, so the baseline sum is not known")
                        for r, u, b in list(zip(sums.loc[bad, ROW], sums.loc[bad, "USUBJID"], base[bad]))[:20])
        return sums
    subject_base = sums["USUBJID"].map(spread["min"])
    filled = need & subject_base.notna()
    differ = is_base & value.notna() & subject_base.notna() & \
        ((value - subject_base).abs() > 1e-9 * subject_base.abs())
    report.notes.append(f"baseline sum of diameters ({param}): the baseline record's AVAL for "
                        f"{int((is_base & value.notna()).sum())} subject(s), BASE for {int(filled.sum())} (the "
                        "baseline record has no AVAL)")
    if differ.any():
        report.notes.append(f"ADTR {param} BASE differs from the baseline record's AVAL for {int(differ.sum())} "
                            "subject(s): the AVAL is used")
    return sums.assign(value=value.where(~filled, subject_base))


def build_imaging(adrs: Dataset | None, adtr: Dataset | None, patients: pd.DataFrame, cutoff: pd.Timestamp,
                  report: ImportReport, problems: list[Problem]):
    """imaging, lesions and lesion_measurements (docs/adam.md: one 'SUM' pseudo-lesion per subject)."""
    known = pd.Index(patients["patient_id"])
    empty = pd.DataFrame(columns=["USUBJID", "visit", "date", "value", ROW, "param"])
    resp, new, sums = empty, empty, empty
    if adrs is not None:
        require(adrs, "USUBJID", "PARAMCD", "AVALC")
        resp = visit_rows(adrs, RESPONSE_PARAMS, "AVALC", problems, report)
        new = visit_rows(adrs, NEW_LESION_PARAMS, "AVALC", problems, report)
        note_unused_params(adrs, {f["param"].iloc[0] for f in (resp, new) if len(f)}, report)
        if not len(resp):
            params = sorted(text(adrs, "PARAMCD").dropna().str.upper().unique())
            report.notes.append(f"ADRS has no per-visit overall response ({'/'.join(RESPONSE_PARAMS)}; it has "
                                f"{', '.join(params[:15])}{'...' if len(params) > 15 else ''})")
        else:
            report.notes.append(f"overall response from ADRS PARAMCD {resp['param'].iloc[0]} (AVALC)")
    if adtr is not None:
        require(adtr, "USUBJID", "PARAMCD", "AVAL")
        sums = visit_rows(adtr, SUM_PARAMS, "AVAL", problems, report)
        note_unused_params(adtr, {sums["param"].iloc[0]} if len(sums) else set(), report)
        if not len(sums):
            report.notes.append(f"ADTR has no sum of diameters ({'/'.join(SUM_PARAMS)})")
        else:
            number = pd.to_numeric(sums["value"], errors="coerce")
            bad = sums["value"].notna() & number.isna()
            if bad.any():
                problems.extend(Problem(f"ADTR row {int(r)} (USUBJID {s})", "AVAL", f"{v!r} is not a number")
                                for r, s, v in list(zip(sums.loc[bad, ROW], sums.loc[bad, "USUBJID"],
                                                        sums.loc[bad, "value"]))[:20])
            sums = baseline_from_base(adtr, sums.assign(value=number.astype("float64")), report, problems)
            part = Dataset(adtr.name, adtr.path, adtr.frame.loc[adtr.frame[ROW].isin(sums[ROW]).values])
            unit = text(part, "AVALU").str.upper()
            unit.index = part.frame[ROW].values
            u = sums[ROW].map(unit)
            bad = u.notna() & ~isin(u, list(MM_PER_UNIT))
            if bad.any():
                problems.extend(Problem(f"ADTR row {int(r)} (USUBJID {s})", "AVALU", f"{v!r}: a diameter is in mm or cm")
                                for r, s, v in zip(sums.loc[bad, ROW], sums.loc[bad, "USUBJID"], u[bad]))
            sums = sums.assign(value=sums["value"] * u.map(MM_PER_UNIT).fillna(1.0))
            neg = sums["value"] < 0
            if neg.any():
                problems.extend(Problem(f"ADTR row {int(r)} (USUBJID {s})", "AVAL", f"{v!r}: a sum of diameters is >= 0")
                                for r, s, v in zip(sums.loc[neg, ROW], sums.loc[neg, "USUBJID"], sums.loc[neg, "value"]))
            report.notes.append(f"sum of diameters from ADTR PARAMCD {sums['param'].iloc[0]} "
                                + ("(AVALU mm/cm)" if u.notna().all() else "(unit not stated on "
                                   f"{int(u.isna().sum())} record(s): taken as mm)"))
    check(problems)
    for frame, label in ((resp, "ADRS"), (new, "ADRS"), (sums, "ADTR")):
        report.leave_out(int((~isin(frame["USUBJID"], known)).sum()) if len(frame) else 0,
                         f"{label} {frame['param'].iloc[0] if len(frame) else ''} records of subjects left out")
    resp, new, sums = (f[isin(f["USUBJID"], known)] for f in (resp, new, sums))

    # response codes
    code = resp["value"].astype("string").str.strip().str.upper()
    mapped = code.map(RESPONSE_CODES)
    bad = code.notna() & mapped.isna()
    if bad.any():
        problems.extend(Problem(f"ADRS row {int(r)} (USUBJID {s})", "AVALC",
                                f"{v!r} is not an overall response (CR, PR, SD, PD, NE, NON-CR/NON-PD, MISSING)")
                        for r, s, v in list(zip(resp.loc[bad, ROW], resp.loc[bad, "USUBJID"], code[bad]))[:20])
    check(problems)
    changed = code[code.notna() & (code != mapped)].value_counts()
    if len(changed) or code.isna().any():
        report.notes.append("response codes mapped: " + ", ".join(
            [f"{k} -> {RESPONSE_CODES[k]} ({v})" for k, v in changed.items()]
            + ([f"empty AVALC -> NE ({int(code.isna().sum())})"] if code.isna().any() else [])))
    resp = resp.assign(response=mapped.where(code.notna(), "NE"))
    new_flag = new.assign(new=new["value"].astype("string").str.upper().map(YES_NO).astype("boolean"))

    # one imaging row per (subject, visit): ADRS date first, ADTR's where ADRS has none
    keys = ["USUBJID", "visit"]
    img = resp[keys + ["date", "response", ROW]].rename(columns={"date": "rs_date", ROW: "rs_row"}).merge(
        sums[keys + ["date", "value", ROW]].rename(columns={"date": "tr_date", ROW: "tr_row"}), on=keys, how="outer")
    img = img.merge(new_flag[keys + ["new"]], on=keys, how="left")
    differ = img["rs_date"].notna() & img["tr_date"].notna() & (img["rs_date"] != img["tr_date"])
    if differ.any():
        report.notes.append(f"ADRS and ADTR dates differ at {int(differ.sum())} visit(s): the ADRS date is used")
    img["date"] = img["rs_date"].fillna(img["tr_date"])
    img["t0"] = img["USUBJID"].map(patients.set_index("patient_id")["first_treatment_date"])
    img["death"] = img["USUBJID"].map(patients.set_index("patient_id")["death_date"])
    base = img["visit"] == "baseline"
    baseline_resp = base & img["response"].notna()
    if baseline_resp.any():
        report.notes.append(f"responses recorded at baseline ignored (a response needs a baseline): "
                            f"{int(baseline_resp.sum())}")
    img.loc[base, "response"] = None
    rules = [
        (img["date"].isna(), "imaging visits with no date (ADT/ADTM)"),
        (img["date"] > cutoff, "imaging visits after the cut-off"),
        (base & (img["date"] > img["t0"]), "baseline records after time zero"),
        (~base & (img["date"] <= img["t0"]), "post-baseline visits on or before time zero (e.g. screening "
                                             "besides the baseline): cannot be follow-ups"),
        (img["death"].notna() & (img["date"] > img["death"]), "imaging visits after the subject's death date"),
        (~base & img["response"].isna(), "follow-up visits with a sum of diameters but no overall response "
                                         "in ADRS (the contract needs a response at every follow-up)"),
    ]
    keep = pd.Series(True, index=img.index)
    for mask, why in rules:
        mask = mask.fillna(False) & keep
        report.leave_out(int(mask.sum()), why)
        keep &= ~mask
    img = img[keep]
    imaging = pd.DataFrame({"patient_id": img["USUBJID"], "visit": img["visit"], "imaging_date": img["date"],
                            "modality": None, "overall_response": img["response"], "local_response": None,
                            "has_new_lesion": img["new"]})
    n = len(imaging)
    if adrs is None and adtr is None:
        return imaging, pd.DataFrame(), pd.DataFrame()
    report.missing.append(f"imaging.modality: not in ADaM; {n} of {n} null")
    report.missing.append(f"imaging.local_response: ADaM has no local (treated-lesion) response; {n} of {n} null")
    if not len(new):
        report.missing.append(f"imaging.has_new_lesion: no new-lesion parameter in ADRS "
                              f"({'/'.join(NEW_LESION_PARAMS)}); {n} of {n} null")
    measured = img[img["value"].notna()]
    report.leave_out(int((img["tr_row"].notna() & img["value"].isna()).sum()),
                     "ADTR sum-of-diameter records with no value (AVAL empty)")
    lesions = pd.DataFrame({"patient_id": measured["USUBJID"].unique()})
    lesions = lesions.assign(lesion_id="SUM", segment=None, is_target=True, is_treated=False)
    measurements = pd.DataFrame({"patient_id": measured["USUBJID"], "lesion_id": "SUM", "visit": measured["visit"],
                                 "viable_diameter_mm": measured["value"].astype("float64"), "non_target_status": None})
    return imaging, lesions, measurements


# --- adverse events ---------------------------------------------------------------------------
def build_adverse_events(adae: Dataset, patients: pd.DataFrame, cutoff: pd.Timestamp, report: ImportReport,
                         problems: list[Problem]) -> pd.DataFrame:
    f = adae.frame
    uid = text(adae, "USUBJID")
    grade_col = first_present(adae, "ATOXGR", "AETOXGR")
    kept = isin(uid, patients["patient_id"])
    report.leave_out(int((~kept).sum()), "ADAE records of subjects left out")
    if grade_col is None:
        report.leave_out(int(kept.sum()), "ADAE records with no CTCAE grade (no ATOXGR or AETOXGR column; "
                                          "AESEV mild/moderate/severe is not a CTCAE grade)")
        return pd.DataFrame(columns=TABLES["adverse_events"].column_names)
    grade = pd.Series(np.nan, index=f.index)
    for col in ("ATOXGR", "AETOXGR"):          # the analysis grade, else the collected one, per record
        if not adae.has(col):
            continue
        grade_text = text(adae, col).str.upper().str.replace(r"^GRADE\s*", "", regex=True)
        value = pd.to_numeric(grade_text, errors="coerce")
        bad = grade_text.notna() & (value.isna() | (value != np.floor(value)))
        if bad.any():
            problems.extend(adae.problems(bad, col, lambda v: f"{v!r} is not a CTCAE grade 1..5"))
        high = value.notna() & (value > 5)
        if high.any():
            problems.extend(adae.problems(high, col, lambda v: f"{v} is above the maximum 5"))
        low = value.notna() & (value < 1)
        if low.any():
            problems.extend(adae.problems(low, col, lambda v: f"{v} is below the minimum 1"))
        if col == "AETOXGR" and grade_col == "ATOXGR":
            from_collected = int((grade.isna() & value.notna()).sum())
            if from_collected:
                report.notes.append(f"AE grade from AETOXGR where ATOXGR is empty: {from_collected}")
        grade = grade.fillna(value)
    term_col = first_present(adae, "AEDECOD", "AETERM")
    if term_col is None:
        require(adae, "AEDECOD", why="the AE term (or AETERM)")
    term = text(adae, term_col)
    if term_col == "AEDECOD" and adae.has("AETERM"):
        term = term.fillna(text(adae, "AETERM"))
    soc_col = first_present(adae, "AESOC", "AEBODSYS")
    soc = text(adae, soc_col) if soc_col else pd.Series(pd.NA, index=f.index, dtype="string")
    upper = term.str.upper()
    registry_term = upper.map({k.upper(): k for k in CTCAE_SOC}).astype("string")
    is_registry = registry_term.notna()
    term = term.where(~is_registry, registry_term)
    soc = soc.where(~is_registry, registry_term.map(CTCAE_SOC).astype("string"))
    onset_col = first_present(adae, "ASTDT", "ASTDTM", "AESTDTC")
    onset = dates(adae, onset_col, problems) if onset_col else pd.Series(pd.NaT, index=f.index)
    if onset_col == "ASTDT" and adae.has("ASTDTM"):
        onset = onset.fillna(dates(adae, "ASTDTM", problems))
    end_col = first_present(adae, "AENDT", "AENDTM", "AEENDTC")
    end = dates(adae, end_col, problems) if end_col else pd.Series(pd.NaT, index=f.index)
    rel_col = first_present(adae, "AREL", "AEREL")
    rel = text(adae, rel_col).str.upper() if rel_col else pd.Series(pd.NA, index=f.index, dtype="string")
    unknown = rel.notna() & ~isin(rel, RELATED + NOT_RELATED)
    if unknown.any():
        problems.extend(adae.problems(unknown, rel_col, lambda v: f"{v!r} is not a relationship code "
                                      f"(related: {', '.join(RELATED)}; not: {', '.join(NOT_RELATED)})"))
    seq = integers(adae, "AESEQ", problems) if adae.has("AESEQ") else None
    check(problems)
    ae_id = (seq.astype("string") if seq is not None else pd.Series(pd.NA, index=f.index, dtype="string"))
    ae_id = ae_id.fillna("row" + f[ROW].astype(str))
    dup = kept & pd.DataFrame({"u": uid, "a": ae_id}).duplicated(keep=False)
    if dup.any():
        problems.extend(adae.problems(dup, "AESEQ", lambda v: f"{v!r}: AESEQ repeats for the subject"))
    pt = patients.set_index("patient_id")
    t0 = uid.map(pt["first_treatment_date"])
    death = uid.map(pt["death_date"])
    ae = pd.DataFrame({"patient_id": uid, "ae_id": ae_id, "term": term, "soc": soc, "grade": grade,
                       "onset_date": onset, "resolution_date": end,
                       "is_serious": (text(adae, "AESER").str.upper() == "Y").fillna(False),
                       "is_treatment_related": isin(rel, RELATED) | rel.isna(), "session_number": pd.NA})
    keep = kept.copy()
    rules = [
        (grade.isna(), "ADAE records with no CTCAE grade (ATOXGR and AETOXGR empty)"),
        (onset.isna(), f"ADAE records with no onset date ({onset_col or 'ASTDT'} empty)"),
        (onset > cutoff, "ADAE records with onset after the cut-off"),
        (onset < t0, "ADAE records with onset before time zero (not treatment-emergent)"),
        (death.notna() & (onset > death), "ADAE records with onset after the subject's death date"),
        ((grade == 5) & death.isna(), "grade 5 ADAE records of subjects with no death date in the snapshot "
                                      "(no OS event on or before the cut-off; the contract needs one)"),
    ]
    for mask, why in rules:
        mask = mask.fillna(False) & keep
        report.leave_out(int(mask.sum()), why)
        keep &= ~mask
    no_term = keep & (ae["term"].isna() | ae["soc"].isna())
    if no_term.any():
        problems.extend(adae.problems(no_term, term_col if ae["term"].isna().any() else (soc_col or "AESOC"),
                                      "a graded AE needs a term (AEDECOD/AETERM) and a SOC (AESOC/AEBODSYS)"))
    backwards = keep & ae["resolution_date"].notna() & (ae["resolution_date"] < ae["onset_date"])
    if backwards.any():
        problems.extend(adae.problems(backwards, end_col, "resolution before onset"))
    check(problems)
    ae = ae[keep].copy()
    late_end = ae["resolution_date"] > cutoff
    if late_end.any():
        report.notes.append(f"AE resolution dates after the cut-off cleared (ongoing at the cut-off): {int(late_end.sum())}")
    ae.loc[late_end, "resolution_date"] = pd.NaT
    n_rel_missing = int((rel.isna() & keep).sum())
    report.notes.append(f"AEs: grade from {grade_col}; term from {term_col} (SOC from the CTCAE list for "
                        f"{int((is_registry & keep).sum())} registry term(s), else {soc_col}); related = {rel_col or 'none'} "
                        f"in {'/'.join(RELATED[:5])}...; relationship missing on {n_rel_missing} (counted as related)")
    n = len(ae)
    report.missing.append(f"adverse_events.session_number: ADaM has no DEB-TACE sessions; {n} of {n} null")
    ae["grade"] = ae["grade"].astype("Int32")
    return ae


# --- assembling -------------------------------------------------------------------------------
def to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """The frame as the contract's table (column order, types; datetime64 -> date32)."""
    schema = TABLES[name].arrow_schema()
    arrays = []
    for fld in schema:
        s = frame[fld.name] if fld.name in frame else pd.Series([None] * len(frame), dtype="object")
        if fld.type == pa.date32():
            arr = pa.array(pd.to_datetime(s), type=pa.timestamp("ns"), from_pandas=True).cast(pa.date32())
        elif fld.type == pa.string():
            arr = pa.array(s.astype("object").where(pd.notna(s), None).tolist() if len(s) else [], type=pa.string())
        else:
            arr = pa.array(s.astype("object").where(pd.notna(s), None).tolist() if len(s) else [], type=fld.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def build(paths: dict[str, str | None], cutoff, map_path: str | None = None, sites_csv: str | None = None,
          bar: tqdm | None = None) -> tuple[dict[str, pa.Table], ImportReport, dict]:
    """The eight snapshot tables from the ADaM files in `paths` (dataset -> file), the report, and the
    ADTTE PFS/TTP records for the comparison; raises ImportFailed with every Problem found."""
    cutoff = pd.Timestamp(cutoff)
    report = ImportReport()
    bar = bar or tqdm(disable=True)
    data: dict[str, Dataset | None] = {}
    for key in DATASETS:
        data[key] = read_dataset(paths[key], key.upper(), COLUMNS.get(key)) if paths.get(key) else None
        if paths.get(key):
            bar.update()
    adsl = data["adsl"]
    mapping = read_map(map_path, adsl)
    problems: list[Problem] = []
    patients, tte = build_patients(adsl, data["adtte"], mapping, cutoff, report, problems)
    bar.update()
    sites = build_sites(patients, adsl, mapping, sites_csv, report, problems)
    bar.update()
    known = pd.Index(text(adsl, "USUBJID").dropna())
    for key in ("adrs", "adtr", "adae"):
        if data[key] is not None:
            check_subjects(data[key], known, problems)
    check(problems)
    imaging, lesions, measurements = build_imaging(data["adrs"], data["adtr"], patients, cutoff, report, problems)
    if data["adrs"] is None and data["adtr"] is None:
        report.missing.append("imaging, lesions, lesion_measurements: no ADRS/ADTR given; empty")
    bar.update()
    if data["adae"] is not None:
        require(data["adae"], "USUBJID")
        ae = build_adverse_events(data["adae"], patients, cutoff, report, problems)
    else:
        ae = pd.DataFrame(columns=TABLES["adverse_events"].column_names)
        report.missing.append("adverse_events: no ADAE given; empty")
    bar.update()
    report.missing.append("treatments: ADaM has no DEB-TACE sessions; empty (0 rows)")
    report.missing.append("staging: ADaM has no restaging reviews; empty (0 rows)")
    empty = pd.DataFrame()
    tables = {name: to_arrow(name, frame) for name, frame in (
        ("sites", sites), ("patients", patients), ("treatments", empty), ("lesions", lesions),
        ("imaging", imaging), ("lesion_measurements", measurements), ("staging", empty),
        ("adverse_events", ae))}
    bar.update()
    return tables, report, tte


def compare_endpoints(snapshot_path: Path, tte: dict[str, pd.DataFrame], report: ImportReport) -> None:
    """The dashboard's PFS/TTP per subject (queries/patient_endpoints_all.sql over its staging views
    of the published files: imaging's first PD, death) against ADTTE's: same event flag, same date."""
    import duckdb
    from dashboard.data import view_files
    if not any(len(rows) for rows in tte.values()):
        return
    views = view_files()
    con = duckdb.connect()
    try:
        folder = "'" + (str(snapshot_path) + "/").replace("'", "''") + "'"
        con.execute(f"create macro snapshot_file(t) as {folder} || t || '.parquet'")
        for view in ("stg_patients", "stg_imaging"):
            con.execute(f"create view {view} as {views[view]}")
        ours = con.execute(views["patient_endpoints_all"]).df()
    finally:
        con.close()
    for code, rows in tte.items():
        if not len(rows):
            continue
        mine = ours[ours["endpoint"] == code.lower()].set_index("patient_id")
        theirs = rows[rows.index.isin(mine.index)]
        if not len(theirs):
            continue
        m = mine.loc[theirs.index]
        same = (m["is_event"].astype(bool).values == theirs["is_event"].astype(bool).values) & \
               (pd.to_datetime(m["end_date"]).values == theirs["date"].values)
        differ = theirs.index[~same]
        examples = "; ".join(
            f"{u}: dashboard {'event' if mine.at[u, 'is_event'] else 'censored'} {pd.Timestamp(mine.at[u, 'end_date']).date()}, "
            f"ADTTE {'event' if theirs.at[u, 'is_event'] else 'censored'} "
            f"{theirs.at[u, 'date'].date() if pd.notna(theirs.at[u, 'date']) else '?'}" for u in differ[:3])
        report.comparisons.append(f"{code}: {int(same.sum())} of {len(theirs)} subjects agree with ADTTE {code} "
                                  f"(event and date); {len(differ)} differ{': ' + examples if len(differ) else ''}"
                                  + (" ..." if len(differ) > 3 else ""))


def run(args) -> int:
    """python -m dashboard import adam ...: build, validate, publish, print the summary."""
    from dashboard.snapshots import data_root
    cutoff = parse_cutoff(args.cutoff)
    paths = {k: getattr(args, k, None) for k in DATASETS}
    steps = sum(1 for k in DATASETS if paths[k]) + 7       # files, 5 building steps, publish, comparison
    with tqdm(total=steps, disable=args.quiet, desc="import adam", unit="step", file=sys.stderr) as bar:
        tables, report, tte = build(paths, cutoff, args.map, args.sites, bar=bar)
        path, warnings = publish_checked(data_root(args.out), cutoff, tables, source="adam",
                                         snapshot_id=args.snapshot_id, replace=args.replace)
        bar.update()
        try:
            compare_endpoints(path, tte, report)
        except Exception as e:      # the snapshot is published; a failed comparison is reported, not fatal
            report.comparisons.append(f"PFS/TTP comparison with ADTTE not made: {type(e).__name__}: {e}")
        bar.update()
    print(f"import adam: published snapshot {path.name} under {path.parent}")
    print("rows: " + ", ".join(f"{name} {t.num_rows}" for name, t in tables.items()))
    for line in report.lines():
        print(line)
    if warnings:
        print(f"validator warnings: {len(warnings)}")
        for w in warnings[:10]:
            print(f"  {w}")
    return 0
