"""Snapshot tables -> a raw flat records export of the registry's REDCap project, as REDCap writes it.

`write_export(tables, out_dir)` writes `records.csv` (record id, redcap_repeat_instrument,
redcap_repeat_instance, then every field in dictionary order with `<form>_complete` = 2 after
each instrument's fields; raw codes; yes/no as 1/0; blanks for nulls), `dictionary.csv` (the
shipped project with its site list set to the exported sites) and `sites.csv`.
`write_synthetic_export` does it for the synthetic registry at its last cut-off, the same data
`python -m dashboard generate --last-cut-only` publishes, so the import path can be run end to end.

One row per patient holds the non-repeating instruments (enrollment and baseline, lesion
register, follow-up); each session, imaging assessment, restaging review and adverse event is a
repeating row, numbered 1, 2, ... per patient in date order (sessions by number, adverse events
in table order). Columns are built whole with pyarrow, never cell by cell.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tqdm import tqdm

from dashboard.importers.redcap.registry import (AE, BASELINE, CHOICES, DICTIONARY, FOLLOW_UP, FORMS, IMAGING,
                                                 LESION_SLOTS, LESIONS, REPEATING, RESTAGING, SESSION)

COMPLETE = "2"          # REDCap's <form>_complete: 0 incomplete, 1 unverified, 2 complete


def _text(values) -> pa.Array:
    """Any arrow column as REDCap's raw text: booleans 1/0, dates YYYY-MM-DD, numbers as written."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "1", "0")
    return pc.cast(values, pa.string())


def _coded(values, field: str) -> pa.Array:
    """Contract values as the field's raw choice codes."""
    codes = CHOICES[field]
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    keys = pa.array(list(codes.values()), values.type)
    index = pc.index_in(values, value_set=keys)
    bad = pc.and_(pc.is_valid(values), pc.is_null(index))
    if pc.any(bad).as_py():
        raise ValueError(f"{field}: {pc.filter(values, bad)[0]} has no code in the registry's project")
    return pa.array(list(codes), pa.string()).take(index)


def _nulls(n: int) -> pa.Array:
    return pa.nulls(n, pa.string())


def read_project_columns(path: Path = DICTIONARY) -> tuple[list[str], dict[str, list[str]]]:
    """(every field in file order, form -> its export columns) of a data dictionary CSV."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    names, forms = [], {}
    for name, form, ftype, choices in frame.iloc[:, [0, 1, 3, 5]].itertuples(index=False):
        names.append(name)
        cols = forms.setdefault(form, [])
        if ftype == "descriptive":
            continue
        if ftype == "checkbox":
            cols.extend(f"{name}___{c.split(',', 1)[0].strip().lower()}" for c in choices.split("|"))
        else:
            cols.append(name)
    for form, cols in forms.items():
        cols.append(f"{form}_complete")
    return names, forms


def _instances(pos: np.ndarray) -> np.ndarray:
    """1, 2, ... within each run of equal patient positions (`pos` sorted)."""
    if not len(pos):
        return np.zeros(0, np.int64)
    k = np.arange(len(pos))
    start = np.r_[True, pos[1:] != pos[:-1]]
    return k - np.maximum.accumulate(np.where(start, k, 0)) + 1


def _rank(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorting rows by patient position (stable) and each row's 1-based rank within its patient."""
    idx = np.argsort(order, kind="stable")
    return idx, _instances(order[idx])


def build_records(tables: dict[str, pa.Table], dictionary: Path = DICTIONARY) -> pa.Table:
    """The records export of `tables` as one arrow table of strings, columns and rows as REDCap orders them."""
    names, form_columns = read_project_columns(dictionary)
    record_id = names[0]
    pt = tables["patients"]
    pids = pt["patient_id"].combine_chunks()
    n = len(pids)
    if pc.count_distinct(pids).as_py() != n:
        raise ValueError("patients: a patient_id appears more than once")

    def patient_pos(table: pa.Table) -> np.ndarray:
        pos = pc.index_in(table["patient_id"], value_set=pids)
        if pos.null_count:
            raise ValueError("a row's patient_id is not in patients")
        return pos.to_numpy(zero_copy_only=False).astype(np.int64)

    parts = []          # (table of string columns, patient position, form rank, instance)

    # non-repeating instruments: one row per patient
    cols = {record_id: pids, "redcap_repeat_instrument": _nulls(n), "redcap_repeat_instance": _nulls(n)}
    plain = {"site": "site_id", "first_tx_date": "first_treatment_date", "age": "age_years", "ecog": "ecog_ps",
             "cp_score": "child_pugh_score", "cp_class": "child_pugh_class", "afp_ng_ml": "afp_ng_ml",
             "tumor_count": "tumor_count", "largest_tumor_cm": "largest_tumor_cm", "mvi": "has_macrovascular_invasion",
             "ehs": "has_extrahepatic_spread", "milan": "is_within_milan", "up_to_seven": "is_within_up_to_seven",
             "resectable": "is_resectable", "last_alive_date": "last_known_alive_date", "death_date": "death_date",
             "off_study_date": "off_study_date"}
    coded = {"sex": "sex", "etiology": "etiology", "albi_grade": "albi_grade", "bclc_stage": "bclc_stage",
             "off_study_reason": "off_study_reason"}
    cols.update({f: _text(pt[c]) for f, c in plain.items()})
    cols.update({f: _coded(pt[c], f) for f, c in coded.items()})
    cols["dead"] = _text(pc.is_valid(pt["death_date"]))

    # lesion register: the patient's lesions in table order fill slots 1..7
    les = tables["lesions"]
    lpos = patient_pos(les)
    lidx, lslot = _rank(lpos)
    if len(lslot) and lslot.max() > LESION_SLOTS:
        raise ValueError(f"lesions: a patient has more than {LESION_SLOTS} lesions, the project's slots")
    les = les.take(pa.array(lidx))
    lpos = lpos[lidx]
    for k in range(1, LESION_SLOTS + 1):
        sel = np.flatnonzero(lslot == k)
        target = np.full(n, -1, np.int64)
        target[lpos[sel]] = sel
        at = pa.array(target, mask=target < 0)
        one = les.take(at)
        cols[f"les{k}_id"] = one["lesion_id"].combine_chunks()
        cols[f"les{k}_segment"] = _coded(one["segment"], f"les{k}_segment")
        cols[f"les{k}_target"] = _text(one["is_target"])
        cols[f"les{k}_treated"] = _text(one["is_treated"])
    for form in (BASELINE, LESIONS, FOLLOW_UP):
        cols[f"{form}_complete"] = pa.array([COMPLETE] * n, pa.string())
    parts.append((cols, np.arange(n), 0, np.zeros(n, np.int64)))

    # repeating instruments
    def repeating(form: str, table: pa.Table, sort_keys: list[str], fields: dict):
        pos = patient_pos(table)
        keys = [pos] + [table[k].combine_chunks().to_numpy(zero_copy_only=False) for k in sort_keys]
        idx = np.lexsort(tuple(reversed(keys))) if len(pos) else np.zeros(0, np.int64)
        table = table.take(pa.array(idx))
        pos = pos[idx]
        inst = _instances(pos)
        m = len(pos)
        out = {record_id: table["patient_id"].combine_chunks(),
               "redcap_repeat_instrument": pa.array([form] * m, pa.string()),
               "redcap_repeat_instance": pa.array(inst.astype(np.int64)).cast(pa.string())}
        for f, column in fields.items():
            out[f] = _coded(table[column], f) if f in CHOICES else _text(table[column])
        out[f"{form}_complete"] = pa.array([COMPLETE] * m, pa.string())
        parts.append((out, pos, 1 + REPEATING.index(form), inst))
        return table, pos

    repeating(SESSION, tables["treatments"], ["session_number"], {
        "session_number": "session_number", "session_date": "treatment_date", "drug": "drug",
        "dose_mg": "dose_mg", "microsphere_size": "microsphere_size", "superselective": "is_superselective"})

    img_fields = {"img_visit": "visit", "img_date": "imaging_date", "img_modality": "modality",
                  "img_overall": "overall_response", "img_local": "local_response", "img_new_lesion": "has_new_lesion"}
    img, _ = repeating(IMAGING, tables["imaging"], ["imaging_date", "visit"], img_fields)
    _measurements(parts[-1][0], img, tables["lesion_measurements"], les, lslot)

    repeating(RESTAGING, tables["staging"], ["review_date", "visit"], {
        "rst_visit": "visit", "rst_date": "review_date", "rst_bclc_stage": "bclc_stage", "rst_milan": "is_within_milan",
        "rst_up_to_seven": "is_within_up_to_seven", "rst_resectable": "is_resectable"})
    repeating(AE, tables["adverse_events"], [], {
        "ae_id": "ae_id", "ae_term": "term", "ae_soc": "soc", "ae_grade": "grade", "ae_onset": "onset_date",
        "ae_resolution": "resolution_date", "ae_serious": "is_serious", "ae_related": "is_treatment_related",
        "ae_session": "session_number"})

    # one table, REDCap's column order, rows by patient, instrument, instance
    columns = [record_id, "redcap_repeat_instrument", "redcap_repeat_instance"] + [
        c for form in FORMS for c in form_columns[form] if c != record_id]
    pieces = []
    for cols_, pos, rank, inst in parts:
        m = len(pos)
        arrays = [cols_.get(c) if c in cols_ else _nulls(m) for c in columns]
        arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
        pieces.append(pa.Table.from_arrays(arrays + [pa.array(pos), pa.array(np.full(m, rank)), pa.array(inst)],
                                           names=columns + ["_p", "_f", "_i"]))
    out = pa.concat_tables(pieces)
    order = pc.sort_indices(out, [("_p", "ascending"), ("_f", "ascending"), ("_i", "ascending")])
    return out.take(order).select(columns)


def _measurements(cols: dict, img: pa.Table, meas: pa.Table, les: pa.Table, lslot: np.ndarray) -> None:
    """Fill the imaging rows' lesion slots: each measurement goes to the slot of its lesion."""
    m = len(img)
    key_img = pd.DataFrame({"p": img["patient_id"].to_numpy(zero_copy_only=False),
                            "v": img["visit"].to_numpy(zero_copy_only=False), "row": np.arange(m)})
    key_les = pd.DataFrame({"p": les["patient_id"].to_numpy(zero_copy_only=False),
                            "l": les["lesion_id"].to_numpy(zero_copy_only=False), "slot": lslot})
    mm = pd.DataFrame({"p": meas["patient_id"].to_numpy(zero_copy_only=False),
                       "l": meas["lesion_id"].to_numpy(zero_copy_only=False),
                       "v": meas["visit"].to_numpy(zero_copy_only=False), "i": np.arange(len(meas))})
    mm = mm.merge(key_img, on=["p", "v"], how="left").merge(key_les, on=["p", "l"], how="left")
    if mm["row"].isna().any() or mm["slot"].isna().any():
        raise ValueError("lesion_measurements: a row has no imaging time point or no lesion")
    row, slot, i = mm["row"].to_numpy(np.int64), mm["slot"].to_numpy(np.int64), mm["i"].to_numpy(np.int64)
    for k in range(1, LESION_SLOTS + 1):
        sel = slot == k
        target = np.full(m, -1, np.int64)
        target[row[sel]] = i[sel]
        one = meas.take(pa.array(target, mask=target < 0))
        cols[f"img_l{k}_viable_mm"] = _text(one["viable_diameter_mm"])
        cols[f"img_l{k}_nt_status"] = _coded(one["non_target_status"], f"img_l{k}_nt_status")


def write_dictionary(out: Path, sites: pa.Table, source: Path = DICTIONARY) -> Path:
    """The shipped dictionary with the site list set to `sites` (code, name), as a site edits it."""
    text = source.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    choices = " | ".join(f"{i}, {n}" for i, n in zip(sites["site_id"].to_pylist(), sites["site_name"].to_pylist()))
    for row in rows[1:]:
        if row[0] == "site":
            row[5] = choices
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    out.write_text(buf.getvalue(), encoding="utf-8")
    return out


def write_export(tables: dict[str, pa.Table], out_dir, progress: bool = False) -> list[Path]:
    """Write records.csv, dictionary.csv and sites.csv of `tables` into `out_dir`; returns the paths."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot write the export into {out_dir}: {e.strerror or type(e).__name__}") from None
    with tqdm(total=3, disable=not progress, desc="REDCap export", unit="file") as bar:
        records = build_records(tables)
        path = out_dir / "records.csv"
        pacsv.write_csv(records, path, pacsv.WriteOptions(quoting_style="needed"))
        bar.update(1)
        sites = tables["sites"]
        dictionary = write_dictionary(out_dir / "dictionary.csv", sites)
        bar.update(1)
        site_csv = out_dir / "sites.csv"
        pacsv.write_csv(pa.table({"site_id": sites["site_id"], "site_name": sites["site_name"],
                                  "activation_date": _text(sites["activation_date"]),
                                  "target_enrollment": _text(sites["target_enrollment"])}),
                        site_csv, pacsv.WriteOptions(quoting_style="needed"))
        bar.update(1)
    return [path, dictionary, site_csv]


def write_synthetic_export(out, n_patients: int = 600, n_sites: int = 12, seed: int = 1,
                           progress: bool = True) -> list[Path]:
    """The synthetic registry at its last cut-off (as `generate --last-cut-only` publishes it) as an
    export of the shipped project under `out`; returns the files written."""
    from dashboard.generate import cut_dates, cut_tables, simulate
    last = cut_dates()[-1]
    with tqdm(total=2, disable=not progress, desc="synthetic registry", unit="step") as bar:
        cohort = simulate(n_patients, n_sites, seed, horizon=last)
        tables = cut_tables(cohort, last)
        del cohort
        bar.update(1)
        paths = write_export(tables, out)
        bar.update(1)
    return paths
