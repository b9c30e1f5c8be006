"""The ADaM importer on the public ADaM test data (../shared/testdata, written by others), through
the command line `python -m dashboard import adam`, into temporary data roots.

Expected numbers come from outside the importer: Kaplan-Meier OS from R's survival package on the
ADTTE rows (tests/reference/make_adam_reference.R -> r_adam_os.json), worst AE grades and row
counts from pandas on the source files in the tests themselves.
"""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from dashboard.__main__ import main
from dashboard.validate import validate_folder

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
PHARMAVERSE = TESTDATA / "pharmaverseadam"
RANDOM = TESTDATA / "random_cdisc_data"
PILOT_XPT = TESTDATA / "cdisc-xpt" / "adam"
R_OS = json.loads((ROOT / "tests" / "reference" / "r_adam_os.json").read_text())

needs_testdata = pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"public test data not found at {TESTDATA}")
pytestmark = needs_testdata

FAR_CUTOFF = "2025-01-01"           # after every date in the test data: nothing is cut
RANDOM_CUT = "2021-06-30"           # inside random.cdisc.data's follow-up: the data cut is exercised


def import_adam(capsys, out: Path, cutoff: str, **files) -> tuple[int, str, str]:
    argv = ["import", "adam", "--cutoff", cutoff, "--out", str(out), "--quiet"]
    for name, path in files.items():
        if path is not None:
            argv += [f"--{name.replace('_', '-')}", str(path)]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot_folder(root: Path, cutoff: str) -> Path:
    return root / "snapshots" / cutoff


def table(root: Path, cutoff: str, name: str) -> pd.DataFrame:
    return pq.read_table(snapshot_folder(root, cutoff) / f"{name}.parquet").to_pandas()


def km_summary(capsys, root: Path) -> dict:
    assert main(["export", "km-summary", "--endpoint", "os", "--by", "none", "--data", str(root)]) == 0
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["rows"]
    return row


PHARMAVERSE_FILES = dict(adsl=PHARMAVERSE / "adsl.parquet", adtte=PHARMAVERSE / "adtte_onco.parquet",
                         adrs=PHARMAVERSE / "adrs_onco.parquet", adtr=PHARMAVERSE / "adtr_onco.parquet",
                         adae=PHARMAVERSE / "adae.parquet")
RANDOM_FILES = dict(adsl=RANDOM / "cadsl.parquet", adtte=RANDOM / "cadtte.parquet", adrs=RANDOM / "cadrs.parquet",
                    adtr=RANDOM / "cadtr.parquet", adae=RANDOM / "cadae.parquet")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Each public ADaM imported once through the command line: name -> (root, cutoff, exit, stdout)."""
    out = {}
    cases = {"pharmaverse": (PHARMAVERSE_FILES, FAR_CUTOFF), "random": (RANDOM_FILES, FAR_CUTOFF),
             "random_cut": (RANDOM_FILES, RANDOM_CUT),
             "pilot_xpt": (dict(adsl=PILOT_XPT / "adsl.xpt", adtte=PILOT_XPT / "adtte.xpt",
                                adae=PILOT_XPT / "adae.xpt"), FAR_CUTOFF)}
    for name, (files, cutoff) in cases.items():
        root = tmp_path_factory.mktemp(name)
        argv = ["import", "adam", "--cutoff", cutoff, "--out", str(root), "--quiet"]
        for key, path in files.items():
            argv += [f"--{key}", str(path)]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(argv)
        out[name] = (root, cutoff, code, buf.getvalue())
    return out


@pytest.mark.parametrize("name", ["pharmaverse", "random", "random_cut", "pilot_xpt"])
def test_public_adam_imports_and_validates(imported, name):
    root, cutoff, code, stdout = imported[name]
    assert code == 0, stdout
    folder = snapshot_folder(root, cutoff)
    report = validate_folder(folder)
    assert report.ok, report.summary()
    assert json.loads((folder / "manifest.json").read_text())["source"] == "adam"
    # what ADaM cannot supply is listed, with its count, never filled in
    n = len(table(root, cutoff, "patients"))
    for column in ("bclc_stage", "child_pugh_score", "ecog_ps", "is_within_milan", "tumor_count", "etiology"):
        assert f"patients.{column}: not in ADSL (map a column with --map); {n} of {n} null" in stdout
        assert table(root, cutoff, "patients")[column].isna().all()
    assert "treatments: ADaM has no DEB-TACE sessions; empty (0 rows)" in stdout
    assert len(table(root, cutoff, "treatments")) == 0


def test_pharmaverse_counts_match_the_source(imported):
    root, cutoff, _, stdout = imported["pharmaverse"]
    adsl = pd.read_parquet(PHARMAVERSE / "adsl.parquet")
    adae = pd.read_parquet(PHARMAVERSE / "adae.parquet")
    tte = pd.read_parquet(PHARMAVERSE / "adtte_onco.parquet")
    # screen failures have no OS record, TRTSDT or RANDDT: no time zero, left out and counted
    no_t0 = adsl["TRTSDT"].isna() & adsl["RANDDT"].isna() & ~adsl["USUBJID"].isin(tte["USUBJID"])
    assert no_t0.sum() == (adsl["ARM"] == "Screen Failure").sum() == 52
    assert f"ADSL subjects with no time zero (no ADTTE OS STARTDT, TRTSDT, TRTSDTM or RANDDT; e.g. screen failures): " \
           f"{no_t0.sum()}" in stdout
    patients = table(root, cutoff, "patients")
    assert set(patients["patient_id"]) == set(adsl.loc[~no_t0, "USUBJID"])
    # pharmaverse ADAE has AESEV but no CTCAE grade: every record left out, and said so
    assert "ATOXGR" not in adae and "AETOXGR" not in adae
    assert f"no ATOXGR or AETOXGR column; AESEV mild/moderate/severe is not a CTCAE grade): {len(adae)}" in stdout
    # pharmaverse's AVAL is ADT - STARTDT + 1 (checked here on the source), and the summary says so
    os_rows = tte[tte["PARAMCD"] == "OS"]
    plus_one = (os_rows["AVAL"] == (pd.to_datetime(os_rows["ADT"]) - pd.to_datetime(os_rows["STARTDT"])).dt.days + 1)
    assert plus_one.all()
    assert f"AVAL = ADT - STARTDT + 1 on {len(os_rows)}, = ADT - STARTDT on 0" in stdout
    # deaths: the ADTTE OS events (CNSR 0) on their ADT
    deaths = os_rows[os_rows["CNSR"] == 0].set_index("USUBJID")["ADT"]
    got = patients.dropna(subset=["death_date"]).set_index("patient_id")["death_date"]
    assert got.sort_index().to_dict() == deaths.sort_index().to_dict()
    assert "PFS: 254 of 254 subjects agree with ADTTE PFS (event and date)" in stdout
    # parameters not read are named with their counts (pandas on the source)
    assert f"ADTTE parameters not used: RSD ({(tte['PARAMCD'] == 'RSD').sum()})" in stdout


def test_pharmaverse_sum_of_diameters_is_the_sum_pseudo_lesion(imported):
    root, cutoff, _, _ = imported["pharmaverse"]
    adtr = pd.read_parquet(PHARMAVERSE / "adtr_onco.parquet")
    sdiam = adtr[adtr["PARAMCD"] == "SDIAM"]
    m = table(root, cutoff, "lesion_measurements")
    assert set(m["lesion_id"]) == {"SUM"}
    base = m[m["visit"] == "baseline"].set_index("patient_id")["viable_diameter_mm"]
    expected = sdiam[sdiam["AVISIT"] == "BASELINE"].set_index("USUBJID")["AVAL"]
    assert base.sort_index().to_dict() == pytest.approx(expected.sort_index().to_dict())
    lesions = table(root, cutoff, "lesions")
    assert lesions["is_target"].all() and not lesions["is_treated"].any() and lesions["segment"].isna().all()


def day(frame: pd.DataFrame) -> pd.Series:
    """A record's date: ADT, else ADTM's date (pandas on the source)."""
    d = pd.to_datetime(frame["ADT"]) if "ADT" in frame else pd.Series(pd.NaT, index=frame.index)
    return d.fillna(pd.to_datetime(frame["ADTM"])).dt.normalize() if "ADTM" in frame else d.dt.normalize()


WATERFALL_SOURCES = {"pharmaverse": (PHARMAVERSE_FILES, "OVR", "SDIAM"),
                     "random": (RANDOM_FILES, "OVRINV", "SLDINV"),
                     "random_cut": (RANDOM_FILES, "OVRINV", "SLDINV")}


def independent_best_change(files: dict, response_param: str, sum_param: str, cutoff: str) -> pd.Series:
    """Best % change per subject from the source files with pandas: the minimum of ADTR's own PCHG
    over the post-baseline sum records the analysis plan counts ("Best percent change": up to and
    including the first PD), read by the rules docs/adam.md states: not derived (DTYPE empty), at a
    visit with an ADRS overall response, dated (the ADRS date) after time zero and on or before the
    cut-off and the OS death date; the first PD is the first such ADRS visit with AVALC 'PD'."""
    adsl, tte = pd.read_parquet(files["adsl"]), pd.read_parquet(files["adtte"])
    rs, tr = pd.read_parquet(files["adrs"]), pd.read_parquet(files["adtr"])
    cut = pd.Timestamp(cutoff)
    os_ = tte[tte["PARAMCD"] == "OS"].set_index("USUBJID")
    # time zero: ADTTE OS STARTDT, else ADSL TRTSDT, else TRTSDTM's date
    t0 = pd.to_datetime(os_["STARTDT"]) if "STARTDT" in os_ else pd.Series(dtype="datetime64[ns]")
    treated = pd.to_datetime(adsl["TRTSDT"]) if "TRTSDT" in adsl else pd.to_datetime(adsl["TRTSDTM"]).dt.normalize()
    t0 = t0.reindex(adsl["USUBJID"]).fillna(pd.Series(treated.values, index=adsl["USUBJID"].values))
    death = day(os_)[os_["CNSR"] == 0]
    death = death[death <= cut]
    rs = rs[rs["PARAMCD"] == response_param].assign(date=day(rs[rs["PARAMCD"] == response_param]))
    assert not rs.duplicated(["USUBJID", "AVISIT"]).any()        # one response per visit: no ANL01FL choice
    rs = rs[(rs["AVISIT"].str.upper() != "BASELINE") & (rs["date"] > rs["USUBJID"].map(t0)) & (rs["date"] <= cut)
            & ~(rs["date"] > rs["USUBJID"].map(death))]
    first_pd = rs[rs["AVALC"] == "PD"].groupby("USUBJID")["date"].min()
    tr = tr[tr["PARAMCD"] == sum_param]
    if "DTYPE" in tr:
        tr = tr[tr["DTYPE"].fillna("") == ""]
    assert not tr.duplicated(["USUBJID", "AVISIT"]).any()        # one sum per visit: no ANL01FL choice
    post = tr[tr["ABLFL"].fillna("") != "Y"].merge(rs[["USUBJID", "AVISIT", "date"]], on=["USUBJID", "AVISIT"])
    post = post[post["AVAL"].notna() & ~(post["date"] > post["USUBJID"].map(first_pd))]
    return post.groupby("USUBJID")["PCHG"].min().sort_index()


# evaluable patients as independent_best_change counts them (every patient with a baseline sum has
# one: BASE on random.cdisc.data's 400, the baseline AVAL on pharmaverse's 6 with SDIAM)
EVALUABLE = {"pharmaverse": 6, "random": 358, "random_cut": 314}


@pytest.mark.parametrize("name", ["pharmaverse", "random", "random_cut"])
def test_waterfall_best_change_equals_pchg_in_adtr(imported, name):
    """The dashboard's waterfall export on the imported snapshot gives each patient the best % change
    ADTR itself states (PCHG = 100 * (AVAL - BASE) / BASE), computed from the source files with pandas
    (independent_best_change). random.cdisc.data's baseline record has no AVAL, only BASE on every
    record: the 'SUM' pseudo-lesion's baseline is BASE there."""
    from dashboard import data, exports
    from dashboard.data import ALL_SITES
    from dashboard.filters import Filters
    root, cutoff, code, stdout = imported[name]
    assert code == 0, stdout
    files, response_param, sum_param = WATERFALL_SOURCES[name]
    expected = independent_best_change(files, response_param, sum_param, cutoff)
    got = exports.compute_export("waterfall", data.resolve(cutoff, root), Filters(), ALL_SITES)
    best = got.rows.set_index("patient_id")["best_pct_change"].sort_index()
    assert len(best) == len(expected) == EVALUABLE[name]
    assert list(best.index) == list(expected.index)
    assert best.to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-9, rel=0)
    assert got.extra["n_not_evaluable"] == got.n_patients - len(expected)
    # no baseline sum: the patients whose ADTR baseline record (ABLFL 'Y') has neither AVAL nor BASE
    tr = pd.read_parquet(files["adtr"])
    base = tr[(tr["PARAMCD"] == sum_param) & (tr["ABLFL"] == "Y")]
    with_base = set(base.loc[base["AVAL"].fillna(base["BASE"]).notna(), "USUBJID"])
    patients = set(table(root, cutoff, "patients")["patient_id"])
    assert got.extra["not_evaluable_reasons"]["no baseline sum"] == len(patients - with_base)
    assert len(patients - with_base) == {"pharmaverse": 254 - 6, "random": 0, "random_cut": 0}[name]


@pytest.mark.parametrize("name,ref", [("pharmaverse", "pharmaverse"), ("random", "random"),
                                      ("random_cut", "random_cut_2021_06_30")])
def test_os_median_equals_r_survfit_on_adtte(imported, capsys, name, ref):
    """The dashboard's OS Kaplan-Meier (km-summary export) on the imported snapshot equals R's
    survfit(Surv(time, CNSR == 0) ~ 1, conf.type = "log-log") on the ADTTE OS rows
    (tests/reference/make_adam_reference.R, r_adam_os.json)."""
    root = imported[name][0]
    r = R_OS[ref]
    row = km_summary(capsys, root)
    assert (row["n"], row["events"]) == (r["n"], r["events"])
    assert row["median_days"] == r["median"]
    assert row["median_ci_lower_days"] == r["median_lower"]
    assert row["median_ci_upper_days"] == r["median_upper"]
    for t, n_risk, s in zip(r["times"], r["n_risk"], r["surv"]):
        if n_risk == 0:                 # beyond the last follow-up R extends S; the dashboard says not estimable
            assert row[f"surv_{t}"] is None
        else:
            assert row[f"surv_{t}"] == pytest.approx(s, abs=1e-12)
    if name == "random":
        assert row["median_days"] == 976 and row["surv_365"] == pytest.approx(0.800274049124849, abs=1e-12)


def independent_worst_grade(cutoff: str) -> pd.Series:
    """Worst CTCAE grade per subject from cadae with pandas, by the rules docs/adam.md states:
    onset on or after time zero (TRTSDTM's date) and on or before the cut-off and the OS death date;
    grade 5 only for a subject whose ADTTE OS death (CNSR 0) is on or before the cut-off."""
    ae = pd.read_parquet(RANDOM / "cadae.parquet")
    adsl = pd.read_parquet(RANDOM / "cadsl.parquet")
    tte = pd.read_parquet(RANDOM / "cadtte.parquet")
    cut = pd.Timestamp(cutoff)
    t0 = ae["USUBJID"].map(adsl.set_index("USUBJID")["TRTSDTM"].dt.normalize())
    os_ = tte[tte["PARAMCD"] == "OS"]
    death = os_[os_["CNSR"] == 0].set_index("USUBJID")["ADTM"].dt.normalize()
    death = death[death <= cut]
    d = ae["USUBJID"].map(death)
    onset = ae["ASTDTM"].dt.normalize()
    grade = ae["AETOXGR"].astype(int)
    keep = (onset >= t0) & (onset <= cut) & ~(d.notna() & (onset > d)) & ~((grade == 5) & d.isna())
    return grade[keep].groupby(ae.loc[keep, "USUBJID"]).max().sort_index()


@pytest.mark.parametrize("name", ["random", "random_cut"])
def test_worst_grade_per_patient_equals_pandas_on_adae(imported, name):
    from dashboard import data
    root, cutoff, _, stdout = imported[name]
    snap = data.resolve(cutoff, root)
    worst = data.query("ae_worst_grade_all", snap)
    worst = worst[worst["level"] == "overall"].set_index("patient_id")["worst_grade"].astype(int).sort_index()
    expected = independent_worst_grade(cutoff)
    assert worst.to_dict() == expected.to_dict()
    assert worst.value_counts().sort_index().to_dict() == expected.value_counts().sort_index().to_dict()
    assert "grade 5 ADAE records of subjects with no death date in the snapshot" in stdout


def test_data_cut_on_random_cdisc_data(imported):
    root, cutoff, _, stdout = imported["random_cut"]
    cut = pd.Timestamp(cutoff)
    patients = table(root, cutoff, "patients")
    tte = pd.read_parquet(RANDOM / "cadtte.parquet")
    os_ = tte[tte["PARAMCD"] == "OS"]
    died = os_[os_["CNSR"] == 0].set_index("USUBJID")["ADTM"].dt.normalize()
    late = died[died > cut]
    assert f"deaths after the cut-off: cleared, censored at the cut-off: {len(late)}" in stdout
    cleared = patients.set_index("patient_id").loc[late.index]
    assert cleared["death_date"].isna().all()
    assert (pd.to_datetime(cleared["last_known_alive_date"]) == cut).all()
    for name, col in (("imaging", "imaging_date"), ("adverse_events", "onset_date"),
                      ("adverse_events", "resolution_date")):
        assert (pd.to_datetime(table(root, cutoff, name)[col].dropna()) <= cut).all()


def test_pilot_xpt_reads_dates_as_dates_and_has_no_os(imported):
    root, cutoff, _, stdout = imported["pilot_xpt"]
    import pyreadstat
    adsl, _ = pyreadstat.read_xport(str(PILOT_XPT / "adsl.xpt"))
    patients = table(root, cutoff, "patients").set_index("patient_id")
    assert patients["first_treatment_date"].to_dict() == adsl.set_index("USUBJID")["TRTSDT"].to_dict()
    # the pilot ADTTE is time to first dermatologic event: no OS, so every subject is censored at day 0, said so
    assert "ADTTE has no OS record (PARAMCDs: TTDE)" in stdout
    assert "no follow-up information (alive at time zero, censored at day 0) for 254" in stdout
    assert patients["death_date"].isna().all()
    assert (patients["last_known_alive_date"] == patients["first_treatment_date"]).all()
    # missing text is "" in .xpt: DTHFL "" is not a value anywhere; the pilot ADAE has no grade
    assert "no ATOXGR or AETOXGR column" in stdout


# --- bad input: exit 2, a message naming dataset, row / USUBJID and column, nothing published --------
@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """Twenty treated pharmaverse subjects as CSV (ADSL, ADTTE), and forty random.cdisc.data ADAE rows."""
    folder = tmp_path_factory.mktemp("small")
    adsl = pd.read_parquet(PHARMAVERSE / "adsl.parquet")
    adsl = adsl[adsl["TRTSDT"].notna()].head(20)
    tte = pd.read_parquet(PHARMAVERSE / "adtte_onco.parquet")
    tte = tte[tte["USUBJID"].isin(adsl["USUBJID"])]
    adsl.to_csv(folder / "adsl.csv", index=False)
    tte.to_csv(folder / "adtte.csv", index=False)
    return folder, adsl, tte


def nothing_published(root: Path) -> bool:
    snaps = root / "snapshots"
    return not snaps.exists() or not [p for p in snaps.iterdir() if not p.name.startswith(".")]


def test_small_csv_imports(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    code, out, err = import_adam(capsys, tmp_path, FAR_CUTOFF, adsl=folder / "adsl.csv", adtte=folder / "adtte.csv")
    assert code == 0, err
    assert len(table(tmp_path, FAR_CUTOFF, "patients")) == 20


def bad_import(capsys, tmp_path, **files) -> str:
    code, out, err = import_adam(capsys, tmp_path, FAR_CUTOFF, **files)
    assert code == 2, out + err
    assert err.startswith("import adam: nothing published:"), err
    assert "Traceback" not in err
    assert nothing_published(tmp_path)
    return err


def test_adsl_without_usubjid(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    adsl.drop(columns="USUBJID").to_csv(tmp_path / "adsl.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=tmp_path / "adsl.csv")
    assert "ADSL file adsl.csv, field USUBJID: column missing" in err


def test_adtte_subject_not_in_adsl(small_csv, tmp_path, capsys):
    folder, adsl, tte = small_csv
    bad = tte.copy()
    bad.iloc[4, bad.columns.get_loc("USUBJID")] = "99-999-9999"
    bad.to_csv(tmp_path / "adtte.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", adtte=tmp_path / "adtte.csv")
    assert "ADTTE row 5 (USUBJID 99-999-9999), field USUBJID: '99-999-9999' is not a USUBJID of ADSL" in err


@pytest.mark.parametrize("value", ["censored", "0.5"])
def test_cnsr_not_an_integer(small_csv, tmp_path, capsys, value):
    folder, adsl, tte = small_csv
    bad = tte.copy().astype({"CNSR": object})
    row = bad.index[bad["PARAMCD"] == "OS"][2]
    bad.loc[row, "CNSR"] = value
    bad.to_csv(tmp_path / "adtte.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", adtte=tmp_path / "adtte.csv")
    n = list(bad.index).index(row) + 1
    assert f"ADTTE row {n} (USUBJID {bad.loc[row, 'USUBJID']}), field CNSR: '{value}' is not an integer" in err


@pytest.mark.parametrize("suffix", [".parquet", ".xpt"])
def test_unreadable_file(small_csv, tmp_path, capsys, suffix):
    folder, _, _ = small_csv
    junk = tmp_path / f"adae{suffix}"
    junk.write_bytes(b"this is not a dataset\n" * 10)
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", adae=junk)
    assert f"ADAE file {junk}: cannot be read as {suffix[1:]}" in err


def test_missing_file_and_unknown_type(small_csv, tmp_path, capsys):
    folder, _, _ = small_csv
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", adrs=tmp_path / "nope.parquet")
    assert "ADRS file" in err and "no such file" in err
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.sas7bdat")
    assert "unknown file type '.sas7bdat'" in err


def test_grade_seven(tmp_path, capsys):
    ae = pd.read_parquet(RANDOM / "cadae.parquet")
    ae.loc[10, "AETOXGR"] = "7"
    ae.to_parquet(tmp_path / "adae.parquet")
    err = bad_import(capsys, tmp_path / "root", adsl=RANDOM / "cadsl.parquet", adtte=RANDOM / "cadtte.parquet",
                     adae=tmp_path / "adae.parquet")
    assert f"ADAE row 11 (USUBJID {ae.loc[10, 'USUBJID']}), field AETOXGR: 7 is above the maximum 5" in err


def test_sex_outside_the_contract(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    bad = adsl.copy()
    bad.iloc[3, bad.columns.get_loc("SEX")] = "U"
    bad.to_csv(tmp_path / "adsl.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=tmp_path / "adsl.csv")
    assert f"ADSL row 4 (USUBJID {bad.iloc[3]['USUBJID']}), field SEX: 'U' is not M or F" in err


def test_bad_date_in_csv(small_csv, tmp_path, capsys):
    folder, adsl, tte = small_csv
    bad = tte.copy().astype({"ADT": object})
    bad.iloc[0, bad.columns.get_loc("ADT")] = "2014-02-30"
    bad.to_csv(tmp_path / "adtte.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", adtte=tmp_path / "adtte.csv")
    assert f"ADTTE row 1 (USUBJID {bad.iloc[0]['USUBJID']}), field ADT: '2014-02-30' is not a date" in err


# --- --map and --sites ------------------------------------------------------------------------
def test_map_names_a_column_not_in_adsl(small_csv, tmp_path, capsys):
    folder, _, _ = small_csv
    (tmp_path / "map.json").write_text(json.dumps({"bclc_stage": "BCLCBL"}))
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", map=tmp_path / "map.json")
    assert "field bclc_stage: names ADSL column 'BCLCBL', which adsl.csv does not have" in err


def test_map_fills_baseline_columns_with_value_maps(small_csv, tmp_path, capsys):
    folder, adsl, tte = small_csv
    rich = adsl.copy()
    stages = ["BCLC-A", "bclc-b ", "BCLC-C", "UNKNOWN", ""] * 4
    rich["BCLCBL"] = stages
    rich["CPSCORE"] = [5, 6, 7, 9, 10] * 4
    rich["PVTFL"] = ["Y", "N", "N", "N", ""] * 4
    rich["ECOGBL"] = [0, 1, 2, 0, 1] * 4
    rich["CENTRE"] = rich["SITEID"].map(lambda s: f"Hospital {s}")
    rich.to_csv(tmp_path / "adsl.csv", index=False)
    (tmp_path / "map.json").write_text(json.dumps({
        "_comment": "site columns in this sponsor's ADSL",
        "bclc_stage": {"column": "BCLCBL", "values": {"BCLC-A": "A", "BCLC-B": "B", "BCLC-C": "C", "Unknown": None}},
        "child_pugh_score": "CPSCORE",
        "has_macrovascular_invasion": "pvtfl",
        "site_name": "CENTRE"}))
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=tmp_path / "adsl.csv",
                                 adtte=folder / "adtte.csv", map=tmp_path / "map.json")
    assert code == 0, err
    p = table(tmp_path / "root", FAR_CUTOFF, "patients").set_index("patient_id").loc[rich["USUBJID"]]
    # values matched trimmed and in any case; "UNKNOWN" mapped to null, "" is missing
    assert p["bclc_stage"].tolist() == ["A", "B", "C", None, None] * 4
    assert p["child_pugh_score"].tolist() == rich["CPSCORE"].tolist()
    # the class follows from the score by definition (Pugh 1973), the contract's child_pugh_class()
    assert p["child_pugh_class"].tolist() == ["A", "A", "B", "B", "C"] * 4
    assert p["has_macrovascular_invasion"].tolist() == [True, False, False, False, None] * 4
    # ECOGBL is used without a map entry (an unambiguous standard name), and the summary says so
    assert p["ecog_ps"].tolist() == rich["ECOGBL"].tolist()
    assert "patients.ecog_ps: from ADSL ECOGBL (standard name); 0 of 20 null" in out
    assert "patients.bclc_stage: from ADSL BCLCBL (--map); 8 of 20 null" in out
    assert "patients.etiology: not in ADSL (map a column with --map); 20 of 20 null" in out
    sites = table(tmp_path / "root", FAR_CUTOFF, "sites")
    assert (sites["site_name"] == "Hospital " + sites["site_id"]).all()


def test_map_value_outside_the_contract(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    rich = adsl.copy()
    rich["ECOGBL"] = [0, 1, 7, 0, 1] * 4
    rich.to_csv(tmp_path / "adsl.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=tmp_path / "adsl.csv")
    assert f"ADSL row 3 (USUBJID {rich.iloc[2]['USUBJID']}), field ECOGBL: ECOGBL (for ecog_ps): '7' is not a " \
           "whole number in 0..4" in err


def test_sites_csv(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    sites = sorted(adsl["SITEID"].unique())
    pd.DataFrame({"site_id": sites, "site_name": [f"Site {s}" for s in sites],
                  "activation_date": "2012-01-15", "target_enrollment": 40}).to_csv(tmp_path / "sites.csv", index=False)
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=folder / "adsl.csv",
                                 sites=tmp_path / "sites.csv")
    assert code == 0, err
    got = table(tmp_path / "root", FAR_CUTOFF, "sites").set_index("site_id")
    assert got.loc[sites, "site_name"].tolist() == [f"Site {s}" for s in sites]
    assert (got["target_enrollment"] == 40).all()
    assert "sites.activation_date" not in out


def test_real_process_exit_code_and_progress_bar(small_csv, tmp_path):
    """The command as a user runs it: exit 2 with the problem on stderr, no traceback; and a
    progress bar on stderr unless --quiet."""
    folder, adsl, _ = small_csv
    adsl.drop(columns="USUBJID").to_csv(tmp_path / "adsl.csv", index=False)
    cmd = [sys.executable, "-m", "dashboard", "import", "adam", "--cutoff", FAR_CUTOFF, "--out", str(tmp_path / "r")]
    bad = subprocess.run(cmd + ["--adsl", str(tmp_path / "adsl.csv")], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "field USUBJID: column missing" in bad.stderr and "Traceback" not in bad.stderr
    good = subprocess.run(cmd + ["--adsl", str(folder / "adsl.csv")], cwd=ROOT, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert "import adam" in good.stderr and "step" in good.stderr


# --- ADRS / ADTR / ADAE rules on a hand-made study (every expected value worked out by hand) -------
ADSL_CSV = """STUDYID,USUBJID,SITEID,AGE,AGEU,SEX,TRTSDT,LSTALVDT
S1,S1-001,A,61,YEARS,M,2024-01-10,2024-09-01
S1,S1-002,A,70,YEARS,F,2024-02-01,2024-08-15
S1,S1-003,B,55,YEARS,M,,
"""
ADTTE_CSV = """USUBJID,PARAMCD,STARTDT,ADT,AVAL,AVALU,CNSR
S1-001,OS,2024-01-10,,20,WEEKS,1
S1-002,OS,2024-02-01,2024-06-30,,,0
"""
ADRS_CSV = """USUBJID,PARAMCD,AVISIT,ADT,AVALC,ANL01FL
S1-001,OVR,SCREENING,2023-12-20,,
S1-001,OVR,BASELINE,2024-01-05,SD,
S1-001,OVR,WEEK 6,2024-02-21,NON-CR/NON-PD,Y
S1-001,OVR,WEEK 12,2024-04-03,PD,Y
S1-001,OVR,WEEK 12,2024-04-03,SD,
S1-001,NEWLPROG,WEEK 12,2024-04-03,Y,
S1-001,NEWLPROG,WEEK 6,2024-02-21,N,
S1-002,OVR,WEEK 6,2024-03-14,MISSING,
S1-002,OVR,WEEK 30,2024-08-28,PR,
"""
ADTR_CSV = """USUBJID,PARAMCD,AVISIT,ADT,AVAL,AVALU,ABLFL,DTYPE
S1-001,SUMDIAM,BASELINE,2024-01-05,5.2,cm,Y,
S1-001,SUMDIAM,WEEK 6,2024-02-21,4.0,cm,,
S1-001,SUMDIAM,WEEK 9,2024-03-13,3.5,cm,,
S1-001,SUMDIAM,WEEK 12,2024-04-03,4.0,cm,,LOCF
S1-002,SUMDIAM,SCREENING,2024-01-20,30,mm,,
"""
ADAE_CSV = """USUBJID,AESEQ,AEDECOD,AESOC,ATOXGR,AETOXGR,ASTDT,AENDT,AESER,AREL
S1-001,1,FEVER,GENERAL DISORDERS,Grade 2,1,2024-01-12,2024-01-14,N,POSSIBLE
S1-001,2,Nausea,GASTROINTESTINAL DISORDERS,1,,2024-01-05,,N,NONE
S1-001,3,Headache,NERVOUS SYSTEM DISORDERS,,3,2024-03-01,2024-12-31,Y,
S1-002,1,Hepatic failure,HEPATOBILIARY DISORDERS,5,,2024-06-30,,Y,REMOTE
S1-002,2,Anorexia,METABOLISM AND NUTRITION DISORDERS,2,,2024-07-02,,N,N
"""


@pytest.fixture
def hand_study(tmp_path):
    files = {}
    for name, body in (("adsl", ADSL_CSV), ("adtte", ADTTE_CSV), ("adrs", ADRS_CSV), ("adtr", ADTR_CSV),
                       ("adae", ADAE_CSV)):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text(body)
    return files


def test_hand_made_study(hand_study, tmp_path, capsys):
    code, out, err = import_adam(capsys, tmp_path / "root", "2024-12-31", **hand_study)
    assert code == 0, err
    root, cut = tmp_path / "root", "2024-12-31"
    p = table(root, cut, "patients").set_index("patient_id")
    # S1-003 has no time zero; S1-001's OS date is STARTDT + 20 weeks = 140 days (AVAL convention not
    # checkable: no record has both ADT and AVAL); its LSTALVDT 2024-09-01 is later: censored there
    assert list(p.index) == ["S1-001", "S1-002"]
    assert str(p.at["S1-001", "last_known_alive_date"]) == "2024-09-01"
    assert pd.isna(p.at["S1-001", "death_date"]) and str(p.at["S1-002", "death_date"]) == "2024-06-30"
    assert str(p.at["S1-002", "last_known_alive_date"]) == "2024-06-30"   # the dead: their death date
    assert p.at["S1-002", "off_study_reason"] == "death"
    img = table(root, cut, "imaging").set_index(["patient_id", "visit"]).sort_index()
    # ABLFL-less ADRS: BASELINE is the baseline (its SD ignored), SCREENING is before time zero (left out);
    # the ANL01FL record wins at a visit with two; NON-CR/NON-PD -> SD; MISSING -> NE; WEEK 9 has a
    # sum but no response (left out); S1-002's WEEK 30 is after its death; its SCREENING sum is its baseline
    assert img["overall_response"].to_dict() == {
        ("S1-001", "WEEK 12"): "PD", ("S1-001", "WEEK 6"): "SD", ("S1-001", "baseline"): None,
        ("S1-002", "WEEK 6"): "NE", ("S1-002", "baseline"): None}
    assert img["has_new_lesion"].to_dict() == {
        ("S1-001", "WEEK 12"): True, ("S1-001", "WEEK 6"): False, ("S1-001", "baseline"): None,
        ("S1-002", "WEEK 6"): None, ("S1-002", "baseline"): None}
    m = table(root, cut, "lesion_measurements").set_index(["patient_id", "visit"])["viable_diameter_mm"].sort_index()
    # cm -> mm; the LOCF (DTYPE) record is derived, not measured: left out
    assert m.to_dict() == {("S1-001", "WEEK 6"): 40.0, ("S1-001", "baseline"): 52.0, ("S1-002", "baseline"): 30.0}
    for line in ("ADTR SUMDIAM derived records (DTYPE set, e.g. LOCF or MINIMUM): 1",
                 "ADRS OVR records not flagged ANL01FL at a visit with several: 1",
                 "post-baseline visits on or before time zero (e.g. screening besides the baseline): cannot be "
                 "follow-ups: 1",
                 "imaging visits after the subject's death date: 1",
                 "follow-up visits with a sum of diameters but no overall response in ADRS (the contract needs a "
                 "response at every follow-up): 1",
                 "response codes mapped: NON-CR/NON-PD -> SD (1), MISSING -> NE (1)",
                 "ADSL subjects with no time zero (no ADTTE OS STARTDT, TRTSDT, TRTSDTM or RANDDT; e.g. screen "
                 "failures): 1"):
        assert line in out, line
    ae = table(root, cut, "adverse_events").set_index(["patient_id", "ae_id"]).sort_index()
    # ATOXGR before AETOXGR ("Grade 2" -> 2), AETOXGR where ATOXGR is empty; S1-001's AE 2 starts before
    # time zero, S1-002's AE 2 after its death; a registry term takes the CTCAE SOC and spelling; a grade 5
    # with the death date stays
    assert ae["grade"].to_dict() == {("S1-001", "1"): 2, ("S1-001", "3"): 3, ("S1-002", "1"): 5}
    assert ae.at[("S1-001", "1"), "term"] == "Fever"
    assert ae.at[("S1-001", "1"), "soc"] == "General disorders and administration site conditions"
    # POSSIBLE is related, REMOTE is not, a missing relationship counts as related (conservative)
    assert ae["is_treatment_related"].to_dict() == {("S1-001", "1"): True, ("S1-001", "3"): True,
                                                    ("S1-002", "1"): False}
    assert "AE grade from AETOXGR where ATOXGR is empty: 1" in out
    assert "relationship missing on 1 (counted as related)" in out
    assert "ADAE records with onset after the subject's death date: 1" in out
    assert str(ae.at[("S1-001", "1"), "resolution_date"]) == "2024-01-14"
    assert "ADAE records with onset before time zero (not treatment-emergent): 1" in out


def test_hand_made_study_bad_response_code(hand_study, tmp_path, capsys):
    hand_study["adrs"].write_text(ADRS_CSV.replace("S1-002,OVR,WEEK 6,2024-03-14,MISSING", "S1-002,OVR,WEEK 6,2024-03-14,GOOD"))
    err = bad_import(capsys, tmp_path / "root", **hand_study)
    assert "ADRS row 8 (USUBJID S1-002), field AVALC: 'GOOD' is not an overall response" in err


def test_hand_made_study_two_records_at_a_visit(hand_study, tmp_path, capsys):
    hand_study["adtr"].write_text(ADTR_CSV + "S1-001,SUMDIAM,WEEK 6,2024-02-22,4.1,cm,,\n")
    err = bad_import(capsys, tmp_path / "root", **hand_study)
    assert "ADTR row 6 (USUBJID S1-001), field AVISIT: more than one SUMDIAM record at visit 'WEEK 6'" in err


# ADTR whose baseline records carry BASE: S1-001's has no AVAL (BASE is its baseline), S1-002's
# SCREENING baseline has an AVAL that BASE contradicts (the AVAL wins, said so)
ADTR_BASE_CSV = """USUBJID,PARAMCD,AVISIT,ADT,AVAL,BASE,AVALU,ABLFL,DTYPE
S1-001,SUMDIAM,BASELINE,2024-01-05,,5.2,cm,Y,
S1-001,SUMDIAM,WEEK 6,2024-02-21,4.0,5.2,cm,,
S1-001,SUMDIAM,WEEK 9,2024-03-13,3.5,5.2,cm,,
S1-001,SUMDIAM,WEEK 12,2024-04-03,4.0,9.9,cm,,LOCF
S1-002,SUMDIAM,SCREENING,2024-01-20,30,31,mm,,
"""


def test_hand_made_baseline_sum_from_base(hand_study, tmp_path, capsys):
    from dashboard import data, exports
    from dashboard.data import ALL_SITES
    from dashboard.filters import Filters
    hand_study["adtr"].write_text(ADTR_BASE_CSV)
    code, out, err = import_adam(capsys, tmp_path / "root", "2024-12-31", **hand_study)
    assert code == 0, err
    m = table(tmp_path / "root", "2024-12-31", "lesion_measurements")
    m = m.set_index(["patient_id", "visit"])["viable_diameter_mm"].sort_index()
    # S1-001's baseline is BASE 5.2 cm (the derived LOCF record's 9.9 is not read); S1-002's its AVAL 30 mm
    assert m.to_dict() == {("S1-001", "WEEK 6"): 40.0, ("S1-001", "baseline"): 52.0, ("S1-002", "baseline"): 30.0}
    assert "baseline sum of diameters (SUMDIAM): the baseline record's AVAL for 1 subject(s), BASE for 1 (the " \
           "baseline record has no AVAL)" in out
    assert "ADTR SUMDIAM BASE differs from the baseline record's AVAL for 1 subject(s): the AVAL is used" in out
    assert "records with no value" not in out
    # S1-001's waterfall bar: WEEK 6 (WEEK 9 has no ADRS response, left out): 100 * (40 - 52) / 52 by hand
    got = exports.compute_export("waterfall", data.resolve("2024-12-31", tmp_path / "root"), Filters(), ALL_SITES)
    assert got.rows.set_index("patient_id")["best_pct_change"].to_dict() == {"S1-001": pytest.approx(-23.0769230769)}


def test_hand_made_base_disagrees_without_a_baseline_aval(hand_study, tmp_path, capsys):
    """Two BASE values for a subject whose baseline record has no AVAL: two baselines, no rule to pick
    one; every % change of the patient depends on it, so the import stops (exit 2) naming the rows."""
    hand_study["adtr"].write_text(ADTR_BASE_CSV.replace("WEEK 6,2024-02-21,4.0,5.2", "WEEK 6,2024-02-21,4.0,5.3"))
    err = bad_import(capsys, tmp_path / "root", **hand_study)
    assert "ADTR row 2 (USUBJID S1-001), field BASE: 5.3: the subject's SUMDIAM records disagree on BASE and its " \
           "baseline record has no AVAL, so the baseline sum is not known" in err
    assert "ADTR row 1 (USUBJID S1-001), field BASE: 5.2" in err and "USUBJID S1-002" not in err
    # with the baseline AVAL given, the AVAL is the baseline and the stray BASE does not matter
    hand_study["adtr"].write_text(ADTR_BASE_CSV.replace("BASELINE,2024-01-05,,5.2", "BASELINE,2024-01-05,5.2,5.2")
                                  .replace("WEEK 6,2024-02-21,4.0,5.2", "WEEK 6,2024-02-21,4.0,5.3"))
    code, out, err = import_adam(capsys, tmp_path / "root", "2024-12-31", **hand_study)
    assert code == 0, err
    assert "the baseline record's AVAL for 2 subject(s), BASE for 0" in out


def test_hand_made_sum_not_a_number(hand_study, tmp_path, capsys):
    hand_study["adtr"].write_text(ADTR_CSV.replace("WEEK 6,2024-02-21,4.0", "WEEK 6,2024-02-21,four"))
    err = bad_import(capsys, tmp_path / "root", **hand_study)
    assert "ADTR row 2 (USUBJID S1-001), field AVAL: 'four' is not a number" in err


def test_cutoff_before_every_time_zero(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    code, out, err = import_adam(capsys, tmp_path / "root", "2001-01-01", adsl=folder / "adsl.csv")
    assert code == 2 and nothing_published(tmp_path / "root")
    assert "no subject has a time zero on or before the cut-off 2001-01-01" in err
    assert "ADSL subjects whose time zero is after the cut-off: 20" in err


def test_windows_csv_and_empty_file(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    named = adsl.copy()
    named["CENTRE"] = "Hôpital Saint-Éloi"
    named.to_csv(tmp_path / "adsl.csv", index=False, encoding="cp1252")
    (tmp_path / "map.json").write_text('{"site_name": "CENTRE"}')
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=tmp_path / "adsl.csv",
                                 map=tmp_path / "map.json")
    assert code == 0, err
    assert set(table(tmp_path / "root", FAR_CUTOFF, "sites")["site_name"]) == {"Hôpital Saint-Éloi"}
    (tmp_path / "empty.csv").write_text("")
    err = bad_import(capsys, tmp_path / "root2", adsl=tmp_path / "empty.csv")
    assert f"ADSL file {tmp_path / 'empty.csv'}: cannot be read as csv" in err


def test_xpt_empty_text_is_missing(tmp_path, capsys):
    """In SAS XPORT missing text is "": an ADAE .xpt (the pilot's, with an AETOXGR column added,
    written by pyreadstat) whose empty grades and relationships count as missing, not as values."""
    import numpy as np
    import pyreadstat
    ae, _ = pyreadstat.read_xport(str(PILOT_XPT / "adae.xpt"))
    ae = ae[["USUBJID", "AESEQ", "AEDECOD", "AESOC", "ASTDT", "AENDT", "AESER", "AEREL"]].copy()
    ae["AETOXGR"] = np.where(np.arange(len(ae)) % 5 == 0, "", (np.arange(len(ae)) % 3 + 1).astype(str))
    pyreadstat.write_xport(ae, str(tmp_path / "adae.xpt"), file_format_version=5, table_name="ADAE")
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=PILOT_XPT / "adsl.xpt",
                                 adae=tmp_path / "adae.xpt")
    assert code == 0, err
    adsl, _ = pyreadstat.read_xport(str(PILOT_XPT / "adsl.xpt"))
    t0 = ae["USUBJID"].map(adsl.set_index("USUBJID")["TRTSDT"])
    graded = ae["AETOXGR"] != ""
    onset = pd.to_datetime(ae["ASTDT"])
    keep = graded & onset.notna() & (onset >= pd.to_datetime(t0))
    assert f"ADAE records with no CTCAE grade (ATOXGR and AETOXGR empty): {(~graded).sum()}" in out
    assert f"ADAE records with no onset date (ASTDT empty): {(graded & onset.isna()).sum()}" in out
    assert f"relationship missing on {(keep & (ae['AEREL'] == '')).sum()} (counted as related)" in out
    got = table(tmp_path / "root", FAR_CUTOFF, "adverse_events")
    assert len(got) == keep.sum()
    worst = got.groupby("patient_id")["grade"].max().sort_index()
    expected = ae.loc[keep, "AETOXGR"].astype(int).groupby(ae.loc[keep, "USUBJID"]).max().sort_index()
    assert worst.to_dict() == expected.to_dict()


def test_sites_csv_bad_date_and_extra_site(small_csv, tmp_path, capsys):
    folder, adsl, _ = small_csv
    sites = sorted(adsl["SITEID"].unique())
    pd.DataFrame({"site_id": sites + ["999"], "site_name": "x", "activation_date": ["2012-01-15"] * len(sites)
                  + ["2012-13-01"], "target_enrollment": 40}).to_csv(tmp_path / "sites.csv", index=False)
    err = bad_import(capsys, tmp_path / "root", adsl=folder / "adsl.csv", sites=tmp_path / "sites.csv")
    assert f"sites CSV row {len(sites) + 1} (site_id 999), field activation_date: '2012-13-01' is not a date" in err
    pd.DataFrame({"site_id": sites + ["999"], "target_enrollment": 40}).to_csv(tmp_path / "sites.csv", index=False)
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=folder / "adsl.csv",
                                 sites=tmp_path / "sites.csv")
    assert code == 0, err
    got = table(tmp_path / "root", FAR_CUTOFF, "sites").set_index("site_id")
    assert got.at["999", "site_name"] == "999" and len(got) == len(sites) + 1    # a site without subjects yet
    assert f"sites.activation_date: not in ADaM (give --sites CSV); {len(sites) + 1} of {len(sites) + 1} null" in out


def test_date_rebuilt_from_aval_follows_the_convention_found(small_csv, tmp_path, capsys):
    """pharmaverse counts AVAL = ADT - STARTDT + 1: an OS record whose ADT is blanked gets its date back
    as STARTDT + AVAL - 1, the ADT it had (the other records show the convention)."""
    folder, adsl, tte = small_csv
    bad = tte.copy().astype({"ADT": object})
    row = bad.index[bad["PARAMCD"] == "OS"][3]
    uid, adt = bad.loc[row, "USUBJID"], bad.loc[row, "ADT"]
    bad.loc[row, "ADT"] = None
    bad.to_csv(tmp_path / "adtte.csv", index=False)
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=folder / "adsl.csv",
                                 adtte=tmp_path / "adtte.csv")
    assert code == 0, err
    n_os = (tte["PARAMCD"] == "OS").sum()
    assert f"AVAL = ADT - STARTDT + 1 on {n_os - 1}, = ADT - STARTDT on 0" in out
    assert "OS dates from STARTDT + AVAL (AVALU, or days where AVALU is empty) for 1 subject(s)" in out
    p = table(tmp_path / "root", FAR_CUTOFF, "patients").set_index("patient_id")
    got = p.at[uid, "death_date"] if pd.notna(p.at[uid, "death_date"]) else p.at[uid, "last_known_alive_date"]
    assert str(got) == str(adt)


def test_wrong_file_given_as_adsl(tmp_path, capsys):
    """A data manager passes ADAE as --adsl: one clear line first, a few examples, nothing published."""
    err = bad_import(capsys, tmp_path / "root", adsl=PHARMAVERSE / "adae.parquet")
    ae = pd.read_parquet(PHARMAVERSE / "adae.parquet")
    shared = ae["USUBJID"].duplicated(keep=False).sum()
    assert err.splitlines()[1] == (f"ADSL file adae.parquet, field USUBJID: {shared} of {len(ae)} rows share their "
                                   "USUBJID with another row; ADSL has one row per subject (is this the ADSL file?)")
    assert len(err.splitlines()) == 1 + 1 + 5
