"""Every page of the dashboard on an ADaM-like data cut where every column a source may leave
unrecorded is null (the amended contract, docs/snapshot-contract.md): no BCLC stage, Child-Pugh,
ECOG, tumour burden, Milan or resectability at baseline; sites without activation date or
target; no treatment sessions; imaging with a single target pseudo-lesion 'SUM' (the sum of
diameters), no modality, no new-lesion flag and no local response; adverse events without a
session. Every callback of every page (each page option in turn, with and without a filter) and
every CSV download is replayed through the Flask test client as the browser posts it, for three
roles, and must answer 200 with no "Something went wrong", no traceback and no failure in the
server log. The same on the partly recorded registry of tests/test_missing_values.py.
"""
from __future__ import annotations

import json
import logging

import pytest

from access_support import signed_in
from fixtures import D, ae, meas, patient, scan, write_snapshot
from dashboard.app import PAGES
from dashboard.callbacks.downloads import FIGURES
from dashboard.replay import Session, callback_body, layout_props, update_values
from test_downloads import download_body

NOT_RECORDED = ("ecog_ps", "child_pugh_score", "child_pugh_class", "tumor_count", "largest_tumor_cm",
                "has_macrovascular_invasion", "has_extrahepatic_spread", "bclc_stage", "is_within_milan",
                "is_within_up_to_seven", "is_resectable", "etiology", "albi_grade", "afp_ng_ml")


def adam_like_registry() -> dict:
    """Eight patients at two sites, cut-off 2024-12-31, as an ADaM import can fill the contract:
    A1-A4 at S01, A5-A8 at S02; A2 and A6 died; A1, A3, A5 respond, A2 and A6 progress, A7 has
    no follow-up scan, A8 has no baseline sum."""
    bare = {c: None for c in NOT_RECORDED}
    starts = {"A1": "2024-01-10", "A2": "2024-02-01", "A3": "2024-03-01", "A4": "2024-04-01",
              "A5": "2024-01-15", "A6": "2024-02-15", "A7": "2024-05-01", "A8": "2024-06-01"}
    deaths = {"A2": "2024-09-01", "A6": "2024-07-01"}
    patients = [patient(pid, "S01" if pid <= "A4" else "S02", t0, death=deaths.get(pid),
                        last_alive=None if pid in deaths else "2024-12-31", **bare)
                for pid, t0 in starts.items()]
    for row in patients:
        row["sex"] = "F" if row["patient_id"] in ("A3", "A6") else "M"

    def adam_scan(pid, visit, date, overall=None):
        row = scan(pid, visit, date, overall, None)
        row.update(modality=None, has_new_lesion=None)
        return row

    follow = {"A1": [("M2", "2024-03-10", "PR", 12.0), ("M4", "2024-05-10", "CR", 0.0)],
              "A2": [("M2", "2024-04-01", "PD", 60.0)],
              "A3": [("M2", "2024-05-01", "PR", 20.0)],
              "A4": [("M2", "2024-06-01", "SD", 38.0)],
              "A5": [("M2", "2024-03-15", "SD", 35.0), ("M4", "2024-05-15", "PR", 25.0)],
              "A6": [("M2", "2024-04-15", "PD", 55.0)],
              "A7": [],
              "A8": [("M2", "2024-08-01", "NE", None)]}
    imaging, measurements = [], []
    for pid, t0 in starts.items():
        base_date = (D(t0) - __import__("datetime").timedelta(days=5)).isoformat()
        imaging.append(adam_scan(pid, "baseline", base_date))
        measurements.append(meas(pid, "SUM", "baseline", None if pid == "A8" else 40.0))
        for visit, date, response, mm in follow[pid]:
            imaging.append(adam_scan(pid, visit, date, response))
            measurements.append(meas(pid, "SUM", visit, mm))
    return {
        "sites": [dict(site_id="S01", site_name="North Hospital", activation_date=None, target_enrollment=None),
                  dict(site_id="S02", site_name="South Hospital", activation_date=None, target_enrollment=None)],
        "patients": patients,
        "treatments": [],
        "lesions": [dict(patient_id=pid, lesion_id="SUM", segment=None, is_target=True, is_treated=True)
                    for pid in starts],
        "imaging": imaging,
        "lesion_measurements": measurements,
        "staging": [],
        "adverse_events": [dict(ae("A1", "E1", "Fever", 1, "2024-01-12"), session_number=None),
                           dict(ae("A2", "E1", "Abdominal pain", 3, "2024-02-03", serious=True),
                                session_number=None),
                           dict(ae("A6", "E1", "Hepatic failure", 5, "2024-07-01"), session_number=None)],
    }


@pytest.fixture(scope="module")
def adam_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("adam_like")
    write_snapshot(root, "2024-12-31", adam_like_registry(), source="adam")
    return root


def test_the_adam_like_cut_is_valid(adam_root):
    from dashboard.validate import validate_folder
    report = validate_folder(adam_root / "snapshots" / "2024-12-31")
    assert report.ok, report.summary()


def page_option_values(path: str) -> dict[str, list]:
    """Each page option of a page -> every value its control offers."""
    from dashboard.callbacks.shell import render_page
    out = {}
    for key, comp in layout_props(render_page(path, "")[0]).items():
        if key.startswith("{") and json.loads(key).get("type") == "page-option":
            values = [o["value"] if isinstance(o, dict) else o for o in (getattr(comp, "options", None) or [])]
            if isinstance(getattr(comp, "value", None), list):      # a checklist: its value is the list ticked
                values = [[v] for v in values] + [[]]
            out[json.loads(key)["key"]] = values or [getattr(comp, "value", None)]
    return out


def option_key(key: str) -> str:
    return json.dumps({"key": key, "type": "page-option"}, separators=(",", ":")) + ".value"


class FailureLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record) + "".join(
            __import__("traceback").format_exception(*record.exc_info) if record.exc_info else ""))


@pytest.fixture(scope="module")
def partly_root(tmp_path_factory):
    from test_missing_values import CUT, partly_recorded
    root = tmp_path_factory.mktemp("partly_recorded")
    write_snapshot(root, CUT, partly_recorded(), source="redcap")
    return root


SCENARIOS = ({}, {"site": ["S02"]}, {"bclc": ["B"]}, {"bclc": ["unknown"]}, {"ecog": ["unknown"]}, {"sex": ["F"]})


def replay_every_page(session, snapshot_id: str) -> list:
    """[(what, status, body)] for every callback of every page under each option value and filter, and
    every CSV download (each option value in the URL)."""
    out = []
    for path, _ in PAGES:
        callbacks, sync, base = session.plan(path)
        options = page_option_values(path)
        for scenario in SCENARIOS:
            values, page_values = update_values(base, snapshot_id, scenario)
            r = session.client.post("/_dash-update-component", json=callback_body(sync, values, "snapshot-select.value"))
            out.append((f"{path} sync {scenario}", r.status_code, r.data))
            variants = [page_values] + [{**page_values, option_key(k): v}
                                        for k, vs in options.items() for v in vs if scenario == {}]
            for variant in variants:
                for dep in callbacks:
                    r = session.client.post("/_dash-update-component",
                                            json=callback_body(dep, variant, "filter-state.data"))
                    chosen = {k: variant.get(option_key(k)) for k in options}
                    out.append((f"{path} {dep['output'][:70]} {scenario} {chosen}", r.status_code, r.data))
        for figure, (page, _) in FIGURES.items():
            if page != path.strip("/") and not (path == "/" and page == "overview"):
                continue
            for search in [""] + [f"?{k}={v}" for k, vs in options.items() for v in vs]:
                r = session.client.post("/_dash-update-component", json=download_body(
                    session, figure, search, {"snapshot": snapshot_id, "query": ""}))
                out.append((f"download {figure} {search}", r.status_code, r.data))
    return out


@pytest.fixture(scope="module", params=["adam_like", "partly_recorded"])
def answers(request, dash_app, tmp_path_factory):
    """{role: [(what, status, body)]} of every page on one cut, for the committee (every site), an
    investigator (site S01) and the sponsor (small cells suppressed); with the failures the server logged.
    The cuts are not synthetic, so they are served only after sign-in."""
    root = request.getfixturevalue("adam_root" if request.param == "adam_like" else "partly_root")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    failures = FailureLog()
    logging.getLogger().addHandler(failures)
    out = {}
    try:
        session = Session(dash_app)         # the callback map, read before sign-in is switched on
        with signed_in(monkeypatch, tmp_path_factory.mktemp("users")):
            for role in ("committee", "investigator", "sponsor"):
                session.client.environ_base["HTTP_X_REMOTE_USER"] = role
                out[role] = replay_every_page(session, "2024-12-31")
    finally:
        logging.getLogger().removeHandler(failures)
        monkeypatch.undo()
    return out, failures.records


def test_every_page_and_download_answers(answers):
    by_role, logged = answers
    assert all(len(items) > 100 for items in by_role.values())
    bad = [f"{role}: {what}: {status}" for role, items in by_role.items() for what, status, body in items
           if status not in (200, 204) or b"Something went wrong" in body or b"Traceback" in body]
    assert not logged, "\n\n".join(dict.fromkeys(r.splitlines()[-1] + "\n" + r for r in logged))
    assert not bad, "\n".join(bad[:20])
