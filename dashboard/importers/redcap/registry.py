"""The registry's REDCap project (project/dictionary.csv) -> the snapshot contract's eight tables at
a data cut.

`build_tables(records, cutoff, sites)` reads the typed instruments of `records.Records` and
returns one pyarrow table per contract table (`TABLES[name].arrow_schema()`). What the contract
needs and a record lacks (a blank first treatment date, a session without its date, a
non-target lesion without its status at a scan, ...) is a `Problem` naming record, instance and
field; all of them are raised together as one `ImportFailed`. The contract's own rules (codes,
ranges, date order) are left to the validator that `publish_checked` runs.

Derived, never read from the record: child_pugh_class from cp_score (A 5-6, B 7-9, C 10-15,
`contract.child_pugh_class`), an adverse event's soc from its term (`contract.CTCAE_SOC`; the
project's ae_soc is a @CALCTEXT for the people entering data). A blank ae_id is AE + the
instance number (3 digits). Every lesion of the lesion register has a measurement row at every
imaging assessment; a blank viable diameter is a target lesion not measured at that scan.

The data cut mirrors `dashboard.generate.cut_tables`: patients first treated after the cut-off
are left out with all their rows; sessions, imaging assessments (with their measurements),
restaging reviews and adverse events (by onset) dated after it are dropped; a death, an
off-study date (with its reason) and an AE resolution after it are cleared; the last known
alive date is capped at it; sites activated after it are dropped. Only the rows that survive the
cut are checked for completeness, so a patient still being entered after the cut-off does not
block an earlier cut.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.contract import (BCLC_STAGES, CTCAE_SOC, DRUGS, ETIOLOGIES, MICROSPHERE_SIZES,
                                MODALITIES, NON_TARGET_STATUSES, OFF_STUDY_REASONS, RESPONSES,
                                SEGMENTS, TABLES, child_pugh_class)
from dashboard.importers import ImportFailed, Problem

DICTIONARY = Path(__file__).resolve().parent / "project" / "dictionary.csv"

BASELINE = "enrollment_baseline"
LESIONS = "lesion_register"
SESSION = "deb_tace_session"
IMAGING = "imaging_assessment"
RESTAGING = "restaging_review"
AE = "adverse_event"
FOLLOW_UP = "follow_up"
FORMS = (BASELINE, LESIONS, SESSION, IMAGING, RESTAGING, AE, FOLLOW_UP)
REPEATING = (SESSION, IMAGING, RESTAGING, AE)
LESION_SLOTS = 7            # two targets + five non-target slots: the most generate.simulate gives a patient
SHOWN_PER_RULE = 200        # problems listed per rule; the rest are counted in one line

# CTCAE v4.0 terms of the registry, in the order of their codes 1..21 in the ae_term list.
AE_TERMS = (
    "Fever", "Fatigue", "Abdominal pain", "Nausea", "Vomiting", "Ascites",
    "Alanine aminotransferase increased", "Aspartate aminotransferase increased",
    "Blood bilirubin increased", "Platelet count decreased", "Hepatic infection", "Sepsis",
    "Hepatic failure", "Hepatic hemorrhage", "Portal vein thrombosis", "Cholecystitis",
    "Biliary fistula", "Hepatobiliary disorders - Other, specify", "Anorexia", "Alopecia",
    "Pleural effusion",
)
assert sorted(AE_TERMS) == sorted(CTCAE_SOC)


def _numbered(values) -> dict:
    return {str(i + 1): v for i, v in enumerate(values)}


def _same(values) -> dict:
    return {v: v for v in values}


SEGMENT_CODES = _numbered(SEGMENTS)                     # 1..8 = S1..S8, 9 = extrahepatic
NON_TARGET_CODES = _numbered(NON_TARGET_STATUSES)

# Every coded field of the project: raw choice code -> the contract's value.
CHOICES: dict[str, dict] = {
    "sex": _same(("M", "F")),
    "etiology": _numbered(ETIOLOGIES),
    "albi_grade": {"1": 1, "2": 2, "3": 3},
    "bclc_stage": _same(BCLC_STAGES),
    "drug": _numbered(DRUGS),
    "microsphere_size": _numbered(MICROSPHERE_SIZES),
    "img_modality": _numbered(MODALITIES),
    "img_overall": _same(RESPONSES),
    "img_local": _same(RESPONSES),
    "rst_bclc_stage": _same(BCLC_STAGES),
    "ae_term": _numbered(AE_TERMS),
    "ae_grade": {str(g): g for g in range(1, 6)},
    "off_study_reason": _numbered(OFF_STUDY_REASONS),
    **{f"les{k}_segment": SEGMENT_CODES for k in range(1, LESION_SLOTS + 1)},
    **{f"img_l{k}_nt_status": NON_TARGET_CODES for k in range(1, LESION_SLOTS + 1)},
}

# Contract column -> the project field it comes from ({k}: lesion slot 1..7; `derived` ones are
# computed from the named field). The test checks every contract column is here and every field
# exists in the dictionary; docs/redcap.md prints the same table.
SOURCES: dict[str, dict[str, str]] = {
    "sites": {"site_id": "site", "site_name": "site", "activation_date": "sites.csv",
              "target_enrollment": "sites.csv"},
    "patients": {
        "patient_id": "patient_id", "site_id": "site", "first_treatment_date": "first_tx_date",
        "age_years": "age", "sex": "sex", "etiology": "etiology", "ecog_ps": "ecog",
        "child_pugh_score": "cp_score", "child_pugh_class": "cp_score", "albi_grade": "albi_grade",
        "afp_ng_ml": "afp_ng_ml", "tumor_count": "tumor_count", "largest_tumor_cm": "largest_tumor_cm",
        "has_macrovascular_invasion": "mvi", "has_extrahepatic_spread": "ehs",
        "bclc_stage": "bclc_stage", "is_within_milan": "milan", "is_within_up_to_seven": "up_to_seven",
        "is_resectable": "resectable", "last_known_alive_date": "last_alive_date",
        "death_date": "death_date", "off_study_date": "off_study_date",
        "off_study_reason": "off_study_reason"},
    "treatments": {
        "patient_id": "patient_id", "session_number": "session_number", "treatment_date": "session_date",
        "drug": "drug", "dose_mg": "dose_mg", "microsphere_size": "microsphere_size",
        "is_superselective": "superselective"},
    "lesions": {"patient_id": "patient_id", "lesion_id": "les{k}_id", "segment": "les{k}_segment",
                "is_target": "les{k}_target", "is_treated": "les{k}_treated"},
    "imaging": {
        "patient_id": "patient_id", "visit": "img_visit", "imaging_date": "img_date",
        "modality": "img_modality", "overall_response": "img_overall", "local_response": "img_local",
        "has_new_lesion": "img_new_lesion"},
    "lesion_measurements": {
        "patient_id": "patient_id", "lesion_id": "les{k}_id", "visit": "img_visit",
        "viable_diameter_mm": "img_l{k}_viable_mm", "non_target_status": "img_l{k}_nt_status"},
    "staging": {
        "patient_id": "patient_id", "visit": "rst_visit", "review_date": "rst_date",
        "bclc_stage": "rst_bclc_stage", "is_within_milan": "rst_milan",
        "is_within_up_to_seven": "rst_up_to_seven", "is_resectable": "rst_resectable"},
    "adverse_events": {
        "patient_id": "patient_id", "ae_id": "ae_id", "term": "ae_term", "soc": "ae_term",
        "grade": "ae_grade", "onset_date": "ae_onset", "resolution_date": "ae_resolution",
        "is_serious": "ae_serious", "is_treatment_related": "ae_related", "session_number": "ae_session"},
}
DERIVED = {("patients", "child_pugh_class"), ("adverse_events", "soc")}

# Fields read besides the SOURCES ones.
EXTRA_FIELDS = {"dead": FOLLOW_UP}
REQUIRED_FORMS = {  # field -> the form it must be on (the registry's project)
    **{f: BASELINE for f in ("site", "first_tx_date", "age", "sex", "etiology", "ecog", "cp_score",
                             "albi_grade", "afp_ng_ml", "tumor_count", "largest_tumor_cm", "mvi", "ehs",
                             "bclc_stage", "milan", "up_to_seven", "resectable")},
    **{f"les{k}_{p}": LESIONS for k in range(1, LESION_SLOTS + 1) for p in ("id", "segment", "target", "treated")},
    **{f: SESSION for f in ("session_number", "session_date", "drug", "dose_mg", "microsphere_size",
                            "superselective")},
    **{f: IMAGING for f in ("img_visit", "img_date", "img_modality", "img_overall", "img_local",
                            "img_new_lesion")},
    **{f"img_l{k}_{p}": IMAGING for k in range(1, LESION_SLOTS + 1) for p in ("viable_mm", "nt_status")},
    **{f: RESTAGING for f in ("rst_visit", "rst_date", "rst_bclc_stage", "rst_milan", "rst_up_to_seven",
                              "rst_resectable")},
    **{f: AE for f in ("ae_id", "ae_term", "ae_grade", "ae_onset", "ae_resolution", "ae_serious",
                       "ae_related", "ae_session")},
    **{f: FOLLOW_UP for f in ("last_alive_date", "dead", "death_date", "off_study_date", "off_study_reason")},
}


@dataclass
class Built:
    """The contract tables of one cut, and lines for the import's summary."""
    tables: dict[str, pa.Table]
    notes: list[str] = field(default_factory=list)


class _Problems(list):
    """Problems collected over the whole build, at most SHOWN_PER_RULE per rule."""

    def where(self, frame: pd.DataFrame) -> list[str]:
        text = "record " + frame["record"].astype(str)
        if "redcap_event_name" in frame:
            text = text + ", event " + frame["redcap_event_name"].astype(str)
        if "redcap_repeat_instance" in frame:
            text = text + ", instance " + frame["redcap_repeat_instance"].astype(str)
        return text.tolist()

    def flag(self, frame: pd.DataFrame, mask, field_name: str, message) -> None:
        """One problem per row of `frame` where `mask` holds; `message` is a str or a function of
        the offending rows (a frame) giving one text per row (only called when there are some)."""
        mask = np.asarray(pd.Series(mask, index=frame.index).fillna(False), dtype=bool)
        n = int(mask.sum())
        if not n:
            return
        rows = frame[mask].head(SHOWN_PER_RULE)
        texts = [message] * len(rows) if isinstance(message, str) else list(message(rows))
        self.extend(Problem(w, field_name, t) for w, t in zip(self.where(rows), texts))
        if n > len(rows):
            self.append(Problem("", field_name, f"{n - len(rows)} more row(s) with this problem"))

    def blank(self, frame: pd.DataFrame, fields) -> None:
        for name in fields:
            self.flag(frame, frame[name].isna(), name, "required value is blank")


def _day(values: pd.Series) -> np.ndarray:
    """Dates as day numbers since 1970 (NaT -> a large sentinel, never before a cut-off)."""
    s = pd.to_datetime(values)
    days = s.to_numpy(dtype="datetime64[D]").astype("int64")
    return np.where(s.isna().to_numpy(), np.iinfo(np.int64).max, days)


def _cutoff_day(cutoff: dt.date) -> int:
    return (cutoff - dt.date(1970, 1, 1)).days


def _arrow(values: pd.Series, type_: pa.DataType) -> pa.Array:
    """A pandas column (nullable dtypes, datetime64, objects) as an arrow array of the contract type."""
    if pa.types.is_date32(type_):
        s = pd.to_datetime(values)
        return pa.array(s.to_numpy(dtype="datetime64[D]"), mask=s.isna().to_numpy()).cast(pa.date32())
    if values.dtype == object:
        return pa.array(values, type_, from_pandas=True)
    return pa.array(values, from_pandas=True).cast(type_)


def _table(name: str, columns: dict[str, pd.Series | list[pd.Series]]) -> pa.Table:
    """A contract table from pandas columns (a list of Series: their rows one after the other)."""
    schema = TABLES[name].arrow_schema()
    arrays = []
    for f in schema:
        parts = columns[f.name] if isinstance(columns[f.name], list) else [columns[f.name]]
        arrays.append(pa.chunked_array([_arrow(p.reset_index(drop=True), f.type) for p in parts], f.type)
                      .combine_chunks())
    return pa.Table.from_arrays(arrays, schema=schema)


def _decode(frame: pd.DataFrame, name: str, problems: _Problems) -> pd.Series:
    """A coded field as the contract's values; a code the registry does not know is a problem
    (a site added a choice to its copy of the project)."""
    codes = CHOICES[name]
    raw = frame[name]
    index, uniques = pd.factorize(raw)
    known = np.array([codes.get(u) for u in uniques] + [None], dtype=object)
    out = pd.Series(known[index], index=frame.index, dtype=object)       # index -1 (blank) -> None
    unknown = np.array([u not in codes for u in uniques] + [False])[index]
    problems.flag(frame, unknown, name, lambda rows: "code " + rows[name].astype(str) + " is not one of the "
                  f"registry's codes ({', '.join(codes)})")
    return out


def _once(frame: pd.DataFrame, form: str, field_name: str, problems: _Problems) -> pd.DataFrame:
    """A non-repeating instrument holds one row per patient (at one event of a longitudinal
    project); more is a problem, and the first row is kept so the other checks can go on."""
    problems.flag(frame, frame.duplicated(["record"], keep=False), field_name,
                  f"the {form} instrument is filled more than once for this record (the registry keeps one)")
    return frame.drop_duplicates(["record"]).reset_index(drop=True)


def _duplicates(frame: pd.DataFrame, keys: list[str], field_name: str, what: str, problems: _Problems):
    dup = frame.duplicated(keys, keep=False)
    problems.flag(frame, dup, field_name,
                  lambda rows: what + " " + rows[keys[-1]].astype(str) + " appears more than once")


def _kind(f) -> str:
    """What the reader makes of a field: date, yes/no, integer, number, code or text."""
    v = f.validation or ""
    if f.type in ("yesno", "truefalse"):
        return "yes/no"
    if f.type in ("dropdown", "radio"):
        return "choice"
    if v.startswith("date_") or v.startswith("datetime_"):
        return "date"
    if v == "integer":
        return "integer"
    if v.startswith("number") or f.type == "calc":
        return "number"
    return "text"


def check_project(dictionary) -> None:
    """The dictionary is the registry's project: every field the import reads is there, on its
    form, of the kind the shipped project gives it (a date, a yes/no, an integer, ...)."""
    from dashboard.importers.redcap.records import read_dictionary
    shipped = read_dictionary(DICTIONARY).fields
    problems = []
    for name, form in REQUIRED_FORMS.items():
        f = dictionary.fields.get(name)
        if f is None:
            problems.append(Problem("data dictionary", name, f"missing: the registry's project has it on "
                                                              f"instrument {form} (is this the registry's project?)"))
        elif f.form != form:
            problems.append(Problem("data dictionary", name, f"is on instrument {f.form}, the registry's project "
                                                              f"has it on {form}"))
        elif _kind(f) != _kind(shipped[name]):
            problems.append(Problem("data dictionary", name, f"is a {_kind(f)} field; in the registry's project "
                                                              f"it is a {_kind(shipped[name])} field"))
    if problems:
        raise ImportFailed(problems)


def read_sites(path: Path) -> pd.DataFrame:
    """The sites CSV: site_id, site_name, activation_date (YYYY-MM-DD, may be blank),
    target_enrollment (integer >= 0, may be blank). Raises ImportFailed naming row and column."""
    where = f"sites file {path.name}"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ImportFailed(Problem(where, "", f"cannot be read: {e}")) from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("site_id", "site_name", "activation_date", "target_enrollment") if c not in frame]
    if missing:
        raise ImportFailed(Problem(where, ", ".join(missing), "column(s) missing (needed: site_id, site_name, "
                                                             "activation_date, target_enrollment)"))
    frame = frame.apply(lambda s: s.str.strip())
    row = pd.Series([f"{where}, row {i + 2}" for i in range(len(frame))], index=frame.index)
    problems = []

    def flag(mask, column, message):
        problems.extend(Problem(w, column, message if isinstance(message, str) else m)
                        for w, m in zip(row[mask], (message if isinstance(message, str) else message[mask])))
    for column in ("site_id", "site_name"):
        flag(frame[column].isna(), column, "is blank")
    flag(frame["site_id"].notna() & frame["site_id"].duplicated(keep=False), "site_id",
         "site " + frame["site_id"].astype(str) + " appears more than once")
    act = pd.to_datetime(frame["activation_date"], format="%Y-%m-%d", errors="coerce")
    flag(frame["activation_date"].notna() & act.isna(), "activation_date",
         frame["activation_date"].astype(str) + " is not a date YYYY-MM-DD")
    target = pd.to_numeric(frame["target_enrollment"], errors="coerce")
    bad = frame["target_enrollment"].notna() & ~(target.notna() & (target % 1 == 0) & (target >= 0))
    flag(bad, "target_enrollment", frame["target_enrollment"].astype(str) + " is not a whole number >= 0")
    if problems:
        raise ImportFailed(problems)
    return pd.DataFrame({"site_id": frame["site_id"], "site_name": frame["site_name"],
                         "activation_date": act, "target_enrollment": target.astype("Int64")})


def build_tables(records, cutoff: dt.date, sites: pd.DataFrame | None = None) -> dict[str, pa.Table]:
    """The eight contract tables of `records` (a `records.Records` of the registry's project) at
    `cutoff`; `sites` as `read_sites` returns it, or None (sites from the dictionary's site list).
    Raises ImportFailed with every problem found."""
    return build(records, cutoff, sites).tables


def build(records, cutoff: dt.date, sites: pd.DataFrame | None = None) -> Built:
    """`build_tables`, with the notes the import prints (what the cut dropped, where sites came from)."""
    dictionary = records.dictionary
    check_project(dictionary)
    rid = dictionary.record_id
    c = _cutoff_day(cutoff)
    problems = _Problems()
    notes: list[str] = []

    def form(name: str) -> pd.DataFrame:
        """The instrument's rows, the record id column named `record`; a repeating instrument of
        an export without its repeat columns (none entered, or repeating not enabled) has instance 1."""
        frame = records.form(name).reset_index(drop=True).rename(columns={rid: "record"})
        if name in REPEATING and "redcap_repeat_instance" not in frame:
            frame.insert(1, "redcap_repeat_instance", pd.array([1] * len(frame), dtype="Int64"))
        return frame

    # --- patients: enrollment and baseline + follow-up ------------------------------------------
    base = form(BASELINE)
    base = _once(base, BASELINE, "first_tx_date", problems)
    ids = pd.Series(records.record_ids(), dtype=object)
    no_base = ids[~_member(ids, base["record"])]
    problems.extend(Problem(f"record {r}", "first_tx_date", f"the record has no {BASELINE} form "
                            "(no first treatment date)") for r in no_base.head(SHOWN_PER_RULE))
    problems.blank(base, ["first_tx_date"])
    ftd = _day(base["first_tx_date"])
    late = base["first_tx_date"].notna() & (ftd > c)
    base = base[~late & base["first_tx_date"].notna()].reset_index(drop=True)
    kept = base["record"]
    notes.append(f"cut-off {cutoff}: {len(base)} patient(s) first treated by then"
                 + (f"; {int(late.sum())} first treated after it left out" if late.any() else ""))
    problems.blank(base, ["site", "age", "sex"])

    fu = form(FOLLOW_UP)
    fu = fu[_member(fu["record"], kept)]
    fu = _once(fu, FOLLOW_UP, "last_alive_date", problems)
    p = base.merge(fu.drop(columns=[c_ for c_ in fu.columns if c_.startswith("redcap_")]),
                   on="record", how="left", suffixes=("", "_fu"))
    problems.flag(p, p["last_alive_date"].isna(), "last_alive_date",
                  f"required value is blank (instrument {FOLLOW_UP})")
    dead = p["dead"].astype("boolean")
    problems.flag(p, p["death_date"].notna() & (dead != True), "death_date",  # noqa: E712 (nullable boolean)
                  "a death date is given but 'Has the patient died?' (dead) is not Yes")
    problems.flag(p, (dead == True) & p["death_date"].isna(), "death_date",  # noqa: E712
                  "'Has the patient died?' is Yes but the death date is blank")
    problems.flag(p, p["off_study_reason"].notna() & p["off_study_date"].isna(), "off_study_reason",
                  "an off-study reason is given without an off-study date")

    death = pd.to_datetime(p["death_date"])
    death = death.where(_day(death) <= c)
    off = pd.to_datetime(p["off_study_date"])
    off_kept = _day(off) <= c
    lka = pd.to_datetime(p["last_alive_date"])
    lka = lka.where(lka.isna() | (_day(lka) <= c), pd.Timestamp(cutoff))
    cp_score = p["cp_score"]
    patients = {
        "patient_id": p["record"], "site_id": p["site"], "first_treatment_date": p["first_tx_date"],
        "age_years": p["age"], "sex": _decode(p, "sex", problems), "etiology": _decode(p, "etiology", problems),
        "ecog_ps": p["ecog"], "child_pugh_score": cp_score,
        "child_pugh_class": cp_score.astype(object).map({s: child_pugh_class(s) for s in range(5, 16)}),
        "albi_grade": _decode(p, "albi_grade", problems), "afp_ng_ml": p["afp_ng_ml"],
        "tumor_count": p["tumor_count"], "largest_tumor_cm": p["largest_tumor_cm"],
        "has_macrovascular_invasion": p["mvi"], "has_extrahepatic_spread": p["ehs"],
        "bclc_stage": _decode(p, "bclc_stage", problems), "is_within_milan": p["milan"],
        "is_within_up_to_seven": p["up_to_seven"], "is_resectable": p["resectable"],
        "last_known_alive_date": lka, "death_date": death, "off_study_date": off.where(off_kept),
        "off_study_reason": _decode(p, "off_study_reason", problems).where(off_kept, None),
    }
    ftd_by_record = pd.Series(pd.to_datetime(p["first_tx_date"]).to_numpy(), index=p["record"])

    # --- sites ----------------------------------------------------------------------------------
    if sites is not None:
        act_day = _day(sites["activation_date"])
        site_rows = sites[sites["activation_date"].isna() | (act_day <= c)]
        if len(site_rows) < len(sites):
            notes.append(f"sites: {len(sites) - len(site_rows)} activated after the cut-off left out")
    else:
        labels = dictionary.fields["site"].choices
        with_patients = set(p["site"].dropna())
        used = [s for s in labels if s in with_patients]
        site_rows = pd.DataFrame({"site_id": used, "site_name": [labels[s] for s in used],
                                  "activation_date": pd.Series([pd.NaT] * len(used), dtype="datetime64[ns]"),
                                  "target_enrollment": pd.Series([pd.NA] * len(used), dtype="Int64")})
        notes.append(f"sites: no sites file; {len(used)} site(s) with patients, names from the dictionary's "
                     "site list; activation_date and target_enrollment left blank (not recorded)")
    missing = (" is not in the sites file (or was activated after the cut-off)" if sites is not None
               else " is not in the dictionary's site list")
    problems.flag(p, p["site"].notna() & ~p["site"].isin(site_rows["site_id"]), "site",
                  lambda rows: "site " + rows["site"].astype(str) + missing)

    # --- DEB-TACE sessions --------------------------------------------------------------------
    dropped: dict[str, int] = {}
    s = _rows(form(SESSION), kept, "session_date", c, problems, dropped, "sessions")
    problems.blank(s, ["session_number", "drug", "dose_mg", "microsphere_size", "superselective"])
    _duplicates(s.dropna(subset=["session_number"]), ["record", "session_number"], "session_number",
                "session", problems)
    first = s["record"].map(ftd_by_record)
    problems.flag(s, (s["session_number"] == 1) & (pd.to_datetime(s["session_date"]) != first), "session_date",
                  lambda rows: "session 1 is on " + rows["session_date"].astype(str).str[:10]
                  + ", not on the first treatment date " + first[rows.index].astype(str).str[:10])
    treatments = {"patient_id": s["record"], "session_number": s["session_number"],
                  "treatment_date": s["session_date"], "drug": _decode(s, "drug", problems),
                  "dose_mg": s["dose_mg"], "microsphere_size": _decode(s, "microsphere_size", problems),
                  "is_superselective": s["superselective"]}

    # --- lesion register: slots 1..7 -> one row per lesion ----------------------------------------
    reg = form(LESIONS)
    reg = reg[_member(reg["record"], kept)].reset_index(drop=True)
    reg = _once(reg, LESIONS, "les1_id", problems)
    slots = []
    for k in range(1, LESION_SLOTS + 1):
        lid, seg, tgt, trt = (f"les{k}_{x}" for x in ("id", "segment", "target", "treated"))
        has = reg[lid].notna()
        for other in (seg, tgt, trt):
            problems.flag(reg, ~has & reg[other].notna(), other, f"lesion {k} has a value but no lesion id ({lid})")
        one = reg[has]
        problems.blank(one, [tgt, trt])
        slots.append(pd.DataFrame({"record": one["record"], "slot": k, "lesion_id": one[lid],
                                   "segment": _decode(one, seg, problems), "is_target": one[tgt].astype("boolean"),
                                   "is_treated": one[trt]}))
    les = pd.concat(slots, ignore_index=True).sort_values(["record", "slot"], kind="stable")
    _duplicates(les, ["record", "lesion_id"], "lesion_id", "lesion id", problems)
    lesions = {"patient_id": les["record"], "lesion_id": les["lesion_id"], "segment": les["segment"],
               "is_target": les["is_target"], "is_treated": les["is_treated"]}

    # --- imaging assessments and their lesion measurements ---------------------------------------
    im = _rows(form(IMAGING), kept, "img_date", c, problems, dropped, "imaging assessments")
    problems.blank(im, ["img_visit"])
    _duplicates(im.dropna(subset=["img_visit"]), ["record", "img_visit"], "img_visit", "visit", problems)
    problems.flag(im, im["img_visit"].notna() & (im["img_visit"] != "baseline") & im["img_overall"].isna(),
                  "img_overall", "the overall response is blank at a follow-up assessment")
    imaging = {"patient_id": im["record"], "visit": im["img_visit"], "imaging_date": im["img_date"],
               "modality": _decode(im, "img_modality", problems),
               "overall_response": _decode(im, "img_overall", problems),
               "local_response": _decode(im, "img_local", problems), "has_new_lesion": im["img_new_lesion"]}
    at = pd.Index(reg["record"]).get_indexer(im["record"])          # each assessment's lesion register row
    meas = []
    for k in range(1, LESION_SLOTS + 1):
        lid, viable, status = f"les{k}_id", f"img_l{k}_viable_mm", f"img_l{k}_nt_status"
        lesion_id = pd.Series(np.append(reg[lid].to_numpy(object), None)[at], index=im.index, dtype=object)
        target = pd.Series(np.append(reg[f"les{k}_target"].to_numpy(object), None)[at], index=im.index,
                           dtype=object).astype("boolean")
        has = lesion_id.notna()
        for name in (viable, status):
            problems.flag(im, ~has & im[name].notna(), name,
                          f"lesion {k} is not in the lesion register (les{k}_id is blank)")
        problems.flag(im, has & (target == True) & im[status].notna(), status,  # noqa: E712
                      lambda rows: "lesion " + lesion_id[rows.index].astype(str)
                      + " is a target lesion: no non-target status")
        problems.flag(im, has & (target == False) & im[viable].notna(), viable,  # noqa: E712
                      lambda rows: "lesion " + lesion_id[rows.index].astype(str)
                      + " is a non-target lesion: no viable diameter")
        problems.flag(im, has & (target == False) & im[status].isna(), status,  # noqa: E712
                      lambda rows: "the status of non-target lesion " + lesion_id[rows.index].astype(str) + " is blank")
        one = im[has]
        meas.append({"patient_id": one["record"], "lesion_id": lesion_id[has], "visit": one["img_visit"],
                     "viable_diameter_mm": one[viable], "non_target_status": _decode(one, status, problems)})
    measurements = {name: [part[name] for part in meas] for name in TABLES["lesion_measurements"].column_names}

    # --- restaging reviews ---------------------------------------------------------------------
    r = _rows(form(RESTAGING), kept, "rst_date", c, problems, dropped, "restaging reviews")
    problems.blank(r, ["rst_visit", "rst_bclc_stage", "rst_milan", "rst_up_to_seven", "rst_resectable"])
    _duplicates(r.dropna(subset=["rst_visit"]), ["record", "rst_visit"], "rst_visit", "visit", problems)
    staging = {"patient_id": r["record"], "visit": r["rst_visit"], "review_date": r["rst_date"],
               "bclc_stage": _decode(r, "rst_bclc_stage", problems), "is_within_milan": r["rst_milan"],
               "is_within_up_to_seven": r["rst_up_to_seven"], "is_resectable": r["rst_resectable"]}

    # --- adverse events --------------------------------------------------------------------------
    a = _rows(form(AE), kept, "ae_onset", c, problems, dropped, "adverse events")
    problems.blank(a, ["ae_term", "ae_grade", "ae_serious", "ae_related"])
    ae_id = a["ae_id"].astype(object)
    blank_id = ae_id.isna()
    ae_id[blank_id] = "AE" + a.loc[blank_id, "redcap_repeat_instance"].astype(str).str.zfill(3)
    _duplicates(a.assign(ae_id=ae_id), ["record", "ae_id"], "ae_id", "adverse event id", problems)
    term = _decode(a, "ae_term", problems)
    resolution = pd.to_datetime(a["ae_resolution"])
    adverse_events = {"patient_id": a["record"], "ae_id": ae_id, "term": term,
                      "soc": term.map(CTCAE_SOC, na_action="ignore"), "grade": _decode(a, "ae_grade", problems),
                      "onset_date": a["ae_onset"], "resolution_date": resolution.where(_day(resolution) <= c),
                      "is_serious": a["ae_serious"], "is_treatment_related": a["ae_related"],
                      "session_number": a["ae_session"]}

    if problems:
        raise ImportFailed(list(problems))
    cleared = {"deaths": int((p["death_date"].notna() & death.isna()).sum()),
               "off-study dates": int((p["off_study_date"].notna() & ~off_kept).sum()),
               "AE resolutions": int((a["ae_resolution"].notna() & adverse_events["resolution_date"].isna()).sum())}
    if any(dropped.values()) or any(cleared.values()):
        notes.insert(1, "dated after the cut-off: " + ", ".join(f"{n} {w}" for w, n in dropped.items()) + " dropped; "
                     + ", ".join(f"{n} {w}" for w, n in cleared.items()) + " cleared")
    tables = {
        "sites": _table("sites", {k: site_rows[k] for k in ("site_id", "site_name", "activation_date",
                                                             "target_enrollment")}),
        "patients": _table("patients", patients), "treatments": _table("treatments", treatments),
        "lesions": _table("lesions", lesions), "imaging": _table("imaging", imaging),
        "lesion_measurements": _table("lesion_measurements", measurements),
        "staging": _table("staging", staging), "adverse_events": _table("adverse_events", adverse_events),
    }
    return Built(tables, notes)


def _member(values: pd.Series, kept: pd.Series) -> np.ndarray:
    """values.isin(kept) through arrow (pandas' isin on arrow strings goes value by value)."""
    found = pc.is_in(pa.array(values, pa.string(), from_pandas=True),
                     value_set=pa.array(kept, pa.string(), from_pandas=True))
    return found.to_numpy(zero_copy_only=False)


def _rows(frame: pd.DataFrame, kept: pd.Series, date_field: str, cutoff_day: int, problems: _Problems,
          dropped: dict, what: str) -> pd.DataFrame:
    """A repeating form's rows of the patients in the cut, dated by the cut-off (a blank date is a
    problem); counts the rows dated after it in `dropped[what]`."""
    frame = frame[_member(frame["record"], kept)]
    problems.blank(frame, [date_field])
    in_cut = _day(frame[date_field]) <= cutoff_day
    dropped[what] = int((frame[date_field].notna() & ~in_cut).sum())
    return frame[in_cut].reset_index(drop=True)
