"""Fetch a project's records and data dictionary from the REDCap API with PyCap; the token is read
from a file and never printed, logged or put in an error message."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import sys
from pathlib import Path

from dashboard.importers import ImportFailed, Problem

TOKEN = re.compile(r"^(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64})$")
BATCH = 5000            # records per records request: a whole large project in one answer can time out
TIMEOUT = 300           # seconds to wait for one answer


class _Refused(Exception):
    """An HTTP error answer from the server, with REDCap's own error text when it gave one."""


def read_token(token_file: str | Path) -> str:
    """The API token in `token_file` (surrounding white space stripped), checked for REDCap's shape
    (32 or 64 hex characters); warns on stderr when others can read the file."""
    path = Path(token_file)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ImportFailed(Problem(f"token file {path}", "", f"cannot be read ({type(e).__name__}: "
                                   f"{getattr(e, 'strerror', None) or 'not UTF-8 text'})")) from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: token file {path} is accessible by others (mode {stat.S_IMODE(mode):o}); "
              f"it should be readable by you only: chmod 600 {path}", file=sys.stderr)
    token = text.strip()
    if not TOKEN.match(token):
        # Say what is wrong without showing any of it.
        hexadecimal = re.fullmatch(r"[0-9A-Fa-f]*", token) is not None
        raise ImportFailed(Problem(f"token file {path}", "", f"does not hold a REDCap API token "
                                   f"(32 or 64 hexadecimal characters; it holds {len(token)} characters"
                                   f"{'' if hexadecimal else ', not all hexadecimal'})"))
    return token


def _check_url(url: str) -> None:
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise ImportFailed(Problem("--url", "", f"{url!r} is not an http(s) URL of a REDCap API "
                                   "(e.g. https://redcap.example.org/api/)"))


def _redcap_error(text: str) -> str | None:
    """REDCap's error text in an answer ({"error": ...}, <error>...</error> or "ERROR: ..."), else None."""
    body = (text or "").strip()
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return str(data["error"]) if isinstance(data, dict) and "error" in data else None
    found = re.search(r"<error>(.*?)</error>", body, re.S | re.I)
    if found:
        return found.group(1).strip()
    if body.lower().startswith("error:"):
        return body[6:].strip()
    return None


def _check_response(response, *args, **kwargs):
    """requests hook: an HTTP error answer raises, with REDCap's message (PyCap reads any answer as data)."""
    if response.status_code >= 400:
        body = (response.text or "").strip()
        plain = body if body and len(body) <= 200 and "\n" not in body and not body.startswith("<") else ""
        message = _redcap_error(body) or plain or (response.reason or "")
        raise _Refused(f"HTTP {response.status_code}{': ' + message if message else ''}")
    return response


def _project(url: str, token: str):
    from redcap import Project

    class _Project(Project):
        # PyCap's own check wants a 32-character token and puts it in its message; ours ran already.
        @staticmethod
        def _validate_url_and_token(url: str, token: str) -> None:
            return None

    return _Project(url, token, timeout=TIMEOUT, hooks={"response": [_check_response]})


def fetch(url: str, token_file: str | Path, progress: bool = False) -> tuple[str, str]:
    """Return (records CSV text, data dictionary CSV text) of the project at REDCap API `url`, using
    the token in `token_file`; raises ImportFailed naming the URL (never the token).

    Records come as a raw flat CSV export (raw codes, raw headers, unique event names, the data
    access group when the project has them), asked for in batches of BATCH records after one request
    for the record ids; the batches are joined under one header. Only CSV is asked for: REDCap's
    JSON gives the same values and would only be turned back into CSV here."""
    _check_url(url)
    token = read_token(token_file)
    try:
        return _fetch(url, token, progress)
    except ImportFailed:
        raise
    except Exception as e:       # anything from requests or PyCap: say what, where, never the token
        message = _describe(e).replace(token, "[token]")
        raise ImportFailed(Problem(f"REDCap API {url}", "", message)) from None


def _describe(e: Exception) -> str:
    import requests
    if isinstance(e, _Refused):
        return f"the server refused the request ({e})"
    if isinstance(e, requests.exceptions.Timeout):
        return f"no answer within {TIMEOUT} s"
    if isinstance(e, requests.exceptions.SSLError):
        return "the TLS (https) connection failed: the server's certificate was not accepted"
    if isinstance(e, requests.exceptions.ConnectionError):
        return "cannot connect to the server (is the URL right and the server reachable?)"
    if isinstance(e, requests.exceptions.RequestException):
        text = str(e.args[0]) if e.args else type(e).__name__
        return f"REDCap answered with an error: {_redcap_error(text) or text}"
    return f"unexpected failure ({type(e).__name__})"


def _fetch(url: str, token: str, progress: bool) -> tuple[str, str]:
    from tqdm import tqdm

    project = _project(url, token)
    with tqdm(total=2, desc="REDCap API", unit="request", disable=not progress, leave=False) as bar:
        dictionary = project.export_metadata(format_type="csv")
        _check_text(dictionary, url, "data dictionary")
        bar.update()
        first = next(csv.DictReader(io.StringIO(dictionary)), None)
        if not first or "field_name" not in first:
            raise ImportFailed(Problem(f"REDCap API {url}", "", "the data dictionary answer has no fields "
                                       "or no field_name column"))
        record_id = first["field_name"]
        listing = project.export_records(format_type="csv", fields=[record_id], raw_or_label="raw",
                                         event_name="unique")
        _check_text(listing, url, "record id list")
        ids = list(dict.fromkeys(row[record_id] for row in csv.DictReader(io.StringIO(listing))
                                 if row.get(record_id)))
        batches = [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)] or [[]]
        bar.total = 2 + len(batches)
        bar.update()
        parts: list[str] = []
        for batch in batches:
            text = project.export_records(format_type="csv", records=batch or None, raw_or_label="raw",
                                          raw_or_label_headers="raw", event_name="unique",
                                          export_data_access_groups="true")     # REDCap reads the text "true"
            _check_text(text, url, "records")
            parts.append(text if not parts else text.split("\n", 1)[1] if "\n" in text else "")
            bar.update()
    records = "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts)
    return records, dictionary


def _check_text(text, url: str, what: str) -> None:
    """A 200 answer can still be REDCap's error (or not CSV at all)."""
    if not isinstance(text, str):
        raise ImportFailed(Problem(f"REDCap API {url}", "", f"the {what} answer is not CSV text"))
    error = _redcap_error(text)
    if error is not None:
        raise ImportFailed(Problem(f"REDCap API {url}", "", f"REDCap answered with an error: {error}"))
