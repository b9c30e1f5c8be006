"""What reaches the server from a browser (issue 14, items 7, 8 and 9): request size, malformed and
out-of-range callback bodies, security headers, the start-up race of a fresh process, the warm
process's exit, and an open tab on a data cut that is gone. Each test reproduces what was seen."""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port
from dashboard.replay import Replayer, Session
from fixtures import mini_registry, write_snapshot

UPDATE = "/_dash-update-component"
BANNER = "..banner-count.children...banner-cutoff.children...filter-chips.children...clear-all-filters.style...cut-marker-text.children...cut-marker.style...shown-cut.data.."


@pytest.fixture
def session(synthetic_root, monkeypatch, dash_app):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    return Session(dash_app)


def banner_body(state=None) -> dict:
    return {"output": BANNER,
            "outputs": [{"id": i, "property": p} for i, p in (("banner-count", "children"), ("banner-cutoff", "children"),
                                                              ("filter-chips", "children"), ("clear-all-filters", "style"),
                                                              ("cut-marker-text", "children"), ("cut-marker", "style"), ("shown-cut", "data"))],
            "inputs": [{"id": "filter-state", "property": "data", "value": state or {"snapshot": "latest", "query": ""}}],
            "state": [], "changedPropIds": ["filter-state.data"]}


# --- limits ----------------------------------------------------------------------------------------
def test_a_body_over_1_mb_is_refused_with_413(session):
    """100 MB bodies were accepted (+450 MB of memory per request)."""
    body = banner_body({"snapshot": "latest", "query": "bclc=B" + ",B" * 1_000_000})       # about 2 MB of JSON
    assert len(json.dumps(body)) > 2_000_000
    assert session.client.post(UPDATE, json=body).status_code == 413
    # a declared 100 MB body is refused before it is read
    r = session.client.post(UPDATE, data=b"{}", content_type="application/json",
                            environ_overrides={"CONTENT_LENGTH": str(100 * 2 ** 20)})
    assert r.status_code == 413
    assert session.client.post(UPDATE, json=banner_body()).status_code == 200        # a real update still passes


def survival_body(session, endpoint="os", by="bclc_stage", ci="log-log", bands=(), ref=None):
    dep = next(d for d in session.deps if d["output"].startswith("..{\"figure\":\"km-curve\""))
    values = {'{"key":"endpoint","type":"page-option"}': endpoint, '{"key":"by","type":"page-option"}': by,
              '{"key":"ci","type":"page-option"}': ci, '{"key":"bands","type":"page-option"}': list(bands)
              if isinstance(bands, tuple) else bands, '{"key":"ref","type":"page-option"}': ref,
              "filter-state": {"snapshot": "latest", "query": ""}}
    def items(spec):
        return [{"id": json.loads(i["id"]) if i["id"].startswith("{") else i["id"], "property": i["property"],
                 "value": values[i["id"]]} for i in spec]
    from dashboard.replay import parse_id, split_output
    return {"output": dep["output"], "outputs": [{"id": parse_id(i), "property": p} for i, p in split_output(dep["output"])],
            "inputs": items(dep["inputs"]), "state": items(dep["state"]), "changedPropIds": ["filter-state.data"]}


def test_page_option_values_outside_their_sets_are_refused(session):
    """Every posted option value was used as a cache key as it came: a client could fill the disk."""
    assert session.client.post(UPDATE, json=survival_body(session)).status_code == 200
    assert session.client.post(UPDATE, json=survival_body(session, ref="C")).status_code == 200    # a group level
    for bad in (dict(endpoint="x" * 10_000), dict(by="drop table"), dict(ci=["log"]), dict(bands="on"),
                dict(bands=["on"] * 1000), dict(endpoint={"a": 1}), dict(ref="x" * 10_000), dict(ref=["B"])):
        r = session.client.post(UPDATE, json=survival_body(session, **bad))
        assert r.status_code == 400, (list(bad), r.status_code)


def test_filter_lists_are_bounded_by_the_known_values():
    from dashboard.filters import Filters
    filters, problems = Filters.from_query("bclc=" + ",".join(["B"] * 1000) + "&sex=M")
    assert filters.bclc == () and filters.sex == ("M",)
    assert any("at most 6" in p for p in problems), problems          # BCLC stages 0, A, B, C, D and unknown
    assert Filters.from_query("bclc=B,C,B")[0].bclc == ("B", "C")      # a repeat within the bound is harmless


def malformed_bodies(session):
    banner = banner_body()
    download = '{"figure":["MATCH"],"type":"download"}.data'
    yield "a list", b"[1]"
    yield "an empty object", b"{}"
    yield "null", b"null"
    yield "not JSON", b"{not json"
    yield "a string", b'"text"'
    yield "no inputs", json.dumps({k: v for k, v in banner.items() if k != "inputs"}).encode()
    yield "inputs not a list", json.dumps({**banner, "inputs": {"id": "filter-state"}}).encode()
    yield "an input too few", json.dumps({**banner, "inputs": []}).encode()
    yield "an input of another component", json.dumps(
        {**banner, "inputs": [{"id": "f-site", "property": "value", "value": []}]}).encode()
    yield "a state the callback does not read", json.dumps(
        {**banner, "state": [{"id": "url", "property": "search", "value": ""}]}).encode()
    yield "an unknown callback", json.dumps({**banner, "output": "nope.children",
                                             "outputs": {"id": "nope", "property": "children"}}).encode()
    yield "outputs that are not the callback's", json.dumps({**banner, "outputs": [{"id": "x", "property": "y"}]}).encode()
    yield "a trigger that is not an input", json.dumps({**banner, "changedPropIds": ["f-site.value"]}).encode()
    yield "MATCH ids that disagree", json.dumps(
        {"output": download, "outputs": {"id": {"type": "download", "figure": "accrual"}, "property": "data"},
         "inputs": [{"id": {"type": "download-csv", "figure": "waterfall"}, "property": "n_clicks", "value": 1}],
         "state": [], "changedPropIds": []}).encode()


def test_malformed_callback_bodies_answer_400(session):
    """[1], {}, null and a body without inputs answered 500."""
    for name, raw in malformed_bodies(session):
        r = session.client.post(UPDATE, data=raw, content_type="application/json")
        assert r.status_code == 400, (name, r.status_code, r.data[:200])


# --- headers ---------------------------------------------------------------------------------------
def test_security_headers_on_every_response(session):
    r = session.client.get("/survival")
    assert r.status_code == 200                                   # no redirect to https on http
    csp = dict(part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";") if part.strip())
    assert csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert not re.search(r"https?:|\*", r.headers["Content-Security-Policy"]), "no remote host"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    # every inline script of the page is allowed by its hash, and only those
    html = re.sub(r"<!--.*?-->", "", r.get_data(as_text=True), flags=re.S)     # Dash's IE alert is in a comment
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", html, re.S)
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
              for attrs, body in inline if "application/json" not in attrs}
    assert hashes and hashes <= set(csp["script-src"].split())
    for path in ("/_dash-layout", "/assets/registry.css"):
        assert session.client.get(path).headers["X-Content-Type-Options"] == "nosniff"


# --- start-up: a fresh process --------------------------------------------------------------------
def wait_listening(port: int, proc, seconds: float = 60):
    """Until the port accepts a TCP connection; no HTTP request is made (that would set Dash up)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("the server did not listen")


def concurrent_first_posts(url: str, deps, n: int = 16) -> list[int]:
    dep = next(d for d in deps if d["output"] == BANNER)
    barrier = threading.Barrier(n)
    codes = []

    def one():
        replayer = Replayer(base_url=url)
        barrier.wait(10)
        codes.append(replayer._send(banner_body())[0])
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert dep and len(codes) == n
    return codes


def server_header(url: str) -> str:
    with urllib.request.urlopen(url + "/", timeout=30) as r:
        return r.headers.get("Server", "")


@pytest.mark.parametrize("server", ["python app.py", "gunicorn"])
def test_concurrent_first_requests_to_a_fresh_process_get_no_500(session, synthetic_root, server):
    """5-6 of the first concurrent callbacks got 500 "Callback function not found": Dash set up its
    callback map on the first request, and the others ran before it was done."""
    port = free_port()
    env = {**os.environ, "REGISTRY_DATA": str(synthetic_root), "PORT": str(port), "REGISTRY_WARM": "off"}
    cmd = ([sys.executable, "app.py", "--port", str(port)] if server == "python app.py" else
           [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:server"])
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(port, proc)
        codes = concurrent_first_posts(url, session.deps)
        assert codes == [200] * len(codes), codes
        header = server_header(url)
        assert not re.search(r"Werkzeug|Python|\d", header), header     # no software version
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_the_warm_process_is_reaped(mini_root, monkeypatch):
    """The background warmer was left a zombie once it ended."""
    from dashboard.warm import start_in_background
    monkeypatch.delenv("REGISTRY_WARM", raising=False)
    proc = start_in_background(data_dir=mini_root)
    assert proc is not None
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.time() + 120
    state = "R"
    while time.time() < deadline:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        if state in ("Z", "gone"):
            break
        time.sleep(0.1)
    time.sleep(1.0)       # the reaper's moment
    assert not stat.exists(), "the warm process is a zombie (state Z): nobody waited for it"


# --- a data cut that is gone -----------------------------------------------------------------------
def test_an_open_tab_on_a_deleted_or_rejected_cut_gets_a_clear_notice(tmp_path, monkeypatch, dash_app):
    """Every card of a tab on a deleted cut said "Something went wrong"."""
    rows = mini_registry()
    write_snapshot(tmp_path, "2024-12-31", rows)
    write_snapshot(tmp_path, "2025-03-31", rows)
    write_snapshot(tmp_path, "2025-06-30", rows)
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    client = Session(dash_app).client
    overview = {"output": "overview-cards.children", "outputs": {"id": "overview-cards", "property": "children"},
                "inputs": [{"id": "filter-state", "property": "data", "value": {"snapshot": "2025-03-31", "query": ""}}],
                "state": [], "changedPropIds": ["filter-state.data"]}
    assert b"Something went wrong" not in client.post(UPDATE, json=overview).data
    shutil.rmtree(tmp_path / "snapshots" / "2025-03-31")
    # the 2025-06-30 cut changed after publication: rejected (checksum)
    table = next((tmp_path / "snapshots" / "2025-06-30").glob("patients.parquet"))
    table.write_bytes(table.read_bytes()[:-64] + b"\0" * 64)
    for cut in ("2025-03-31", "2025-06-30"):
        for body in (overview, banner_body()):
            body = json.loads(json.dumps(body))
            body["inputs"][0]["value"] = {"snapshot": cut, "query": ""}
            r = client.post(UPDATE, json=body)
            assert r.status_code == 200, r.data[:200]
            text = r.get_data(as_text=True)
            assert "Something went wrong" not in text and "Traceback" not in text
            assert f"Data cut {cut} is no longer available" in text and "reload" in text, text[:400]


def test_security_headers_with_sign_in_on_and_on_refusals(session, monkeypatch, tmp_path):
    """Issue 15: the security headers hold with sign-in on, on signed-in pages and on refusals."""
    from access_support import signed_in
    with signed_in(monkeypatch, tmp_path) as as_user:
        answers = [session.client.get("/survival", headers=as_user("sponsor")),            # signed in
                   session.client.get("/survival"),                                        # no user: 401
                   session.client.get("/survival", headers=as_user("nobody")),             # unknown: 403
                   session.client.post("/_dash-update-component", json={})]               # 401
    assert [r.status_code for r in answers] == [200, 401, 403, 401]
    for r in answers:
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert b"Traceback" not in answers[1].data and b"S01" not in answers[1].data


def test_the_shell_steps_stores_take_bounded_text_only(session):
    """The stores the shell's server step and router read (issue 17: url-seen, page-routed) are
    text of a bounded length; anything else is refused before a callback runs."""
    from dashboard.replay import callback_body, shell_sync
    sync = shell_sync(session.deps)
    route = next(d for d in session.deps if d["output"].startswith("..page-content.children"))
    load = {"url.search": "", "url.pathname": "/", "url-seen.data": "load:1", "snapshot-select.value": None}
    assert session.client.post(UPDATE, json=callback_body(sync, load, "url-seen.data")).status_code == 200
    for bad in ({"a": 1}, ["load:1"], "x" * 100_000):
        r = session.client.post(UPDATE, json=callback_body(sync, {**load, "url-seen.data": bad}, "url-seen.data"))
        assert r.status_code == 400, (bad if len(str(bad)) < 50 else "long text", r.status_code)
        r = session.client.post(UPDATE, json=callback_body(route, {"url.pathname": "/", "page-routed.data": bad},
                                                           "url.pathname"))
        assert r.status_code == 400, (bad if len(str(bad)) < 50 else "long text", r.status_code)


def test_the_data_cut_poll_takes_bounded_values_only(session):
    """The poll for new data cuts (issue 18) reads the cut the banner drew, its own last answer and
    the tick count: short text and a number; anything else is refused before the callback runs."""
    from dashboard.replay import callback_body
    poll = next(d for d in session.deps if d["output"] == "cut-poll-seen.data")
    good = {"cut-poll.n_intervals": 3, "cut-poll-seen.data": None, "shown-cut.data": "2025-06-30",
            "filter-state.data": {"snapshot": "latest", "query": ""}, "url.search": ""}
    assert session.client.post(UPDATE, json=callback_body(poll, good, "cut-poll.n_intervals")).status_code == 200
    for key, bad in (("shown-cut.data", {"a": 1}), ("shown-cut.data", "x" * 1000), ("cut-poll-seen.data", ["x"]),
                     ("cut-poll.n_intervals", "x" * 100), ("cut-poll.n_intervals", {"n": 1})):
        r = session.client.post(UPDATE, json=callback_body(poll, {**good, key: bad}, "cut-poll.n_intervals"))
        assert r.status_code == 400, (key, str(bad)[:40], r.status_code)
