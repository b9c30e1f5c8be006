"""Callback results as plain JSON values (dashboard/wire.py): the browser receives byte for byte the
JSON plotly's serialiser gives for the original components and figures, and Dash takes its fast path
(orjson on the response as it is, without walking it in Python)."""
import datetime as dt

import numpy as np
import orjson
import pandas as pd
import pytest
from dash import dcc, html
from plotly.io.json import to_json_plotly

import dash._callback as dash_callback
from dashboard import cache, data, wire
from dashboard.app import PAGES
from dashboard.figures.builder import Figure
from dashboard.replay import Session, update_values

FAST = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def same_json(value):
    """plotly's JSON of the value == plotly's JSON of plain(value), and plain(value) needs no walk."""
    converted = wire.plain(value)
    orjson.dumps(converted, option=FAST)          # raises TypeError if Dash would have to walk it
    assert to_json_plotly(converted) == to_json_plotly(value)


def test_components_and_figures_serialise_as_plotly_serialises_them():
    fig = Figure()
    fig.add_scatter(x=np.arange(5)[::2], y=np.array([1.5, np.nan, 3.0]), name="OS",
                    customdata=np.array([["S01-0001", 1], ["S01-0002", None]], dtype=object),
                    text=np.array(["a", "b"]))
    fig.add_scatter(x=np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]"), y=[1, 2])
    fig.update_layout(title_text="Overall survival <b>by BCLC</b>")
    note = ["N = 12 patients ", html.Strong(" unstable "), "see ", html.A("the plan", href="/docs?a=1&b=2")]
    same_json([fig, {"scrollZoom": False}, note])
    same_json(html.Div([html.Table([html.Tr([html.Td(3), html.Td("3 (25.0%)")])]), dcc.Markdown("**x**")],
                       style={"width": "50%"}, id={"type": "card", "figure": "km"}))
    same_json({"cut": pd.Timestamp("2025-09-30"), "missing": pd.NaT, "na": pd.NA, "day": np.datetime64("2025-01-02"),
               "date": dt.date(2025, 1, 2), "counts": pd.Series([1, 2, 3]), "x": np.float32(0.5), "ok": np.bool_(True),
               "rows": (1, "a", None), "empty": [], "nested": [[1, 2], [html.Br()]]})


def test_an_element_serialises_as_its_html_component():
    for element, component in ((wire.Element("Td", "3 (25.0%)", "text-end"), html.Td("3 (25.0%)", className="text-end")),
                               (wire.Element("Tr", [wire.Element("Td", wire.Element("Strong", "PR"))]),
                                html.Tr([html.Td(html.Strong("PR"))])),
                               (wire.Element("Td", None), html.Td()),
                               (wire.Element("Td", "50.0%", "text-end", id="response-orr-all"),
                                html.Td("50.0%", className="text-end", id="response-orr-all")),
                               (wire.Element("Th", "ITT", "text-center", colSpan=2),
                                html.Th("ITT", colSpan=2, className="text-center")),
                               (wire.Element("Span", [wire.Element("Br")], style={"whiteSpace": "nowrap"}),
                                html.Span([html.Br()], style={"whiteSpace": "nowrap"}))):
        assert to_json_plotly(wire.plain(element)) == to_json_plotly(component)


def test_a_component_in_the_middle_of_a_list_of_text_is_found():
    value = ["a", "b", html.Br(), "c"]
    assert wire.plain(value)[2] == html.Br().to_plotly_json() | {"props": {"children": None}}
    assert wire.plain(value)[2]["type"] == "Br"


@pytest.fixture
def capture(monkeypatch):
    """Every value a page callback returned (before plain()) and every response Dash serialised."""
    raw, responses = [], []
    original_plain, original_to_json = wire.plain, dash_callback.to_json

    def capturing_plain(value):
        raw.append(value)
        return original_plain(value)

    def capturing_to_json(response):
        responses.append(response)
        return original_to_json(response)
    monkeypatch.setattr(wire, "plain", capturing_plain)
    monkeypatch.setattr(dash_callback, "to_json", capturing_to_json)
    return raw, responses, original_plain


def test_every_page_answers_plotly_s_json_on_the_fast_path(synthetic_root, monkeypatch, dash_app, capture):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    monkeypatch.setenv("REGISTRY_CACHE", "off")        # every callback computes (and converts) its result
    raw, responses, plain = capture
    session = Session(dash_app)
    snapshot_id = data.resolve("latest").snapshot_id
    for path, label in PAGES:
        callbacks, sync, base = session.plan(path)
        for scenario in ({}, {"bclc": ["C"], "sex": ["F"]}, {"age": [18, 19]}):     # the last: no patient
            sync_values, values = update_values(base, snapshot_id, scenario)
            session.replayer.post(sync, sync_values)
            for dep in callbacks:
                session.replayer.post(dep, values)
    # a Static's tree is converted on its own as well (its to_plotly_json), so raw may outnumber responses
    assert len(raw) > 60 and len(responses) > 60
    for value in raw:
        assert to_json_plotly(plain(value)) == to_json_plotly(value)
    slow = []
    for response in responses:
        try:
            orjson.dumps(response, option=FAST)
        except TypeError as e:
            slow.append((list(response.get("response", {})), str(e)))
    assert not slow, f"responses Dash has to walk in Python: {slow}"


def test_a_page_served_from_the_result_cache_sends_the_bytes_it_sent_when_computed(synthetic_root, monkeypatch,
                                                                                  dash_app, tmp_path):
    """Views are cached as orjson's JSON (wire.encode), not pickled, and read back as JSON values
    (lists where the computed result had numpy arrays): every callback of every page answers the
    same bytes computed (cache off), computed and stored (a miss), and read back (a hit)."""
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    session = Session(dash_app)
    snapshot_id = data.resolve("latest").snapshot_id

    send = session.replayer._send
    sent = []
    monkeypatch.setattr(session.replayer, "_send", lambda body: sent.append(send(body)) or sent[-1])

    def answers():
        start = len(sent)
        for path, label in PAGES:
            callbacks, sync, base = session.plan(path)
            for scenario in ({}, {"bclc": ["C"], "sex": ["F"]}, {"age": [18, 19]}):
                sync_values, values = update_values(base, snapshot_id, scenario)
                session.replayer.post(sync, sync_values)
                for dep in callbacks:
                    session.replayer.post(dep, values)
        return sent[start:]
    monkeypatch.setenv("REGISTRY_CACHE", "off")
    computed = answers()
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path / "cache"))
    stored, read_back = answers(), answers()
    assert len(computed) > 60 and all(status == 200 for status, _ in computed)
    assert stored == computed
    assert read_back == computed
    assert list((tmp_path / "cache").glob(cache.ENTRY_PREFIX + "*"))  # the second pass did read the cache


def test_encode_writes_what_plotly_writes():
    value = wire.plain({"x": np.array([1.5, np.nan, 3.0]), "n": np.array([1, 2], dtype=np.int32), "t": "a</b>\u2028",
                        "when": pd.Timestamp("2025-09-30"), 3: [None, True, np.float32(0.1)]})
    assert to_json_plotly(wire.decode(wire.encode(value))) == to_json_plotly(value)
