"""A page's callbacks and CSV downloads replayed as a signed-in role, and what the raw JSON answers
carry: the bodies are the browser's (dashboard/replay.py builds them from /_dash-dependencies and
the page's layout), the user signs in through the header sign-in (tests/access_support.py).

    page = Page(dash_app, "/safety", snapshot_id, headers)
    answers = page.update(headers, {"site": ["S02"]}, {"by": "bclc_stage"})   # output key -> props
    csv = page.download(headers, "ae-incidence-table", state, "?level=soc")
"""
from __future__ import annotations

import io
import json
import re

import pandas as pd

from test_downloads import download_body
from dashboard.filters import Filters
from dashboard.replay import callback_body, page_plan, update_values

PATIENT_ID = re.compile(r"S\d{2}-\d{4}")             # the synthetic registry's patient ids
ISO_DATE = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")


def option_key(key: str) -> str:
    return json.dumps({"key": key, "type": "page-option"}, separators=(",", ":")) + ".value"


class Page:
    """One page's callbacks (those reading the filter state) and its downloads, for any user."""

    def __init__(self, app, path: str, snapshot_id: str, headers: dict):
        from dashboard import app as app_module
        from dashboard.replay import layout_props
        self.client = app.server.test_client()
        self.snapshot_id = snapshot_id
        self.deps = self.client.get("/_dash-dependencies", headers=headers).get_json()
        shell_ids = set(layout_props(app_module.layout()))
        self.callbacks, _, self.base = page_plan(self.deps, path, shell_ids)

    def state(self, scenario: dict) -> dict:
        """The filter state the shell derives from a filter scenario ({"site": ["S02"], ...})."""
        return update_values(self.base, self.snapshot_id, scenario)[1]["filter-state.data"]

    def update(self, headers: dict, scenario: dict, options: dict | None = None, state: dict | None = None):
        """Every callback of the page for one filter change: (output key -> props, raw bodies).
        `state` replaces the filter state the scenario gives (a forged one)."""
        values = update_values(self.base, self.snapshot_id, scenario)[1]
        for key, value in (options or {}).items():
            values[option_key(key)] = value
        if state is not None:
            values["filter-state.data"] = state
        answers, raw = {}, []
        for dep in self.callbacks:
            r = self.client.post("/_dash-update-component", json=callback_body(dep, values, "filter-state.data"),
                                 headers=headers)
            assert r.status_code == 200, (dep["output"][:80], r.status_code, r.data[:300])
            raw.append(r.data.decode())
            for key, props in r.get_json()["response"].items():
                answers[key] = props
        return answers, "\n".join(raw)

    def download(self, headers: dict, figure: str, state: dict, search: str = "", store=None):
        """(status, raw body, CSV text or None) of a click on the figure's "Download data (CSV)"."""
        body = download_body(self, figure, search, state, store)
        r = self.client.post("/_dash-update-component", json=body, headers=headers)
        csv = None
        if r.status_code == 200:
            key = json.dumps({"figure": figure, "type": "download"}, separators=(",", ":"))
            sent = r.get_json()["response"].get(key, {}).get("data")
            csv = sent["content"] if isinstance(sent, dict) else None
        return r.status_code, r.data.decode(), csv


def figure_of(answers: dict, figure: str) -> dict:
    return answers[json.dumps({"figure": figure, "type": "figure"}, separators=(",", ":"))]["figure"]


def footnote_of(answers: dict, figure: str) -> str:
    return json.dumps(answers[json.dumps({"figure": figure, "type": "footnote"}, separators=(",", ":"))]["children"],
                      ensure_ascii=False)


def csv_frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def small(value) -> bool:
    """A count from 1 to 4 (as a number or its text)."""
    try:
        return 0 < float(value) < 5 and float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


def dates_in(raw: str, allowed) -> set[str]:
    """ISO dates in a raw answer other than the allowed ones (the cut-off, today's file names)."""
    return set(ISO_DATE.findall(raw)) - set(allowed)


def filters_of(scenario: dict) -> Filters:
    return Filters(**{k: tuple(v) for k, v in scenario.items()})
