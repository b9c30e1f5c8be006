"""The dashboard's numbers when the source did not record some values (the amended contract:
docs/snapshot-contract.md, "null = not recorded"), on a registry where a few are missing, against
counts worked out by hand below (docs/analysis.md, "Values the source did not record", states
each rule). Every expected number is counted from the table in `partly_recorded()`'s docstring,
not from the code.
"""
from __future__ import annotations

import json

import pytest

from fixtures import D, ae, lesion, meas, patient, review, scan, session, write_snapshot
from dashboard import data, exports
from dashboard.filters import Filters

CUT = "2024-12-31"


def partly_recorded() -> dict:
    """Six patients at three sites, cut-off 2024-12-31. "-" = not recorded (null).

    id  site t0          BCLC ECOG CP  largest Milan resect  follow-up staging            imaging (overall / local)
    N1  S01  2024-01-01  B    0    A5  6.0     no    no      2024-03-01 A, Milan, resect  M2 03-01 PR/PR  20 mm
    N2  S01  2024-01-01  C    1    A5  8.0     no    no      died 2024-02-15, no review   baseline only
    N3  S01  2024-01-01  -    -    -   -       -     -       2024-04-01 A, Milan, resect  M3 04-01 SD/-   38 mm
    N4  S02  2024-03-10  -    -    A5  9.0     -     no      none                         M2 05-10 PD/-   40 mm, new lesion -
    N5  S02  2024-04-01  A    0    A5  -       yes   yes     none                         M2 06-01 CR/CR   0 mm
    N6  S03  2024-02-15  B    0    A5  6.0     no    -       2024-06-15 B, outside, resect M2 04-15 SD/-  36 mm
                                                                                          M4 06-15 PR/PR  24 mm
    Every baseline sum 40 mm (one treated target lesion L1). Sites: S01 activated 2023-12-01,
    target 10; S02 no activation date, no target; S03 activated 2024-01-15, no target.
    AEs: N1 abdominal pain grade 3, N3 fever grade 2.
    """
    alive = CUT
    p = {
        "N1": patient("N1", "S01", "2024-01-01", "B", last_alive=alive, ecog_ps=0, largest_tumor_cm=6.0),
        "N2": patient("N2", "S01", "2024-01-01", "C", death="2024-02-15", ecog_ps=1, largest_tumor_cm=8.0),
        "N3": patient("N3", "S01", "2024-01-01", None, last_alive=alive, ecog_ps=None, child_pugh_score=None,
                      child_pugh_class=None, largest_tumor_cm=None, is_within_milan=None, is_resectable=None),
        "N4": patient("N4", "S02", "2024-03-10", None, last_alive=alive, ecog_ps=None, largest_tumor_cm=9.0,
                      is_within_milan=None),
        "N5": patient("N5", "S02", "2024-04-01", "A", last_alive=alive, ecog_ps=0, largest_tumor_cm=None,
                      is_within_milan=True, is_resectable=True),
        "N6": patient("N6", "S03", "2024-02-15", "B", last_alive=alive, ecog_ps=0, largest_tumor_cm=6.0,
                      is_resectable=None),
    }
    p["N3"]["has_macrovascular_invasion"] = None
    p["N4"]["has_macrovascular_invasion"] = None
    baselines = {"N1": "2023-12-28", "N2": "2023-12-28", "N3": "2023-12-28", "N4": "2024-03-05",
                 "N5": "2024-03-28", "N6": "2024-02-10"}
    follow = [("N1", "M2", "2024-03-01", "PR", "PR", 20.0), ("N3", "M3", "2024-04-01", "SD", None, 38.0),
              ("N4", "M2", "2024-05-10", "PD", None, 40.0), ("N5", "M2", "2024-06-01", "CR", "CR", 0.0),
              ("N6", "M2", "2024-04-15", "SD", None, 36.0), ("N6", "M4", "2024-06-15", "PR", "PR", 24.0)]
    imaging = [scan(pid, "baseline", day) for pid, day in baselines.items()]
    imaging += [scan(pid, visit, day, overall, local) for pid, visit, day, overall, local, _ in follow]
    for row in imaging:
        if row["patient_id"] == "N4":
            row.update(has_new_lesion=None, modality=None)
    return {
        "sites": [dict(site_id="S01", site_name="North Hospital", activation_date=D("2023-12-01"), target_enrollment=10),
                  dict(site_id="S02", site_name="South Hospital", activation_date=None, target_enrollment=None),
                  dict(site_id="S03", site_name="East Hospital", activation_date=D("2024-01-15"), target_enrollment=None)],
        "patients": list(p.values()),
        "treatments": [session(pid, 1, row["first_treatment_date"].isoformat()) for pid, row in p.items()],
        "lesions": [lesion(pid, "L1") for pid in p],
        "imaging": imaging,
        "lesion_measurements": [meas(pid, "L1", "baseline", 40.0) for pid in p]
                               + [meas(pid, "L1", visit, mm) for pid, visit, _, _, _, mm in follow],
        "staging": [review("N1", "R1", "2024-03-01", "A", True, resectable=True),
                    review("N3", "R1", "2024-04-01", "A", True, resectable=True),
                    review("N6", "R1", "2024-06-15", "B", False, resectable=True)],
        "adverse_events": [ae("N1", "E1", "Abdominal pain", 3, "2024-01-05"), ae("N3", "E1", "Fever", 2, "2024-01-05")],
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partly_recorded")
    write_snapshot(folder, CUT, partly_recorded())
    return folder


@pytest.fixture(scope="module")
def snap(root):
    return data.resolve("latest", root)


@pytest.fixture
def state(root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    return {"snapshot": "latest", "query": ""}


def run(snap, name, filters=Filters(), **options):
    return exports.compute_export(name, snap, filters, **options)


def fig_json(fig) -> str:
    """The JSON Dash sends for a figure (what reaches the browser, hovers included)."""
    from plotly.io.json import to_json_plotly
    from dashboard import wire
    return to_json_plotly(wire.plain(fig))


def test_the_registry_is_valid(root):
    from dashboard.validate import validate_folder
    report = validate_folder(root / "snapshots" / CUT)
    assert report.ok, report.summary()


# --- groups and filters -----------------------------------------------------------------------
def test_unrecorded_values_are_the_group_unknown(snap):
    cohort = data.query("cohort", snap).set_index("patient_id")
    # largest tumour: N1 6, N6 6 '<= 7 cm'; N2 8, N4 9 '> 7 cm'; N3, N5 not recorded
    assert cohort["tumor_size_group"].to_dict() == {"N1": "<= 7 cm", "N2": "> 7 cm", "N3": "unknown",
                                                    "N4": "> 7 cm", "N5": "unknown", "N6": "<= 7 cm"}
    assert cohort["ecog_group"].to_dict() == {"N1": "0", "N2": "1", "N3": "unknown", "N4": "unknown",
                                              "N5": "0", "N6": "0"}
    # the survival page's groups: BCLC A 1 (N5), B 2 (N1, N6), C 1 (N2), unknown 2 (N3, N4)
    summary = run(snap, "km-summary", by="bclc_stage").rows.set_index("group")
    assert summary["n"].to_dict() == {"A": 1, "B": 2, "C": 1, "unknown": 2, "All patients": 6}     # pooled: all six


@pytest.mark.parametrize("query,expected", [
    ("", {"N1", "N2", "N3", "N4", "N5", "N6"}),            # no filter: everyone, unrecorded included
    ("bclc=B", {"N1", "N6"}),                               # stages picked: the unknowns are left out
    ("bclc=B,unknown", {"N1", "N3", "N4", "N6"}),
    ("bclc=unknown", {"N3", "N4"}),
    ("ecog=unknown", {"N3", "N4"}),
    ("ecog=0", {"N1", "N5", "N6"}),
    ("child_pugh=unknown", {"N3"}),
    ("child_pugh=A", {"N1", "N2", "N4", "N5", "N6"}),
])
def test_a_filter_keeps_the_unknowns_only_when_asked(snap, query, expected):
    filters = Filters.from_query(query, strict=True)[0]
    assert set(data.query("cohort", snap, filters)["patient_id"]) == expected


def test_the_filter_panel_offers_unknown():
    from dashboard.app import filter_panel
    from dashboard.components import iter_components
    offered = {c.id: [o["value"] for o in c.options] for c in iter_components(filter_panel())
               if getattr(c, "id", None) in ("f-bclc", "f-child-pugh", "f-ecog")}
    assert all("unknown" in values for values in offered.values()) and len(offered) == 3


# --- Table 1 ----------------------------------------------------------------------------------
def test_table_one_counts_the_missing_and_has_a_bclc_unknown_column(snap):
    rows = run(snap, "baseline-table").rows
    cell = {(r.variable, r.level, r.group): r.text for r in rows.itertuples()}
    n = {r.group: r.n_group for r in rows.itertuples()}
    assert n == {"Overall": 6, "BCLC A": 1, "BCLC B": 2, "BCLC C": 1, "BCLC unknown": 2}
    assert cell[("ecog_ps", "missing", "Overall")] == "2 (33.3%)"                 # N3, N4
    assert cell[("ecog_ps", "missing", "BCLC unknown")] == "2 (100.0%)"
    assert cell[("ecog_ps", "missing", "BCLC B")] == "0 (0.0%)"                   # the row in every column
    assert cell[("largest_tumor_cm", "missing", "Overall")] == "2 (33.3%)"        # N3, N5
    assert cell[("is_within_milan", "missing", "Overall")] == "2 (33.3%)"         # N3, N4
    assert cell[("child_pugh_class", "missing", "Overall")] == "1 (16.7%)"        # N3
    assert cell[("has_macrovascular_invasion", "missing", "BCLC unknown")] == "2 (100.0%)"
    assert cell[("is_within_milan", "no", "Overall")] == "3 (50.0%)"              # N1, N2, N6
    # a variable nobody misses (and the contract does not let miss) has no missing row
    assert ("is_within_up_to_seven", "missing", "Overall") not in cell


# --- downstaging -------------------------------------------------------------------------------
def test_downstaging_leaves_an_unrecorded_baseline_out_of_both_counts_and_counts_it(snap):
    rows = run(snap, "downstaging-summary", by="none").rows.set_index("measure")
    # Milan: outside at baseline N1, N2, N6 (N1 downstaged); N3 and N4 not recorded (N3 within Milan at its
    # review is not a downstaging: the start is unknown)
    assert rows.loc["downstaged_to_milan", ["eligible", "achieved", "baseline_unknown"]].tolist() == [3, 1, 2]
    # resectable: not resectable N1, N2, N4 (N1 converted); N3 and N6 not recorded (N6 resectable later)
    assert rows.loc["converted_to_resectable", ["eligible", "achieved", "baseline_unknown"]].tolist() == [3, 1, 2]
    by_stage = run(snap, "downstaging-summary", by="bclc_stage").rows
    unknown = by_stage[(by_stage["group"] == "unknown")].set_index("measure")
    assert unknown.loc["downstaged_to_milan", ["eligible", "achieved", "baseline_unknown"]].tolist() == [0, 0, 2]
    assert unknown.loc["converted_to_resectable", ["eligible", "achieved", "baseline_unknown"]].tolist() == [1, 0, 1]
    outcomes = data.query("staging_outcomes", snap).set_index("patient_id")
    assert outcomes["is_downstaged_to_milan"].isna().tolist() == [False, False, True, True, False, False]


def test_time_to_downstaging_counts_only_the_known_outside(snap):
    x = run(snap, "downstaging-cif", by="none").extra
    # N1 downstaged (day 60), N2 died first (day 45), N6 censored at its review (day 121); N3, N4 not recorded
    assert (x["n_eligible"], x["n_downstaged"], x["n_died_first"], x["n_censored"], x["n_baseline_unknown"]) == \
        (3, 1, 1, 1, 2)


@pytest.mark.parametrize("measure,expected", [
    ("bclc", {("BCLC A", "not yet restaged"): 1, ("BCLC B", "BCLC A"): 1, ("BCLC B", "BCLC B"): 1,
              ("BCLC C", "died before restaging"): 1, ("BCLC unknown", "BCLC A"): 1,
              ("BCLC unknown", "not yet restaged"): 1}),
    ("milan", {("within Milan", "not yet restaged"): 1, ("outside Milan", "within Milan"): 1,
               ("outside Milan", "outside Milan"): 1, ("outside Milan", "died before restaging"): 1,
               ("Milan unknown", "within Milan"): 1, ("Milan unknown", "not yet restaged"): 1}),
    ("resectable", {("resectable", "not yet restaged"): 1, ("not resectable", "resectable"): 1,
                    ("not resectable", "not yet restaged"): 1, ("not resectable", "died before restaging"): 1,
                    ("resectability unknown", "resectable"): 2}),
])
def test_staging_flow_has_a_node_for_an_unrecorded_baseline(snap, measure, expected):
    rows = run(snap, "staging-flow", measure=measure).rows
    assert {(r.source, r.target): r.n for r in rows.itertuples()} == expected


def test_downstaging_cards_say_what_was_not_recorded(state):
    from dashboard.analytics.staging import FROM_UNKNOWN, link_kind
    from dashboard.callbacks import downstaging as cb
    fig, _, _, note = cb.flow_card(state, "bclc")
    assert "BCLC unknown" in fig_json(fig) and "did not record it at baseline" in note
    assert link_kind("bclc", "BCLC unknown", "BCLC A") == FROM_UNKNOWN
    _, _, _, note = cb.rates_card(state, "none")
    assert "Milan status 2, resectability 2 patients" in note
    _, _, _, note = cb.cif_card(state, "none")
    assert "Not included: 2 patients" in note


# --- enrollment --------------------------------------------------------------------------------
def test_accrual_targets_and_start_without_activation_or_target(snap):
    exp = run(snap, "accrual")
    pooled = exp.rows[exp.rows["site_id"] == "all"]
    # months from S01's activation (2023-12) to the cut-off; the pooled target is S01's 10 only
    assert str(pooled["month"].iloc[0])[:7] == "2023-12" and len(pooled) == 13
    assert set(pooled["target_enrollment"]) == {10}
    assert (exp.extra["n_sites"], exp.extra["n_sites_with_target"]) == (3, 1)
    assert exp.rows.loc[exp.rows["site_id"] == "S02", "target_enrollment"].isna().all()
    # S02 alone: no activation date, so its months start at its first enrolment (N4, 2024-03); no target at all
    only = run(snap, "accrual", Filters(site=("S02",))).rows
    assert str(only["month"].min())[:7] == "2024-03" and only["target_enrollment"].isna().all()
    # S03 alone: from its activation (2024-01), before its first enrolment (2024-02)
    assert str(run(snap, "accrual", Filters(site=("S03",))).rows["month"].min())[:7] == "2024-01"


def test_enrollment_cards_draw_no_target_where_none_was_recorded(state):
    from dashboard.callbacks import enrollment as cb
    fig, _, _, note = cb.enrollment_card(state, "pct_target")
    enrolled = next(t for t in fig.data if t.name == "Enrolled")
    target = next(t for t in fig.data if t.name == "Target")
    labels = dict(zip(enrolled.y, enrolled.text))
    # S01: 3 of 10 = 30%; S02 (2) and S03 (1): no target, so no percentage (not 0%) and no outline
    assert labels == {"S01 North Hospital": "3 (30%)", "S02 South Hospital": "2", "S03 East Hospital": "1"}
    assert [v != v for v in target.x] == [False, True, True]          # S01 first (sorted by % of target)
    assert "no outline and no percentage" in note
    fig, _, _, note = cb.accrual_card(state, "pooled")
    assert [t.name for t in fig.data] == ["Enrolled (cumulative)", "Target (sum of 1 of 3 sites)"]
    assert "the sum over the 1 of 3 selected sites" in note
    only_s02 = dict(state, query="site=S02")
    fig, _, _, note = cb.accrual_card(only_s02, "pooled")
    assert [t.name for t in fig.data] == ["Enrolled (cumulative)"] and "no target line" in note
    fig, _, _, _ = cb.accrual_card(state, "site")
    assert len(fig.data) == 4                        # three site lines, one dotted target (S01's)


# --- response ----------------------------------------------------------------------------------
def test_local_response_not_recorded_is_ne(snap):
    local = run(snap, "response-summary", response_scope="local", by="none")
    row = local.rows.iloc[0]
    # N1 PR, N2 no follow-up (NE), N3 not assessed (NE), N4 not assessed (NE), N5 CR, N6 NE then PR (PR)
    assert [row[c] for c in ("n", "cr", "pr", "sd", "pd", "ne")] == [6, 1, 2, 0, 0, 3]
    assert row["orr"] == pytest.approx(3 / 6)
    # not assessed: N3 M3, N4 M2, N6 M2
    assert (local.extra["n_scans_not_assessed"], local.extra["n_patients_not_assessed"]) == (3, 3)
    overall = run(snap, "response-summary", response_scope="overall", by="none")
    row = overall.rows.iloc[0]
    assert [row[c] for c in ("cr", "pr", "sd", "pd", "ne")] == [1, 2, 1, 1, 1]
    assert overall.extra["n_scans_not_assessed"] == 0


def test_local_ttp_censors_at_the_last_scan_that_assessed_the_treated_lesions(snap):
    ends = data.query("patient_endpoints", snap)
    local = ends[ends["endpoint"] == "local_ttp"].set_index("patient_id")
    # N1 M2 day 60; N2 no scan; N3, N4 no local response ever: day 0; N5 M2 day 61; N6 M4 (2024-06-15) day 121
    assert local["time_days"].to_dict() == {"N1": 60, "N2": 0, "N3": 0, "N4": 0, "N5": 61, "N6": 121}
    assert not local["is_event"].any()
    ttp = ends[ends["endpoint"] == "ttp"].set_index("patient_id")
    assert (ttp.at["N4", "time_days"], bool(ttp.at["N4", "is_event"])) == (61, True)   # overall PD at M2


def test_a_new_lesion_flag_not_recorded_is_not_read_as_no_new_lesion(snap):
    # N4 M2: recorded PD, measurements 40 of nadir 40 imply SD; the new-lesion flag not recorded may explain it
    rows = run(snap, "response-consistency", response_scope="overall").rows
    assert "N4" not in set(rows["patient_id"])


def test_local_response_footnote_counts_the_scans_not_assessed(state):
    from dashboard.callbacks import response as cb
    _, _, _, note = cb.bor_card(state, "local", "none")
    assert "3 follow-up scan(s) of 3 patient(s) have no local response recorded" in json.dumps(note)
    _, _, _, note = cb.bor_card(state, "overall", "none")
    assert "no local response recorded" not in json.dumps(note)


def test_patient_level_plots_say_not_recorded(state):
    from dashboard.callbacks import response as cb
    swimmer = cb.swimmer_card(state, "local", "time_desc", 1, 50)[0]
    lanes = next(t for t in swimmer.data if t.type == "bar" and "N3" in list(t.y))
    assert list(lanes.customdata[list(lanes.y).index("N3")])[2] == "not recorded"            # BCLC
    scans = next(t for t in swimmer.data if t.name == "Scan (colour = response)")
    marks = {(c[0], c[1]): c[2] for c in scans.customdata}
    assert marks[("N3", "M3")] == "not recorded" and marks[("N1", "M2")] == "PR"
    waterfall = cb.waterfall_card(state, "overall")[0]
    hover = fig_json(waterfall)
    assert '"not recorded"' in hover                                               # N3's and N4's BCLC
    spider = cb.spider_card(state, "local")[0]
    text = fig_json(spider)
    assert '["N3","M3","-5.0","not recorded","NE","S01"]' in text and '["N3","baseline","0.0","baseline"' in text


# --- safety ------------------------------------------------------------------------------------
def test_ae_subgroup_columns_have_unknown(snap):
    rows = run(snap, "ae-incidence", by="bclc_stage").rows
    any_ae = rows[rows["soc"] == "Any adverse event"].set_index("group")
    # N3 (fever, grade 2) of the two unknowns (N3, N4); N1 (grade 3) of the two B (N1, N6)
    assert any_ae.loc["unknown", ["n_patients_any", "denominator"]].tolist() == [1, 2]
    assert any_ae.loc["B", ["n_patients_any", "denominator", "n_grade_3_4"]].tolist() == [1, 2, 1]
    by_cp = run(snap, "ae-incidence", by="child_pugh_class").rows
    assert by_cp[(by_cp["soc"] == "Any adverse event")].set_index("group").loc["unknown", "denominator"] == 1
