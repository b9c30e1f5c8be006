"""The listing of serious safety signals (`ae-listing`, issue 18 item 4): the export against events selected
independently with pandas from the parquet files (the synthetic registry and the hand-written mini registry),
under filters (a site, BCLC C) and options (default, --min-grade N, --serious-only); days since the last
session worked out by hand on a registry written below; the command line; the page's card as a plain function.

The hand-written registry (cut-off 2024-12-31), three patients at two sites:

  patient site BCLC sessions                adverse events (grade, onset, recorded session, serious)
  P1      S01  B    1: 01-10, 2: 03-01      A1 Fever G1 01-11 s1                       -> not listed
                                            A2 Fever G3 03-02 s2 serious               -> day 1 (03-01), s2
                                            A3 Ascites G3 03-20 s1 serious             -> day 19 from s2 (03-01),
                                                                                          whatever s1 says
                                            A4 Nausea G3 03-05 s2 not serious          -> only with --min-grade <= 3
  P2      S01  C    1: 02-01                A1 Hepatic failure G5 02-20 none, NOT serious -> listed by default
                                                                                          (grade 5), day 19
                                            A2 Sepsis G4 02-01 s1 serious              -> day 0 (same day)
  P3      S02  C    none recorded           A1 Vomiting G4 04-10 none, serious         -> no session on or before
                                                                                          onset: days null

Default selection (grade 5, or serious grade >= 3), sorted by grade desc then onset:
  P2 A1 (5, 02-20, 19), P2 A2 (4, 02-01, 0), P3 A1 (4, 04-10, null), P1 A2 (3, 03-02, 1), P1 A3 (3, 03-20, 19).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.filters import Filters
from fixtures import D, ae, patient, session, write_snapshot

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["patient_id", "site_id", "term", "soc", "grade", "is_serious", "onset_date", "days_since_last_session",
           "session_number", "is_treatment_related", "resolution_date"]


def listing_registry() -> dict[str, list[dict]]:
    return {
        "sites": [
            dict(site_id="S01", site_name="North Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
            dict(site_id="S02", site_name="South Hospital", activation_date=D("2024-01-01"), target_enrollment=10),
        ],
        "patients": [
            patient("P1", "S01", "2024-01-10", "B", last_alive="2024-12-31"),
            patient("P2", "S01", "2024-02-01", "C", death="2024-02-20"),
            patient("P3", "S02", "2024-03-01", "C", last_alive="2024-12-31"),
        ],
        "treatments": [session("P1", 1, "2024-01-10"), session("P1", 2, "2024-03-01"), session("P2", 1, "2024-02-01")],
        "adverse_events": [
            ae("P1", "A1", "Fever", 1, "2024-01-11"),
            ae("P1", "A2", "Fever", 3, "2024-03-02", serious=True, session_number=2),
            ae("P1", "A3", "Ascites", 3, "2024-03-20", serious=True, session_number=1),
            ae("P1", "A4", "Nausea", 3, "2024-03-05", session_number=2),
            ae("P2", "A1", "Hepatic failure", 5, "2024-02-20", serious=False, session_number=None),
            ae("P2", "A2", "Sepsis", 4, "2024-02-01", serious=True),
            ae("P3", "A1", "Vomiting", 4, "2024-04-10", serious=True, session_number=None),
        ],
    }


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    root = tmp_path_factory.mktemp("listing")
    write_snapshot(root, "2024-12-31", listing_registry())
    return data.resolve("latest", root)


def listing(snapshot, filters=Filters(), **options) -> pd.DataFrame:
    return exports.compute_export("ae-listing", snapshot, filters, **options).rows


def key(rows: pd.DataFrame) -> list[tuple]:
    """(patient, term, grade, onset, days) per row, in the export's order; days None when null."""
    return [(p, t, int(g), str(o)[:10], None if pd.isna(d) else int(d)) for p, t, g, o, d in
            rows[["patient_id", "term", "grade", "onset_date", "days_since_last_session"]].itertuples(index=False)]


# --- by hand ---------------------------------------------------------------------------------------
def test_the_default_selection_and_days_since_the_last_session_by_hand(hand):
    assert key(listing(hand)) == [("P2", "Hepatic failure", 5, "2024-02-20", 19), ("P2", "Sepsis", 4, "2024-02-01", 0),
                                  ("P3", "Vomiting", 4, "2024-04-10", None), ("P1", "Fever", 3, "2024-03-02", 1),
                                  ("P1", "Ascites", 3, "2024-03-20", 19)]
    rows = listing(hand)
    assert list(rows.columns) == COLUMNS
    ascites = rows[rows.term == "Ascites"].iloc[0]
    assert ascites.session_number == 1 and ascites.days_since_last_session == 19     # recorded s1, counted from s2
    assert pd.isna(rows[rows.term == "Hepatic failure"].iloc[0].session_number)      # none recorded
    assert not rows[rows.term == "Hepatic failure"].iloc[0].is_serious               # grade 5 is always listed


def test_options_by_hand(hand):
    # --min-grade 3: every event of grade >= 3 (Nausea, not serious, comes in); --min-grade 4 --serious-only
    assert [k[1] for k in key(listing(hand, min_grade=3))] == ["Hepatic failure", "Sepsis", "Vomiting", "Fever",
                                                               "Nausea", "Ascites"]
    assert [k[1] for k in key(listing(hand, min_grade=4, serious_only=True))] == ["Sepsis", "Vomiting"]
    # --serious-only alone: the default's serious part (the non-serious grade 5 leaves)
    assert [k[1] for k in key(listing(hand, serious_only=True))] == ["Sepsis", "Vomiting", "Fever", "Ascites"]
    assert len(listing(hand, min_grade=1)) == 7 and key(listing(hand, min_grade=5)) == [key(listing(hand))[0]]
    # filters: a site, BCLC C
    assert {k[0] for k in key(listing(hand, Filters(site=("S02",))))} == {"P3"}
    assert {k[0] for k in key(listing(hand, Filters(bclc=("C",))))} == {"P2", "P3"}


@pytest.mark.parametrize("bad", [0, 6, "x", "3.5", True])
def test_a_bad_min_grade_is_a_clear_error(hand, bad):
    with pytest.raises(ValueError, match="--min-grade must be a CTCAE grade 1-5"):
        exports.compute_export("ae-listing", hand, Filters(), min_grade=bad)


# --- against pandas over the parquet files ------------------------------------------------------------
def expected_listing(folder: Path, site=None, bclc=None, min_grade=None, serious_only=False) -> pd.DataFrame:
    """The listing computed here with pandas from the snapshot's parquet files: the patients of the filter,
    their events selected as the analysis plan says (default: grade 5, or grade >= 3 and serious), days since
    the latest session with treatment_date <= onset_date (null when none), sorted grade desc, onset."""
    patients = pd.read_parquet(folder / "patients.parquet")
    events = pd.read_parquet(folder / "adverse_events.parquet")
    sessions = pd.read_parquet(folder / "treatments.parquet")
    if site:
        patients = patients[patients.site_id.isin(site)]
    if bclc:
        patients = patients[patients.bclc_stage.isin(bclc)]
    events = events.merge(patients[["patient_id", "site_id"]], on="patient_id")
    if min_grade is None:
        events = events[(events.grade == 5) | ((events.grade >= 3) & events.is_serious)]
    else:
        events = events[events.grade >= min_grade]
    if serious_only:
        events = events[events.is_serious]
    pairs = events[["patient_id", "ae_id", "onset_date"]].merge(sessions[["patient_id", "treatment_date"]],
                                                               on="patient_id")
    pairs = pairs[pairs.treatment_date <= pairs.onset_date]
    last = pairs.groupby(["patient_id", "ae_id"], as_index=False)["treatment_date"].max()
    events = events.merge(last, on=["patient_id", "ae_id"], how="left")
    events["days_since_last_session"] = (pd.to_datetime(events.onset_date) - pd.to_datetime(events.treatment_date)).dt.days
    return events.sort_values(["grade", "onset_date", "patient_id", "ae_id"], ascending=[False, True, True, True])


def same(got: pd.DataFrame, want: pd.DataFrame):
    """The export's rows equal pandas' rows, in the same order, every column."""
    assert len(got) == len(want) > 0
    assert key(got) == key(want)
    for column in ("site_id", "soc", "is_serious", "is_treatment_related"):
        assert got[column].tolist() == want[column].tolist(), column
    for column in ("session_number", "resolution_date"):
        assert [None if pd.isna(v) else str(v)[:10] for v in got[column]] == \
            [None if pd.isna(v) else str(int(v) if column == "session_number" else v)[:10] for v in want[column]], column


SCENARIOS = [({}, {}), ({}, {"min_grade": 4}), ({}, {"serious_only": True}), ({}, {"min_grade": 1}),
             ({"site": ["S03"]}, {}), ({"bclc": ["C"]}, {}), ({"bclc": ["C"]}, {"min_grade": 4, "serious_only": True}),
             ({"site": ["S03"]}, {"min_grade": 3, "serious_only": True})]


@pytest.mark.parametrize("filters,options", SCENARIOS,
                         ids=["default", "min4", "serious", "min1", "site", "bclc-C", "bclc-C-min4-serious",
                              "site-min3-serious"])
def test_synthetic_listing_equals_pandas(synthetic_root, filters, options):
    snapshot = data.resolve("latest", synthetic_root)
    got = listing(snapshot, Filters(**{k: tuple(v) for k, v in filters.items()}), **options)
    same(got, expected_listing(Path(snapshot.path), **filters, **options))


def test_synthetic_listing_has_grade_5_and_rows_with_no_session_recorded(synthetic_root):
    """The scenarios above cover what they should: the 7 grade 5 hepatic failures are listed first."""
    snapshot = data.resolve("latest", synthetic_root)
    rows = listing(snapshot)
    grade5 = rows[rows.grade == 5]
    assert len(grade5) == 7 and set(grade5.term) == {"Hepatic failure"} and (rows.grade.head(7) == 5).all()
    assert listing(snapshot, min_grade=1)["session_number"].isna().any()


@pytest.mark.parametrize("options", [{}, {"min_grade": 1}], ids=["default", "min1"])
def test_mini_listing_equals_pandas(mini_snapshot, options):
    got = listing(mini_snapshot, **options)
    want = expected_listing(Path(mini_snapshot.path), **options)
    if want.empty:
        assert got.empty
    else:
        same(got, want)


# --- the command line ------------------------------------------------------------------------------
def test_the_export_command(synthetic_root):
    snapshot = data.resolve("latest", synthetic_root)
    out = subprocess.run([sys.executable, "-m", "dashboard", "export", "ae-listing", "--data", str(synthetic_root),
                          "--filter", "bclc=C", "--min-grade", "4", "--serious-only", "--format", "csv"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(pd.io.common.StringIO(out.stdout), dtype={"session_number": "Int64",
                                                                "days_since_last_session": "Int64"})
    assert list(got.columns) == COLUMNS
    same(got, expected_listing(Path(snapshot.path), bclc=["C"], min_grade=4, serious_only=True))
    bad = subprocess.run([sys.executable, "-m", "dashboard", "export", "ae-listing", "--data", str(synthetic_root),
                          "--min-grade", "7"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "--min-grade" in bad.stderr and "Traceback" not in bad.stderr


# --- the page's card as a plain function ----------------------------------------------------------
def test_the_card_lists_the_export_rows(hand, monkeypatch):
    from dashboard.callbacks import safety as cb
    monkeypatch.setenv("REGISTRY_DATA", str(Path(hand.path).parent.parent))
    table, spec, note = cb.listing_card({"snapshot": hand.snapshot_id, "query": ""})
    rows = table.children.rows
    assert [r[0] for r in rows] == ["P2", "P2", "P3", "P1", "P1"]
    assert rows[2][7] == "–" and rows[1][7] == "0" and rows[0][8] == ""                # no session; same day
    assert spec["export"] == "ae-listing" and spec["options"] == {"min_grade": None, "serious_only": False}
    text = " ".join(str(getattr(n, "children", n)) for n in note)
    assert "every grade 5 event, and every serious event of grade 3 or 4" in text and "5 events in 3 patients" in text
    table, spec, _ = cb.listing_card({"snapshot": hand.snapshot_id, "query": "bclc=C"}, "4", ["on"])
    assert [r[0] for r in table.children.rows] == ["P2", "P3"] and spec["options"] == {"min_grade": 4,
                                                                                       "serious_only": True}
    assert cb.listing_options("7", "yes") == {"min_grade": None, "serious_only": False}   # bad URL values: default


def test_a_long_listing_shows_its_first_rows_and_says_so(synthetic_root):
    from dashboard.callbacks import safety as cb
    snapshot = data.resolve("latest", synthetic_root)
    rows = listing(snapshot, min_grade=1)
    box = cb.listing_table(rows)
    assert box.children[0].children.startswith(f"First 500 of {len(rows):,} events")
    assert len(box.children[1].children.rows) == 500


def test_the_card_reads_500_rows_and_counts_the_rest(synthetic_root, monkeypatch):
    """Every grade: the card draws the export's first 500 rows and counts all of them (4,044 episodes)."""
    from dashboard.callbacks import safety as cb
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    snapshot = data.resolve("latest", synthetic_root)
    full = listing(snapshot, min_grade=1)
    box, _, note = cb.listing_card({"snapshot": snapshot.snapshot_id, "query": ""}, "1")
    assert box.children[0].children.startswith(f"First 500 of {len(full):,} events")
    assert [r[0] for r in box.children[1].children.rows] == full["patient_id"].head(500).tolist()
    assert f"{len(full):,} events in {full.patient_id.nunique():,} patients" in note[0].children


@pytest.mark.parametrize("which", ["mini", "synthetic"])
def test_view_contracts(which, mini_snapshot, synthetic_root):
    """ae_listing_all: one row per episode of the snapshot, key (patient_id, ae_id), days >= 0 where a session
    is found, last session on or before onset; ae_listing: the same rows for the cohort, with the site."""
    snapshot = mini_snapshot if which == "mini" else data.resolve("latest", synthetic_root)
    every = data.query("ae_listing_all", snapshot)
    assert len(every) == len(data.query("stg_adverse_events", snapshot)) > 0
    assert not every.duplicated(["patient_id", "ae_id"]).any()
    found = every.dropna(subset=["last_session_date"])
    assert (found.days_since_last_session >= 0).all() and (found.last_session_date <= found.onset_date).all()
    assert every.days_since_last_session.isna().equals(every.last_session_date.isna())
    cohort = data.query("ae_listing", snapshot)
    assert len(cohort) == len(every) and cohort.site_id.notna().all()
    site = data.query("ae_listing", snapshot, Filters(site=(cohort.site_id.iloc[0],)))
    assert 0 < len(site) < len(cohort) or cohort.site_id.nunique() == 1


def test_no_patient_and_no_event_give_messages(hand, monkeypatch):
    from dashboard.callbacks import safety as cb
    monkeypatch.setenv("REGISTRY_DATA", str(Path(hand.path).parent.parent))
    box, _, _ = cb.listing_card({"snapshot": hand.snapshot_id, "query": "bclc=A"})
    assert "No patients in the current filter" in box.children
    box, _, _ = cb.listing_card({"snapshot": hand.snapshot_id, "query": "site=S02"}, "5")
    assert box.children == "No event in the current filter: every grade 5 event."
    assert exports.compute_export("ae-listing", hand, Filters(bclc=("A",))).rows.empty
