"""A small REDCap API for tests: a WSGI app answering the API's POSTs (content=record, metadata,
event, format csv or json) from a records export and a data dictionary on disk, refusing a wrong
token the way REDCap does (403 with a JSON error).

    url, stop = serve(records_csv, dictionary_csv, token)   # url ends in /api/
"""
from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# REDCap's Designer header of a data dictionary -> the names the API's metadata export uses.
API_NAMES = {
    "Variable / Field Name": "field_name", "Form Name": "form_name", "Section Header": "section_header",
    "Field Type": "field_type", "Field Label": "field_label",
    "Choices, Calculations, OR Slider Labels": "select_choices_or_calculations", "Field Note": "field_note",
    "Text Validation Type OR Show Slider Number": "text_validation_type_or_show_slider_number",
    "Text Validation Min": "text_validation_min", "Text Validation Max": "text_validation_max",
    "Identifier?": "identifier", "Branching Logic (Show field only if...)": "branching_logic",
    "Required Field?": "required_field", "Custom Alignment": "custom_alignment",
    "Question Number (surveys only)": "question_number", "Matrix Group Name": "matrix_group_name",
    "Matrix Ranking?": "matrix_ranking", "Field Annotation": "field_annotation",
}
NO_PERMISSION = "You do not have permissions to use the API"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _csv(rows: list[dict[str, str]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class RedcapApp:
    """The WSGI app; `requests` lists each POST's form (token replaced by whether it was right)."""

    def __init__(self, records_csv: str | Path, dictionary_csv: str | Path, token: str,
                 events_csv: str | Path | None = None):
        self.records = _rows(Path(records_csv))
        with open(records_csv, encoding="utf-8-sig", newline="") as fh:
            self.record_columns = next(csv.reader(fh))
        dictionary = _rows(Path(dictionary_csv))
        self.metadata = [{API_NAMES.get(k, k): v for k, v in row.items()} for row in dictionary]
        self.metadata_columns = list(API_NAMES.values())
        self.events = _rows(Path(events_csv)) if events_csv else None
        self.token = token
        self.requests: list[dict[str, str]] = []
        self.fail_with: tuple[int, str] | None = None     # (status, body) to answer every request with

    def __call__(self, environ, start_response):
        request = Request(environ)
        form = request.form.to_dict()
        self.requests.append({k: (v if k != "token" else str(v == self.token)) for k, v in form.items()})
        return self.answer(request, form)(environ, start_response)

    def answer(self, request: Request, form: dict[str, str]) -> Response:
        if request.method != "POST":
            return Response("REDCap API: POST only", status=405)
        if self.fail_with:
            status, body = self.fail_with
            return Response(body, status=status, content_type="text/plain")
        if form.get("token") != self.token:
            return _error(NO_PERMISSION, 403)
        fmt = form.get("format", "xml")
        if fmt not in ("csv", "json"):
            return _error(f"The format {fmt} is not supported by this test server", 400)
        content = form.get("content")
        if content == "metadata":
            return _data(self.metadata, self.metadata_columns, fmt)
        if content == "event":
            if self.events is None:
                return _error("You cannot export events for classic projects", 400)
            return _data(self.events, list(self.events[0]) if self.events else [], fmt)
        if content == "record":
            return self.export_records(form, fmt)
        return _error(f"The value of the parameter \"content\" ({content}) is not valid", 400)

    def export_records(self, form: dict[str, str], fmt: str) -> Response:
        record_id = self.metadata[0]["field_name"]
        wanted = {v for k, v in form.items() if k.startswith("records[")}
        fields = [v for k, v in sorted(form.items()) if k.startswith("fields[")]
        rows = [r for r in self.records if not wanted or r[record_id] in wanted]
        columns = self.record_columns
        if fields:
            keep = set(fields) | {record_id, "redcap_event_name", "redcap_repeat_instrument",
                                  "redcap_repeat_instance"}
            columns = [c for c in columns if c in keep or c.split("___")[0] in keep]
        return _data(rows, columns, fmt)


def _error(message: str, status: int) -> Response:
    return Response(json.dumps({"error": message}), status=status, content_type="application/json")


def _data(rows: list[dict[str, str]], columns: list[str], fmt: str) -> Response:
    if fmt == "json":
        return Response(json.dumps([{c: r.get(c, "") for c in columns} for r in rows]),
                        content_type="application/json")
    return Response(_csv(rows, columns), content_type="text/csv; charset=utf-8")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:     # keep test output free of access lines
        pass


def serve_app(app) -> tuple[str, callable]:
    """Serve a WSGI app on 127.0.0.1 (a free port) in a thread: (its /api/ URL, stop)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    return f"http://127.0.0.1:{server.server_port}/api/", stop


def serve(records_csv_path: str | Path, dictionary_csv_path: str | Path, token: str) -> tuple[str, callable]:
    """A REDCap API answering from these files for `token`: (its URL, stop)."""
    return serve_app(RedcapApp(records_csv_path, dictionary_csv_path, token))
