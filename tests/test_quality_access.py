"""Who sees what on the Data quality page and in the data-quality export (docs/access.md): the committee
every site's findings, an investigator (own site S01) the findings of their own site only, a sponsor
findings and patients per site and rule with counts of 1 to 4 shown as "<5" and no patient id, date or
detail. The page's callback and its CSV download are replayed as each role over HTTP (the header
sign-in, tests/access_support.py) and the raw JSON answers read. Expected rows come from the export run
with no scope in this process (what `python -m dashboard export data-quality` prints), the sponsor's
counts from those rows counted again here with pandas.

The registry is generated (200 patients, 6 sites, seed 3): it has sites with 1 to 4 findings of a rule,
checked before anything is asserted.
"""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from access_page_checks import ISO_DATE, PATIENT_ID, Page, filters_of
from access_support import signed_in
from dashboard import data, exports
from dashboard.access import ALL_SITES, SUPPRESSED, User, scope_for
from dashboard.generate import generate_registry

INVESTIGATOR = User("lin", "investigator", ("S01",))
SPONSOR = User("acme", "sponsor")
SCENARIOS = [{}, {"site": ["S02"]}, {"site": ["S01"]}, {"bclc": ["C"]}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("access-quality")
    generate_registry(root, n_patients=200, n_sites=6, seed=3, last_cut_only=True, progress=False)
    return root


@pytest.fixture
def env(root, dash_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    snapshot = data.resolve("latest")
    with signed_in(monkeypatch, tmp_path) as as_user:
        yield Page(dash_app, "/quality", snapshot.snapshot_id, as_user("committee")), as_user, snapshot


def truth(snapshot, scenario):
    return exports.compute_export("data-quality", snapshot, filters_of(scenario), ALL_SITES)


def sponsor_counts(rows: pd.DataFrame) -> dict:
    """(site, table, rule) -> (findings, patients) as a sponsor may see them, counted here."""
    out = {}
    for (site, table, rule), g in rows.groupby(["site_id", "table", "rule"]):
        shown = lambda n: SUPPRESSED if 0 < n < 5 else n      # noqa: E731
        out[(site, table, rule)] = (shown(len(g)), shown(g.patient_id.nunique()))
    return out


def test_the_registry_has_small_cells(root):
    rows = truth(data.resolve("latest", root), {}).rows
    sizes = rows.groupby(["site_id", "rule"]).size()
    assert ((sizes > 0) & (sizes < 5)).any() and (sizes >= 5).any()
    assert {"S01", "S02"} <= set(rows.site_id)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_export_for_each_role(root, scenario):
    snapshot = data.resolve("latest", root)
    every = truth(snapshot, scenario).rows
    filters = filters_of(scenario)
    committee = exports.run_export("data-quality", snapshot, filters, scope_for(None))
    assert committee.rows.to_dict("records") == every.to_dict("records")
    own = exports.run_export("data-quality", snapshot, filters, scope_for(INVESTIGATOR, filters.site))
    assert own.rows.to_dict("records") == every[every.site_id == "S01"].to_dict("records")
    sponsor = exports.run_export("data-quality", snapshot, filters, scope_for(SPONSOR, filters.site))
    assert list(sponsor.rows.columns) == ["site_id", "table", "rule", "n_findings", "n_patients"]
    got = {(r["site_id"], r["table"], r["rule"]): (r["n_findings"], r["n_patients"])
           for r in sponsor.rows.to_dict("records")}
    assert got == sponsor_counts(every)
    assert "n_findings" not in sponsor.extra            # a total beside the cells would give a "<5" away
    text = exports.to_json(sponsor, snapshot, filters)
    assert not PATIENT_ID.search(text)
    assert set(ISO_DATE.findall(text)) <= {snapshot.cutoff_date.isoformat()}


def grid_of(answers: dict) -> dict:
    return answers["quality-grid"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_page_for_each_role(env, scenario):
    page, as_user, snapshot = env
    every = truth(snapshot, scenario).rows
    answers, raw = page.update(as_user("committee"), scenario)
    assert pd.DataFrame(grid_of(answers)["rowData"], columns=every.columns).to_dict("records") == \
        every.to_dict("records")

    answers, raw = page.update(as_user("investigator"), scenario)
    rows = grid_of(answers)["rowData"]
    assert rows == every[every.site_id == "S01"].to_dict("records")
    assert set(PATIENT_ID.findall(raw)) <= set(every.loc[every.site_id == "S01", "patient_id"])

    answers, raw = page.update(as_user("sponsor"), scenario)
    assert not PATIENT_ID.search(raw), "a patient id reached a sponsor"
    for r in grid_of(answers)["rowData"]:
        for c in ("n_findings", "n_patients"):
            assert r[c] == SUPPRESSED or r[c] >= 5, r
    got = {(r["site_id"], r["table"], r["rule"]): (r["n_findings"], r["n_patients"])
           for r in grid_of(answers)["rowData"]}
    assert got == sponsor_counts(every)
    # the counts table: no number from 1 to 4 in its cells, and no total beside a "<5"
    table = json.dumps(answers["quality-counts"]["children"])
    assert '"children": "Total"' not in table
    for n in range(1, 5):
        assert f'"children": {n},' not in table and f'"children": {n}}}' not in table


def download(page, headers, state):
    body = {"output": "quality-download.data", "outputs": {"id": "quality-download", "property": "data"},
            "inputs": [{"id": "quality-download-csv", "property": "n_clicks", "value": 1}],
            "state": [{"id": "filter-state", "property": "data", "value": state}],
            "changedPropIds": ["quality-download-csv.n_clicks"]}
    r = page.client.post("/_dash-update-component", json=body, headers=headers)
    assert r.status_code == 200, r.data[:300]
    return r.get_json()["response"]["quality-download"]["data"]


def test_the_csv_download_for_each_role(env):
    page, as_user, snapshot = env
    state = page.state({"site": ["S01", "S02"]})
    every = truth(snapshot, {"site": ["S01", "S02"]}).rows
    sent = download(page, as_user("committee"), state)
    assert sent["filename"].startswith(f"quality_data-quality_{snapshot.snapshot_id}_site-S01-S02_")
    assert pd.read_csv(io.StringIO(sent["content"])).to_dict("records") == every.to_dict("records")
    own = pd.read_csv(io.StringIO(download(page, as_user("investigator"), state)["content"]))
    assert own.to_dict("records") == every[every.site_id == "S01"].to_dict("records")
    sponsor = download(page, as_user("sponsor"), state)["content"]
    assert not PATIENT_ID.search(sponsor)
    assert pd.read_csv(io.StringIO(sponsor)).columns.tolist() == ["site_id", "table", "rule", "n_findings",
                                                                  "n_patients"]
