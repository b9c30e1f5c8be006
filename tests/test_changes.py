"""The changes export (issue 18, item 2): what happened between two data cuts.

Expected rows come from the two cuts' parquet files read with pandas in this test (`expected_rows`,
the analysis plan's definitions written out again), never from the export's SQL; a hand-written
pair of cuts (`hand_root`) has its answer worked out in the comments."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.access import ALL_SITES, SUPPRESSED, User, is_small, scope_for
from dashboard.exports import changes as ch
from dashboard.filters import Filters
from fixtures import D, ae, mini_registry, patient, review, session, write_snapshot

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["new_patient", "death", "progression", "grade3plus_ae", "downstaged"]
# (previous, current): one quarter during accrual, and a year after it
PAIRS = [("2024-03-31", "2024-06-30"), ("2024-12-31", "2025-12-31")]
SCENARIOS = [{}, {"site": ["S03"]}, {"bclc": ["C"]}]


def read(root, snapshot_id, table) -> pd.DataFrame:
    return pd.read_parquet(Path(root) / "snapshots" / snapshot_id / f"{table}.parquet")


def cut_facts(root, snapshot_id, patients_kept=None) -> dict[str, pd.DataFrame]:
    """Per kind, the (patient_id, key, date) facts of a cut, from its parquet files: patients enrolled
    by the cut-off (optionally only `patients_kept`)."""
    manifest = json.loads((Path(root) / "snapshots" / snapshot_id / "manifest.json").read_text())
    cutoff = D(manifest["cutoff_date"])
    p = read(root, snapshot_id, "patients")
    p = p[p["first_treatment_date"] <= cutoff]
    if patients_kept is not None:
        p = p[p["patient_id"].isin(patients_kept)]
    ids = set(p["patient_id"])
    out = {"new_patient": p.assign(key="", date=p["first_treatment_date"])}
    dead = p[p["death_date"].notna()]
    out["death"] = dead.assign(key="", date=dead["death_date"])
    img = read(root, snapshot_id, "imaging")
    pd_scans = img[(img["visit"] != "baseline") & (img["overall_response"] == "PD") & img["patient_id"].isin(ids)]
    first_pd = pd_scans.groupby("patient_id", as_index=False)["imaging_date"].min()
    out["progression"] = first_pd.assign(key="", date=first_pd["imaging_date"])
    aes = read(root, snapshot_id, "adverse_events")
    aes = aes[(aes["grade"] >= 3) & aes["patient_id"].isin(ids)]
    out["grade3plus_ae"] = aes.assign(key=aes["ae_id"].astype(str), date=aes["onset_date"])
    outside = set(p.loc[p["is_within_milan"] == False, "patient_id"])          # noqa: E712 (null is not False)
    st = read(root, snapshot_id, "staging")
    within = st[(st["is_within_milan"] == True) & st["patient_id"].isin(outside)]   # noqa: E712
    first_in = within.groupby("patient_id", as_index=False)["review_date"].min()
    out["downstaged"] = first_in.assign(key="", date=first_in["review_date"])
    return {k: v[["patient_id", "key", "date"]] for k, v in out.items()}


def expected_rows(root, previous, current, scenario) -> list[tuple]:
    """(site_id, kind, patient_id, date) of the facts of `current` under the filter (site, bclc of
    the current cut's patients) that `previous` (no filter) does not have, sorted site, kind, date."""
    p = read(root, current, "patients")
    if "site" in scenario:
        p = p[p["site_id"].isin(scenario["site"])]
    if "bclc" in scenario:
        p = p[p["bclc_stage"].isin(scenario["bclc"])]
    site = dict(zip(p["patient_id"], p["site_id"]))
    now, before = cut_facts(root, current, set(site)), cut_facts(root, previous)
    rows = []
    for kind in KINDS:
        seen = set(zip(before[kind]["patient_id"], before[kind]["key"]))
        for pid, key, date in now[kind].itertuples(index=False):
            if (pid, key) not in seen:
                rows.append((site[pid], kind, pid, pd.Timestamp(date).date().isoformat(), key))
    rows.sort(key=lambda r: (r[0], KINDS.index(r[1]), r[3], r[2], r[4]))
    return [r[:4] for r in rows]


def got_rows(exp) -> list[tuple]:
    return [(r.site_id, r.kind, r.patient_id, r.date.date().isoformat()) for r in exp.rows.itertuples(index=False)]


def filters_of(scenario) -> Filters:
    return Filters(**{k: tuple(v) for k, v in scenario.items()})


@pytest.fixture(scope="module")
def cuts(synthetic_root):
    return {s.snapshot_id: s for s in (data.resolve(i, synthetic_root) for pair in PAIRS for i in pair)}


# --- rows against pandas ------------------------------------------------------------------------
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}-to-{p[1]}")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=["all", "site-S03", "bclc-C"])
def test_rows_equal_pandas_on_two_synthetic_cuts(synthetic_root, cuts, pair, scenario):
    previous, current = pair
    exp = exports.compute_export("changes", cuts[current], filters_of(scenario), ALL_SITES, since=previous)
    want = expected_rows(synthetic_root, previous, current, scenario)
    assert list(exp.rows.columns) == ["site_id", "kind", "patient_id", "date"]
    assert got_rows(exp) == want
    assert exp.extra["since_snapshot_id"] == previous


def test_every_kind_is_exercised(synthetic_root):
    """The comparisons above would pass on empty rows: every kind occurs in one of them."""
    kinds = {r[1] for pair in PAIRS for r in expected_rows(synthetic_root, *pair, {})}
    assert kinds == set(KINDS)
    assert len(expected_rows(synthetic_root, *PAIRS[0], {"site": ["S03"]})) > 0


def test_since_the_current_cut_is_empty(cuts):
    current = cuts["2025-12-31"]
    exp = exports.compute_export("changes", current, Filters(), ALL_SITES, since="2025-12-31")
    assert exp.rows.empty and list(exp.rows.columns) == ["site_id", "kind", "patient_id", "date"]
    assert all(m["difference"] in (0, None) for m in exp.extra["metrics"])
    assert all(m["previous"] == m["current"] for m in exp.extra["metrics"])


def test_since_a_newer_cut_or_no_cut_is_a_clear_error(cuts):
    with pytest.raises(ch.ChangesError, match=r"'2025-12-31' .*is newer than the current cut '2024-06-30'"):
        exports.compute_export("changes", cuts["2024-06-30"], Filters(), ALL_SITES, since="2025-12-31")
    with pytest.raises(ch.ChangesError, match=r"previous data cut '2024-02-30'.*not found"):
        exports.compute_export("changes", cuts["2024-06-30"], Filters(), ALL_SITES, since="2024-02-30")
    with pytest.raises(ch.ChangesError, match="not a snapshot id"):
        exports.compute_export("changes", cuts["2024-06-30"], Filters(), ALL_SITES, since="../2024-03-31")


def test_without_since_the_cut_before_or_for_the_oldest_cut_no_cut(synthetic_root, cuts):
    default = exports.compute_export("changes", cuts["2024-06-30"], Filters(), ALL_SITES)
    assert default.extra["since_snapshot_id"] == "2024-03-31"
    assert got_rows(default) == expected_rows(synthetic_root, "2024-03-31", "2024-06-30", {})
    oldest = data.resolve("2023-03-31", synthetic_root)
    exp = exports.compute_export("changes", oldest, Filters(), ALL_SITES)
    assert exp.extra["since_snapshot_id"] is None and exp.extra["since_cutoff_date"] is None
    p = read(synthetic_root, "2023-03-31", "patients")           # every patient of the cut is new
    new = exp.rows[exp.rows["kind"] == "new_patient"]
    assert sorted(new["patient_id"]) == sorted(p.loc[p["first_treatment_date"] <= D("2023-03-31"), "patient_id"])
    assert all(m["previous"] is None and m["difference"] is None for m in exp.extra["metrics"])


# --- a hand-written pair of cuts ----------------------------------------------------------------
@pytest.fixture(scope="module")
def hand_root(tmp_path_factory):
    """The mini registry twice. Previous (cut-off 2024-10-01): P2 alive, without the M5 scan (PD) and
    the M5 review within Milan; P1's AE A1 of grade 1. Current (2024-12-31): P2 died 2024-11-20, its
    M5 scan (PD 2024-07-15) and a review within Milan (2024-11-01) entered; A1 now grade 3; P5 a new
    grade 4 AE; a new patient P6 (S02, BCLC C, 2024-10-15)."""
    root = tmp_path_factory.mktemp("changes-hand")
    current = mini_registry()
    current["patients"] = [p for p in current["patients"] if p["patient_id"] != "P2"] + [
        patient("P2", "S01", "2024-02-01", "C", death="2024-11-20", sex="F", etiology=None),
        patient("P6", "S02", "2024-10-15", "C", last_alive="2024-12-31")]
    current["treatments"].append(session("P6", 1, "2024-10-15"))
    current["staging"].append(review("P2", "M5", "2024-11-01", "A", True))
    current["adverse_events"] = [a if a["ae_id"] != "A1" or a["patient_id"] != "P1" else ae("P1", "A1", "Fever", 3, "2024-01-11")
                                 for a in current["adverse_events"]] + [ae("P5", "A1", "Fever", 4, "2024-10-05")]
    previous = mini_registry()
    for p in previous["patients"]:
        if p["patient_id"] in ("P2", "P5"):
            p["last_known_alive_date"] = D("2024-10-01")
    previous["imaging"] = [s for s in previous["imaging"] if not (s["patient_id"] == "P2" and s["visit"] == "M5")]
    previous["lesion_measurements"] = [m for m in previous["lesion_measurements"]
                                       if not (m["patient_id"] == "P2" and m["visit"] == "M5")]
    write_snapshot(root, "2024-10-01", previous)
    write_snapshot(root, "2024-12-31", current)
    return root


HAND = [  # sorted by site, kind (in KINDS order), date
    ("S01", "death", "P2", "2024-11-20"),
    ("S01", "progression", "P2", "2024-07-15"),
    ("S01", "grade3plus_ae", "P1", "2024-01-11"),        # grade 1 before, 3 now
    ("S01", "grade3plus_ae", "P5", "2024-10-05"),
    ("S01", "downstaged", "P2", "2024-11-01"),
    ("S02", "new_patient", "P6", "2024-10-15"),
]


@pytest.mark.parametrize("scenario, want", [
    ({}, HAND),
    ({"bclc": ["C"]}, [r for r in HAND if r[2] in ("P2", "P6")]),
    ({"site": ["S02"]}, [r for r in HAND if r[0] == "S02"]),
], ids=["all", "bclc-C", "site-S02"])
def test_hand_written_cuts(hand_root, scenario, want):
    current = data.resolve("2024-12-31", hand_root)
    exp = exports.compute_export("changes", current, filters_of(scenario), ALL_SITES, since="2024-10-01")
    assert got_rows(exp) == want
    assert got_rows(exp) == expected_rows(hand_root, "2024-10-01", "2024-12-31", scenario)


# --- metrics ------------------------------------------------------------------------------------
def test_metric_rows_by_hand():
    rows = ch.metric_rows({"os_1y": 0.70, "enrolled": 590.0, "orr": "<5", "gone": 3},
                          {"os_1y": 0.686, "enrolled": 600.0, "orr": 0.4, "dcr": None})
    by = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows] == ["os_1y", "enrolled", "orr", "dcr", "gone"]
    assert by["enrolled"] == {"name": "enrolled", "previous": 590, "current": 600, "difference": 10}
    assert by["os_1y"]["difference"] == pytest.approx(0.686 - 0.70)
    assert by["orr"]["difference"] is None and by["dcr"]["difference"] is None
    assert by["gone"] == {"name": "gone", "previous": 3, "current": None, "difference": None}


def test_metric_names_append_the_group():
    exp = exports.Export("headline", pd.DataFrame({"metric": ["os_1y", "os_1y", "enrolled"],
                                                   "group": ["all", "BCLC C", "all"], "value": [0.7, 0.5, 600]}), 600)
    assert ch.metric_values(exp) == {"os_1y": 0.7, "os_1y:BCLC C": 0.5, "enrolled": 600}


def headline_or_skip():
    exports._load_all()
    if "headline" not in exports.EXPORTS:
        pytest.skip("the headline export (branch headline) is not merged yet")


@pytest.mark.parametrize("scenario", [{}, {"bclc": ["C"]}], ids=["all", "bclc-C"])
def test_metrics_equal_the_headline_export_of_each_cut(cuts, scenario):
    headline_or_skip()
    previous, current = cuts["2024-12-31"], cuts["2025-12-31"]
    filters = filters_of(scenario)
    exp = exports.compute_export("changes", current, filters, ALL_SITES, since=previous.snapshot_id)
    want = {}
    for side, snap in (("previous", previous), ("current", current)):
        h = exports.run_export("headline", snap, filters, ALL_SITES).rows
        for m, g, v in zip(h["metric"], h["group"], h["value"]):
            want.setdefault(m if g == "all" else f"{m}:{g}", {})[side] = None if pd.isna(v) else float(v)
    got = {m["name"]: m for m in exp.extra["metrics"]}
    assert set(got) == set(want) and "os_1y" in got and "os_1y:C" in got
    assert ("median_os_days:B" in got) == (not scenario)
    for name, values in want.items():
        for side in ("previous", "current"):
            assert got[name][side] == pytest.approx(values.get(side), nan_ok=True), (name, side)
        if values.get("previous") is not None and values.get("current") is not None:
            assert got[name]["difference"] == pytest.approx(values["current"] - values["previous"])


# --- access ---------------------------------------------------------------------------------------
INVESTIGATOR = User("inv", "investigator", ("S01",))
SPONSOR = User("spo", "sponsor")


def test_investigator_gets_own_sites_rows(cuts):
    current = cuts["2024-06-30"]
    committee = exports.compute_export("changes", current, Filters(), ALL_SITES, since="2024-03-31").rows
    mine = exports.run_export("changes", current, Filters(), scope_for(INVESTIGATOR), since="2024-03-31").rows
    assert len(mine) > 0 and set(mine["site_id"]) == {"S01"}
    pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                  committee[committee["site_id"] == "S01"].reset_index(drop=True))


def test_sponsor_gets_counts_per_site_and_kind_without_patients(cuts):
    current = cuts["2024-06-30"]
    committee = exports.compute_export("changes", current, Filters(), ALL_SITES, since="2024-03-31").rows
    exp = exports.run_export("changes", current, Filters(), scope_for(SPONSOR), since="2024-03-31")
    rows = exp.rows
    assert list(rows.columns) == ["site_id", "kind", "n"]
    text = exports.to_json(exp, current, Filters()) + exports.to_csv(exp)
    for pid in committee["patient_id"]:
        assert pid not in text
    assert "2024-0" not in exports.to_csv(exp)        # no date in the rows
    sites = data.site_ids(current)
    assert len(rows) == len(KINDS) * (len(sites) + 1)
    counts = committee.groupby(["site_id", "kind"]).size()
    small_seen = 0
    for r in rows.itertuples(index=False):
        true = int(counts.get((r.site_id, r.kind), 0)) if r.site_id != "all" else int((committee["kind"] == r.kind).sum())
        if r.n is None:
            assert true == 0 or true >= 5 or is_small(true)                     # withheld
        elif r.n == SUPPRESSED:
            assert is_small(true)
            small_seen += 1
        else:
            assert r.n == true and not is_small(r.n)
    assert small_seen > 0, "no count of 1-4 in this comparison: pick cuts that have some"
    for kind in KINDS:      # no "<5" recoverable: each kind's total and sites hide none or at least two
        hidden = rows[(rows["kind"] == kind) & rows["n"].map(lambda v: v is None or v == SUPPRESSED)]
        assert len(hidden) != 1, kind


def test_sponsor_metrics_are_the_headline_as_the_sponsor_sees_it(cuts):
    headline_or_skip()
    previous, current = cuts["2024-12-31"], cuts["2025-12-31"]
    scope = scope_for(SPONSOR)
    exp = exports.run_export("changes", current, Filters(bclc=("C",)), scope, since=previous.snapshot_id)
    want = ch.metric_values(exports.run_export("headline", current, Filters(bclc=("C",)), scope))
    got = {m["name"]: m["current"] for m in exp.extra["metrics"]}
    assert got == {k: ch._number(v, k.partition(":")[0] not in ch.RATE_METRICS) for k, v in want.items()}
    assert got["enrolled"] == 240


# --- command line ---------------------------------------------------------------------------------
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "dashboard", "export", "changes", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_export_changes_since(synthetic_root, cuts):
    r = run_cli("--data", str(synthetic_root), "--snapshot", "2024-06-30", "--since", "2024-03-31",
                "--filter", "site=S03")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["snapshot_id"] == "2024-06-30" and doc["since_snapshot_id"] == "2024-03-31"
    assert [tuple(x.values()) for x in doc["rows"]] == expected_rows(synthetic_root, "2024-03-31", "2024-06-30",
                                                                     {"site": ["S03"]})
    assert isinstance(doc["metrics"], list)
    csv = run_cli("--data", str(synthetic_root), "--snapshot", "2024-06-30", "--since", "2024-03-31", "--format", "csv")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0] == "site_id,kind,patient_id,date"


@pytest.mark.parametrize("since, message", [
    ("2025-12-31", "is newer than the current cut '2024-06-30'"),
    ("2024-02-30", "previous data cut '2024-02-30': snapshot '2024-02-30' not found; available: 2023-03-31"),
    ("../../etc", "must be a snapshot id"),
])
def test_cli_bad_since_exits_2_naming_the_cut(synthetic_root, since, message):
    r = run_cli("--data", str(synthetic_root), "--snapshot", "2024-06-30", "--since", since)
    assert r.returncode == 2 and message in r.stderr and r.stdout == ""
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("role", ["investigator", "sponsor"])
def test_cli_as_user_gets_the_roles_form(synthetic_root, tmp_path, role):
    from access_support import write_users
    users = tmp_path / "users.json"
    write_users(users)
    r = run_cli("--data", str(synthetic_root), "--snapshot", "2024-06-30", "--since", "2024-03-31",
                "--users", str(users), "--as-user", role)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    if role == "investigator":
        assert doc["rows"] and {x["site_id"] for x in doc["rows"]} == {"S01"}
    else:
        assert doc["rows"] and set(doc["rows"][0]) == {"site_id", "kind", "n"}
        assert not re.search(r"S\d{2}-\d{4}", r.stdout)


# --- the result cache -----------------------------------------------------------------------------
def previous_mini(with_p6: bool) -> dict:
    """The mini registry as of 2024-10-01 (as hand_root's previous cut), with or without P6."""
    rows = mini_registry()
    for p in rows["patients"]:
        if p["patient_id"] in ("P2", "P5"):
            p["last_known_alive_date"] = D("2024-10-01")
    rows["imaging"] = [s for s in rows["imaging"] if not (s["patient_id"] == "P2" and s["visit"] == "M5")]
    rows["lesion_measurements"] = [m for m in rows["lesion_measurements"]
                                   if not (m["patient_id"] == "P2" and m["visit"] == "M5")]
    if with_p6:
        rows["patients"].append(patient("P6", "S02", "2024-09-15", "C", last_alive="2024-10-01"))
        rows["treatments"].append(session("P6", 1, "2024-09-15"))
    return rows


@pytest.mark.parametrize("since", ["2024-10-01", None], ids=["named", "the-cut-before"])
def test_a_previous_cut_republished_under_its_id_is_compared_afresh(tmp_path, since):
    """The cached changes were keyed by the previous cut's id only: a previous cut re-published under
    the same id (here: with P6, entered late) was still compared as it had been. The key now holds
    what was verified of the previous cut (its fingerprint), as it does for the current one."""
    root = tmp_path / "root"
    current = mini_registry()
    current["patients"].append(patient("P6", "S02", "2024-09-15", "C", last_alive="2024-12-31"))
    current["treatments"].append(session("P6", 1, "2024-09-15"))
    write_snapshot(root, "2024-10-01", previous_mini(with_p6=False))
    write_snapshot(root, "2024-12-31", current)
    before = exports.run_export("changes", data.resolve("2024-12-31", root), Filters(), ALL_SITES, since=since)
    assert ("S02", "new_patient", "P6", "2024-09-15") in got_rows(before)
    write_snapshot(root, "2024-10-01", previous_mini(with_p6=True))      # re-published: P6 was there
    after = exports.run_export("changes", data.resolve("2024-12-31", root), Filters(), ALL_SITES, since=since)
    assert after.extra["since_snapshot_id"] == "2024-10-01"
    assert ("S02", "new_patient", "P6", "2024-09-15") not in got_rows(after)
