"""Tumour response page (issue 5): views, exports, analytics, figure builders and callbacks, on
hand-built registries with the answers worked out by hand in the comments.

Fixtures:
- `resp_root`: the mini registry of tests/fixtures.py (P1-P5, worked answers in test_views.py) plus
  P6-P10 built below: a recorded CR whose measurements say PR, a PD from a new lesion with a bar
  below baseline, a +150% bar (capped in the figure), a PR whose later growth is a PD by the
  measurements but was recorded PR, and a PR at -100% with a non-target lesion still present.
- `orr_root`: 65 patients built so that ORR and DCR hit x/n with published R numbers (12/40,
  0/25, 25/25 and 33/57 from tests/reference/r_survival.json "binom_clopper_pearson").

Other expected confidence limits: R 4.2.2 `binom.test(x, n)$conf.int`, run once and pasted below
(R_BINOM); R is not needed to run the tests.
"""
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from fixtures import D, lesion, meas, mini_registry, patient, scan, session, write_snapshot

from dashboard import data, exports
from dashboard.analytics import response as resp
from dashboard.filters import Filters
from dashboard.figures import response as figs

REF = json.loads((Path(__file__).resolve().parent / "reference" / "r_survival.json").read_text())
R_REF = {(c["x"], c["n"]): (c["estimate"], c["lower"], c["upper"]) for c in REF["binom_clopper_pearson"]}
# R 4.2.2: binom.test(x, n)$conf.int, 15 significant digits
R_BINOM = {
    (5, 10): (0.187086028447399, 0.812913971552601), (7, 10): (0.347547149940003, 0.933260488822266),
    (5, 8): (0.244863216366552, 0.914766585862746), (6, 8): (0.349144205587176, 0.968145973750056),
    (4, 7): (0.184051567640083, 0.901011721557492), (5, 7): (0.290420863737343, 0.963307433823914),
    (4, 6): (0.222778095503512, 0.956728131707258), (1, 3): (0.00840375865961264, 0.905700675949754),
    (2, 3): (0.0942993240502461, 0.991596241340387), (1, 2): (0.0125791170934251, 0.987420882906575),
    (2, 2): (0.158113883008419, 1.0), (8, 10): (0.443904537692359, 0.974789273673167),
    (7, 8): (0.473490329124793, 0.996840276468748),
}
SNAP = "2024-12-31"


def non_target(pid, lid, visit, status="present"):
    return dict(patient_id=pid, lesion_id=lid, visit=visit, viable_diameter_mm=None, non_target_status=status)


def response_registry():
    rows = mini_registry()
    rows["patients"] += [
        patient("P6", "S02", "2024-04-01", "C", last_alive="2024-12-31"),
        patient("P7", "S01", "2024-04-15", "B", last_alive="2024-12-31"),
        patient("P8", "S02", "2024-05-15", "B", death="2024-11-20"),
        patient("P9", "S01", "2024-03-10", "B", last_alive="2024-12-31"),
        patient("P10", "S02", "2024-02-15", "B", last_alive="2024-12-31"),
    ]
    rows["treatments"] += [session("P6", 1, "2024-04-01"), session("P7", 1, "2024-04-15"),
                           session("P8", 1, "2024-05-15"), session("P9", 1, "2024-03-10"),
                           session("P9", 2, "2024-05-01"), session("P10", 1, "2024-02-15")]
    rows["lesions"] += [lesion("P6", "L1"), lesion("P7", "L1"), lesion("P8", "L1"), lesion("P9", "L1"),
                        lesion("P10", "L1"), lesion("P10", "N1", target=False, treated=False)]
    rows["imaging"] += [
        # P6: recorded CR, but 10 mm of viable tumour left: the measurements say PR (-75%)
        scan("P6", "baseline", "2024-03-28"), scan("P6", "M1", "2024-05-10", "CR", "CR"),
        # P7: PD from a new lesion while the target shrank 5% (locally SD): a PD bar below zero
        scan("P7", "baseline", "2024-04-10"), scan("P7", "M1", "2024-05-30", "PD", "SD", new=True),
        # P8: grew 150%: a bar above the +100% cap
        scan("P8", "baseline", "2024-05-10"), scan("P8", "M1", "2024-07-01", "PD", "PD"),
        # P9: PR at -50%, then 25 mm = +25% from the nadir 20 (a PD by the measurements), recorded PR
        scan("P9", "baseline", "2024-03-05"), scan("P9", "M1", "2024-04-20", "PR", "PR"),
        scan("P9", "M3", "2024-06-20", "PR", "PR"),
        # P10: target gone (-100%) but a non-target lesion persists: overall PR, locally CR
        scan("P10", "baseline", "2024-02-10"), scan("P10", "M1", "2024-03-30", "PR", "CR"),
    ]
    rows["lesion_measurements"] += [
        meas("P6", "L1", "baseline", 40.0), meas("P6", "L1", "M1", 10.0),
        meas("P7", "L1", "baseline", 40.0), meas("P7", "L1", "M1", 38.0),
        meas("P8", "L1", "baseline", 20.0), meas("P8", "L1", "M1", 50.0),
        meas("P9", "L1", "baseline", 40.0), meas("P9", "L1", "M1", 20.0), meas("P9", "L1", "M3", 25.0),
        meas("P10", "L1", "baseline", 30.0), meas("P10", "L1", "M1", 0.0),
        non_target("P10", "N1", "baseline"), non_target("P10", "N1", "M1"),
    ]
    return rows


def orr_registry():
    """65 patients, one target lesion each (40 mm at baseline), one follow-up scan at M1 except NE.
    B, male (8): 2 CR, 2 PR, 4 PD. B, female (32): 2 CR, 6 PR, 20 PD, 4 NE (no follow-up scan).
    C, female (25): 25 SD. So: B ORR 12/40; C ORR 0/25 and DCR 25/25; female DCR (8 + 25)/57 = 33/57."""
    groups = ([("B", "M", "CR")] * 2 + [("B", "M", "PR")] * 2 + [("B", "M", "PD")] * 4 +
              [("B", "F", "CR")] * 2 + [("B", "F", "PR")] * 6 + [("B", "F", "PD")] * 20 + [("B", "F", "NE")] * 4 +
              [("C", "F", "SD")] * 25)
    mm = {"CR": 0.0, "PR": 20.0, "SD": 40.0, "PD": 60.0}
    rows = {"sites": [dict(site_id="S01", site_name="North Hospital", activation_date=D("2023-12-01"),
                           target_enrollment=100)],
            "patients": [], "treatments": [], "lesions": [], "imaging": [], "lesion_measurements": []}
    for i, (bclc, sex, bor) in enumerate(groups):
        pid = f"Q{i + 1:02d}"
        t0 = dt.date(2024, 1, 1) + dt.timedelta(days=2 * i)
        rows["patients"].append(patient(pid, "S01", t0.isoformat(), bclc, last_alive="2024-12-31", sex=sex))
        rows["treatments"].append(session(pid, 1, t0.isoformat()))
        rows["lesions"].append(lesion(pid, "L1"))
        rows["imaging"].append(scan(pid, "baseline", (t0 - dt.timedelta(days=5)).isoformat()))
        rows["lesion_measurements"].append(meas(pid, "L1", "baseline", 40.0))
        if bor != "NE":
            rows["imaging"].append(scan(pid, "M1", (t0 + dt.timedelta(days=45)).isoformat(), bor, bor))
            rows["lesion_measurements"].append(meas(pid, "L1", "M1", mm[bor]))
    return rows


@pytest.fixture(scope="module")
def resp_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("response")
    write_snapshot(root, SNAP, response_registry())
    return root


@pytest.fixture(scope="module")
def resp_snapshot(resp_root):
    return data.resolve("latest", resp_root)


@pytest.fixture(scope="module")
def orr_snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("orr")
    write_snapshot(root, SNAP, orr_registry())
    return data.resolve("latest", root)


@pytest.fixture
def as_app(resp_root, monkeypatch):
    """The page's callbacks read the data root from REGISTRY_DATA, as app.py sets it."""
    monkeypatch.setenv("REGISTRY_DATA", str(resp_root))
    return {"snapshot": SNAP, "query": ""}


def run(snapshot, name, filters=Filters(), **options):
    return exports.run_export(name, snapshot, filters, data.ALL_SITES, **options)


def by_group(rows):
    return rows.set_index("group")


def assert_rate(row, prefix, x, n):
    """The export's rate and CI for x/n against R's binom.test."""
    lower, upper = R_BINOM[(x, n)] if (x, n) in R_BINOM else R_REF[(x, n)][1:]
    assert row[prefix] == pytest.approx(x / n, rel=1e-12)
    assert row[f"{prefix}_ci_lower"] == pytest.approx(lower, rel=1e-6, abs=1e-12)
    assert row[f"{prefix}_ci_upper"] == pytest.approx(upper, rel=1e-6, abs=1e-12)


# --- the snapshot is a valid one ----------------------------------------------------------------
def test_fixture_snapshots_validate(resp_snapshot, orr_snapshot):
    assert data.report_for(resp_snapshot).ok, data.report_for(resp_snapshot).summary()
    assert data.report_for(orr_snapshot).ok, data.report_for(orr_snapshot).summary()


# --- waterfall ----------------------------------------------------------------------------------
def test_waterfall_rows_sorted_with_hand_worked_best_change(resp_snapshot):
    exp = run(resp_snapshot, "waterfall", response_scope="overall")
    rows = exp.rows
    assert list(rows.columns) == ["patient_id", "site_id", "bclc_stage", "best_pct_change", "best_visit", "bor",
                                  "implied_response", "recorded_response", "contradicts"]
    # largest increase first; ties (P10 and P3 both -100%) by patient id ("P10" < "P3" as text)
    assert list(rows.patient_id) == ["P8", "P7", "P2", "P1", "P9", "P6", "P10", "P3"]
    got = rows.set_index("patient_id")
    expected = {
        "P8": (150.0, "M1", "PD"),    # 100 * (50 - 20) / 20; the figure cuts the bar at +100%
        "P7": (-5.0, "M1", "PD"),     # PD from a new lesion: the bar stays below zero (domain.md §3.5)
        "P2": (-25.0, "M3", "SD"),    # best 30 mm at M3; the PD at M5 (+23% from the nadir) is still -7.5%
        "P1": (-40.0, "M1", "PR"),    # PR that later progresses: the -80% after the first PD does not count
        "P9": (-50.0, "M1", "PR"),    # 100 * (20 - 40) / 40
        "P6": (-75.0, "M1", "CR"),    # recorded CR with 10 mm left: the measured change, flagged below
        "P10": (-100.0, "M1", "PR"),  # target gone, non-target persists: PR at -100%
        "P3": (-100.0, "M1", "CR"),   # CR: -100%
    }
    for pid, (pct, visit, bor) in expected.items():
        assert got.loc[pid, "best_pct_change"] == pytest.approx(pct)
        assert (got.loc[pid, "best_visit"], got.loc[pid, "bor"]) == (visit, bor)
        assert got.loc[pid, "recorded_response"] == bor
    # implied by the measurements, by hand from the analysis plan's thresholds on the best change (CR = every
    # target at 0 mm, -100%; PR <= -30%; PD >= +20%; else SD), and the bars whose BOR contradicts them: P6 only
    # (recorded CR with 10 mm left); P7's PD is explained by its new lesion, P10's PR at 0 mm by its non-target
    # lesion (the data-quality check's exceptions)
    implied = {"P8": "PD", "P7": "SD", "P2": "SD", "P1": "PR", "P9": "PR", "P6": "PR", "P10": "CR", "P3": "CR"}
    assert got["implied_response"].to_dict() == implied
    assert got.index[got["contradicts"]].tolist() == ["P6"]
    assert exp.extra["n_contradicts"] == 1
    # P4 (baseline only) and P5 (a target lesion unmeasured at M1) have no bar
    assert exp.n_patients == 10
    assert exp.extra["n_not_evaluable"] == 2
    assert exp.extra["not_evaluable_reasons"] == {"no baseline sum": 0, "no follow-up scan": 1,
                                                  "no post-baseline sum": 1}


def test_waterfall_local_scope_differs_from_overall(resp_snapshot):
    local = run(resp_snapshot, "waterfall", response_scope="local").rows.set_index("patient_id")
    # P1 local = the treated L1 only (30 mm): no local PD, so M5 (5 mm) counts: 100 * (5 - 30) / 30
    assert local.loc["P1", "best_pct_change"] == pytest.approx(-250 / 3)
    assert local.loc["P1", "best_visit"] == "M5"
    # P7 locally SD (the new lesion is ignored), P10 locally CR
    assert local.loc["P7", "bor"] == "SD" and local.loc["P10", "bor"] == "CR"
    assert list(local.index[:3]) == ["P8", "P7", "P2"]


def test_waterfall_respects_filters(resp_snapshot):
    exp = run(resp_snapshot, "waterfall", Filters(site=("S02",)), response_scope="overall")
    # S02: P3, P4, P6, P8, P10; P4 has no follow-up scan
    assert list(exp.rows.patient_id) == ["P8", "P6", "P10", "P3"]
    assert exp.n_patients == 5 and exp.extra["n_not_evaluable"] == 1


# --- best overall response, ORR and DCR ---------------------------------------------------------
def test_response_summary_counts_and_both_denominators(resp_snapshot):
    rows = by_group(run(resp_snapshot, "response-summary", response_scope="overall", by="none").rows)
    assert list(rows.index) == ["all"]
    row = rows.loc["all"]
    # CR P3 P6; PR P1 P9 P10; SD P2 P5; PD P7 P8; NE P4
    assert (row.n, row.cr, row.pr, row.sd, row.pd, row["ne"]) == (10, 2, 3, 2, 2, 1)
    assert_rate(row, "orr", 5, 10)
    assert_rate(row, "dcr", 7, 10)
    # evaluable = a waterfall bar: all but P4 and P5; responders among them 5, controlled 6 (+P2)
    assert row.n_evaluable == 8
    assert_rate(row, "orr_evaluable", 5, 8)
    assert_rate(row, "dcr_evaluable", 6, 8)


def test_response_summary_by_bclc_flags_small_groups(resp_snapshot):
    rows = by_group(run(resp_snapshot, "response-summary", response_scope="overall", by="bclc_stage").rows)
    assert list(rows.index) == ["B", "C", "all"]
    b, c = rows.loc["B"], rows.loc["C"]
    # B: P1 P3 P5 P7 P8 P9 P10 -> CR 1, PR 3, SD 1 (P5), PD 2; evaluable all but P5
    assert (b.n, b.cr, b.pr, b.sd, b.pd, b["ne"], b.n_evaluable) == (7, 1, 3, 1, 2, 0, 6)
    assert_rate(b, "orr", 4, 7)
    assert_rate(b, "dcr", 5, 7)
    assert_rate(b, "orr_evaluable", 4, 6)
    assert_rate(b, "dcr_evaluable", 4, 6)
    # C: P2 (SD), P4 (NE), P6 (CR); evaluable P2, P6
    assert (c.n, c.cr, c.sd, c["ne"], c.n_evaluable) == (3, 1, 1, 1, 2)
    assert_rate(c, "orr", 1, 3)
    assert_rate(c, "dcr", 2, 3)
    assert_rate(c, "orr_evaluable", 1, 2)
    assert_rate(c, "dcr_evaluable", 2, 2)
    assert bool(c.is_small_group) and not bool(b.is_small_group)


def test_response_summary_local_scope(resp_snapshot):
    row = by_group(run(resp_snapshot, "response-summary", response_scope="local").rows).loc["all"]
    # local: CR P3 P6 P10; PR P1 P9; SD P2 P5 P7; PD P8; NE P4
    assert (row.cr, row.pr, row.sd, row.pd, row["ne"]) == (3, 2, 3, 1, 1)
    assert_rate(row, "orr", 5, 10)
    assert_rate(row, "dcr", 8, 10)
    assert_rate(row, "dcr_evaluable", 7, 8)


@pytest.mark.parametrize("by, group, measure, x, n", [
    ("bclc_stage", "B", "orr", 12, 40),
    ("bclc_stage", "C", "orr", 0, 25),
    ("bclc_stage", "C", "dcr", 25, 25),
    ("sex", "F", "dcr", 33, 57),
])
def test_response_summary_clopper_pearson_end_to_end_against_r(orr_snapshot, by, group, measure, x, n):
    """Source: R 4.2.2 binom.test(x, n), tests/reference/r_survival.json binom_clopper_pearson."""
    row = by_group(run(orr_snapshot, "response-summary", response_scope="overall", by=by).rows).loc[group]
    assert row.n == n
    est, lower, upper = R_REF[(x, n)]
    assert row[measure] == pytest.approx(est, rel=1e-12)
    assert row[f"{measure}_ci_lower"] == pytest.approx(lower, rel=1e-6, abs=1e-12)
    assert row[f"{measure}_ci_upper"] == pytest.approx(upper, rel=1e-6, abs=1e-12)


def test_response_summary_columns_and_zero_patients(resp_snapshot):
    exp = run(resp_snapshot, "response-summary", Filters(bclc=("0",)), response_scope="overall", by="bclc_stage")
    assert list(exp.rows.columns) == resp.SUMMARY_COLUMNS
    assert exp.rows.empty and exp.n_patients == 0
    with pytest.raises(ValueError):
        run(resp_snapshot, "response-summary", by="no_such_field")


# --- consistency (data quality) -----------------------------------------------------------------
def test_consistency_flags_hand_worked_disagreements_and_mirrors_the_validator(resp_snapshot):
    overall = run(resp_snapshot, "response-consistency", response_scope="overall")
    got = [(r.patient_id, r.visit, r.recorded, r.implied) for r in overall.rows.itertuples()]
    # P6 M1: 10 mm <= 70% of 40 -> PR, recorded CR. P9 M3: 25 >= 1.2 * nadir 20 -> PD, recorded PR.
    # Not flagged: P7 (PD explained by a new lesion), P10 (PR with targets at 0 and a non-target present).
    assert got == [("P6", "M1", "CR", "PR"), ("P9", "M3", "PR", "PD")]
    assert overall.extra["n_patients_flagged"] == 2
    # the validator's warning names the same scans (dashboard/quality.py IMPLIED_RESPONSE_SQL, which the validator runs)
    warning = next(f for f in data.report_for(resp_snapshot).warnings if "implied by the measurements" in f.rule)
    assert sorted(e.split(" ")[0] for e in warning.examples) == ["P6/M1", "P9/M3"]
    # local: the same rules on treated target lesions, no exemption. P1 M3: local sum 10 mm is -67% from
    # baseline 30 (a PR) but recorded SD.
    local = run(resp_snapshot, "response-consistency", response_scope="local")
    assert [(r.patient_id, r.visit, r.recorded, r.implied) for r in local.rows.itertuples()] == [
        ("P1", "M3", "SD", "PR"), ("P6", "M1", "CR", "PR"), ("P9", "M3", "PR", "PD")]


def test_consistency_view_agrees_with_validator_on_synthetic_registry(synthetic_root):
    snapshot = data.resolve("latest", synthetic_root)
    flagged = run(snapshot, "response-consistency", response_scope="overall").rows
    warning = [f for f in data.report_for(snapshot).warnings if "implied by the measurements" in f.rule]
    assert len(flagged) == (warning[0].count if warning else 0)


# --- spider and swimmer -------------------------------------------------------------------------
def test_spider_rows(resp_snapshot):
    exp = run(resp_snapshot, "spider", response_scope="overall")
    rows = exp.rows
    assert set(rows.patient_id) == {"P1", "P2", "P3", "P6", "P7", "P8", "P9", "P10"}   # the waterfall's patients
    p1 = rows[rows.patient_id == "P1"]
    # days from the first DEB-TACE 2024-01-10: baseline 2024-01-05 = -5; M1 41; M3 101; M5 157 (after the PD)
    assert list(p1.day) == [-5, 41, 101, 157]
    assert list(p1["pct_change"].round(6)) == [0.0, -40.0, -20.0, -80.0]
    assert list(p1.is_up_to_first_pd) == [True, True, True, False]
    assert exp.extra["n_patients_drawn"] == 8 and exp.n_patients == 10


def test_swimmer_rows_for_one_patient_and_lane_order(resp_snapshot):
    exp = run(resp_snapshot, "swimmer", response_scope="overall")
    rows = exp.rows
    p1 = rows[rows.patient_id == "P1"]
    # P1: sessions day 0 and 51 (2024-03-01); scans M1 day 41 (PR), M3 day 101 (PD), M5 day 157 (PR);
    # first PD day 101; died 2024-07-10 = day 182
    assert [(r.event, r.day) for r in p1.itertuples()] == [
        ("session", 0), ("scan", 41), ("session", 51), ("scan", 101), ("first_pd", 101), ("scan", 157),
        ("death", 182)]
    assert list(p1[p1.event == "scan"].response) == ["PR", "PD", "PR"]
    assert set(p1.time_on_study_days) == {182} and set(p1.end_status) == {"died"}
    # lanes, longest first: P2 334, P10 320, P9 296, P6 274, P7 260, P3 214, P5 213, P8 189, P1 182, P4 31
    lanes = list(dict.fromkeys(rows.patient_id))
    assert lanes == ["P2", "P10", "P9", "P6", "P7", "P3", "P5", "P8", "P1", "P4"]
    assert exp.extra["n_lanes"] == 10
    # P3 went off study (lost to follow-up): the lane ends at last contact without a death mark
    p3 = rows[rows.patient_id == "P3"]
    assert p3.iloc[-1].event == "last_contact" and p3.iloc[-1].end_status == "off study"


def test_swimmer_order_and_paging():
    events = pd.DataFrame({"patient_id": ["a", "b", "c", "d", "e"], "time_on_study_days": [10, 50, 30, 50, 5],
                           "bor": ["PD", "SD", "CR", "PR", "NE"]})
    assert resp.swimmer_order(events, "time_desc") == ["b", "d", "c", "a", "e"]
    assert resp.swimmer_order(events, "time_asc") == ["e", "a", "c", "b", "d"]
    assert resp.swimmer_order(events, "bor") == ["c", "d", "b", "a", "e"]
    order = resp.swimmer_order(events, "patient")
    assert resp.n_pages(5, 2) == 3 and resp.n_pages(0, 50) == 1
    assert resp.page_slice(order, 3, 2) == ["e"] and resp.page_slice(order, 9, 2) == ["e"]
    assert resp.page_of(order, "c", 2) == 2 and resp.page_of(order, "zz", 2) is None


# --- the command line ------------------------------------------------------------------------------
def test_cli_export_by(resp_root):
    from browser_helpers import export
    summary = export(resp_root, "response-summary", "site=S02", by="bclc_stage")
    assert summary["scope"] == "overall" and summary["by"] == "bclc_stage"
    assert [r["group"] for r in summary["rows"]] == ["B", "C", "all"]
    assert summary["n_patients"] == 5


def test_cli_export_scope(resp_root):
    from browser_helpers import export
    local = export(resp_root, "waterfall", scope="local")
    assert local["scope"] == "local" and local["n_not_evaluable"] == 2
    p1 = next(r for r in local["rows"] if r["patient_id"] == "P1")
    assert p1["best_pct_change"] == pytest.approx(-250 / 3)


# --- figure builders (no browser) ---------------------------------------------------------------
def test_waterfall_figure_caps_colours_and_highlights(resp_snapshot):
    rows = run(resp_snapshot, "waterfall", response_scope="overall").rows
    fig = figs.waterfall_figure(rows, highlight="P9")
    bars = [t for t in fig.data if t.type == "bar" and not figs.is_contradiction_legend(t)]
    assert sum(len(t.x) for t in bars) == 8
    # coloured by the response the measurements imply (hand-worked in the test above): P7 (recorded PD,
    # -5%) is an SD bar, P6 (recorded CR, -75%) a PR bar, P10 (recorded PR, -100%) a CR bar
    pd_bar = next(t for t in bars if t.name.startswith("PD"))
    assert list(pd_bar.x) == ["P8"] and list(pd_bar.y) == [100.0]                     # P8 cut at the cap
    capped = next(t for t in fig.data if t.type == "scatter" and t.name.startswith("> +"))
    assert list(capped.x) == ["P8"] and list(capped.text) == ["+150%"]
    assert pd_bar.marker.color == figs.BOR_COLOURS["PD"]
    assert [t.name for t in bars] == ["CR (2)", "PR (3)", "SD (2)", "PD (1)"]
    assert {t.name.split(" ")[0]: list(t.x) for t in bars} == {"CR": ["P10", "P3"], "PR": ["P1", "P9", "P6"],
                                                               "SD": ["P7", "P2"], "PD": ["P8"]}
    pr_bar = next(t for t in bars if t.name.startswith("PR"))
    assert list(pr_bar.marker.line.width) == [0, 3, 0]                                # P1, P9, P6
    # P6 marked: its bar hatched, a mark at its tip whose hover says what was recorded and what is implied
    assert list(pr_bar.marker.pattern.shape) == ["", "", "/"]
    assert all(t.marker.pattern is None for t in bars if t is not pr_bar)
    marks = next(t for t in fig.data if t.type == "scatter" and t.name == figs.CONTRADICTS_NAME)
    legend = next(t for t in fig.data if figs.is_contradiction_legend(t) and t.type == "bar")
    assert legend.name == f"{figs.CONTRADICTS_NAME} (1)" and list(legend.y) == [0]
    assert list(marks.x) == ["P6"] and list(marks.y) == [-75.0]
    assert marks.customdata[0][0] == "recorded CR, measurements imply PR"
    sd_bar = next(t for t in bars if t.name.startswith("SD"))
    assert list(sd_bar.customdata[:, 4]) == ["recorded PD (explained by new or non-target lesions)", "recorded SD"]
    assert all("best change" in t.hovertemplate for t in bars)
    assert [s.y0 for s in fig.layout.shapes] == [20, -30]                            # the dashed lines
    assert list(fig.layout.xaxis.categoryarray) == list(rows.patient_id)
    empty = figs.waterfall_figure(rows.iloc[0:0])
    assert not empty.data and "measurable change" in empty.layout.annotations[0].text


def test_bor_figure_stacks_percent_of_all_patients(resp_snapshot):
    rows = run(resp_snapshot, "response-summary", response_scope="overall", by="bclc_stage").rows
    fig = figs.bor_figure(rows)
    assert [t.name for t in fig.data] == ["CR", "PR", "SD", "PD", "NE"]
    pr = fig.data[1]
    assert list(pr.x) == pytest.approx([300 / 7, 0.0, 30.0])                          # 3/7, 0/3, 3/10
    assert list(pr.y) == ["B (n=7)", "C † (n=3)", "All patients (n=10)"]
    assert fig.layout.barmode == "stack"


def test_spider_figure_gaps_between_patients_and_highlight(resp_snapshot):
    rows = run(resp_snapshot, "spider", response_scope="overall").rows
    fig = figs.spider_figure(rows, highlight="P1")
    pr = next(t for t in fig.data if t.name == "PR")
    # PR: P1 (4 points), P10 (2), P9 (3), each followed by a gap
    assert len(pr.x) == 4 + 2 + 3 + 3 and pd.isna(pr.y[4])
    highlight = fig.data[-1]
    assert highlight.name == "P1" and list(highlight.y) == pytest.approx([0.0, -40.0, -20.0, -80.0])
    assert pr.opacity < 0.5                                                          # others dimmed
    capped = next(t for t in fig.data if t.name.startswith("> +100%"))
    assert list(capped.customdata[:, 0]) == ["P8"]
    # PD: P7 (0, -5), gap, P8 (0, +150% drawn at the cap), gap
    assert list(next(t for t in fig.data if t.name == "PD").y[[1, 4]]) == [-5.0, 100.0]


def test_swimmer_figure_marks_and_highlight(resp_snapshot):
    rows = run(resp_snapshot, "swimmer", response_scope="overall").rows
    lanes = resp.swimmer_order(rows)
    fig = figs.swimmer_figure(rows, lanes[:5], highlight="P9")
    lane_bars = [t for t in fig.data if t.type == "bar"]
    assert sorted(p for t in lane_bars for p in t.y) == sorted(lanes[:5])
    names = {t.name for t in fig.data}
    assert {"DEB-TACE session", "Scan (colour = response)", "Alive at last contact"} <= names
    assert list(fig.layout.yaxis.categoryarray) == lanes[:5]
    assert "<b>" in fig.layout.yaxis.ticktext[2] and len(fig.layout.shapes) == 1     # P9 is lane 3
    assert figs.swimmer_figure(rows, []).layout.annotations


# --- callbacks as plain functions ---------------------------------------------------------------
def test_waterfall_card_footnote_counts_not_evaluable(as_app):
    from dashboard.callbacks import response as cb
    fig, config, spec, note = cb.waterfall_card(as_app, "overall", highlight="P1")
    assert spec["export"] == "waterfall" and spec["options"] == {"response_scope": "overall"}
    assert note[0].children == "2 of 10 patients not evaluable (no bar): 1 with no follow-up scan, " \
                               "1 with no post-baseline sum."
    assert any(a.text == "<b>P1</b>" for a in fig.layout.annotations)


def test_csv_download_equals_the_export(as_app, resp_snapshot):
    from dashboard.callbacks import downloads
    from dashboard.callbacks import response as cb
    for card, args, search in ((cb.waterfall_card, ("local",), "?scope=local"),
                               (cb.bor_card, ("overall", "site_id"), "?by=site_id"),
                               (cb.spider_card, ("local",), "?scope=local"), (cb.swimmer_card, ("overall",), ""),
                               (cb.consistency_card, ("local",), "?scope=local")):
        spec = card(as_app, *args)[2] if card is not cb.consistency_card else card(as_app, *args)[1]
        sent = downloads.csv_download(spec["figure"], search, as_app)     # the page options are the URL's
        expected = exports.to_csv(exports.run_export(spec["export"], resp_snapshot, Filters(), data.ALL_SITES,
                                                     **spec["options"]))
        assert sent["content"] == expected and sent["filename"].startswith(f"response_{spec['figure']}_")
        assert f"_{SNAP}_all-patients_" in sent["filename"]        # page_figure_options_cut_filter_date.csv


def test_summary_card_shows_the_export_numbers(as_app):
    from dashboard.callbacks import response as cb
    table, spec, note = cb.summary_card(as_app, "overall", "bclc_stage")
    cells = {c.id: c for row in table.children[1].children for c in row.children if getattr(c, "id", None)}
    def text(cell):
        head, _, ci = cell.children
        return [head.children[0].children, head.children[1].children, ci.children]

    assert text(cells["response-orr-all"]) == ["50.0%", " 5/10", "18.7–81.3"]             # R: 0.187-0.813
    assert text(cells["response-dcr-evaluable-C"]) == ["100.0%", " 2/2", "15.8–100.0"]
    assert spec["options"] == {"response_scope": "overall", "by": "bclc_stage"}


def test_swimmer_card_counts_lanes_and_falls_back_on_bad_options(as_app):
    from dashboard.callbacks import response as cb
    # 10 patients fit one page of 25 (paging itself: test_swimmer_order_and_paging and the browser test)
    fig, config, spec, note, pages, page, count = cb.swimmer_card(as_app, "overall", "time_desc", 3, 25)
    assert (pages, page) == (1, 1) and count.startswith("Showing lanes 1–10 of 10 patients")
    assert list(fig.layout.yaxis.categoryarray)[:3] == ["P2", "P10", "P9"]
    fig = cb.swimmer_card(as_app, "overall", "time_desc", 1, 25, "P1", follow_highlight=True)[0]
    assert "<b>▶ P1</b>" in fig.layout.yaxis.ticktext
    *_, pages, page, count = cb.swimmer_card(as_app, "overall", "bogus", 7, 999)
    assert page == 1 and "longest first" in count


def test_zero_patients_gives_messages_not_errors(resp_root, monkeypatch):
    from dashboard.callbacks import response as cb
    from dashboard.figures.common import NO_PATIENTS
    monkeypatch.setenv("REGISTRY_DATA", str(resp_root))
    state = {"snapshot": SNAP, "query": "bclc=0&age_max=20"}
    for card in (cb.waterfall_card, cb.bor_card, cb.spider_card, cb.swimmer_card):
        fig = card(state)[0]
        assert not fig.data and NO_PATIENTS in fig.layout.annotations[0].text
    for card in (cb.summary_card, cb.consistency_card):
        assert NO_PATIENTS in card(state)[0].children


def test_highlight_from_clicks():
    from dashboard.callbacks import response as cb
    click = {"points": [{"customdata": ["P7", "S01", "B", "PD", "M1", -5.0]}]}
    assert cb.highlighted({"type": "figure", "figure": cb.WATERFALL}, None, click) == "P7"
    assert cb.highlighted({"type": "figure", "figure": cb.SWIMMER}, "P7", None, None,
                          {"points": [{"customdata": ["P2"]}]}) == "P2"
    assert cb.highlighted(cb.HIGHLIGHT_CLEAR, "P7") is None
    assert cb.highlighted({"type": "figure", "figure": cb.SPIDER}, "P7", None, {"points": [{}]}) == "P7"


# --- contracts of the new views -----------------------------------------------------------------
@pytest.mark.parametrize("view, key", [
    ("response_consistency", ["scope", "patient_id", "visit"]),
    ("spider_points", ["scope", "patient_id", "visit"]),
])
def test_new_view_grain(resp_snapshot, view, key):
    df = data.query(view, resp_snapshot)
    assert not df.duplicated(key).any() and df[key].notna().all().all()
    assert set(df.scope) == {"overall", "local"}


def test_swimmer_events_cover_every_patient_once_per_scope(resp_snapshot):
    ev = data.query("swimmer_events", resp_snapshot)
    ends = ev[ev.event.isin(["death", "last_contact"])]
    assert not ends.duplicated(["scope", "patient_id"]).any()
    assert len(ends) == 2 * 10
    assert set(ev.event) == {"session", "scan", "first_pd", "death", "last_contact"}


def test_spider_draws_a_fixed_sample_when_there_are_too_many_lines(mini_snapshot, monkeypatch):
    """Thousands of spider lines are unreadable: above the cap, a fixed pseudo-random sample is
    drawn and exported (the CSV equals the plot), and the counts say so."""
    from dashboard.exports import response as response_exports
    monkeypatch.setenv("REGISTRY_CACHE", "off")
    full = response_exports.spider_export(mini_snapshot, response_scope="overall")
    evaluable = full.rows["patient_id"].nunique()
    monkeypatch.setattr(response_exports, "SPIDER_MAX_PATIENTS", evaluable - 1)
    capped = response_exports.spider_export(mini_snapshot, response_scope="overall")
    assert capped.extra["n_patients_drawn"] == evaluable - 1 == capped.rows["patient_id"].nunique()
    assert capped.extra["n_patients_evaluable"] == evaluable
    again = response_exports.spider_export(mini_snapshot, response_scope="overall")
    assert again.rows.equals(capped.rows)


def test_waterfall_above_max_bars_draws_evenly_spaced_bars_and_counts_everyone():
    """Above MAX_BARS evaluable patients the waterfall draws MAX_BARS bars of the sorted order
    (first, last and the highlighted patient included); legend and axis count every patient."""
    import numpy as np
    from dashboard.figures import response as figs
    n = 5000
    rng = np.random.default_rng(7)
    best = np.sort(rng.uniform(-100, 150, n))[::-1]
    bor = np.where(best <= -30, "PR", np.where(best >= 20, "PD", "SD"))
    rows = pd.DataFrame({"patient_id": [f"P{i:05d}" for i in range(n)], "best_pct_change": best, "bor": bor,
                         "site_id": "S01", "bclc_stage": "B", "best_visit": "M3"})
    fig = figs.waterfall_figure(rows, highlight="P00007")
    bars = [t for t in fig.data if t.type == "bar"]
    drawn = [x for t in bars for x in t.x]
    assert len(drawn) == figs.MAX_BARS + 1                      # + the highlighted patient
    assert {"P00000", "P04999", "P00007"} <= set(drawn)
    names = {t.name for t in bars}
    assert names == {f"{b} ({(bor == b).sum()})" for b in ("PR", "SD", "PD")}
    assert "n = 5,000; 2,001 evenly spaced bars drawn" in fig.layout.xaxis.title
    small = figs.waterfall_figure(rows.iloc[:300])
    assert sum(len(t.x) for t in small.data if t.type == "bar") == 300
    assert small.layout.xaxis.title == "Patients (n = 300), largest increase to largest decrease"
