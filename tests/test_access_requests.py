"""Issue 15, tests and evidence: for each role, requests built by hand against
/_dash-update-component for every callback of every page, and against every download, read as raw
bytes (what reaches the browser, seen or not: hovers, customdata, stores, CSV):
- investigator (site S01): no patient id of another site anywhere;
- sponsor: no patient id, no patient's date, no patient-level CSV;
- every role: no 5xx and no "Something went wrong".
The committee's responses carry ids of several sites, so each check can fail. Small counts are
checked page by page in tests/test_access_<page>.py, where the cells are known."""
import datetime as dt
import re

import pytest

from access_support import signed_in
from dashboard.app import PAGES
from dashboard.callbacks.downloads import FIGURES
from dashboard.replay import Session, callback_body, update_values
from test_downloads import download_body

PATIENT_ID = re.compile(rb"\bS(\d\d)-\d{2,}\b")
ISO_DATE = re.compile(rb"\b(20\d\d-\d\d-\d\d)\b")
# filters that leave small groups: one other site, a rare stage, a narrow subgroup
SCENARIOS = [{}, {"site": ["S02"]}, {"bclc": ["D"]}, {"sex": ["F"], "bclc": ["C"]}, {"site": ["S01"]}]
BY_OPTION = '{"key":"by","type":"page-option"}.value'


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """A small registry (240 patients, 6 sites): many groups under 10 and cells under 5."""
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("small")
    generate_registry(root, n_patients=240, n_sites=6, seed=7, last_cut_only=True, progress=False)
    return root


@pytest.fixture(scope="module")
def responses(small_root, tmp_path_factory, dash_app):
    """{role: [(what, status, body bytes)]} for every page callback and download, every scenario."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("REGISTRY_DATA", str(small_root))
    out = {}
    try:
        session = Session(dash_app)         # the callback map, read before sign-in is switched on
        with signed_in(monkeypatch, tmp_path_factory.mktemp("users")):
            for role in ("committee", "investigator", "sponsor"):
                session.client.environ_base["HTTP_X_REMOTE_USER"] = role
                out[role] = list(_every_request(session))
    finally:
        monkeypatch.undo()
    return out


def _every_request(session):
    from dashboard import data
    snapshot = data.resolve("latest").snapshot_id
    for path, _ in PAGES:
        callbacks, sync, base = session.plan(path)
        for scenario in SCENARIOS:
            values, page_values = update_values(base, snapshot, scenario)
            variants = [page_values]
            if BY_OPTION in page_values:
                variants.append({**page_values, BY_OPTION: "site_id"})
            r = session.client.post("/_dash-update-component", json=callback_body(sync, values, "snapshot-select.value"))
            yield f"{path} sync {scenario}", r.status_code, r.data
            for variant in variants:
                for dep in callbacks:
                    r = session.client.post("/_dash-update-component",
                                            json=callback_body(dep, variant, "filter-state.data"))
                    yield f"{path} {dep['output'][:60]} {scenario} by={variant.get(BY_OPTION)}", r.status_code, r.data
            for figure, (page, _) in FIGURES.items():
                if page != path.strip("/") and not (path == "/" and page == "overview"):
                    continue
                for search in ("", "?by=site_id"):
                    state = variants[0]["filter-state.data"]
                    r = session.client.post("/_dash-update-component",
                                            json=download_body(session, figure, search, state))
                    yield f"download {figure} {scenario} {search}", r.status_code, r.data


def allowed_dates(root) -> set[bytes]:
    """Dates that are not a patient's: data-cut ids and cut-offs, today (in file names)."""
    from dashboard import data
    dates = {dt.date.today().isoformat()}
    for s in data.complete_snapshots(root):
        dates |= {s.snapshot_id[:10], s.cutoff_date.isoformat()}
    return {d.encode() for d in dates}


def test_every_request_was_answered(responses):
    for role, items in responses.items():
        assert len(items) > 100, role
        for what, status, body in items:
            assert status in (200, 204), f"{role}: {what} answered {status}"
            assert b"Something went wrong" not in body, f"{role}: {what}"
            assert b"Traceback" not in body, f"{role}: {what}"


def test_the_committee_sees_patients_of_every_site(responses):
    """The checks below can fail: the same requests carry ids of several sites for the committee."""
    sites = {m.group(1) for _, _, body in responses["committee"] for m in PATIENT_ID.finditer(body)}
    assert len(sites) >= 3
    allowed = {d for d in ISO_DATE.findall(b" ".join(b for _, _, b in responses["sponsor"]))}
    assert any(set(ISO_DATE.findall(body)) - allowed for _, _, body in responses["committee"]), \
        "the committee's answers carry patients' dates (swimmer, spider, consistency rows)"


def test_an_investigator_sees_no_patient_of_another_site(responses):
    seen_own = False
    for what, _, body in responses["investigator"]:
        others = {m.group(0) for m in PATIENT_ID.finditer(body) if m.group(1) != b"01"}
        assert not others, f"{what}: ids of other sites {sorted(others)[:5]}"
        seen_own |= bool(PATIENT_ID.search(body))
    assert seen_own, "the investigator's own patients appear somewhere (waterfall, swimmer)"


def test_a_sponsor_sees_no_patient_id_and_no_patients_date(responses, small_root):
    allowed = allowed_dates(small_root)
    for what, _, body in responses["sponsor"]:
        ids = PATIENT_ID.findall(body)
        assert not ids, f"{what}: patient ids"
        month_axis = "accrual" in what       # accrual counts per calendar month: YYYY-MM-01, no patient's date
        dates = {d for d in ISO_DATE.findall(body) if d not in allowed and not (month_axis and d.endswith(b"-01"))}
        assert not dates, f"{what}: dates {sorted(dates)[:5]}"
