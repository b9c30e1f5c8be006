"""The Downstaging page without a browser: views, analytics, exports, figure builders and callbacks.

Two hand-built registries:
- `staging_registry()` below: seven patients whose flows, rates, time to downstaging and
  downsizing are worked out by hand in the comments (time zero 2024-01-01 for everyone; 2024 is
  a leap year: 2024-02-15 = day 45, 03-01 = 60, 04-01 = 91, 05-01 = 121, 07-01 = 182, 09-01 = 244).
- the 20-patient competing-risks set of tests/reference/make_reference.R mapped into a snapshot,
  so that `python -m dashboard export downstaging-cif` is checked against R survival 3.5-3's
  multi-state survfit and cmprsk 2.2-11 (tests/reference/r_survival.json, "competing_risks").
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser_helpers import export as export_subprocess
from fixtures import lesion, meas, patient, review, scan, session, write_snapshot
from dashboard import data, exports
from dashboard.__main__ import main as cli_main
from dashboard.analytics import staging
from dashboard.callbacks import downstaging as cb
from dashboard.figures import downstaging as figs
from dashboard.filters import Filters

REF = json.loads((Path(__file__).resolve().parent / "reference" / "r_survival.json").read_text())
CR = REF["competing_risks"]
T0 = "2024-01-01"
D = dt.date.fromisoformat


def day(n: int) -> str:
    return (D(T0) + dt.timedelta(days=n)).isoformat()


def close(actual, expected, rel=1e-6, abs_=1e-10):
    """Elementwise equality within tolerance; R's null (NA) must be None/NaN here too."""
    a = np.array([np.nan if v is None else v for v in np.atleast_1d(actual)], dtype=float)
    b = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], dtype=float)
    assert a.shape == b.shape, (a, b)
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"NA pattern differs:\n{a}\n{b}"
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rel, atol=abs_)


# --- the hand-built registry ------------------------------------------------------------------
def staging_registry() -> dict:
    """Seven patients, cut-off 2024-12-31, first DEB-TACE 2024-01-01.

    D1 B, outside Milan: within Milan (BCLC A) at the first review (day 60), outside again (B) at
       the second: downstaged, best stage A, time to downstaging 60 days.
    D2 B, outside: died on day 45 before any review ('died before restaging'; competing at 45).
    D3 B, outside, resectable at baseline: never restaged ('not yet restaged'; censored at day 0).
    D4 A, within Milan and resectable at baseline: in neither denominator; stays A.
    D5 C, outside: C at day 91, B and resectable at day 182 (converted, not downstaged); died day
       244 (competing at 244).
    D6 C, outside: D at day 91 (upstaged); censored at its last review, day 91.
    D7 B, outside: B at day 91, A within Milan and resectable at day 182 (downstaged at the second
       review, 182 days; converted).
    """
    alive = "2024-12-31"
    return {
        "sites": [dict(site_id="S01", site_name="North Hospital", activation_date=D("2023-12-01"),
                       target_enrollment=10),
                  dict(site_id="S02", site_name="South Hospital", activation_date=D("2023-12-01"),
                       target_enrollment=10)],
        "patients": [
            patient("D1", "S01", T0, "B", last_alive=alive),
            patient("D2", "S01", T0, "B", death=day(45)),
            patient("D3", "S02", T0, "B", last_alive=alive, is_resectable=True, sex="F"),
            patient("D4", "S02", T0, "A", last_alive=alive, is_within_milan=True, is_resectable=True,
                    tumor_count=1, largest_tumor_cm=3.0),
            patient("D5", "S01", T0, "C", death=day(244)),
            patient("D6", "S02", T0, "C", last_alive=alive, sex="F"),
            patient("D7", "S02", T0, "B", last_alive=alive),
        ],
        "treatments": [session(p, 1, T0) for p in ("D1", "D2", "D3", "D4", "D5", "D6", "D7")],
        "staging": [
            review("D1", "M2", day(60), "A", True),
            review("D1", "M4", day(121), "B", False),
            review("D4", "M2", day(60), "A", True, resectable=True),
            review("D5", "M3", day(91), "C", False),
            review("D5", "M6", day(182), "B", False, resectable=True),
            review("D6", "M3", day(91), "D", False),
            review("D7", "M3", day(91), "B", False),
            review("D7", "M6", day(182), "A", True, resectable=True),
        ],
        # downsizing: the index lesion is the largest target lesion at baseline
        "lesions": [lesion("D1", "T1"), lesion("D1", "T2"), lesion("D1", "N1", target=False),
                    lesion("D2", "T1"), lesion("D4", "T1"), lesion("D5", "T1"), lesion("D5", "T2"),
                    lesion("D6", "T1"), lesion("D6", "T2"), lesion("D7", "T1")],
        "imaging": [
            scan("D1", "baseline", "2023-12-28"), scan("D1", "M2", day(60), "SD", "SD"),
            scan("D1", "M4", day(121), "PD", "SD", new=True), scan("D1", "M6", day(182), "PR", "PR"),
            scan("D2", "baseline", "2023-12-28"),
            scan("D4", "baseline", "2023-12-28"), scan("D4", "M2", day(60), "CR", "CR"),
            scan("D5", "baseline", "2023-12-28"), scan("D5", "M3", day(91), "SD", "SD"),
            scan("D6", "baseline", "2023-12-28"), scan("D6", "M3", day(91), "PD", "PD"),
            scan("D7", "baseline", "2023-12-28"), scan("D7", "M3", day(91), "SD", "SD"),
            scan("D7", "M6", day(182), "PR", "PR"),
        ],
        "lesion_measurements": [
            # D1: index T1 (50 mm): -20% at M2, -60% at M4 (the first PD, included); M6 after PD ignored
            meas("D1", "T1", "baseline", 50.0), meas("D1", "T1", "M2", 40.0), meas("D1", "T1", "M4", 20.0),
            meas("D1", "T1", "M6", 10.0),
            meas("D1", "T2", "baseline", 30.0), meas("D1", "T2", "M2", 30.0), meas("D1", "T2", "M4", 45.0),
            meas("D1", "T2", "M6", 5.0),
            meas("D2", "T1", "baseline", 60.0),                               # no follow-up scan
            meas("D4", "T1", "baseline", 20.0), meas("D4", "T1", "M2", None),   # never measured after
            # D5: a tie at baseline -> T1 (lowest id): +10% at M3 (T2's -50% is not the index lesion's)
            meas("D5", "T1", "baseline", 30.0), meas("D5", "T1", "M3", 33.0),
            meas("D5", "T2", "baseline", 30.0), meas("D5", "T2", "M3", 15.0),
            # D6: index T2 (70 mm) grows to 84 (+20%) while T1 shrinks
            meas("D6", "T1", "baseline", 30.0), meas("D6", "T1", "M3", 10.0),
            meas("D6", "T2", "baseline", 70.0), meas("D6", "T2", "M3", 84.0),
            # D7: 40 -> 38 (-5%) -> 20 (-50%)
            meas("D7", "T1", "baseline", 40.0), meas("D7", "T1", "M3", 38.0), meas("D7", "T1", "M6", 20.0),
        ],
    }


@pytest.fixture(scope="module")
def staging_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("staging")
    write_snapshot(root, "2024-12-31", staging_registry())
    return root


@pytest.fixture(scope="module")
def snap(staging_root):
    return data.resolve("latest", staging_root)


def run(snapshot, name, filters=Filters(), **options):
    return exports.run_export(name, snapshot, filters, **options)


# --- views ------------------------------------------------------------------------------------
def test_fixture_is_a_valid_snapshot(snap):
    assert data.report_for(snap).ok


def test_staging_outcomes_on_the_hand_built_cases(snap):
    st = data.query("staging_outcomes", snap).set_index("patient_id")
    assert st.loc["D1", "best_bclc_stage"] == "A" and bool(st.loc["D1", "is_downstaged_to_milan"])
    assert st.loc["D2", "restaging_status"] == "died before restaging"
    assert st.loc["D3", "restaging_status"] == "not yet restaged"
    assert not bool(st.loc["D4", "is_downstaged_to_milan"])              # within Milan at baseline
    assert bool(st.loc["D5", "is_converted_to_resectable"]) and not bool(st.loc["D5", "is_downstaged_to_milan"])
    assert st.loc["D6", "best_bclc_stage"] == "D"


def test_staging_flow_view_one_row_per_patient_per_measure(snap):
    flow = data.query("staging_flow", snap)
    assert len(flow) == 3 * 7 and not flow.duplicated(["patient_id", "measure"]).any()
    f = flow.set_index(["measure", "patient_id"])
    assert tuple(f.loc[("bclc", "D1")]) == ("BCLC B", "BCLC A")          # best stage, not the last
    assert tuple(f.loc[("bclc", "D2")]) == ("BCLC B", "died before restaging")
    assert tuple(f.loc[("milan", "D3")]) == ("outside Milan", "not yet restaged")
    assert tuple(f.loc[("milan", "D1")]) == ("outside Milan", "within Milan")
    assert tuple(f.loc[("resectable", "D3")]) == ("resectable", "not yet restaged")
    assert tuple(f.loc[("resectable", "D5")]) == ("not resectable", "resectable")


def test_time_to_downstaging_view(snap):
    ttd = data.query("time_to_downstaging", snap).set_index("patient_id")
    # D4 is within Milan at baseline: not at risk of downstaging, not in the view
    assert sorted(ttd.index) == ["D1", "D2", "D3", "D5", "D6", "D7"]
    got = {p: (int(r.time_days), int(r.status)) for p, r in ttd.iterrows()}
    assert got == {"D1": (60, 1),      # first review within Milan, day 60 (out again later: still 60)
                   "D2": (45, 2),      # died before any review
                   "D3": (0, 0),       # never restaged, alive: censored at day 0
                   "D5": (244, 2),     # reviews, never within Milan, then died: competing at death
                   "D6": (91, 0),      # alive: censored at the last review
                   "D7": (182, 1)}     # within Milan at the second review
    assert ttd.loc["D2", "outcome"] == "died" and ttd.loc["D6", "outcome"] == "censored"


def test_downsizing_view(snap, mini_snapshot):
    ds = data.query("downsizing", snap).set_index("patient_id")
    assert ds.loc["D1", "lesion_id"] == "T1" and ds.loc["D1", "best_pct_change"] == pytest.approx(-60.0)
    assert ds.loc["D1", "best_visit"] == "M4" and ds.loc["D1", "best_diameter_mm"] == 20.0
    assert ds.loc["D5", "lesion_id"] == "T1" and ds.loc["D5", "best_pct_change"] == pytest.approx(10.0)
    assert ds.loc["D6", "lesion_id"] == "T2" and ds.loc["D6", "best_pct_change"] == pytest.approx(20.0)
    assert ds.loc["D7", "best_pct_change"] == pytest.approx(-50.0) and ds.loc["D7", "best_visit"] == "M6"
    assert ds.loc["D2", "not_evaluable_reason"] == "no follow-up measurement"
    assert ds.loc["D4", "not_evaluable_reason"] == "no follow-up measurement"
    assert ds.loc["D3", "not_evaluable_reason"] == "no baseline target diameter"
    # mini registry (tests/fixtures.py): P1's index lesion L1 30 mm -> 10 at M1 (-66.7%) and at the PD
    # scan M3; 5 mm at M5 comes after the PD and does not count. P5's L2 is unmeasured at M1, so
    # P5 has no waterfall sum, but its index lesion L1 is measured: 30 -> 28 = -6.7%.
    mini = data.query("downsizing", mini_snapshot).set_index("patient_id")
    assert mini.loc["P1", "best_pct_change"] == pytest.approx(-200 / 3)
    assert mini.loc["P5", "best_pct_change"] == pytest.approx(-20 / 3)
    assert mini.loc["P4", "not_evaluable_reason"] == "no follow-up measurement"


def test_new_views_keep_their_grain_on_the_synthetic_registry(synthetic_root):
    snapshot = data.resolve("latest", synthetic_root)
    n = len(data.query("cohort", snapshot))
    flow = data.query("staging_flow", snapshot)
    assert len(flow) == 3 * n and not flow.duplicated(["patient_id", "measure"]).any()
    ttd = data.query("time_to_downstaging", snapshot)
    assert not ttd.patient_id.duplicated().any() and (ttd.time_days >= 0).all()
    assert set(ttd.status) <= {0, 1, 2}
    ds = data.query("downsizing", snapshot)
    assert len(ds) == n and not ds.patient_id.duplicated().any()
    assert ds.best_pct_change.dropna().between(-100, 1000).all()


# --- exports ----------------------------------------------------------------------------------
def test_staging_flow_export_counts(snap):
    bclc = run(snap, "staging-flow", measure="bclc")
    assert list(bclc.rows.columns) == ["source", "target", "n"] and bclc.n_patients == 7
    assert bclc.rows.values.tolist() == [
        ["BCLC A", "BCLC A", 1],                   # D4
        ["BCLC B", "BCLC A", 2],                   # D1 (best stage A although B again later), D7
        ["BCLC B", "died before restaging", 1],    # D2
        ["BCLC B", "not yet restaged", 1],         # D3
        ["BCLC C", "BCLC B", 1],                   # D5
        ["BCLC C", "BCLC D", 1],                   # D6
    ]
    assert run(snap, "staging-flow", measure="milan").rows.values.tolist() == [
        ["within Milan", "within Milan", 1],       # D4
        ["outside Milan", "within Milan", 2],      # D1, D7
        ["outside Milan", "outside Milan", 2],     # D5, D6
        ["outside Milan", "died before restaging", 1],
        ["outside Milan", "not yet restaged", 1],
    ]
    assert run(snap, "staging-flow", measure="resectable").rows.values.tolist() == [
        ["resectable", "resectable", 1],           # D4
        ["resectable", "not yet restaged", 1],     # D3
        ["not resectable", "resectable", 2],       # D5, D7
        ["not resectable", "not resectable", 2],   # D1, D6
        ["not resectable", "died before restaging", 1],
    ]
    with pytest.raises(ValueError, match="unknown staging measure"):
        run(snap, "staging-flow", measure="up7")


# R 4.2.2 binom.test(x, n)$conf.int (exact Clopper-Pearson), the same values clopper_pearson gives
BINOM = {(2, 6): (0.0432718683, 0.7772219045), (2, 5): (0.0527449505, 0.8533672004),
         (1, 3): (0.0084037587, 0.9057006759), (0, 2): (0.0, 0.8418861170), (1, 2): (0.0125791171, 0.9874208829),
         (2, 4): (0.0675859865, 0.9324140135)}


def test_downstaging_summary_overall_and_by_stage(snap):
    rows = run(snap, "downstaging-summary", by="none").rows
    assert list(rows.columns) == ["group", "measure", "eligible", "achieved", "rate", "ci_lower", "ci_upper", "baseline_unknown"]
    # Milan: 6 outside at baseline (all but D4), downstaged D1 and D7 -> 2/6.
    # Resectable: 5 not resectable at baseline (D3 and D4 were), converted D5 and D7 -> 2/5.
    assert rows[["group", "measure", "eligible", "achieved"]].values.tolist() == [
        ["all", "downstaged_to_milan", 6, 2], ["all", "converted_to_resectable", 5, 2]]
    close(rows[["rate", "ci_lower", "ci_upper"]].values[0], (2 / 6,) + BINOM[(2, 6)])
    close(rows[["rate", "ci_lower", "ci_upper"]].values[1], (2 / 5,) + BINOM[(2, 5)])

    by = run(snap, "downstaging-summary", by="bclc_stage").rows.set_index(["group", "measure"])
    assert list(dict.fromkeys(g for g, _ in by.index)) == ["all", "A", "B", "C"]
    # A (D4 only): nobody eligible for either: eligible 0, no rate
    assert by.loc[("A", "downstaged_to_milan"), "eligible"] == 0
    assert pd.isna(by.loc[("A", "downstaged_to_milan"), "rate"])
    # B: D1, D2, D3, D7 outside Milan -> D1, D7 downstaged = 2/4; not resectable D1, D2, D7 -> D7 = 1/3
    for key, (x, n) in {("B", "downstaged_to_milan"): (2, 4), ("B", "converted_to_resectable"): (1, 3),
                        ("C", "downstaged_to_milan"): (0, 2), ("C", "converted_to_resectable"): (1, 2)}.items():
        r = by.loc[key]
        assert (r.achieved, r.eligible) == (x, n), key
        close([r.rate, r.ci_lower, r.ci_upper], (x / n,) + BINOM[(x, n)])


def test_downstaging_cif_hand_worked(snap):
    exp = run(snap, "downstaging-cif", by="none")
    rows = exp.rows
    assert list(rows.columns[:5]) == ["group", "time_days", "cif", "ci_lower", "ci_upper"]
    # Aalen-Johansen by hand, 6 at risk: D3 censored at 0; D2 dies at 45 (S = 4/5); D1 downstaged at
    # 60: CIF = 4/5 * 1/4 = 0.2 (S = 3/5); D6 censored at 91; D7 downstaged at 182: CIF = 0.2 + 3/5 * 1/2
    # = 0.5; D5 dies at 244. 1 - KM treating deaths as censored would give 1 - 3/4 * 1/2 = 0.625.
    assert rows.time_days.tolist() == [0, 45, 60, 91, 182, 244]
    close(rows.cif, [0, 0, 0.2, 0.2, 0.5, 0.5])
    assert rows.n_risk.tolist() == [6, 5, 4, 3, 2, 1]
    assert rows.n_event.tolist() == [0, 0, 1, 0, 1, 0] and rows.n_competing.tolist() == [0, 1, 0, 0, 0, 1]
    assert rows.ci_lower.iloc[:2].isna().all()                # log CI undefined where CIF = 0 (R: NA)
    assert (rows.ci_lower.iloc[2:] < rows.cif.iloc[2:]).all() and (rows.ci_upper.iloc[2:] > rows.cif.iloc[2:]).all()
    ttd = data.query("time_to_downstaging", snap)
    assert staging.one_minus_km(ttd, 244) == pytest.approx(0.625)
    assert exp.extra["n_eligible"] == 6 and exp.extra["n_downstaged"] == 2 and exp.extra["n_died_first"] == 2
    assert exp.extra["all_at_one_year"] is None               # follow-up ends at day 244: not estimable

    by = run(snap, "downstaging-cif", by="bclc_stage").rows
    # A has nobody outside Milan: no curve. B: D3 censored at 0, D2 dies at 45 (S = 2/3), D1 at 60:
    # CIF = 2/3 * 1/2 = 1/3 (S = 1/3), D7 at 182: CIF = 1/3 + 1/3 = 2/3. C: no downstaging.
    assert list(dict.fromkeys(by.group)) == ["B", "C"]
    b = by[by.group == "B"]
    assert b.time_days.tolist() == [0, 45, 60, 182]
    close(b.cif, [0, 0, 1 / 3, 2 / 3])
    assert (by[by.group == "C"].cif == 0).all()


def test_downsizing_export(snap):
    exp = run(snap, "downsizing", by="bclc_stage")
    assert list(exp.rows.columns) == ["group", "patient_id", "site_id", "lesion_id", "baseline_diameter_mm",
                                      "best_diameter_mm", "best_pct_change", "best_visit"]
    assert exp.rows[["group", "patient_id", "best_pct_change"]].values.tolist() == [
        ["B", "D1", -60.0], ["B", "D7", -50.0], ["C", "D5", 10.0], ["C", "D6", 20.0]]
    assert exp.extra["n_not_evaluable"] == 3
    assert exp.extra["not_evaluable"] == {"no baseline target diameter": 1, "no follow-up measurement": 2}
    assert exp.extra["groups"] == ["A", "B", "C"]
    # per group: B = {-60, -50}: median -55, quartiles (type 7) -57.5 and -52.5, both shrank >= 30%;
    # C = {10, 20}: median 15, none shrank; A: nobody evaluable
    summary = {r["group"]: r for r in exp.extra["summary"]}
    assert (summary["B"]["n"], summary["B"]["median"], summary["B"]["q1"], summary["B"]["q3"],
            summary["B"]["n_30"]) == (2, -55.0, -57.5, -52.5, 2)
    assert (summary["C"]["median"], summary["C"]["n_30"]) == (15.0, 0)
    assert summary["A"]["n"] == 0 and pd.isna(summary["A"]["median"])


def test_filters_apply_to_the_exports(snap):
    f = Filters(site=("S02",))                                # D3, D4, D6, D7
    assert run(snap, "staging-flow", f, measure="milan").rows.n.sum() == 4
    rows = run(snap, "downstaging-summary", f).rows.set_index("measure")
    assert (rows.loc["downstaged_to_milan", "eligible"], rows.loc["downstaged_to_milan", "achieved"]) == (3, 1)
    empty = Filters(bclc=("0",))
    assert run(snap, "staging-flow", empty).rows.empty
    assert run(snap, "downstaging-cif", empty, by="bclc_stage").rows.empty
    assert run(snap, "downstaging-summary", empty, by="bclc_stage").rows.eligible.sum() == 0
    assert run(snap, "downsizing", empty).rows.empty


def test_unknown_grouping_is_a_clear_error(snap):
    with pytest.raises(ValueError, match="unknown grouping"):
        run(snap, "downstaging-summary", by="colour")


# --- against R: the competing-risks reference set as a registry snapshot -----------------------
def competing_registry() -> dict:
    """make_reference.R's 20 patients (time, status, group) as patients and staging reviews, first
    DEB-TACE 2024-01-01, all outside Milan at baseline; group A -> BCLC B, group B -> BCLC C.
    status 1 (downstaging at t): a review outside Milan on day 1 (when t > 1), the first review
    within Milan on day t, and one outside again on day t + 30 (it must not count).
    status 2 (death at t): death_date = day t; odd ids also have a review outside Milan on day 1.
    status 0 (censored at t): reviews outside Milan on day 1 and day t (the last review), alive
    until the cut-off (censoring is at the last review, not the last contact).
    Two extra patients within Milan at baseline (BCLC A) must change nothing."""
    d = CR["data"]
    patients, reviews, sessions = [], [], []
    for pid, t, status, group in zip(d["id"], d["time"], d["status"], d["group"]):
        p, stage = f"R{pid:02d}", "B" if group == "A" else "C"
        t = int(t)
        sessions.append(session(p, 1, T0))
        if status == 2:
            patients.append(patient(p, "S01", T0, stage, death=day(t)))
            if pid % 2:
                reviews.append(review(p, "M0", day(1), stage, False))
            continue
        patients.append(patient(p, "S01", T0, stage, last_alive="2024-12-31"))
        if t > 1:
            reviews.append(review(p, "M0", day(1), stage, False))
        if status == 1:
            reviews += [review(p, "M1", day(t), "A", True), review(p, "M2", day(t + 30), stage, False)]
        else:
            reviews.append(review(p, "M1", day(t), stage, False))
    for p in ("W1", "W2"):
        patients.append(patient(p, "S01", T0, "A", last_alive="2024-12-31", is_within_milan=True,
                                tumor_count=1, largest_tumor_cm=3.0))
        sessions.append(session(p, 1, T0))
        reviews.append(review(p, "M1", day(5), "A", True))
    return {"sites": [dict(site_id="S01", site_name="Reference Hospital", activation_date=D("2023-12-01"),
                           target_enrollment=30)],
            "patients": patients, "treatments": sessions, "staging": reviews}


@pytest.fixture(scope="module")
def competing_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("competing")
    write_snapshot(root, "2024-12-31", competing_registry())
    return root


def compare_with_r(rows: list[dict], block: dict):
    """Export rows (one group) against one survfit curve: every R time (event or censoring), the
    counts, the CIF of downstaging and its CI; plus the leading time-0 row with CIF 0."""
    assert rows[0]["time_days"] == 0 and rows[0]["cif"] == 0
    rows = rows[1:]
    assert [r["time_days"] for r in rows] == block["time"]
    assert [r["n_risk"] for r in rows] == block["n_risk"]
    assert [r["n_event"] for r in rows] == block["n_event_ds"]
    assert [r["n_competing"] for r in rows] == block["n_event_death"]
    assert [r["n_censor"] for r in rows] == block["n_censor"]
    close([r["cif"] for r in rows], block["cif_ds"], rel=0, abs_=1e-10)
    close([r["ci_lower"] for r in rows], block["cif_ds_lower"])
    close([r["ci_upper"] for r in rows], block["cif_ds_upper"])


def test_cif_export_reproduces_r_survival_overall_and_by_group(competing_root):
    """Source: R survival 3.5-3, survfit(Surv(time, factor(status, 0:2, c('cens','ds','death'))) ~ 1
    and ~ group, data = cr), default conf.type 'log' for multi-state curves (r_survival.json
    competing_risks.survival_multistate.{overall,by_group}.default_log). Through the command line."""
    ms = CR["survival_multistate"]
    overall = export_subprocess(competing_root, "downstaging-cif")
    assert overall["n_eligible"] == 20 and overall["n_patients"] == 22 and overall["conf_type"] == "log"
    compare_with_r(overall["rows"], ms["overall"]["default_log"]["all"])
    by = export_subprocess(competing_root, "downstaging-cif", by="bclc_stage")
    assert sorted({r["group"] for r in by["rows"]}) == ["B", "C"]        # the W patients (A) are not at risk
    for stage, group in (("B", "A"), ("C", "B")):
        compare_with_r([r for r in by["rows"] if r["group"] == stage], ms["by_group"]["default_log"][f"group={group}"])


@pytest.mark.parametrize("ci", ["log-log", "plain"])
def test_cif_export_other_ci_transforms_match_r(competing_root, capsys, ci):
    """Source: the same survfit fits with conf.type = 'log-log' and 'plain' (r_survival.json
    competing_risks.survival_multistate.*.log-log / plain)."""
    ms = CR["survival_multistate"]
    assert cli_main(["export", "downstaging-cif", "--data", str(competing_root), "--by", "bclc_stage",
                     "--ci", ci]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    for stage, group in (("B", "A"), ("C", "B")):
        compare_with_r([r for r in rows if r["group"] == stage], ms["by_group"][ci][f"group={group}"])


def test_cif_export_point_estimates_match_cmprsk(competing_root, capsys):
    """Source: cmprsk 2.2-11, timepoints(cuminc(time, status, cencode = 0), event times)$est for
    curve '1 1' (downstaging; r_survival.json competing_risks.cmprsk.overall)."""
    block = CR["cmprsk"]["overall"]
    assert cli_main(["export", "downstaging-cif", "--data", str(competing_root), "--format", "csv"]) == 0
    from io import StringIO
    rows = pd.read_csv(StringIO(capsys.readouterr().out))
    at = [rows.loc[rows.time_days <= t, "cif"].iloc[-1] for t in block["event_times"]]
    close(at, block["curves"]["1 1"]["est_at_event_times"], rel=0, abs_=1e-10)


def test_plain_one_minus_km_overstates_on_the_reference_set(competing_root):
    """1 - KM (deaths censored) at t = 22 is above the Aalen-Johansen CIF (0.576157, R survfit)."""
    snapshot = data.resolve("latest", competing_root)
    ttd = data.query("time_to_downstaging", snapshot)
    naive = staging.one_minus_km(ttd, 22)
    assert naive > CR["survival_multistate"]["overall"]["default_log"]["all"]["cif_ds"][-1] + 0.05


# --- figure builders (no browser) -------------------------------------------------------------
def annotations(fig, name):
    return [a.text for a in fig.layout.annotations if a.name == name]


def test_flow_figure_labels_every_node_and_link_with_its_count(snap):
    rows = run(snap, "staging-flow", measure="bclc").rows
    fig = figs.flow_figure(rows, "bclc")
    assert sorted(int(t.strip("<b/>")) for t in annotations(fig, "link")) == sorted(rows.n)
    nodes = annotations(fig, "node")
    assert "<b>BCLC B</b><br>n = 4" in nodes                          # left: baseline B has 4 patients
    assert "<b>BCLC A</b><br>n = 3" in nodes                          # right: best A, D1 D4 D7
    assert "<b>Died before restaging</b><br>n = 1" in nodes
    assert len(nodes) == 3 + 5                                        # A B C | A B D died not-yet
    # every link and node has hover text
    filled = [t for t in fig.data if t.fill == "toself"]
    assert len(filled) == len(rows) + len(nodes) and all(t.text for t in filled)
    legend = {t.name for t in fig.data if t.showlegend}
    assert legend == {"Lower stage (downstaged)", "Died before restaging", "Not yet restaged", "Same stage",
                      "Higher stage"}


def test_flow_node_labels_stay_below_the_column_headers():
    """A small node at the very top (BCLC 0 with BCLC-C patients below it) had its two-line label
    centred at the node, reaching above the plot into the "Best at follow-up" header. Labels are
    kept inside the plot, 0.6 label heights below its top edge at most."""
    assert figs._spread([0.995, 0.5], 0.1) == [0.94, 0.5]
    assert figs._spread([0.7, 0.69], 0.1)[1] == pytest.approx(0.6)          # neighbours still pushed apart
    rows = pd.DataFrame({"source": ["BCLC C", "BCLC C", "BCLC 0"], "target": ["BCLC 0", "BCLC C", "BCLC 0"],
                         "n": [1, 60, 1]})
    fig = figs.flow_figure(rows, "bclc", height=500)
    plot_h = 500 - fig.layout.margin.t - fig.layout.margin.b
    label_h = 38 / plot_h
    tops = [a.y + label_h / 2 for a in fig.layout.annotations if a.name == "node"]
    assert tops and max(tops) <= 1 - 0.1 * label_h + 1e-12


def test_flow_figure_link_widths_are_proportional(snap):
    rows = pd.DataFrame({"source": ["outside Milan", "outside Milan", "within Milan"],
                         "target": ["within Milan", "died before restaging", "within Milan"], "n": [30, 10, 20]})
    fig = figs.flow_figure(rows, "milan")
    # a link is its top edge left to right, then its bottom edge right to left: y[0] - y[-1] is its
    # thickness at the source; the 30-patient link is three times as thick as the 10-patient one
    thick = {t.text.split("<br>")[0].split(" (")[0]: float(t.y[0] - t.y[-1])
             for t in fig.data if t.fill == "toself" and "→" in t.text}
    assert thick["outside Milan → within Milan"] == pytest.approx(3 * thick["outside Milan → died before restaging"])
    assert thick["within Milan → within Milan"] == pytest.approx(2 * thick["outside Milan → died before restaging"])
    hover = next(t.text for t in fig.data if t.fill == "toself" and t.text.startswith("outside Milan → within"))
    assert hover == "outside Milan → within Milan (into Milan)<br>30 patients (75% of outside Milan)"


def test_figures_say_why_when_there_is_nothing_to_draw():
    empty = pd.DataFrame({"source": [], "target": [], "n": []})
    text = lambda fig: " ".join(a.text for a in fig.layout.annotations)
    assert "No patients" in text(figs.flow_figure(empty, "bclc"))
    no_eligible = pd.DataFrame({"group": ["all", "all"], "measure": list(staging.RATE_MEASURES),
                                "eligible": [0, 0], "achieved": [0, 0], "rate": [None, None],
                                "ci_lower": [None, None], "ci_upper": [None, None]})
    assert "No eligible patient" in text(figs.rates_figure(no_eligible))
    assert "outside Milan" in text(figs.cif_figure(pd.DataFrame(columns=["group", "time_days", "cif"])))
    assert "index lesion" in text(figs.downsizing_figure(pd.DataFrame(columns=["group", "best_pct_change"])))


def test_rates_figure_shows_counts_rates_and_flags_small_groups(snap):
    rows = run(snap, "downstaging-summary", by="bclc_stage").rows
    fig = figs.rates_figure(rows, "bclc_stage")
    milan, resect = fig.data
    assert list(milan.y) == ["All patients", "BCLC B", "BCLC C"]      # A has nobody outside Milan
    assert list(milan.text) == ["2/6 · 33.3%", "2/4 · 50.0% (n<5)", "0/2 · 0.0% (n<5)"]
    assert milan.x[0] == pytest.approx(100 * 2 / 6)
    assert list(milan.marker.symbol) == ["diamond", "circle-open", "circle-open"]
    assert "no eligible patient" in " ".join(a.text for a in fig.layout.annotations)
    assert "Clopper-Pearson" in milan.hovertemplate
    assert len(resect.y) == 3


def test_cif_figure_curves_bands_and_legend(snap):
    rows = run(snap, "downstaging-cif", by="bclc_stage").rows
    fig = figs.cif_figure(rows, "bclc_stage")
    curves = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in curves] == ["BCLC B (n=4, <5: descriptive)", "BCLC C (n=2, <5: descriptive)"]
    assert list(curves[0].y) == pytest.approx([0, 0, 1 / 3, 2 / 3])
    assert curves[0].line.shape == "hv" and curves[0].hovertemplate
    assert sum(1 for t in fig.data if t.fill == "tonexty") == 2       # one CI band per group
    many = pd.concat([rows.assign(group=f"g{i}") for i in range(6)])
    assert not any(t.fill == "tonexty" for t in figs.cif_figure(many).data)


def test_downsizing_figure_one_box_per_group_with_points(snap):
    exp = run(snap, "downsizing", by="bclc_stage")
    fig = figs.downsizing_figure(exp.rows, exp.extra["groups"], "bclc_stage")
    assert [t.name for t in fig.data] == ["BCLC B", "BCLC C"]
    assert sorted(fig.data[0].y) == [-60.0, -50.0] and fig.data[0].boxpoints == "all"
    assert fig.data[0].customdata[0][0] in ("D1", "D7")
    assert "−55%" in [a.text for a in fig.layout.annotations if a.name == "median"]


# --- callbacks as plain functions ---------------------------------------------------------------
@pytest.fixture
def state(staging_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(staging_root))
    return {"snapshot": "latest", "query": ""}


def test_callbacks_return_figure_config_spec_and_footnote(state):
    fig, config, spec, note = cb.flow_card(state, "milan")
    assert spec["export"] == "staging-flow" and spec["options"] == {"measure": "milan"}
    assert "toImage" in config["modeBarButtonsToRemove"]       # the card's PNG/SVG buttons name the file
    assert "within Milan at any restaging review" in note and "N = 7" in note
    fig, _, spec, note = cb.rates_card(state, "sex")
    assert spec["options"] == {"by": "sex"} and "Clopper-Pearson" in note and "denominator" in note
    fig, _, spec, note = cb.cif_card(state, "none")
    assert "Aalen-Johansen" in note and "1 − Kaplan-Meier" in note and "competing" in note
    assert "n = 6" in note
    fig, _, spec, note = cb.downsizing_card(state, "bclc_stage")
    assert "largest viable" in note and "Not shown, not evaluable: 3" in note


def test_download_csv_equals_the_export(state, snap):
    from dashboard.callbacks.downloads import csv_download
    for card, option, search in ((cb.flow_card, "resectable", "?measure=resectable"),
                                 (cb.rates_card, "bclc_stage", ""), (cb.cif_card, "sex", "?by=sex"),
                                 (cb.downsizing_card, "none", "?by=none")):
        spec = card(state, option)[2]
        sent = csv_download(spec["figure"], search, state)      # the page options are the URL's
        exp = run(snap, spec["export"], **spec["options"])
        assert sent["content"] == exports.to_csv(exp) and sent["filename"].endswith(".csv")


def test_callbacks_with_no_patient_show_messages(state):
    empty = dict(state, query="bclc=0&age_max=20")
    for card, option in ((cb.flow_card, "bclc"), (cb.rates_card, "bclc_stage"), (cb.cif_card, "bclc_stage"),
                         (cb.downsizing_card, "bclc_stage")):
        fig = card(empty, option)[0]
        assert "No patient" in " ".join(a.text for a in fig.layout.annotations), card.__name__
    # a bad option from a hand-edited URL falls back instead of failing
    assert cb.flow_card(state, "nonsense")[2]["options"] == {"measure": "bclc"}


def test_page_layout_reads_its_options_from_the_url():
    import dash
    from dashboard.app import create_app
    if not any(p["path"] == "/downstaging" for p in dash.page_registry.values()):
        create_app()                                  # registers the pages
    layout = next(p["layout"] for p in dash.page_registry.values() if p["path"] == "/downstaging")
    found = {}

    def walk(node):
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif hasattr(node, "to_plotly_json"):
            if getattr(node, "id", None) in (cb.MEASURE, cb.BY):
                found[str(node.id)] = node.value
            walk(getattr(node, "children", None))
    walk(layout(measure="milan", by="site_id"))
    assert found == {str(cb.MEASURE): "milan", str(cb.BY): "site_id"}
    found.clear()
    walk(layout(measure="bogus", by="bogus", bclc="C"))
    assert found == {str(cb.MEASURE): "bclc", str(cb.BY): "bclc_stage"}
