"""The Cox reference group (issue 19, item 2): `export cox --ref LEVEL`, the Survival page's `ref=`
option, the default rule and an unknown level.

Sources: tests/reference/r_cox_reference_level.json, written by
tests/reference/make_cox_reference_level.R (R 4.2.2, survival 3.5-3:
coxph(Surv(time, status) ~ relevel(factor(group), ref = REF)), Efron ties) on synthetic_os.csv (the
built-in synthetic registry's OS by BCLC stage, checked against the test registry here) and on
lung.csv by sex (2 = female = 'F' in the lung snapshot); group sizes counted with pandas from the
parquet files or by hand.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dashboard import data, exports, security
from dashboard.data import ALL_SITES
from dashboard.exports import survival as km
from dashboard.filters import NON_FILTER_PARAMS, Filters
from test_survival_page import close, cli, find, lung_root, text_of  # noqa: F401  (lung_root: a fixture)

REF_DIR = Path(__file__).resolve().parent / "reference"
R = json.loads((REF_DIR / "r_cox_reference_level.json").read_text())


def check_against_r(rows: list[dict], block: dict, reference: str, rename=lambda g: g):
    """The export's rows (reference first) against R's block: the reference row HR 1 without CI or p,
    then each other level's HR, CI and p within 1e-6 relative."""
    assert rows[0]["group"] == reference and rows[0]["hazard_ratio"] == 1.0
    assert rows[0]["ci_lower"] is None and rows[0]["p_value"] is None
    got = {r["group"]: r for r in rows[1:]}
    assert sorted(got) == sorted(rename(g) for g in block["group"])
    for i, g in enumerate(block["group"]):
        r = got[rename(g)]
        close([r["hazard_ratio"], r["ci_lower"], r["ci_upper"], r["p_value"]],
              [block["hazard_ratio"][i], block["ci_lower"][i], block["ci_upper"][i], block["p_value"][i]])


@pytest.fixture(scope="module")
def synthetic(synthetic_root):
    snapshot = data.resolve("latest", synthetic_root)
    csv = pd.read_csv(REF_DIR / "synthetic_os.csv")
    mine = exports.compute_export("patients", snapshot).rows.sort_values("patient_id")
    assert csv.patient_id.tolist() == mine.patient_id.tolist()          # R's patients are the registry's
    assert csv.os_days.tolist() == mine.os_days.tolist()
    return snapshot


def test_default_reference_is_bclc_b_against_r(synthetic, synthetic_root, capsys):
    """No --ref: BCLC B; rows B, A, C = R relevel(ref = "B") (A 0.829, C 2.24 (1.77-2.84))."""
    doc = cli(capsys, synthetic_root, "cox")
    assert doc["reference"] == "B" and doc["reference_default"] == "B" and doc["reference_note"] is None
    assert [r["group"] for r in doc["rows"]] == ["B", "A", "C"]
    check_against_r(doc["rows"], R["synthetic_bclc_ref_B"], "B")


def test_ref_c_against_r(synthetic_root, capsys):
    """--ref C: rows C, A, B = R relevel(ref = "C") (B vs C 0.446 (0.352-0.566))."""
    doc = cli(capsys, synthetic_root, "cox", "--ref", "C")
    assert doc["reference"] == "C" and doc["reference_note"] is None
    assert [r["group"] for r in doc["rows"]] == ["C", "A", "B"]
    check_against_r(doc["rows"], R["synthetic_bclc_ref_C"], "C")


def test_lung_by_sex_with_women_as_reference_against_r(lung_root, capsys):
    """lung by sex: the default is the largest group, men (138 of 228); --ref F = R's ref = "2"
    (men vs women HR 1.70 (1.23-2.36), p 0.0015)."""
    default = cli(capsys, lung_root, "cox", "--by", "sex")
    assert default["reference"] == "M" and [r["group"] for r in default["rows"]] == ["M", "F"]
    doc = cli(capsys, lung_root, "cox", "--by", "sex", "--ref", "F")
    assert doc["reference"] == "F"
    check_against_r(doc["rows"], R["lung_sex_ref_2"], "F", rename={"1": "M"}.get)


def test_an_unknown_reference_says_so_and_uses_the_default(synthetic_root, capsys):
    doc = cli(capsys, synthetic_root, "cox", "--by", "sex", "--ref", "B")
    assert doc["reference"] == doc["reference_default"] == "M"       # 433 men of 600 (pandas count below)
    assert doc["reference_note"] == ("Reference 'B' is not a group of Sex in this filter (M, F); the default, M, "
                                     "is used.")
    assert doc["rows"][0]["group"] == "M"


def test_the_issue_filter_no_longer_takes_a_one_patient_reference(synthetic, synthetic_root):
    """?child_pugh=B&etiology=HBV: BCLC A has 1 patient and 0 events, B 30, C 22 (counted with pandas
    from the parquet files); the reference is B, and C against B is estimated (before: A was the
    reference and every ratio 'not estimable')."""
    snap = synthetic_root / "snapshots" / synthetic.snapshot_id
    patients = pd.read_parquet(snap / "patients.parquet")
    sub = patients[(patients.child_pugh_class == "B") & (patients.etiology.isin(["HBV"]))]
    counts = sub.bclc_stage.value_counts().to_dict()
    filters = Filters.from_query("child_pugh=B&etiology=HBV")[0]
    exp = exports.compute_export("cox", synthetic, filters, ALL_SITES)
    assert exp.extra["group_n"] == {"A": counts["A"], "B": counts["B"], "C": counts["C"]} == {"A": 1, "B": 30, "C": 22}
    assert exp.extra["reference"] == "B"
    rows = exp.rows.set_index("group")
    assert rows.index.tolist() == ["B", "A", "C"]
    assert 0 < rows.loc["C", "hazard_ratio"] < float("inf") and rows.loc["C", "ci_lower"] > 0
    assert pd.isna(rows.loc["A", "hazard_ratio"])                       # no event: not estimable


def analysis(groups: dict, by="site_id") -> km.SurvivalAnalysis:
    """A SurvivalAnalysis of hand-made patients: {level: n}, every patient an event at day 10."""
    rows = pd.DataFrame([{"group": g, "time_days": 10.0, "is_event": 1} for g, n in groups.items() for _ in range(n)])
    return km.SurvivalAnalysis("os", by, "log-log", rows, rows, tuple(groups))


def test_default_reference_rule_by_hand():
    """The largest group; ties: the first in level order; 'unknown' only when alone; BCLC: B when
    present, else the largest; no grouping: none."""
    assert analysis({"S01": 3, "S02": 7, "S03": 5}).default_reference == "S02"
    assert analysis({"S01": 3, "S02": 7, "S03": 7}).default_reference == "S02"
    assert analysis({"HBV": 3, "unknown": 9}, by="etiology_group").default_reference == "HBV"
    assert analysis({"unknown": 9}, by="etiology_group").default_reference == "unknown"
    assert analysis({"A": 2, "B": 3, "C": 9}, by="bclc_stage").default_reference == "B"
    assert analysis({"A": 2, "C": 9}, by="bclc_stage").default_reference == "C"
    assert analysis({"all": 4}, by="none").default_reference is None
    assert analysis({"S01": 3, "S02": 7}).reference("S01") == ("S01", None)
    assert analysis({"S01": 3, "S02": 7}).reference("") == ("S02", None)


# --- the page -------------------------------------------------------------------------------------
@pytest.fixture
def synthetic_state(synthetic, synthetic_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    return {"snapshot": synthetic.snapshot_id, "query": ""}


def cox_card(out):
    table = find(out[7], "survival-cox-table")
    rows = [[text_of(td).strip() for td in tr.children] for tr in table.children[1].children]
    return rows, text_of(find(out[7], "survival-reference")), text_of(out[7]), text_of(out[9])


def test_page_default_reference_and_its_line(synthetic_state):
    """R synthetic_bclc_ref_B, as the page formats it: C 2.24 (1.77–2.84), p < 0.0001; A 0.83 (0.26–2.61)."""
    from dashboard.callbacks.survival import survival_view
    out = survival_view(synthetic_state, "os", "bclc_stage", "log-log", [])
    rows, line, card, note = cox_card(out)
    assert [r[0] for r in rows] == ["B", "A", "C"]
    assert rows[0][1:] == ["1 (reference)", ""]
    assert rows[2][1:] == ["2.24 (1.77–2.84)", "< 0.0001"] and rows[1][1] == "0.83 (0.26–2.61)"
    assert line == "Reference: BCLC stage B (n = 353), the default."
    assert "against the reference group (B;" in note and "by default BCLC B" in note
    assert out[8]["options"] == {"endpoint": "os", "by": "bclc_stage", "ci": "log-log"}


def test_page_ref_from_the_url_and_its_download(synthetic_state):
    """ref=C: rows C first (R synthetic_bclc_ref_C: B 0.45 (0.35–0.57)); the CSV download's options
    carry ref, read from the URL (dashboard/callbacks/downloads.py)."""
    from dashboard.callbacks import downloads
    from dashboard.callbacks.survival import survival_view
    out = survival_view(synthetic_state, "os", "bclc_stage", "log-log", [], "C")
    rows, line, _, _ = cox_card(out)
    assert [r[0] for r in rows] == ["C", "A", "B"] and rows[2][1] == "0.45 (0.35–0.57)"
    assert line == "Reference: BCLC stage C (n = 240)."
    assert out[8]["options"]["ref"] == "C"
    page, name, options, *_ = downloads.export_for("cox", "?by=bclc_stage&ref=C", synthetic_state)
    assert (name, options) == ("cox", {"endpoint": "os", "by": "bclc_stage", "ci": "log-log", "ref": "C"})


def test_page_unknown_ref_says_so_and_falls_back(synthetic_state):
    from dashboard.callbacks.survival import survival_view
    out = survival_view(synthetic_state, "os", "sex", "log-log", [], "Z")
    rows, line, card, _ = cox_card(out)
    assert "Reference 'Z' is not a group of Sex in this filter (M, F); the default, M, is used." in card
    assert rows[0][:2] == ["M", "1 (reference)"] and line == "Reference: Sex M (n = 433), the default."


def test_reference_choices_are_the_groups_in_the_filter(synthetic_state):
    """The control's options: each BCLC stage with its n (pandas count of the parquet above: 7, 353, 240)."""
    from dashboard.callbacks.survival import reference_options
    assert reference_options(synthetic_state, "os", "bclc_stage", "log-log") == [
        {"label": "A (n = 7)", "value": "A"}, {"label": "B (n = 353)", "value": "B"},
        {"label": "C (n = 240)", "value": "C"}]
    assert reference_options(synthetic_state, "os", "none", "log-log") == []
    # a chosen level that is not a group stays a choice (a dropdown would drop it silently)
    assert reference_options(synthetic_state, "os", "sex", "log-log", "C")[-1] == \
        {"label": "C (not a group here)", "value": "C"}
    assert len(reference_options(synthetic_state, "os", "sex", "log-log", "F")) == 2


def test_ref_is_a_page_option_bounded_at_the_request_layer(dash_app):
    """The layout reads ref from the URL; ref is page state, not a filter; a value must be a short text
    (its level is the export's to check); the browser's spec says so."""
    import dash
    from dashboard import ids
    from dashboard.callbacks.shell import page_option_spec
    page = next(p for p in dash.page_registry.values() if p["path"] == "/survival")
    assert find(page["layout"](ref="C"), ids.page_option("ref")).value == "C"
    assert find(page["layout"](), ids.page_option("ref")).value is None
    assert find(page["layout"](), "survival-ref") is not None
    assert "ref" in NON_FILTER_PARAMS
    ident = ids.page_option("ref")
    for ok in ("C", None, "S01"):
        security.check_value(ident, "value", ok)
    for bad in ("x" * 65, 3, ["A"], {"a": 1}):
        with pytest.raises(security.Refused):
            security.check_value(ident, "value", bad)
    spec = page_option_spec("/survival")
    assert spec["defaults"]["ref"] is None and spec["allowed"]["ref"] == "text"


def test_a_sponsor_is_not_told_which_small_group_is_largest(synthetic):
    """age_max=40 by etiology (committee's counts, checked here): HBV 2, HCV 1, alcohol 1, MASLD 1. The
    default reference is the largest, HBV; a sponsor sees every n as "<5", so naming HBV as the
    (default) reference would rank them: no hazard ratio and no reference named. Chosen by the user
    (--ref HBV), the reference is named, as the user gave it."""
    from dashboard.access import Scope
    filters = Filters.from_query("age_max=40")[0]
    full = exports.compute_export("cox", synthetic, filters, ALL_SITES, by="etiology_group")
    assert full.extra["group_n"] == {"HBV": 2, "HCV": 1, "alcohol": 1, "MASLD": 1}
    assert full.extra["reference"] == "HBV"
    sponsor = Scope(patient_sites=(), suppress=True)
    mine = exports.compute_export("cox", synthetic, filters, sponsor, by="etiology_group")
    assert mine.rows.empty and mine.extra["reference"] is None and mine.extra["reference_default"] is None
    assert mine.extra["note"] == "Hazard ratios: not shown for your role (the default reference group has fewer " \
                                 "than 10 patients)."
    assert "HBV" not in json.dumps(mine.extra["note"])
    chosen = exports.compute_export("cox", synthetic, filters, sponsor, by="etiology_group", ref="HCV")
    assert chosen.rows.empty and chosen.extra["reference"] == "HCV" and chosen.extra["reference_default"] is None
    assert "the reference group, Etiology HCV, has fewer than 10" in chosen.extra["note"]
    # BCLC B (2 patients, C 3) by rule: its name tells nothing of sizes, and stays
    bclc = exports.compute_export("cox", synthetic, filters, sponsor, by="bclc_stage")
    assert bclc.rows.empty and bclc.extra["reference"] == bclc.extra["reference_default"] == "B"
    assert "the reference group, BCLC stage B, has fewer than 10" in bclc.extra["note"]
