"""The patient view (/patient/<id>): its tables against pandas over the parquet files (mini registry: P1 with every
kind of record, P4 with no follow-up scan and no AE; one synthetic patient), the router's template, and access
replayed over HTTP as committee, investigator (own site S01) and sponsor, with crafted ids."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from access_support import signed_in
from dashboard import data, exports
from dashboard.access import ALL_SITES, Scope
from dashboard.callbacks import patient as cb
from dashboard.callbacks.shell import page_for, path_variables, render_page
from dashboard.components import RowsTable, iter_components
from dashboard.filters import Filters
from dashboard.replay import callback_body

DAYS_PER_MONTH = 30.4375


def parquet(snapshot, table: str, pid: str) -> pd.DataFrame:
    """The patient's rows of one parquet file, read with pandas (not through the project's views)."""
    rows = pd.read_parquet(snapshot.path / f"{table}.parquet")
    return rows[rows["patient_id"] == pid].reset_index(drop=True)


def record(snapshot, pid, part, filters=Filters(), scope=ALL_SITES):
    return exports.compute_export("patient-record", snapshot, filters, scope, patient_id=pid, part=part).rows


def day(v) -> str:
    return "–" if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")


def table_rows(body, table_id: str) -> list[list[str]]:
    found = [c for c in iter_components(body) if isinstance(c, RowsTable) and c.id == table_id]
    return found[0].rows if found else []


def target_sums(snapshot, pid) -> dict:
    """visit -> sum of viable diameters of the patient's target lesions (None when one is unmeasured), by pandas."""
    lesions = parquet(snapshot, "lesions", pid)
    targets = set(lesions.loc[lesions["is_target"], "lesion_id"])
    meas = parquet(snapshot, "lesion_measurements", pid)
    meas = meas[meas["lesion_id"].isin(targets)]
    out = {}
    for visit, part in meas.groupby("visit"):
        complete = len(part) == len(targets) and part["viable_diameter_mm"].notna().all()
        out[visit] = float(part["viable_diameter_mm"].sum()) if complete else None
    return out


def check_against_parquet(snapshot, pid, body):
    """Every table of the page's body against the parquet files read with pandas."""
    sessions = parquet(snapshot, "treatments", pid).sort_values("session_number")
    assert table_rows(body, "patient-sessions") == [
        [str(r.session_number), day(r.treatment_date), r.drug, f"{r.dose_mg:g}", r.microsphere_size,
         "yes" if r.is_superselective else "no"] for r in sessions.itertuples()]
    scans = parquet(snapshot, "imaging", pid).sort_values(["imaging_date", "visit"])
    sums = target_sums(snapshot, pid)
    base = sums.get("baseline")
    expected = []
    for r in scans.itertuples():
        s = sums.get(r.visit)
        pct = None if s is None or not base else 100 * (s - base) / base
        expected.append([r.visit, day(r.imaging_date), "–" if s is None else f"{s:.1f}",
                         "–" if pct is None else f"{pct:+.1f}%", r.overall_response or "–", r.local_response or "–",
                         "yes" if r.has_new_lesion else "no"])
    assert table_rows(body, "patient-scans") == expected
    aes = parquet(snapshot, "adverse_events", pid).sort_values(["onset_date", "ae_id"])
    assert table_rows(body, "patient-aes") == [
        [r.term, str(r.grade), "yes" if r.is_serious else "no", "yes" if r.is_treatment_related else "no",
         day(r.onset_date), "not resolved" if pd.isna(r.resolution_date) else day(r.resolution_date),
         "–" if pd.isna(r.session_number) else str(int(r.session_number))] for r in aes.itertuples()]
    staging = parquet(snapshot, "staging", pid).sort_values(["review_date", "visit"])
    assert table_rows(body, "patient-restaging") == [
        [r.visit, day(r.review_date), r.bclc_stage or "–", "yes" if r.is_within_milan else "no",
         "yes" if r.is_resectable else "no"] for r in staging.itertuples()]
    return sessions, scans, aes, staging


@pytest.fixture
def mini(mini_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    return data.resolve("latest")


def state_of(snapshot, query=""):
    return {"snapshot": snapshot.snapshot_id, "query": query}


def test_p1_tables_and_timeline_match_the_parquet_files(mini):
    body = cb.patient_body(state_of(mini), "P1")
    sessions, scans, aes, staging = check_against_parquet(mini, "P1", body)
    # by hand (tests/fixtures.py): P1's target sums 50, 30, 40, 10 mm: -40%, -20%, -80% from baseline
    assert [r[2:4] for r in table_rows(body, "patient-scans")] == [
        ["50.0", "+0.0%"], ["30.0", "-40.0%"], ["40.0", "-20.0%"], ["10.0", "-80.0%"]]
    assert len(sessions) == 2 and len(aes) == 4 and len(staging) == 2
    graph = next(c for c in iter_components(body) if getattr(c, "id", None) == "patient-timeline")
    traces = {t.name: t for t in graph.figure.data}
    # months from 2024-01-10: the second session on 2024-03-01 is 51 days later; death on 2024-07-10, 182 days
    assert traces["DEB-TACE session"].x == (0.0, 51 / DAYS_PER_MONTH)
    assert traces["Death"].x == (182 / DAYS_PER_MONTH,)
    assert traces["Scan: PD"].x == ((pd.Timestamp("2024-04-20") - pd.Timestamp("2024-01-10")).days / DAYS_PER_MONTH,)
    assert traces["AE grade 3"].x == (52 / DAYS_PER_MONTH,)
    assert len(traces["Restaging review"].x) == 2


def test_p4_without_scans_after_baseline_nor_aes(mini):
    body = cb.patient_body(state_of(mini), "P4")
    check_against_parquet(mini, "P4", body)
    texts = [c.children for c in iter_components(body) if getattr(c, "id", None) in ("patient-aes", "patient-restaging")]
    assert sorted(texts) == ["No adverse event recorded.", "No restaging review recorded."]
    assert table_rows(body, "patient-scans") == [["baseline", "2024-04-28", "50.0", "+0.0%", "–", "–", "no"]]


def test_a_synthetic_patient_matches_the_parquet_files(synthetic_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    snapshot = data.resolve("latest")
    aes = pd.read_parquet(snapshot.path / "adverse_events.parquet")
    staging = pd.read_parquet(snapshot.path / "staging.parquet")
    pid = sorted(set(aes["patient_id"]) & set(staging["patient_id"]))[0]     # one with AEs and restaging
    body = cb.patient_body(state_of(snapshot), pid)
    sessions, scans, aes, staging = check_against_parquet(snapshot, pid, body)
    assert len(sessions) and len(scans) and len(aes) and len(staging)


def test_no_such_patient_in_the_cut_or_the_filter(mini):
    assert "No such patient in this data cut" in str(cb.patient_body(state_of(mini), "P9"))
    # P3 is at S02: a site filter on S01 leaves it out
    out = str(cb.patient_body(state_of(mini, "site=S01"), "P3"))
    assert "No such patient in this data cut and the current filter" in out
    assert not any(d in out for d in ("2024-03-01", "2024-10-01", "S02"))    # nothing of P3
    assert record(mini, "P3", "sessions", Filters.from_query("site=S01")[0]).empty


def test_investigator_scope_reads_only_own_sites(mini):
    own = Scope(patient_sites=("S01",), suppress=True)
    assert len(record(mini, "P1", "aes", scope=own)) == 4
    for part in ("baseline", "sessions", "scans", "aes", "restaging"):
        assert record(mini, "P3", part, scope=own).empty


@pytest.mark.parametrize("raw", ["../x", "x" * 500, "P1' or '1'='1", "P1;drop table x", "", None, "P 1"])
def test_crafted_ids_never_reach_a_query(mini, raw):
    out = str(cb.patient_body(state_of(mini), raw))
    assert "No such patient in this data cut: a patient id is" in out
    assert ("x" * 41) not in out and "drop" not in out
    with pytest.raises(ValueError):
        record(mini, raw, "baseline")


def test_router_matches_the_template_only(dash_app):
    page = page_for("/patient/P1")
    assert page is not None and page["path"] == "/patient"
    assert path_variables(page, "/patient/P1") == {"patient_id": "P1"}
    assert path_variables(page, "/patient/P1/x") is None and page_for("/patient/P1/x") is None
    assert page_for("/safety")["path"] == "/safety"
    for path, stored in [("/patient/P1", "P1"), ("/patient/..%2Fx", None), ("/patient/" + "x" * 500, None),
                         ("/patient", None)]:
        layout, _ = render_page(path, "?snapshot=2024-12-31")
        store = next(c for c in iter_components(layout) if getattr(c, "id", None) == cb.PATIENT_ID)
        assert store.data == stored, path


def test_every_page_renders_for_option_rules(dash_app):
    from dashboard import security
    security._option_rules = None
    security.page_option_rules()        # renders every registered page with path "" and /patient too


# --- access over HTTP: the page's callback replayed as each role -----------------------------------------------
def body_answer(client, headers, snapshot, pid, query=""):
    deps = client.get("/_dash-dependencies", headers=headers).get_json()
    dep = next(d for d in deps if d["output"] == f"{cb.BODY}.children")
    values = {"filter-state.data": state_of(snapshot, query), f"{cb.PATIENT_ID}.data": pid}
    r = client.post("/_dash-update-component", json=callback_body(dep, values, "filter-state.data"), headers=headers)
    assert r.status_code == 200, r.data[:300]
    return r.data.decode()


def test_access_by_role_over_http(mini, dash_app, monkeypatch, tmp_path):
    with signed_in(monkeypatch, tmp_path) as as_user:
        client = dash_app.server.test_client()
        committee = body_answer(client, as_user("committee"), mini, "P3")
        assert "Patient P3" in committee and "2024-03-01" in committee
        own = body_answer(client, as_user("investigator"), mini, "P1")
        assert "Patient P1" in own and "2024-01-10" in own
        other = body_answer(client, as_user("investigator"), mini, "P3")
        assert "No such patient in this data cut and your sites" in other
        assert not any(d in other for d in ("2024-03-01", "2024-10-01", "S02", "lost_to"))    # nothing of P3
        for pid in ("P1", "P3", "P9"):
            sponsor = body_answer(client, as_user("sponsor"), mini, pid)
            assert cb.NOT_FOR_ROLE in sponsor and "2024-0" not in sponsor and f"Patient {pid}" not in sponsor
            assert "S01" not in sponsor and "S02" not in sponsor
        for raw in ("../x", "x" * 500, "P1' or '1'='1"):
            out = body_answer(client, as_user("committee"), mini, raw)
            assert "No such patient" in out and "Traceback" not in out and "x" * 41 not in out


def test_the_export_is_refused_to_a_sponsor(mini):
    from dashboard.access import AccessDenied
    with pytest.raises(AccessDenied):
        exports.compute_export("patient-record", mini, Filters(), Scope(patient_sites=(), suppress=True),
                               patient_id="P1", part="baseline")


def test_the_page_is_not_in_the_navbar():
    from dashboard.app import navbar
    assert not any("/patient" in json.dumps(getattr(c, "href", "") or "") for c in iter_components(navbar()))


# --- the links to the view ---------------------------------------------------------------------------------------
def test_safety_listing_and_changes_listing_link_patient_ids(mini):
    from dashboard.callbacks import changes, safety
    from dashboard.exports import Export, to_csv
    exp = exports.compute_export("ae-listing", mini, Filters(), ALL_SITES, min_grade=1)
    table = next(c for c in iter_components(safety.listing_table(exp.rows)) if isinstance(c, RowsTable))
    assert table.props["links"] == {"0": "/patient/"}
    assert [r[0] for r in table.rows] == exp.rows["patient_id"].tolist()      # the cell is the id, the href is drawn
    csv = to_csv(exp)                                                            # the CSV keeps plain ids
    assert "/patient/" not in csv and csv.splitlines()[0].startswith("patient_id,")
    rows = pd.DataFrame({"site_id": ["S01"], "kind": [next(iter(changes.ROW_LABELS))], "patient_id": ["P1"],
                         "date": [pd.Timestamp("2024-01-10")]})
    listing = changes.listing(Export("changes", rows, 1), ALL_SITES)
    table = next(c for c in iter_components(listing) if isinstance(c, RowsTable))
    assert table.props["links"] == {"2": "/patient/"} and table.rows[0][2] == "P1"
