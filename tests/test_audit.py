"""The audit log (issue 15, item 4; dashboard/audit.py, docs/audit.md): one JSON line per event with
the user and the UTC time, page views once per view or filter change (not once per card),
downloads and exports with their name and row count, lines that never interleave across threads
and processes, values that cannot forge a line, and an unwritable log that is logged, not lost,
and refuses data leaving the server.

Expected values: the CSV the test client received (its row count), the JSON text parsed back by
the standard library, the clock of this process."""
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from access_support import signed_in
from dashboard import audit, ids
from dashboard.access import User
from dashboard.replay import Session, callback_body
from test_downloads import download_body, sent_csv

ROOT = Path(audit.__file__).resolve().parents[1]
EVENTS = ("sign-in", "sign-in-failed", "locked-out", "sign-out", "page-view", "download", "download-refused",
          "export", "export-refused")


@pytest.fixture
def log_file(tmp_path, monkeypatch):
    path = tmp_path / "audit.log"
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", str(path))
    return path


def lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="ascii") if path.exists() else ""
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def events(path: Path, name: str) -> list[dict]:
    return [e for e in lines(path) if e["event"] == name]


# --- the line ------------------------------------------------------------------------------------
def test_every_event_kind_is_one_line_with_user_and_utc_time(log_file):
    before = dt.datetime.now(dt.timezone.utc)
    ana = User("ana", "investigator", ("S01",))
    for event in EVENTS:
        assert audit.record(event, ana, export="waterfall", rows=12, filters={"site": ["S01"]})
    audit.record("sign-in-failed", "mallory", reason="wrong password")
    audit.record("export", None, os_user="root", rows=3)
    got = lines(log_file)
    assert [e["event"] for e in got] == list(EVENTS) + ["sign-in-failed", "export"]
    for e in got[:len(EVENTS)]:
        assert (e["user"], e["role"], e["rows"], e["filters"]) == ("ana", "investigator", 12, {"site": ["S01"]})
    assert (got[-2]["user"], got[-1]["user"], got[-1]["os_user"]) == ("mallory", None, "root")
    for e in got:
        assert list(e)[:3] == ["time", "event", "user"] and e["time"].endswith("Z")
        when = dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        assert before - dt.timedelta(seconds=1) <= when <= dt.datetime.now(dt.timezone.utc)
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("value", ['x"}\n{"event": "sign-in", "user": "committee"}', "a\rb\u2028c\u0085d\x1ce", "\\\"\n"])
def test_a_value_cannot_forge_a_line(log_file, value):
    """A quote and a newline in a filter value, a figure id or a path: one line, the value intact.
    Every non-ASCII character is escaped too (U+2028 and U+0085 end a line for some readers)."""
    audit.record("page-view", "ana", path=value, filters={"etiology": [value]}, **{"figure": value})
    raw = log_file.read_bytes()
    assert raw.count(b"\n") == 1 and raw.isascii() and b"\r" not in raw
    (e,) = lines(log_file)
    assert (e["event"], e["user"], e["path"], e["filters"]["etiology"], e["figure"]) == \
           ("page-view", "ana", value, [value], value)


def test_long_values_are_clipped_under_one_atomic_pipe_write(log_file):
    audit.record("download", "ana", figure="x" * 50_000, filters={"site": [f"S{i:03d}" for i in range(900)]},
                 **{f"field{i}": "y" * 300 for i in range(30)})
    raw = log_file.read_bytes()
    assert len(raw) <= audit.MAX_LINE + 1 and raw.count(b"\n") == 1
    (e,) = lines(log_file)
    assert (e["event"], e["user"]) == ("download", "ana") and e["clipped"].startswith('{"figure": "xxx')
    audit.record("download", "ana", figure="x" * 50_000)
    assert lines(log_file)[1]["figure"] == "x" * audit.CLIP_CHARS + f"...(+{50_000 - audit.CLIP_CHARS} chars)"


def test_a_field_cannot_overwrite_the_line_s_own():
    with pytest.raises(ValueError):
        audit.line("download", "ana", time="1970-01-01")


def test_numbers_dates_and_odd_values_are_json(log_file):
    import numpy as np
    audit.record("export", "ana", rows=np.int64(7), rate=float("nan"), when=dt.date(2025, 1, 2),
                 sites={"S02", "S01"}, obj=object)
    (e,) = lines(log_file)
    assert (e["rows"], e["rate"], e["when"], e["sites"]) == (7, None, "2025-01-02", ["S01", "S02"])
    assert isinstance(e["obj"], str)


def test_the_console_is_standard_output_and_the_default(monkeypatch, capfd):
    monkeypatch.delenv("DASHBOARD_AUDIT_LOG", raising=False)
    print("before", flush=False)
    audit.record("sign-out", "ana")
    out, err = capfd.readouterr()
    assert out.splitlines()[0] == "before" and json.loads(out.splitlines()[1])["event"] == "sign-out"
    with audit.console_on_stderr():
        audit.record("sign-out", "ana")
    out, err = capfd.readouterr()
    assert out == "" and json.loads(err)["event"] == "sign-out"


def test_a_renamed_log_is_followed_at_the_next_event(log_file):
    """Rotation by renaming (logrotate without copytruncate): each event opens the path again."""
    audit.record("sign-in", "ana")
    log_file.rename(log_file.with_suffix(".1"))
    audit.record("sign-out", "ana")
    assert [e["event"] for e in lines(log_file.with_suffix(".1"))] == ["sign-in"]
    assert [e["event"] for e in lines(log_file)] == ["sign-out"]


# --- concurrent writers ----------------------------------------------------------------------------
WRITER = """
import sys
from dashboard import audit
for i in range(int(sys.argv[2])):
    audit.record("page-view", sys.argv[1], i=i, pad="x" * 3500)
"""


def check_complete(records: list[dict], writers: dict) -> None:
    for name, n in writers.items():
        assert sorted(e["i"] for e in records if e["user"] == name) == list(range(n)), name


def test_threads_and_processes_never_interleave_lines(log_file):
    """Two processes and four threads append 3.5 kB lines to one file at once: every line whole."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, f"p{k}", "400"], cwd=ROOT, env=env) for k in (1, 2)]

    def write(name):
        for i in range(300):
            audit.record("page-view", name, i=i, pad="x" * 3500)
    threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(60) for p in procs] == [0, 0]
    records = lines(log_file)
    assert len(records) == 2 * 400 + 4 * 300
    check_complete(records, {"p1": 400, "p2": 400, **{f"t{k}": 300 for k in range(4)}})


def test_processes_writing_to_one_console_pipe_never_interleave(monkeypatch):
    """The container case: gunicorn workers share one standard output, a pipe to the log collector.
    Lines stay under PIPE_BUF, so each write() lands whole."""
    monkeypatch.delenv("DASHBOARD_AUDIT_LOG", raising=False)
    read_end, write_end = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DASHBOARD_AUDIT_LOG", None)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, f"p{k}", "500"], cwd=ROOT, env=env, stdout=write_end)
             for k in (1, 2, 3)]
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    records = [json.loads(line) for line in raw.decode("ascii").splitlines()]
    check_complete(records, {"p1": 500, "p2": 500, "p3": 500})


# --- a log that cannot be written ------------------------------------------------------------------
@pytest.mark.parametrize("target", ["/dev/full", "missing-folder/audit.log", "a-file/audit.log"],
                         ids=["disk-full", "no-folder", "not-a-folder"])
def test_an_unwritable_log_is_logged_with_the_event_and_refuses_required_events(target, tmp_path, monkeypatch, caplog):
    """/dev/full answers every write with ENOSPC, as a full disk does. (A read-only folder does not
    refuse root, who runs these tests; a path through a missing folder or a file refuses anyone.)"""
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", target if target.startswith("/") else str(tmp_path / target))
    with caplog.at_level(logging.ERROR, logger="dashboard.audit"):
        assert audit.record("page-view", "ana", path="/survival") is False
        with pytest.raises(audit.AuditError):
            audit.record_required("download", "ana", export="waterfall", rows=3)
    logged = [r.getMessage() for r in caplog.records if r.name == "dashboard.audit"]
    assert len(logged) == 2 and '"path": "/survival"' in logged[0] and '"export": "waterfall"' in logged[1]


def test_the_export_command_prints_nothing_when_its_audit_line_cannot_be_written(synthetic_root, monkeypatch, capsys):
    from dashboard.__main__ import main
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", "/dev/full")
    assert main(["export", "enrollment", "--data", str(synthetic_root), "--format", "csv"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "nothing exported" in err and "Traceback" not in err


def test_the_export_command_records_the_os_user_or_the_user(synthetic_root, log_file, tmp_path, capsys):
    """Without --as-user: user null and the operating system's account; with it: the user and role.
    Standard output holds the export only."""
    import getpass
    from access_support import write_users
    from dashboard.__main__ import main
    users = tmp_path / "users.json"
    write_users(users)
    assert main(["export", "staging-flow", "--data", str(synthetic_root), "--format", "csv"]) == 0
    csv_rows = len(capsys.readouterr().out.strip().splitlines()) - 1
    assert main(["export", "staging-flow", "--data", str(synthetic_root), "--format", "csv",
                 "--as-user", "sponsor", "--users", str(users), "--filter", "bclc=B"]) == 0
    assert capsys.readouterr().out.startswith("source,target,n\n")
    assert main(["export", "patients", "--data", str(synthetic_root), "--as-user", "sponsor", "--users", str(users)]) == 3
    first, second, refused = lines(log_file)
    assert (first["event"], first["user"], first["os_user"], first["export"], first["rows"]) == \
           ("export", None, getpass.getuser(), "staging-flow", csv_rows)
    assert (second["user"], second["role"], second["filters"]) == ("sponsor", "sponsor", {"bclc": ["B"]})
    assert (refused["event"], refused["user"], refused["export"]) == ("export-refused", "sponsor", "patients")


# --- through the server ----------------------------------------------------------------------------
@pytest.fixture
def session(synthetic_root, monkeypatch, dash_app):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    return Session(dash_app)           # built before sign-in is switched on: it reads the callback map


def test_a_download_records_user_export_and_row_count(session, log_file, monkeypatch, tmp_path):
    with signed_in(monkeypatch, tmp_path) as as_user:
        body = download_body(session, "response-waterfall", "?scope=local", {"snapshot": "latest", "query": "bclc=B,C"})
        r = session.client.post("/_dash-update-component", json=body, headers=as_user("investigator"))
        csv = sent_csv(r, "response-waterfall")
    assert csv is not None
    (e,) = events(log_file, "download")
    assert (e["user"], e["role"], e["figure"], e["export"]) == ("investigator", "investigator", "response-waterfall",
                                                                "waterfall")
    assert e["rows"] == len(csv.strip().splitlines()) - 1 > 0
    assert e["filters"] == {"bclc": ["B", "C"]} and e["options"] == {"response_scope": "local"}
    from dashboard import data
    assert e["snapshot"] == data.resolve("latest").snapshot_id


# card figures whose export is patient-level, by export
PATIENT_FIGURES = {"swimmer": "response-swimmer", "response-consistency": "response-consistency",
                   "spider": "response-spider", "waterfall": "response-waterfall",
                   "downsizing": "downstaging-downsizing"}


def test_a_refused_download_is_recorded(session, log_file, monkeypatch, tmp_path):
    """A sponsor's download of a patient-level export without a de-identified form."""
    from dashboard.exports import EXPORTS
    name = next(n for n in PATIENT_FIGURES if EXPORTS[n].deidentified is None)
    with signed_in(monkeypatch, tmp_path) as as_user:
        r = session.client.post("/_dash-update-component", json=download_body(session, PATIENT_FIGURES[name]),
                                headers=as_user("sponsor"))
    assert r.status_code == 204 or not r.get_json().get("response"), "no CSV sent"
    (e,) = events(log_file, "download-refused")
    assert (e["user"], e["role"], e["export"]) == ("sponsor", "sponsor", name)
    assert not events(log_file, "download")


def test_a_download_whose_audit_line_cannot_be_written_is_refused_with_a_notice(session, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", "/dev/full")
    with signed_in(monkeypatch, tmp_path) as as_user, caplog.at_level(logging.ERROR, logger="dashboard.audit"):
        r = session.client.post("/_dash-update-component", json=download_body(session, "enrollment-by-site"),
                                headers=as_user("committee"))
    assert r.status_code == 200 and not r.get_json().get("response")
    notice = r.get_json()["sideUpdate"][ids.ERROR_NOTICE]
    assert notice["children"].startswith("Download refused: the audit log cannot be written")
    assert any('"event": "download"' in rec.getMessage() for rec in caplog.records)


def sync_dep(session):
    from dashboard.replay import shell_sync
    return shell_sync(session.deps)


def route_dep(session):
    return next(d for d in session.deps if d["output"].startswith(f"..{ids.PAGE_CONTENT}.children"))


def test_a_page_view_records_path_and_filters_once(session, log_file, monkeypatch, tmp_path):
    """Loading /survival?bclc=B: the router records the view; the shell's first sync (no state yet)
    and the cards that follow record nothing. A filter change: one line from the sync. A control
    echoing the URL's value: none."""
    with signed_in(monkeypatch, tmp_path) as as_user:
        headers = as_user("investigator")

        def post(dep, values, changed):
            body = callback_body(dep, values, changed)
            r = session.client.post("/_dash-update-component", json=body, headers=headers)
            assert r.status_code in (200, 204), r.data[:300]
            return r

        # a page's load, as Chromium posts it: the router, and the shell's sync with no state yet
        post(route_dep(session), {"url.pathname": "/survival", "url.search": "?bclc=B&sex=F"}, "url.pathname")
        shell = {"url.search": "?bclc=B&sex=F", "url.pathname": "/survival", "snapshot-select.value": None,
                 "url-seen.data": "load:1765100000000", "f-bclc.value": ["B"], "f-sex.value": ["F"],
                 "filter-state.data": None}
        r = post(sync_dep(session), shell, "url-seen.data")
        # the cards' state, as the browser computes it beside the sync (assets/shell.js)
        state = {"snapshot": r.get_json()["sideUpdate"][ids.SNAPSHOT]["value"], "query": "bclc=B&sex=F"}
        views = events(log_file, "page-view")
        assert len(views) == 1, views
        assert (views[0]["user"], views[0]["path"], views[0]["filters"]) == \
               ("investigator", "/survival", {"bclc": ["B"], "sex": ["F"]})
        assert views[0]["snapshot"] == state["snapshot"]

        # the cards of the page: no page-view line of their own
        cards, _, controls = session.plan("/survival")
        assert len(cards) >= 2
        for dep in cards:
            post(dep, {**controls, "filter-state.data": state}, "filter-state.data")
        post(next(d for d in session.deps if d["output"].startswith(f"..{ids.BANNER_COUNT}")),
             {"filter-state.data": state}, "filter-state.data")
        assert len(events(log_file, "page-view")) == 1

        # a control echoing the URL's value changes nothing; a real change is one line
        echo = {**shell, "f-bclc.value": ["B"], "f-sex.value": ["F"], "filter-state.data": state,
                "snapshot-select.value": state["snapshot"]}
        post(sync_dep(session), echo, "f-bclc.value")
        assert len(events(log_file, "page-view")) == 1
        post(sync_dep(session), {**echo, "f-bclc.value": ["B", "C"]}, "f-bclc.value")
        views = events(log_file, "page-view")
        assert len(views) == 2 and views[1]["path"] == "/survival"
        assert views[1]["filters"] == {"bclc": ["B", "C"], "sex": ["F"]}


def test_a_crafted_path_cannot_forge_a_page_view_line(session, log_file, monkeypatch, tmp_path):
    path = '/x"}\n{"time": "2020-01-01T00:00:00.000Z", "event": "sign-in", "user": "committee"}'
    with signed_in(monkeypatch, tmp_path) as as_user:
        body = callback_body(route_dep(session), {"url.pathname": path, "url.search": ""})
        r = session.client.post("/_dash-update-component", json=body, headers=as_user("sponsor"))
    assert r.status_code == 200
    (e,) = lines(log_file)
    assert (e["event"], e["user"], e["path"]) == ("page-view", "sponsor", path)


def test_a_closed_console_is_logged_not_raised(monkeypatch, caplog):
    """A server whose standard output was closed (a collector gone away) keeps serving."""
    monkeypatch.delenv("DASHBOARD_AUDIT_LOG", raising=False)
    closed = open(os.devnull, "w")
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    with caplog.at_level(logging.ERROR, logger="dashboard.audit"):
        assert audit.record("sign-out", "ana") is False
    monkeypatch.setattr(sys, "stdout", None)
    with caplog.at_level(logging.ERROR, logger="dashboard.audit"):
        assert audit.record("sign-out", "ana") is False
    assert len([r for r in caplog.records if '"event": "sign-out"' in r.getMessage()]) == 2
