"""The ADaM importer on the public ADaM test data (../shared/testdata, written by others), through
the command line `python -m dashboard import adam`, into temporary data roots.

Expected numbers come from outside the importer: Kaplan-Meier OS from R's survival package on the
ADTTE rows (tests/reference/make_adam_reference.R -> r_adam_os.json), worst AE grades and row
counts from pandas on the source files in the tests themselves.
"""
from __future__ import annotations

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
        import contextlib
        import io
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
    stages = ["BCLC-A", "BCLC-B", "BCLC-C", ""] * 5
    rich["BCLCBL"] = stages
    rich["CPSCORE"] = [5, 6, 7, 9, 10] * 4
    rich["PVTFL"] = ["Y", "N", "N", "N", ""] * 4
    rich["ECOGBL"] = [0, 1, 2, 0, 1] * 4
    rich["CENTRE"] = rich["SITEID"].map(lambda s: f"Hospital {s}")
    rich.to_csv(tmp_path / "adsl.csv", index=False)
    (tmp_path / "map.json").write_text(json.dumps({
        "_comment": "site columns in this sponsor's ADSL",
        "bclc_stage": {"column": "BCLCBL", "values": {"BCLC-A": "A", "BCLC-B": "B", "BCLC-C": "C"}},
        "child_pugh_score": "CPSCORE",
        "has_macrovascular_invasion": "pvtfl",
        "site_name": "CENTRE"}))
    code, out, err = import_adam(capsys, tmp_path / "root", FAR_CUTOFF, adsl=tmp_path / "adsl.csv",
                                 adtte=folder / "adtte.csv", map=tmp_path / "map.json")
    assert code == 0, err
    p = table(tmp_path / "root", FAR_CUTOFF, "patients").set_index("patient_id").loc[rich["USUBJID"]]
    assert p["bclc_stage"].tolist() == [{"BCLC-A": "A", "BCLC-B": "B", "BCLC-C": "C"}.get(s) for s in stages]
    assert p["child_pugh_score"].tolist() == rich["CPSCORE"].tolist()
    # the class follows from the score by definition (Pugh 1973), the contract's child_pugh_class()
    assert p["child_pugh_class"].tolist() == ["A", "A", "B", "B", "C"] * 4
    assert p["has_macrovascular_invasion"].tolist() == [True, False, False, False, None] * 4
    # ECOGBL is used without a map entry (an unambiguous standard name), and the summary says so
    assert p["ecog_ps"].tolist() == rich["ECOGBL"].tolist()
    assert "patients.ecog_ps: from ADSL ECOGBL (standard name); 0 of 20 null" in out
    assert "patients.bclc_stage: from ADSL BCLCBL (--map); 5 of 20 null" in out
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
