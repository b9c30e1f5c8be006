"""The REDCap API path: api.fetch with PyCap against tests/redcap_server.py (a WSGI app answering
REDCap's API POSTs from REDCapR's fixture files) served on 127.0.0.1. Expected values are the
fixture files read with the csv module."""
from __future__ import annotations

import csv
import io
import json
import logging
import socket
import traceback
from pathlib import Path

import pandas as pd
import pytest
import requests

from dashboard.importers import ImportFailed
from dashboard.importers.redcap import api
from dashboard.importers.redcap.records import read_dictionary, read_records
from redcap_server import RedcapApp, serve, serve_app

REDCAP = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "redcap"
pytestmark = pytest.mark.skipif(not REDCAP.is_dir(), reason=f"public REDCap fixtures not found at {REDCAP}")

TOKEN = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
LONG = REDCAP / "longitudinal"


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def token_file(tmp_path: Path, text: str = TOKEN + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "redcap.token"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def server():
    app = RedcapApp(LONG / "data.csv", LONG / "dictionary.csv", TOKEN)
    url, stop = serve_app(app)
    yield url, app
    stop()


def assert_secret(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text


def test_fetch_returns_the_projects_records_and_dictionary(server, tmp_path, capsys):
    url, app = server
    records, dictionary = api.fetch(url, token_file(tmp_path))
    with open(LONG / "data.csv", encoding="utf-8-sig", newline="") as fh:
        assert rows(records) == list(csv.DictReader(fh))
    with open(LONG / "dictionary.csv", encoding="utf-8-sig", newline="") as fh:
        expected = [list(r.values()) for r in csv.DictReader(fh)]
    assert [list(r.values()) for r in rows(dictionary)] == expected
    assert list(rows(dictionary)[0])[:2] == ["field_name", "form_name"]     # the API's names
    # What was asked: the dictionary as CSV (PyCap reads it once more as JSON for the field names),
    # then raw flat records with unique event names, always with the right token.
    record_requests = [r for r in app.requests if r["content"] == "record"]
    assert all(r["format"] == "csv" for r in record_requests) and all(r["token"] == "True" for r in app.requests)
    assert record_requests[-1]["rawOrLabel"] == "raw" and record_requests[-1]["eventName"] == "unique"
    assert capsys.readouterr().err == ""        # 0600 token file: no warning, no progress bar


def test_fetched_text_reads_like_the_files(server, tmp_path):
    url, _ = server
    records_text, dictionary_text = api.fetch(url, token_file(tmp_path))
    from_api = read_records(io.StringIO(records_text), read_dictionary(io.StringIO(dictionary_text)))
    d = read_dictionary(LONG / "dictionary.csv")
    from_files = read_records(LONG / "data.csv", d)
    for form in d.forms:
        pd.testing.assert_frame_equal(from_api.form(form), from_files.form(form), obj=form)


def test_records_come_in_batches_of_whole_records(server, tmp_path, monkeypatch):
    url, app = server
    monkeypatch.setattr(api, "BATCH", 2)
    records, _ = api.fetch(url, token_file(tmp_path), progress=True)
    with open(LONG / "data.csv", encoding="utf-8-sig", newline="") as fh:
        assert rows(records) == list(csv.DictReader(fh))
    batches = [r for r in app.requests if r["content"] == "record" and "records[0]" in r]
    # data.csv holds records 100, 220, 304: two batches, [100, 220] and [304].
    assert [sorted(v for k, v in r.items() if k.startswith("records[")) for r in batches] == [["100", "220"], ["304"]]


def test_a_64_character_token_is_accepted(tmp_path):
    long_token = "ABCDEF0123456789" * 4
    url, stop = serve(LONG / "data.csv", LONG / "dictionary.csv", long_token)
    try:
        records, _ = api.fetch(url, token_file(tmp_path, long_token))
    finally:
        stop()
    assert len(rows(records)) == 18         # data.csv has 18 rows


def test_a_wrong_token_is_refused_without_showing_it(server, tmp_path, capsys, caplog):
    url, _ = server
    wrong = "F" * 32
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ImportFailed) as e:
        api.fetch(url, token_file(tmp_path, wrong))
    message = str(e.value)
    assert message == f"REDCap API {url}: the server refused the request (HTTP 403: You do not have permissions to use the API)"
    out = capsys.readouterr()
    assert_secret(wrong, message, out.out, out.err, caplog.text,
                  "".join(traceback.format_exception(e.value)))
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_an_unreachable_server(tmp_path, caplog):
    with socket.socket() as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{port}/api/"
    with pytest.raises(ImportFailed) as e:
        api.fetch(url, token_file(tmp_path))
    assert str(e.value) == f"REDCap API {url}: cannot connect to the server (is the URL right and the server reachable?)"
    assert_secret(TOKEN, str(e.value), caplog.text)


@pytest.mark.parametrize("status, body, shown", [
    (400, json.dumps({"error": 'The value of the parameter "content" is not valid'}),
     'the server refused the request (HTTP 400: The value of the parameter "content" is not valid)'),
    (200, json.dumps({"error": "The REDCap project is offline"}),
     "REDCap answered with an error: The REDCap project is offline"),
    (200, "<?xml version=\"1.0\"?><hash><error>Invalid API request</error></hash>",
     "REDCap answered with an error: Invalid API request"),
    (500, "Internal Server Error", "the server refused the request (HTTP 500: Internal Server Error)"),
])
def test_a_redcap_error_answer(server, tmp_path, capsys, status, body, shown):
    url, app = server
    app.fail_with = (status, body)
    with pytest.raises(ImportFailed) as e:
        api.fetch(url, token_file(tmp_path))
    assert str(e.value) == f"REDCap API {url}: {shown}"
    out = capsys.readouterr()
    assert_secret(TOKEN, str(e.value), out.out, out.err)


@pytest.mark.parametrize("text, described", [
    ("0A1B2C3D4E5F60718293A4B5C6D7E8F", "it holds 31 characters"),
    ("0A1B2C3D4E5F60718293A4B5C6D7E8FZ", "it holds 32 characters, not all hexadecimal"),
    ("", "it holds 0 characters"),
])
def test_a_token_file_without_a_token(tmp_path, text, described):
    with pytest.raises(ImportFailed) as e:
        api.fetch("http://127.0.0.1:9/api/", token_file(tmp_path, text))
    assert "does not hold a REDCap API token (32 or 64 hexadecimal characters; " + described in str(e.value)
    if text:
        assert_secret(text, str(e.value))


def test_a_missing_token_file(tmp_path):
    with pytest.raises(ImportFailed) as e:
        api.fetch("http://127.0.0.1:9/api/", tmp_path / "absent.token")
    assert f"token file {tmp_path / 'absent.token'}: cannot be read" in str(e.value)


def test_a_token_file_others_can_read_gets_a_warning(server, tmp_path, capsys):
    url, _ = server
    path = token_file(tmp_path, mode=0o644)
    api.fetch(url, path)
    err = capsys.readouterr().err
    assert f"warning: token file {path} is accessible by others (mode 644)" in err
    assert "chmod 600" in err
    assert_secret(TOKEN, err)


@pytest.mark.parametrize("url", ["ftp://redcap.example.org/api/", "redcap.example.org/api/", "", "file:///etc/passwd"])
def test_only_http_urls(tmp_path, url):
    with pytest.raises(ImportFailed) as e:
        api.fetch(url, token_file(tmp_path))
    assert "is not an http(s) URL of a REDCap API" in str(e.value)


def test_progress_bar_on_stderr(server, tmp_path, capsys):
    url, _ = server
    api.fetch(url, token_file(tmp_path), progress=True)
    assert "REDCap API" in capsys.readouterr().err


def test_the_test_server_answers_json_and_events(tmp_path):
    """tests/redcap_server.py speaks format=json too (REDCap's default for PyCap's json calls)."""
    app = RedcapApp(LONG / "data.csv", LONG / "dictionary.csv", TOKEN, events_csv=LONG / "event.csv")
    url, stop = serve_app(app)
    try:
        records = requests.post(url, data={"token": TOKEN, "content": "record", "format": "json"}, timeout=10).json()
        events = requests.post(url, data={"token": TOKEN, "content": "event", "format": "json"}, timeout=10).json()
        refused = requests.post(url, data={"token": "0" * 32, "content": "record", "format": "json"}, timeout=10)
    finally:
        stop()
    with open(LONG / "data.csv", encoding="utf-8-sig", newline="") as fh:
        assert records == list(csv.DictReader(fh))
    assert events[0]["unique_event_name"] == "enrollment_arm_1"
    assert refused.status_code == 403 and refused.json() == {"error": "You do not have permissions to use the API"}
