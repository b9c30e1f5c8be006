"""The Overview's "Since data cut" panel, replayed as committee, investigator (own site S01) and
sponsor (tests/access_page_checks.py): what its raw JSON answers carry, the previous cut it
compares with, and what a forged `since` gets. Expected values come from the changes export run
with no scope in this process (what `python -m dashboard export changes` prints)."""
from __future__ import annotations

import json

import pytest

from access_page_checks import PATIENT_ID, Page, dates_in
from access_support import signed_in
from dashboard import data, exports
from dashboard.access import ALL_SITES
from dashboard.filters import Filters
from dashboard.generate import generate_registry

CURRENT, PREVIOUS = "2024-06-30", "2024-03-31"      # during accrual: every kind of change occurs


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("changes-page")
    generate_registry(root, n_patients=200, n_sites=6, seed=3, progress=False)
    return root


@pytest.fixture
def env(root, dash_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    snapshot = data.resolve(CURRENT)
    with signed_in(monkeypatch, tmp_path) as as_user:
        yield Page(dash_app, "/", snapshot.snapshot_id, as_user("committee")), as_user, snapshot


def panel(answers) -> tuple[str, str]:
    """(title, body JSON) of the panel's answer."""
    return answers["changes-title"]["children"], json.dumps(answers["changes-body"]["children"], ensure_ascii=False)


def truth(snapshot, since=PREVIOUS):
    return exports.compute_export("changes", snapshot, Filters(), ALL_SITES, since=since).rows


def test_committee_sees_every_row_against_the_cut_before(env):
    page, as_user, snapshot = env
    answers, _ = page.update(as_user("committee"), {})
    title, body = panel(answers)
    assert title == f"Since data cut {PREVIOUS}"                  # the one before the shown cut
    rows = truth(snapshot)
    assert len(rows) > 0
    assert set(PATIENT_ID.findall(body)) == set(rows["patient_id"])
    assert f"Patients ({len(rows):,} rows)" in body
    options = answers[json.dumps({"key": "since", "type": "page-option"}, separators=(",", ":"))]["options"]
    assert [o["value"] for o in options[:3]] == [PREVIOUS, "2023-12-31", "2023-09-30"]
    assert answers[json.dumps({"key": "since", "type": "page-option"}, separators=(",", ":"))]["placeholder"] == \
        f"{PREVIOUS} (the cut before)"
    assert all(o["value"] < CURRENT for o in options)


def test_investigator_sees_own_site_rows_only(env):
    page, as_user, snapshot = env
    answers, raw = page.update(as_user("investigator"), {})
    _, body = panel(answers)
    rows = truth(snapshot)
    mine = set(rows.loc[rows["site_id"] == "S01", "patient_id"])
    assert mine and set(PATIENT_ID.findall(body)) == mine
    assert {p for p in PATIENT_ID.findall(raw) if not p.startswith("S01-")} == set()


def test_sponsor_sees_counts_without_patients_or_dates(env):
    page, as_user, snapshot = env
    answers, raw = page.update(as_user("sponsor"), {})
    _, body = panel(answers)
    assert PATIENT_ID.findall(raw) == []
    cut_ids = {s.snapshot_id for s in data.complete_snapshots()}
    assert dates_in(raw, cut_ids) == set()
    assert "Patient-level rows are not available to your role" in body
    assert "<5" in body
    rows = truth(snapshot)
    assert str(len(rows[rows["kind"] == "new_patient"])) in body       # a total of 5 or more is shown


def test_a_chosen_cut_and_a_forged_one(env):
    page, as_user, _ = env
    answers, _ = page.update(as_user("committee"), {}, {"since": "2023-09-30"})
    assert panel(answers)[0] == "Since data cut 2023-09-30"
    # a snapshot id that is not an older cut: the default comparison, with a message
    answers, _ = page.update(as_user("committee"), {}, {"since": "2025-12-31"})
    title, body = panel(answers)
    assert title == f"Since data cut {PREVIOUS}" and "is not an older data cut you can be shown" in body


@pytest.mark.parametrize("value", ["../../etc/passwd", "2024-03-31\n", "x" * 5000, ["2024-03-31"], {"a": 1}, 7,
                                   "2024-03-31" + "_x" * 40])
def test_request_layer_refuses_a_since_that_is_not_a_snapshot_id(env, value):
    page, as_user, _ = env
    from access_page_checks import option_key
    from dashboard.replay import callback_body, update_values
    values = update_values(page.base, page.snapshot_id, {})[1]
    values[option_key("since")] = value
    dep = next(d for d in page.callbacks if "changes-body" in d["output"])
    r = page.client.post("/_dash-update-component", json=callback_body(dep, values, "filter-state.data"),
                         headers=as_user("committee"))
    assert r.status_code == 400 and b"since" in r.data and b"Traceback" not in r.data


def test_the_oldest_cut_says_there_is_nothing_to_compare(env):
    page, as_user, _ = env
    first = data.complete_snapshots()[0].snapshot_id
    state = {"snapshot": first, "query": ""}
    answers, _ = page.update(as_user("committee"), {}, state=state)
    assert "is the oldest data cut: there is nothing to compare it with" in panel(answers)[1]
