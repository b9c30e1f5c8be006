"""Safety page (CTCAE v4.0): the ae_episodes / ae_worst_grade views, the ae-incidence export, the
heatmap builders and the callbacks as plain functions, on a hand-built registry whose answers are
worked out by hand below; then an independent check on random.cdisc.data's ADAE (data nobody here
wrote) against a plain pandas computation.

The hand-built registry (cut-off 2024-12-31), six patients at two sites:

  patient site BCLC  sessions              adverse events (grade, onset, session recorded, flags)
  P1      S01  B     1: 01-10, 2: 03-01    A1 Fever G1 01-11 s1 (day 1) related
                                           A2 Fever G3 03-02 s2 (day 1) serious, related
                                           A3 Abdominal pain G2 01-11 s1 (day 1) related
                                           A4 Nausea G1 01-25 s1 (day 15) related
  P2      S01  C     1: 02-01              A1 ALT increased G2 02-10 s1 (day 9) not related
                                           A2 Hepatic failure G4 02-20 NO SESSION -> latest on/before
                                              onset = s1 (day 19) serious, related
  P3      S02  B     1: 03-01, 2: 05-01    A1 Abdominal pain G1 05-03 NO SESSION -> s2 (day 2, not 63) related
                                           A2 Vomiting G3 03-05 s1 (day 4) serious, not related
  P4      S02  C     1: 05-01              none  (in the denominator)
  P5      S01  B     1: 06-01              none  (in the denominator)
  P6      S02  B     1: 04-01 (died 04-25) A1 Hepatic failure G5 04-20 s1 (day 19) serious, related
                                           A2 Fever G2 04-02 s1 (day 1) related

Worked answers (all AEs, N = 6, 8 sessions, 10 episodes):
  term Fever: P1 worst 3 (once, not twice), P6 worst 2 -> any 2, g2 1, g3 1, serious 1, related 2, events 3
  term Abdominal pain: P1 2, P3 1 -> any 2; Nausea: P1 1; Vomiting: P3 3 (serious, not related)
  term ALT increased: P2 2 (not related); Hepatic failure: P2 4, P6 5 -> g3-4 1, g5 1, serious 2
  SOC Gastrointestinal (Abdominal pain, Nausea, Vomiting): P1 worst 2 (two terms, counted once), P3 worst 3
      -> any 2, g2 1, g3 1, serious 1 (P3), related 2, events 4
  overall: P1 3, P2 4, P3 3, P6 5 -> any 4 of 6, g3 2, g4 1, g5 1, g3-4 3, serious 4, related 4;
      events 10 / 8 sessions * 100 = 125 per 100 sessions
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.analytics import safety as an
from dashboard.figures import safety as figs
from dashboard.filters import Filters
from fixtures import D, ae, patient, session, write_snapshot

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT.parent / "shared" / "testdata" / "random_cdisc_data"
SPEC_COLUMNS = ["soc", "term", "group", "n_patients_any", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5",
                "n_grade_3_4", "n_grade_5", "n_serious", "n_related", "denominator"]
GI, GEN, HEP = "Gastrointestinal disorders", "General disorders and administration site conditions", \
    "Hepatobiliary disorders"


def safety_registry() -> dict[str, list[dict]]:
    return {
        "sites": [
            dict(site_id="S01", site_name="North Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
            dict(site_id="S02", site_name="South Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
        ],
        "patients": [
            patient("P1", "S01", "2024-01-10", "B", last_alive="2024-12-31"),
            patient("P2", "S01", "2024-02-01", "C", last_alive="2024-12-31"),
            patient("P3", "S02", "2024-03-01", "B", last_alive="2024-12-31"),
            patient("P4", "S02", "2024-05-01", "C", last_alive="2024-12-31"),
            patient("P5", "S01", "2024-06-01", "B", last_alive="2024-12-31"),
            patient("P6", "S02", "2024-04-01", "B", death="2024-04-25"),
        ],
        "treatments": [
            session("P1", 1, "2024-01-10"), session("P1", 2, "2024-03-01"), session("P2", 1, "2024-02-01"),
            session("P3", 1, "2024-03-01"), session("P3", 2, "2024-05-01"), session("P4", 1, "2024-05-01"),
            session("P5", 1, "2024-06-01"), session("P6", 1, "2024-04-01"),
        ],
        "adverse_events": [
            ae("P1", "A1", "Fever", 1, "2024-01-11"),
            ae("P1", "A2", "Fever", 3, "2024-03-02", serious=True, session_number=2),
            ae("P1", "A3", "Abdominal pain", 2, "2024-01-11"),
            ae("P1", "A4", "Nausea", 1, "2024-01-25"),
            ae("P2", "A1", "Alanine aminotransferase increased", 2, "2024-02-10", related=False),
            ae("P2", "A2", "Hepatic failure", 4, "2024-02-20", serious=True, session_number=None),
            ae("P3", "A1", "Abdominal pain", 1, "2024-05-03", session_number=None),
            ae("P3", "A2", "Vomiting", 3, "2024-03-05", serious=True, related=False),
            ae("P6", "A1", "Hepatic failure", 5, "2024-04-20", serious=True),
            ae("P6", "A2", "Fever", 2, "2024-04-02"),
        ],
    }


@pytest.fixture(scope="module")
def safety_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    write_snapshot(root, "2024-12-31", safety_registry())
    return root


@pytest.fixture(scope="module")
def snap(safety_root):
    return data.resolve("latest", safety_root)


def incidence(snap, filters=Filters(), **options) -> pd.DataFrame:
    return exports.run_export("ae-incidence", snap, filters, **options).rows


def row(rows, soc, term=None, group="all") -> dict:
    sel = rows[(rows.soc == soc) & (rows.group == group) &
               (rows.term.isna() if term is None else rows.term == term)]
    assert len(sel) == 1, f"{soc}/{term}/{group}: {len(sel)} rows"
    return sel.iloc[0].to_dict()


def counts(r: dict) -> tuple:
    return (r["n_patients_any"], r["grade_1"], r["grade_2"], r["grade_3"], r["grade_4"], r["grade_5"],
            r["n_grade_3_4"], r["n_grade_5"], r["n_serious"], r["n_related"], r["denominator"])


# --- views --------------------------------------------------------------------------------------
def test_ae_episodes_attributes_a_session_and_counts_days(snap):
    ep = data.query("ae_episodes", snap).set_index(["patient_id", "ae_id"])
    assert len(ep) == 10
    # recorded session: P1's A2 followed session 2 (03-01) by 1 day
    assert ep.loc[("P1", "A2"), "attributed_session_number"] == 2 and ep.loc[("P1", "A2"), "days_from_session"] == 1
    # no session recorded: the latest session on or before onset (P3: session 2, day 2, not session 1, day 63)
    assert pd.isna(ep.loc[("P3", "A1"), "session_number"])
    assert ep.loc[("P3", "A1"), "attributed_session_number"] == 2 and ep.loc[("P3", "A1"), "days_from_session"] == 2
    assert ep.loc[("P2", "A2"), "attributed_session_number"] == 1 and ep.loc[("P2", "A2"), "days_from_session"] == 19
    assert ep.loc[("P1", "A4"), "days_from_session"] == 15
    assert ep.loc[("P2", "A1"), "site_id"] == "S01" and ep.loc[("P6", "A1"), "bclc_stage"] == "B"


def test_episode_filters_choose_episodes_before_the_worst_grade(snap):
    related = data.query("ae_episodes", snap, variables={"ae_related_only": True})
    assert set(zip(related.patient_id, related.ae_id)) == {
        ("P1", "A1"), ("P1", "A2"), ("P1", "A3"), ("P1", "A4"), ("P2", "A2"), ("P3", "A1"), ("P6", "A1"), ("P6", "A2")}
    serious = data.query("ae_worst_grade", snap, variables={"ae_related_only": None, "ae_serious_only": True})
    fever = serious.set_index(["patient_id", "term"]).loc[("P1", "Fever")]
    assert fever.worst_grade == 3 and fever.n_episodes == 1             # the grade 1 episode is not serious
    within = data.query("ae_episodes", snap, variables={"ae_serious_only": None, "ae_within_days": 7})
    # day 15 (P1 A4), day 9 (P2 A1), day 19 (P2 A2, P6 A1) are out
    assert set(zip(within.patient_id, within.ae_id)) == {
        ("P1", "A1"), ("P1", "A2"), ("P1", "A3"), ("P3", "A1"), ("P3", "A2"), ("P6", "A2")}
    data.execute("select 1", snap, variables={"ae_within_days": None})


def test_ae_worst_grade_keeps_its_grain_and_columns(snap):
    wg = data.query("ae_worst_grade", snap)
    assert list(wg.columns) == ["patient_id", "site_id", "bclc_stage", "child_pugh_class", "soc", "term",
                                "worst_grade", "n_episodes", "any_serious", "any_related"]
    assert not wg.duplicated(["patient_id", "term"]).any()
    fever = wg.set_index(["patient_id", "term"]).loc[("P1", "Fever")]
    assert fever.worst_grade == 3 and fever.n_episodes == 2 and fever.any_serious   # once, at grade 3


def test_episode_variables_do_not_linger_on_the_cursor(snap):
    incidence(snap, related_only=True, serious_only=True, within_days=3)
    # a later query binding nothing sees every episode (the export resets its variables)
    assert len(data.query("ae_episodes", snap)) == 10


# --- the export: counting as the analysis plan --------------------------------------------------
def test_export_columns_are_the_issue_columns_then_exposure(snap):
    exp = exports.run_export("ae-incidence", snap)
    assert list(exp.rows.columns) == SPEC_COLUMNS + ["n_events", "n_sessions", "events_per_100_sessions",
                                                     "n_grade_3_plus"]
    assert exp.n_patients == 6
    # worst grade 3, 4 or 5 (the group heatmap's grade >= 3, one cell under suppression): overall P1, P2, P3, P6
    assert row(exp.rows, an.ANY_AE)["n_grade_3_plus"] == 4
    assert exp.extra == {"level": "term", "by": "none", "related_only": False, "serious_only": False,
                         "within_days": None, "n_patients_with_ae": 4, "n_events": 10, "n_sessions": 8}


def test_same_term_at_grades_1_and_3_counts_once_at_3(snap):
    rows = incidence(snap)
    # Fever: P1 (grade 1 then 3) counts once at 3; P6 at 2
    assert counts(row(rows, GEN, "Fever")) == (2, 0, 1, 1, 0, 0, 1, 0, 1, 2, 6)
    assert row(rows, GEN, "Fever")["n_events"] == 3
    assert counts(row(rows, HEP, "Hepatic failure")) == (2, 0, 0, 0, 1, 1, 1, 1, 2, 2, 6)
    assert counts(row(rows, GI, "Vomiting")) == (1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 6)
    alt = row(rows, "Investigations", "Alanine aminotransferase increased")
    assert counts(alt) == (1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6)


def test_two_terms_in_one_soc_count_once_at_soc_level(snap):
    rows = incidence(snap, level="soc")
    assert rows.term.isna().all()
    # P1: Abdominal pain 2 + Nausea 1 -> once at 2; P3: Abdominal pain 1 + Vomiting 3 -> once at 3
    assert counts(row(rows, GI)) == (2, 0, 1, 1, 0, 0, 1, 0, 1, 2, 6)
    assert row(rows, GI)["n_events"] == 4
    assert counts(row(rows, HEP)) == (2, 0, 0, 0, 1, 1, 1, 1, 2, 2, 6)


def test_overall_row_first_and_patients_without_ae_in_the_denominator(snap):
    for level in ("term", "soc"):
        rows = incidence(snap, level=level)
        first = rows.iloc[0].to_dict()
        assert first["soc"] == an.ANY_AE and pd.isna(first["term"])
        # P1 3, P2 4, P3 3, P6 5; P4 and P5 have no AE but are in N = 6
        assert counts(first) == (4, 0, 0, 2, 1, 1, 3, 1, 4, 4, 6)
        assert (rows.denominator == 6).all()


def test_events_per_100_sessions(snap):
    first = incidence(snap).iloc[0]
    assert (first.n_events, first.n_sessions) == (10, 8)
    assert first.events_per_100_sessions == pytest.approx(125.0)                # 10 / 8 * 100
    assert row(incidence(snap), GEN, "Fever")["events_per_100_sessions"] == pytest.approx(37.5)   # 3 / 8


def test_rows_ordered_by_soc_then_term_incidence(snap):
    rows = incidence(snap)
    # SOC any-grade patients: GI 2 (P1, P3), General 2 (P1, P6), Hepatobiliary 2 (P2, P6), Investigations 1;
    # ties broken by name. Within GI: Abdominal pain 2, then Nausea 1 and Vomiting 1 by name
    assert list(rows.soc.drop_duplicates()) == [an.ANY_AE, GI, GEN, HEP, "Investigations"]
    assert list(rows[rows.soc == GI].term) == ["Abdominal pain", "Nausea", "Vomiting"]


def test_related_only(snap):
    rows = incidence(snap, related_only=True)
    # P2's ALT (not related) and P3's vomiting (not related) do not count; P3 keeps abdominal pain G1
    assert "Alanine aminotransferase increased" not in set(rows.term) and "Vomiting" not in set(rows.term)
    assert counts(rows.iloc[0]) == (4, 1, 0, 1, 1, 1, 2, 1, 3, 4, 6)      # P1 3, P2 4, P3 1, P6 5
    assert rows.iloc[0].n_events == 8
    assert counts(row(rows, GI, "Abdominal pain")) == (2, 1, 1, 0, 0, 0, 0, 0, 0, 2, 6)


def test_serious_only(snap):
    rows = incidence(snap, serious_only=True, level="soc")
    # serious episodes: P1 Fever G3, P2 Hepatic failure G4, P3 Vomiting G3, P6 Hepatic failure G5
    assert counts(rows.iloc[0]) == (4, 0, 0, 2, 1, 1, 3, 1, 4, 3, 6)
    assert rows.iloc[0].n_events == 4
    assert counts(row(rows, GEN)) == (1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 6)


def test_onset_within_days_of_a_session(snap):
    rows = incidence(snap, within_days=7)
    # kept: P1 A1 A2 A3 (day 1), P3 A1 (day 2 after session 2) and A2 (day 4), P6 A2 (day 1)
    assert counts(rows.iloc[0]) == (3, 0, 1, 2, 0, 0, 2, 0, 2, 3, 6)      # P1 3, P3 3, P6 2
    assert rows.iloc[0].n_events == 6
    assert "Nausea" not in set(rows.term) and "Hepatic failure" not in set(rows.term)
    none = incidence(snap, within_days=0)                 # no onset on the day of a session
    assert len(none) == 1 and none.iloc[0].n_patients_any == 0 and none.iloc[0].denominator == 6


def test_by_site_fills_every_cell(snap):
    rows = incidence(snap, by="site_id")
    assert set(rows.group) == {"S01", "S02"}
    assert len(rows) == 2 * rows[["soc", "term"]].drop_duplicates().shape[0]       # every term x every site
    # S01: P1, P2, P5 (N 3); S02: P3, P4, P6 (N 3)
    assert row(rows, GEN, "Fever", "S01")["n_patients_any"] == 1 and row(rows, GEN, "Fever", "S01")["denominator"] == 3
    assert row(rows, GI, "Vomiting", "S01")["n_patients_any"] == 0                   # a zero cell, present
    assert row(rows, GI, "Vomiting", "S02")["n_grade_3_4"] == 1
    assert row(rows, an.ANY_AE, None, "S01")["n_sessions"] == 4                       # P1 2 + P2 1 + P5 1
    by_bclc = incidence(snap, by="bclc_stage", level="soc")
    assert list(by_bclc.group.drop_duplicates()) == ["B", "C"]                      # natural order
    assert row(by_bclc, an.ANY_AE, None, "B")["denominator"] == 4 and row(by_bclc, HEP, None, "C")["grade_4"] == 1


def test_filters_apply_and_zero_patients_give_no_rows(snap):
    c = incidence(snap, Filters(bclc=("C",)))
    assert counts(c.iloc[0]) == (1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 2)          # P2 worst 4; P4 no AE
    empty = exports.run_export("ae-incidence", snap, Filters(bclc=("0",), age_max=20))
    assert empty.n_patients == 0 and empty.rows.empty and list(empty.rows.columns)[:14] == SPEC_COLUMNS


def test_bad_options_are_clear_errors(snap):
    with pytest.raises(ValueError, match="unknown level"):
        exports.run_export("ae-incidence", snap, level="pt")
    with pytest.raises(ValueError, match="within-days"):
        exports.run_export("ae-incidence", snap, within_days=-1)
    with pytest.raises(ValueError, match="unknown grouping"):
        exports.run_export("ae-incidence", snap, by="hospital")


def test_cli_export_as_a_user_runs_it(safety_root):
    out = subprocess.run([sys.executable, "-m", "dashboard", "export", "ae-incidence", "--data", str(safety_root),
                          "--level", "soc", "--by", "site_id", "--related-only", "--format", "csv"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    csv = pd.read_csv(pd.io.common.StringIO(out.stdout))
    assert list(csv.columns) == SPEC_COLUMNS + ["n_events", "n_sessions", "events_per_100_sessions", "n_grade_3_plus"]
    assert csv.term.isna().all()
    s02 = csv[(csv.soc == an.ANY_AE) & (csv.group == "S02")].iloc[0]
    assert (s02.n_patients_any, s02.grade_1, s02.grade_5, s02.denominator) == (2, 1, 1, 3)   # P3 G1, P6 G5


def test_cli_rejects_a_negative_window(safety_root, capsys):
    from dashboard.__main__ import main
    assert main(["export", "ae-incidence", "--data", str(safety_root), "--within-days", "-3"]) == 2
    assert "within-days must be 0 or more" in capsys.readouterr().err


# --- analytics on plain DataFrames (no DuckDB) -------------------------------------------------
def test_incidence_on_plain_frames():
    worst = pd.DataFrame([
        dict(patient_id="a", soc="X", term="t1", worst_grade=1, n_episodes=1, any_serious=False, any_related=True),
        dict(patient_id="a", soc="X", term="t2", worst_grade=4, n_episodes=2, any_serious=True, any_related=False),
        dict(patient_id="b", soc="Y", term="t3", worst_grade=2, n_episodes=1, any_serious=False, any_related=False),
    ])
    patients = pd.DataFrame(dict(patient_id=["a", "b", "c"], group=["g1", "g1", "g2"], n_sessions=[2, 1, 1]))
    soc = an.incidence(worst, patients, "soc", groups=["g1", "g2"])
    # X in g1: patient a once, at 4, serious (t2) and related (t1); g2 has no X: zeros over N = 1
    x1 = soc[(soc.soc == "X") & (soc.group == "g1")].iloc[0]
    assert (x1.n_patients_any, x1.grade_4, x1.n_serious, x1.n_related) == (1, 1, 1, 1)
    assert (x1.n_events, x1.denominator) == (3, 2)
    x2 = soc[(soc.soc == "X") & (soc.group == "g2")].iloc[0]
    assert (x2.n_patients_any, x2.denominator, x2.n_sessions, x2.events_per_100_sessions) == (0, 1, 1, 0.0)
    overall = soc[(soc.soc == an.ANY_AE) & (soc.group == "g1")].iloc[0]
    assert (overall.n_patients_any, overall.grade_2, overall.grade_4, overall.n_events) == (2, 1, 1, 4)
    assert an.incidence(worst.iloc[0:0], patients.iloc[0:0], "term", groups=[]).empty


# --- figures, without a browser -----------------------------------------------------------------
def test_grade_heatmap_cells_hover_and_soc_headers(snap):
    fig = figs.grade_heatmap(incidence(snap))
    z, text = figs.heatmap_cells(fig)
    traces = {t.name: t for t in fig.data}
    assert list(traces) == ["grades 1-2", "grades 3-4", "grade 5", "none"]
    labels = list(fig.layout.yaxis.ticktext)
    fever = labels.index("Fever")
    assert z[fever][2] == pytest.approx(100 / 6) and text[fever][2] == "16.7"            # worst grade 3: 1 of 6
    assert z[fever][0] == 0 and text[fever][0] == ""                                 # 0%: no text
    severe = traces["grades 3-4"]
    assert severe.z[fever][2] == pytest.approx(100 / 6) and severe.z[fever][0] is None     # drawn by its band
    assert "1 of 6 patients (16.7%)" in severe.customdata[fever][2]                  # n, %, denominator
    assert traces["none"].z[fever][0] == 0 and traces["none"].customdata[fever][0]     # a 0 cell keeps its hover
    headers = [a.text for a in fig.layout.annotations]
    assert f"<b>{GI}</b>" in headers
    header_row = labels.index("", 1)
    assert all(v is None for v in z[header_row])                                     # a SOC header has no cells
    assert labels[0] == f"<b>{an.ANY_AE}</b>"
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "3", "4", "5"]
    assert traces["none"].colorscale[0][1] == "#ffffff"                              # 0% is white


def test_group_heatmap_marks_small_groups_and_switches_measure(snap):
    rows = incidence(snap, by="site_id")
    fig = figs.group_heatmap(rows, "any", "Site")
    assert [t.split("<br>")[0] for t in fig.layout.xaxis.ticktext] == ["S01†", "S02†"]   # N = 3 < 5
    hm = fig.data[0]
    labels = list(fig.layout.yaxis.ticktext)
    assert hm.z[labels.index("Fever")] == pytest.approx([100 / 3, 100 / 3])
    g3 = figs.group_heatmap(rows, "grade3", "Site")
    shown = [t for t in g3.layout.yaxis.ticktext if t]
    # grade >= 3: Fever (P1), Vomiting (P3), Hepatic failure (P2, P6); terms with none are left out
    assert shown == [f"<b>{an.ANY_AE}</b>", "Vomiting", "Fever", "Hepatic failure"]
    assert "unstable" in g3.data[0].customdata[0][0]


def test_cell_text_never_prints_a_zero_for_some_patients():
    # 1 of 240 patients = 0.42%: '<1' in the whole-number heatmap, '0.4' with one decimal; none = blank
    assert figs._pct_text(100 / 240, 0) == "<1" and figs._pct_text(100 / 240, 1) == "0.4"
    assert figs._pct_text(100 / 3000, 1) == "<0.1" and figs._pct_text(0.0, 1) == ""


def test_figures_say_why_they_are_empty(snap):
    empty = exports.run_export("ae-incidence", snap, Filters(bclc=("0",))).rows
    for fig in (figs.grade_heatmap(empty), figs.group_heatmap(empty)):
        assert "No patients" in fig.layout.annotations[0].text
    none = incidence(snap, within_days=0)
    assert "No adverse event" in figs.grade_heatmap(none).layout.annotations[0].text
    assert "No patient with an adverse event" in figs.group_heatmap(incidence(snap, within_days=0, by="site_id"),
                                                                    "grade3").layout.annotations[0].text


# --- callbacks as plain functions ---------------------------------------------------------------
@pytest.fixture
def state(safety_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(safety_root))
    return {"snapshot": "2024-12-31", "query": ""}


def test_cards_use_the_export_of_their_switches(state, snap):
    from dashboard.callbacks import safety as cb
    fig, config, spec, note = cb.grade_heatmap_card(state, "serious", 7)
    assert spec["export"] == "ae-incidence" and spec["options"] == {
        "related_only": False, "serious_only": True, "within_days": 7, "level": "term", "by": "none"}
    assert spec["filename"].startswith("safety_ae-grade-heatmap_2024-12-31") and "toImage" in config["modeBarButtonsToRemove"]
    assert "N = 6 patients" in note[1] and "serious episodes only" in note[1] and "0-7 days" in note[1]
    fig, _, spec, note = cb.group_heatmap_card(state, "all", None, "bclc_stage", "grade3")
    assert spec["options"]["by"] == "bclc_stage" and "grade 3, 4 or 5" in note[1]
    assert [t.split("<br>")[0] for t in fig.layout.xaxis.ticktext] == ["B†", "C†"]
    table, spec, note = cb.incidence_card(state, "related", "", "soc")
    assert spec["options"] == {"related_only": True, "serious_only": False, "within_days": None, "level": "soc",
                               "by": "none"}
    assert "8 DEB-TACE sessions" in note[1]


def test_table_shows_the_export_numbers_with_the_denominator(state):
    from dashboard.callbacks import safety as cb
    table, _, _ = cb.incidence_card(state)
    text = str(table)
    assert "n (%) of N = 6 patients" in text
    assert "4 (66.7%)" in text and "125.0" in text                  # overall: 4 of 6; 10 / 8 sessions
    assert "Gastrointestinal disorders" in text and "Nausea" in text


def test_csv_download_is_the_export(state, snap):
    from dashboard.callbacks import safety as cb
    from dashboard.callbacks.downloads import csv_download
    _, _, spec, _ = cb.group_heatmap_card(state, "related", 7, "site_id", "any")
    sent = csv_download(spec["figure"], "?events=related&within_days=7&by=site_id", state)
    expected = exports.to_csv(exports.run_export("ae-incidence", snap, level="term", by="site_id",
                                                 related_only=True, within_days=7))
    assert sent["content"] == expected and sent["filename"].endswith(".csv")


def test_zero_patients_and_tiny_groups_give_messages(state):
    from dashboard.callbacks import safety as cb
    empty = {"snapshot": "2024-12-31", "query": "bclc=0&age_max=20"}
    fig, _, _, _ = cb.grade_heatmap_card(empty)
    assert "No patients" in fig.layout.annotations[0].text
    table, _, _ = cb.incidence_card(empty)
    assert "No patients" in str(table)
    fig, _, _, note = cb.grade_heatmap_card({"snapshot": "2024-12-31", "query": "bclc=C"})
    assert "Only 2 patients" in str(note[0])
    table, _, _ = cb.incidence_card(state, "all", 0)
    assert "No adverse event counted among the 6 patients" in str(table)


def test_switch_values_from_the_url_are_validated():
    from dashboard.callbacks.safety import episode_options
    assert episode_options("serious", "14") == {"related_only": False, "serious_only": True, "within_days": 14}
    assert episode_options("bogus", "-2")["within_days"] is None and not episode_options("bogus")["related_only"]
    assert episode_options("all", "abc")["within_days"] is None


def find(node, wanted):
    """The component with id `wanted` in a layout tree (None when absent)."""
    if isinstance(node, (list, tuple)):
        return next((f for f in (find(c, wanted) for c in node) if f is not None), None)
    if not hasattr(node, "to_plotly_json"):
        return None
    if getattr(node, "id", None) == wanted:
        return node
    return find(getattr(node, "children", None), wanted)


def test_page_layout_takes_its_options_from_the_url():
    import dash
    from dashboard import ids
    from dashboard.app import create_app
    if not any(p["path"] == "/safety" for p in dash.page_registry.values()):
        create_app()                                    # registers the pages
    layout = next(p["layout"] for p in dash.page_registry.values() if p["path"] == "/safety")
    keys = ("events", "within_days", "by", "measure", "level")
    page = layout(events="serious", within_days="7", by="bclc_stage", measure="grade3", level="soc")
    assert {k: find(page, ids.page_option(k)).value for k in keys} == {
        "events": "serious", "within_days": 7, "by": "bclc_stage", "measure": "grade3", "level": "soc"}
    for container in ("safety-events", "safety-within-days", "safety-by", "safety-measure", "safety-level"):
        assert find(page, container) is not None
    bad = layout(events="x", within_days="-1", by="etiology_group", measure="y", level="z")
    assert {k: find(bad, ids.page_option(k)).value for k in keys} == {
        "events": "all", "within_days": None, "by": "site_id", "measure": "any", "level": "term"}


# --- an independent check: random.cdisc.data ADAE (nobody here wrote it) --------------------------
def _cdisc_tables():
    if not (TESTDATA / "cadae.parquet").exists():
        pytest.skip(f"shared test data not found at {TESTDATA} (../shared/testdata is not checked out here)")
    adsl = pd.read_parquet(TESTDATA / "cadsl.parquet")
    adae = pd.read_parquet(TESTDATA / "cadae.parquet")
    return adsl, adae


def _day(v):
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def cdisc_registry(adsl: pd.DataFrame, adae: pd.DataFrame) -> tuple[dict, dt.date]:
    """ADSL subjects become patients (synthetic valid baseline fields: one DEB-TACE session on the
    first treatment day), ADAE records become episodes: AEDECOD -> term, AEBODSYS -> soc,
    AETOXGR -> grade, AESER/AEREL = 'Y' -> serious/related, ASTDTM -> onset, no session recorded.
    A subject with a grade 5 AE and no ADSL death date dies on the last onset (the contract needs it)."""
    ae_rows, last_onset, grade5 = [], {}, set()
    for r in adae.itertuples():
        onset = _day(r.ASTDTM)
        end = _day(r.AENDTM)
        ae_rows.append(dict(patient_id=r.USUBJID, ae_id=f"AE{r.AESEQ}", term=r.AEDECOD, soc=r.AEBODSYS,
                            grade=int(r.AETOXGR), onset_date=onset,
                            resolution_date=end if end is not None and end >= onset else None,
                            is_serious=r.AESER == "Y", is_treatment_related=r.AEREL == "Y", session_number=None))
        last_onset[r.USUBJID] = max(onset, last_onset.get(r.USUBJID, onset))
        if int(r.AETOXGR) == 5:
            grade5.add(r.USUBJID)
    patients, treatments, dates = [], [], []
    for s in adsl.itertuples():
        t0 = _day(s.TRTSDTM)
        death = _day(s.DTHDT) or (last_onset[s.USUBJID] if s.USUBJID in grade5 else None)
        alive = death or max(d for d in (_day(s.LSTALVDT), last_onset.get(s.USUBJID), t0) if d is not None)
        patients.append(patient(s.USUBJID, s.SITEID, t0.isoformat(), "B", last_alive=alive.isoformat(),
                                death=death and death.isoformat(), age_years=int(min(max(s.AGE, 18), 100)),
                                sex="F" if s.SEX == "F" else "M"))
        treatments.append(session(s.USUBJID, 1, t0.isoformat()))
        dates += [alive, t0]
    dates += [r["onset_date"] for r in ae_rows] + [r["resolution_date"] for r in ae_rows if r["resolution_date"]]
    sites = [dict(site_id=x, site_name=x, activation_date=D("2000-01-01"), target_enrollment=10)
             for x in sorted(adsl.SITEID.unique())]
    return {"sites": sites, "patients": patients, "treatments": treatments, "adverse_events": ae_rows}, max(dates)


@pytest.fixture(scope="module")
def cdisc(tmp_path_factory):
    adsl, adae = _cdisc_tables()
    rows, cutoff = cdisc_registry(adsl, adae)
    root = tmp_path_factory.mktemp("cdisc")
    write_snapshot(root, cutoff.isoformat(), rows)
    return data.resolve("latest", root), adsl, adae


def test_cdisc_worst_grade_per_patient_and_term_equals_plain_pandas(cdisc):
    snap, adsl, adae = cdisc
    adae = adae.assign(grade=adae.AETOXGR.astype(int))
    expected = adae.groupby(["USUBJID", "AEDECOD"]).grade.max()
    got = data.query("ae_worst_grade", snap).set_index(["patient_id", "term"]).worst_grade
    assert len(got) == len(expected) > 0
    assert got.sort_index().astype(int).tolist() == expected.sort_index().tolist()
    assert list(got.sort_index().index) == list(expected.sort_index().index)


def _expected_counts(adae: pd.DataFrame, keys: list[str], n: int) -> pd.DataFrame:
    """Plain pandas: patients by worst grade per keys, from the ADAE records themselves."""
    w = adae.groupby(["USUBJID", *keys]).agg(worst=("grade", "max"), ser=("AESER", lambda s: (s == "Y").any()),
                                             rel=("AEREL", lambda s: (s == "Y").any()))
    out = w.groupby(keys).agg(n_patients_any=("worst", "size"), n_serious=("ser", "sum"), n_related=("rel", "sum"))
    for g in range(1, 6):
        out[f"grade_{g}"] = w.worst.eq(g).groupby(keys).sum()
    out["denominator"] = n
    return out.astype(int)


@pytest.mark.parametrize("level, keys, options", [
    ("term", ["AEDECOD"], {}),
    ("soc", ["AEBODSYS"], {}),
    ("term", ["AEDECOD"], {"related_only": True}),
    ("soc", ["AEBODSYS"], {"serious_only": True}),
])
def test_cdisc_incidence_equals_plain_pandas(cdisc, level, keys, options):
    snap, adsl, adae = cdisc
    adae = adae.assign(grade=adae.AETOXGR.astype(int))
    if options.get("related_only"):
        adae = adae[adae.AEREL == "Y"]
    if options.get("serious_only"):
        adae = adae[adae.AESER == "Y"]
    n = adsl.USUBJID.nunique()                                     # 400: subjects without an AE count too
    expected = _expected_counts(adae, keys, n)
    rows = exports.run_export("ae-incidence", snap, level=level, **options).rows
    got = rows[rows.soc != an.ANY_AE].set_index("term" if level == "term" else "soc")[expected.columns]
    pd.testing.assert_frame_equal(got.sort_index(), expected.rename_axis(got.index.name).sort_index(),
                                  check_dtype=False, check_index_type=False)
    overall = rows.iloc[0]
    worst = adae.groupby("USUBJID").grade.max()
    assert overall.n_patients_any == len(worst) and overall.denominator == n
    assert [overall[f"grade_{g}"] for g in range(1, 6)] == [int((worst == g).sum()) for g in range(1, 6)]
    assert overall.n_events == len(adae)


def test_cdisc_onset_within_days_equals_plain_pandas(cdisc):
    snap, adsl, adae = cdisc
    # the only session is on the first treatment day: days = onset date - first treatment date
    t0 = adsl.set_index("USUBJID").TRTSDTM.dt.normalize()
    days = (adae.ASTDTM.dt.normalize() - adae.USUBJID.map(t0)).dt.days
    kept = adae[(days >= 0) & (days <= 60)].assign(grade=lambda d: d.AETOXGR.astype(int))
    rows = exports.run_export("ae-incidence", snap, within_days=60).rows
    worst = kept.groupby("USUBJID").grade.max()
    overall = rows.iloc[0]
    assert 0 < overall.n_patients_any == len(worst) < 365
    assert [overall[f"grade_{g}"] for g in range(1, 6)] == [int((worst == g).sum()) for g in range(1, 6)]
