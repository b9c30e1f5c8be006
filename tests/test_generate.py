"""The synthetic registry generator (dashboard/generate.py).

One cohort of 1,500 patients is generated once per module (twelve quarterly cuts) and checked
for determinism, consistency between cuts, the snapshot contract (through the validator), and
realism against the calibration table of docs/domain.md section 7 (each band names its row).
Bands are about four standard errors wide for the group sizes of this cohort.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from lifelines import KaplanMeierFitter

from dashboard.contract import TABLES
from dashboard.generate import cut_dates, generate_registry
from dashboard.snapshots import get_snapshot, list_snapshots

N_PATIENTS = 1500
SEED = 7
MONTH = 30.4375


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    paths = generate_registry(root, n_patients=N_PATIENTS, seed=SEED, progress=False)
    return root, paths


def read(path, table) -> pd.DataFrame:
    return pq.read_table(path / f"{table}.parquet").to_pandas()


def manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.fixture(scope="module")
def last(registry):
    """The final cut's tables as data frames."""
    _, paths = registry
    return {name: read(paths[-1], name) for name in TABLES}


# --- API, layout, determinism -------------------------------------------------------------------

def test_quarterly_cuts_of_the_default_design(registry):
    root, paths = registry
    assert [p.name for p in paths] == [d.isoformat() for d in cut_dates()]
    assert paths[0].name == "2023-03-31" and paths[-1].name == "2025-12-31" and len(paths) == 12
    assert [s.snapshot_id for s in list_snapshots(root)] == [p.name for p in paths]
    for p in paths:
        m = manifest(p)
        assert m["source"] == "synthetic" and m["cutoff_date"] == p.name
        for name, table in TABLES.items():
            assert pq.read_schema(p / f"{name}.parquet").remove_metadata() == table.arrow_schema()


def test_same_seed_gives_identical_files(registry, tmp_path):
    _, paths = registry
    again = generate_registry(tmp_path, n_patients=N_PATIENTS, seed=SEED, progress=False)
    assert [manifest(p) for p in again] == [manifest(p) for p in paths]
    other = generate_registry(tmp_path / "other", n_patients=N_PATIENTS, seed=SEED + 1, progress=False,
                              last_cut_only=True)
    assert manifest(other[0])["tables"]["patients"]["sha256"] != manifest(paths[-1])["tables"]["patients"]["sha256"]


def test_last_cut_only_writes_the_same_final_cut(registry, tmp_path):
    _, paths = registry
    only = generate_registry(tmp_path, n_patients=N_PATIENTS, seed=SEED, progress=False, last_cut_only=True)
    assert [p.name for p in only] == [paths[-1].name]
    assert manifest(only[0]) == manifest(paths[-1])


def test_existing_snapshot_is_replaced_and_progress_goes_to_stderr(tmp_path, capsys):
    kw = dict(n_patients=40, seed=3, accrual_months=6, followup_months=6, last_cut_only=True)
    first = generate_registry(tmp_path, progress=False, **kw)
    (first[0] / "stale.txt").write_text("x")
    second = generate_registry(tmp_path, progress=True, **kw)
    assert second == first and not (first[0] / "stale.txt").exists()
    captured = capsys.readouterr()
    assert "synthetic registry" in captured.err and captured.out == ""


def test_small_and_unusual_designs_are_valid(tmp_path):
    validate = pytest.importorskip("dashboard.validate", reason="dashboard/validate.py not written yet")
    paths = generate_registry(tmp_path, n_patients=5, n_sites=20, seed=11, start_date=dt.date(2024, 2, 15),
                              accrual_months=4, followup_months=2, cut_interval_months=4, progress=False)
    assert [p.name for p in paths] == ["2024-06-14", "2024-08-14"]      # every 4 months + the end
    sites = read(paths[0], "sites")
    assert len(sites) <= 20 and sites.site_id.is_unique
    for p in paths:
        assert validate.validate_folder(p).errors == []


# --- consistency between cuts -------------------------------------------------------------------

BASELINE = [c.name for c in TABLES["patients"].columns if c.name not in
            ("last_known_alive_date", "death_date", "off_study_date", "off_study_reason")]


def _same_rows(early: pd.DataFrame, late: pd.DataFrame, key: list[str], ignore=()) -> None:
    cols = [c for c in early.columns if c not in ignore]
    merged = early[cols].merge(late[cols], on=key, how="left", suffixes=("", "_late"), indicator=True)
    assert (merged["_merge"] == "both").all(), "a row of an earlier cut is missing later"
    for c in cols:
        if c in key:
            continue
        a, b = merged[c], merged[c + "_late"]
        same = (a == b) | (a.isna() & b.isna())
        assert same.all(), f"{c} changed between cuts"


def test_later_cuts_only_add_follow_up(registry):
    _, paths = registry
    prev = None
    for p in paths:
        cut = {name: read(p, name) for name in TABLES}
        cutoff = pd.Timestamp(p.name)
        pt = cut["patients"]
        assert (pd.to_datetime(pt.first_treatment_date) <= cutoff).all()
        if prev is not None:
            ep, lp = prev["patients"], pt.set_index("patient_id")
            assert set(ep.patient_id) <= set(pt.patient_id)
            _same_rows(ep[BASELINE], pt[BASELINE], ["patient_id"])
            e = ep.set_index("patient_id")
            l = lp.loc[e.index]
            dead = e.death_date.notna()
            assert (l.death_date[dead] == e.death_date[dead]).all(), "a death date changed"
            assert (l.last_known_alive_date >= e.last_known_alive_date).all()
            off = e.off_study_date.notna()
            assert (l.off_study_date[off] == e.off_study_date[off]).all()
            assert (l.off_study_reason[off] == e.off_study_reason[off]).all()
            assert set(prev["sites"].site_id) <= set(cut["sites"].site_id)
            for name in ("treatments", "lesions", "imaging", "lesion_measurements", "staging"):
                _same_rows(prev[name], cut[name], list(TABLES[name].key))
            _same_rows(prev["adverse_events"], cut["adverse_events"], ["patient_id", "ae_id"],
                       ignore=("resolution_date",))
            ae = prev["adverse_events"].merge(cut["adverse_events"], on=["patient_id", "ae_id"])
            shown = ae.resolution_date_x.notna()
            assert (ae.resolution_date_x[shown] == ae.resolution_date_y[shown]).all()
        prev = cut
    assert len(prev["patients"]) == N_PATIENTS
    # follow-up really accrues: the first cut has few patients, the last has deaths
    assert len(read(paths[0], "patients")) < 0.2 * N_PATIENTS
    assert prev["patients"].death_date.notna().mean() > 0.3


# --- contract (validator) -----------------------------------------------------------------------

def test_every_cut_passes_the_validator(registry):
    validate = pytest.importorskip("dashboard.validate", reason="dashboard/validate.py not written yet")
    root, paths = registry
    for p in paths:
        report = validate.validate_snapshot(get_snapshot(p.name, root))
        assert report.errors == [], report.summary()
    # the deliberate data-quality signals show up as warnings in the last cut
    rules = {f.rule for f in report.warnings}
    assert any("contradicts" in r for r in rules)
    assert any("not measured" in r for r in rules)


def test_deliberate_contradictions_are_about_one_to_two_percent(registry):
    validate = pytest.importorskip("dashboard.validate", reason="dashboard/validate.py not written yet")
    root, paths = registry
    report = validate.validate_snapshot(get_snapshot(paths[-1].name, root))
    found = [f for f in report.warnings if "contradicts" in f.rule]
    follow_up = (read(paths[-1], "imaging").visit != "baseline").sum()
    share = found[0].count / follow_up
    assert 0.005 <= share <= 0.03, share          # generator: 1.5% of evaluable follow-up scans (A)


# --- realism (docs/domain.md section 7) -----------------------------------------------------------

def _os(pt: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    end = pd.to_datetime(pt.death_date.fillna(pt.last_known_alive_date))
    return (end - pd.to_datetime(pt.first_treatment_date)).dt.days.to_numpy(), pt.death_date.notna().to_numpy()


def _km_at(t, e, day) -> float:
    return float(KaplanMeierFitter().fit(t, e).predict(day))


def _stage_group(pt):
    return np.where(pt.bclc_stage == "C", "C", np.where(pt.bclc_stage.isin(["A", "B"]), "B", pt.bclc_stage))


def test_sex_age_and_stage_mix(last):
    pt = last["patients"]
    # section 7 row "Sex / age": 70% male; Normal(64,10) men, Normal(70,10) women, 30-90
    assert 0.65 <= (pt.sex == "M").mean() <= 0.75
    assert 62 <= pt.age_years[pt.sex == "M"].mean() <= 66
    assert 67.5 <= pt.age_years[pt.sex == "F"].mean() <= 72.5
    assert pt.age_years.between(30, 90).all()
    # section 7 row "BCLC at entry": B 60%, C 40% (a few A from the staging algorithm)
    share = pt.bclc_stage.value_counts(normalize=True)
    assert 0.35 <= share.get("C", 0) <= 0.45
    assert 0.53 <= share.get("B", 0) <= 0.65
    assert share.get("A", 0) <= 0.03
    # section 7 row "Child-Pugh": A 80%, B 20%
    assert 0.75 <= (pt.child_pugh_class == "A").mean() <= 0.85
    # section 7 row "AFP": median 60 ng/mL, 30% > 400
    afp = pt.afp_ng_ml.dropna()
    assert 0.25 <= (afp > 400).mean() <= 0.35
    # section 7 row "Largest diameter": median 6 cm, IQR 4-9
    assert 5.3 <= pt.largest_tumor_cm.median() <= 6.7


def test_staging_drivers_agree_with_stage(last):
    pt = last["patients"]
    c_driver = pt.has_macrovascular_invasion | pt.has_extrahepatic_spread | pt.ecog_ps.between(1, 2)
    assert ((pt.bclc_stage == "C") == (c_driver & (pt.child_pugh_class != "C") & (pt.ecog_ps < 3))).all()
    single = pt.tumor_count == 1
    milan = ((single & (pt.largest_tumor_cm <= 5)) | (pt.tumor_count.between(2, 3) & (pt.largest_tumor_cm <= 3))) \
        & ~pt.has_macrovascular_invasion & ~pt.has_extrahepatic_spread
    assert (pt.is_within_milan == milan).all()
    # investigator-assessed resectable: ~10-15% (brief; section 4 "Within resection criteria")
    assert 0.07 <= pt.is_resectable.mean() <= 0.18


def test_one_year_survival_by_stage(last):
    pt = last["patients"]
    t, e = _os(pt)
    group = _stage_group(pt)
    # section 7 row "OS, stage B": Weibull k=1.2, median 30 mo, 1-yr ~79%
    b = group == "B"
    assert 0.74 <= _km_at(t[b], e[b], 365) <= 0.84
    # section 7 rows "OS, C without MVI" (1-yr ~64%) and "OS, C with main/lobar MVI" (~30%):
    # mixed as 35% MVI of which 2/3 main/lobar, stage C 1-yr ~56%
    c = group == "C"
    assert 0.49 <= _km_at(t[c], e[c], 365) <= 0.63
    assert _km_at(t[c], e[c], 365) < _km_at(t[b], e[b], 365) - 0.1


def _bor(imaging: pd.DataFrame) -> pd.Series:
    rank = {"CR": 1, "PR": 2, "SD": 3, "PD": 4, "NE": 5}
    fu = imaging[imaging.visit != "baseline"].sort_values(["patient_id", "imaging_date"])
    first_pd = fu[fu.overall_response == "PD"].groupby("patient_id").imaging_date.min()
    fu = fu.join(first_pd.rename("first_pd"), on="patient_id")
    fu = fu[fu.first_pd.isna() | (fu.imaging_date <= fu.first_pd)]
    best = fu.assign(r=fu.overall_response.map(rank)).groupby("patient_id").r.min()
    return best.map({v: k for k, v in rank.items()})


def test_best_overall_response_mix_by_stage(last):
    pt = last["patients"].set_index("patient_id")
    bor = _bor(last["imaging"])
    group = pd.Series(_stage_group(pt), index=pt.index).loc[bor.index]
    mix = pd.crosstab(group, bor[bor != "NE"], normalize="index")
    # section 7 rows "BOR, B" (CR 25, PR 35, SD 25, PD 15) and "BOR, C" (CR 10, PR 30, SD 30, PD 30),
    # among patients with an evaluable follow-up scan (the generator assigns the mix exactly; early
    # deaths, loss to follow-up and the deliberate contradictions move it by a point or two)
    expected = {"B": {"CR": .25, "PR": .35, "SD": .25, "PD": .15}, "C": {"CR": .10, "PR": .30, "SD": .30, "PD": .30}}
    for stage, cats in expected.items():
        for cat, p in cats.items():
            assert abs(mix.loc[stage, cat] - p) <= 0.04, (stage, cat, mix.loc[stage, cat])


def test_time_to_progression_medians(last):
    pt = last["patients"].set_index("patient_id")
    fu = last["imaging"][last["imaging"].visit != "baseline"]
    first_pd = fu[fu.overall_response == "PD"].groupby("patient_id").imaging_date.min()
    last_scan = fu.groupby("patient_id").imaging_date.max()
    end = first_pd.reindex(pt.index).fillna(last_scan.reindex(pt.index)).fillna(pt.first_treatment_date)
    t = (pd.to_datetime(end) - pd.to_datetime(pt.first_treatment_date)).dt.days / MONTH
    e = first_pd.reindex(pt.index).notna()
    group = _stage_group(pt)
    # section 7 row "TTP": median B 9 months, C 5 months (analysis-plan TTP definition)
    for stage, lo, hi in (("B", 7.0, 11.5), ("C", 3.8, 6.8)):
        m = group == stage
        median = KaplanMeierFitter().fit(t[m], e[m]).median_survival_time_
        assert lo <= median <= hi, (stage, median)


def test_adverse_event_incidence(last):
    ae, n = last["adverse_events"], len(last["patients"])
    worst = ae.groupby(["term", "patient_id"]).grade.max()

    def incidence(term, min_grade=1):
        w = worst.loc[term] if term in worst.index.get_level_values(0) else pd.Series(dtype=int)
        return (w >= min_grade).sum() / n
    # section 7 row "PES, worst grade": any grade fever 57%, pain 71%, nausea 36%, vomiting 19%
    for term, p in (("Fever", .57), ("Abdominal pain", .71), ("Nausea", .36), ("Vomiting", .19)):
        assert abs(incidence(term) - p) <= 0.05, (term, incidence(term))
    # section 7 row "Lab AEs, worst grade": ALT 35/15/8/1% -> any 59%, grade >= 3 9%
    assert abs(incidence("Alanine aminotransferase increased") - 0.59) <= 0.05
    assert abs(incidence("Alanine aminotransferase increased", 3) - 0.09) <= 0.03
    # section 7 row "Serious AEs": hepatic failure G5 1% (grade 5 only with a death date)
    g5 = ae[ae.grade == 5]
    assert incidence("Hepatic failure", 5) <= 0.03
    dead = last["patients"].set_index("patient_id").death_date
    assert (dead.loc[g5.patient_id].to_numpy() == g5.onset_date.to_numpy()).all()
    assert (ae.soc.notna()).all() and ae.session_number.notna().mean() > 0.9


def test_sessions_downstaging_and_conversion(last):
    pt = last["patients"].set_index("patient_id")
    n_sessions = last["treatments"].groupby("patient_id").size()
    # section 7 row "Sessions": 1: 25%, 2: 30%, 3: 30%, 4-8: 15% (stopped early by progression/death)
    share = n_sessions.value_counts(normalize=True)
    assert n_sessions.max() <= 8 and 0.18 <= share.get(1, 0) <= 0.36 and 0.08 <= share[share.index >= 4].sum() <= 0.22
    # section 7 row "Downstaged to Milan / resectable": 20% / 10% (A)
    st = last["staging"].groupby("patient_id")[["is_within_milan", "is_resectable"]].any()
    st = st.reindex(pt.index, fill_value=False)
    outside = ~pt.is_within_milan
    assert 0.17 <= st.is_within_milan[outside].mean() <= 0.30
    assert 0.05 <= st.is_resectable[~pt.is_resectable].mean() <= 0.16
    # at most 2 intrahepatic targets (section 3, mRECIST target lesions)
    les = last["lesions"]
    assert les[les.is_target].groupby("patient_id").size().max() <= 2


def test_nothing_recorded_after_death_or_last_contact(registry):
    # section 7 "Generator rules": no scans after death or after the last contact
    _, paths = registry
    for p in (paths[3], paths[-1]):
        pt = read(p, "patients").set_index("patient_id")
        last_seen = pt.death_date.fillna(pt.last_known_alive_date)
        assert (pt.last_known_alive_date <= pd.Timestamp(p.name).date()).all()
        for table, col in (("treatments", "treatment_date"), ("imaging", "imaging_date"),
                           ("staging", "review_date"), ("adverse_events", "onset_date"),
                           ("adverse_events", "resolution_date")):
            rows = read(p, table).dropna(subset=[col])
            assert (rows[col].to_numpy() <= last_seen.loc[rows.patient_id].to_numpy()).all(), (table, col)
        # progression (first PD scan) never after death
        img = read(p, "imaging")
        first_pd = img[img.overall_response == "PD"].groupby("patient_id").imaging_date.min()
        dead = pt.death_date.loc[first_pd.index]
        assert (dead.isna() | (first_pd <= dead)).all()
