"""The Data quality page without a browser: registered after the analysis pages and in the navbar; its
callback's answer is plain JSON that Dash sends without walking it (as tests/test_wire.py checks for the
analysis pages), the same bytes computed and read back from the result cache; the counts table's numbers
are the export's rows counted again here; the CSV's file name says the cut and the filter."""
from __future__ import annotations

import datetime as dt

import dash
import dash_bootstrap_components as dbc
import orjson
import pytest
from plotly.io.json import to_json_plotly

from access_page_checks import Page
from access_support import signed_in
from dashboard import data, exports, wire
from dashboard.callbacks import quality as cb
from dashboard.components import iter_components
from dashboard.filters import Filters

FAST = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def test_the_page_is_registered_after_the_analysis_pages(dash_app):
    from dashboard.app import PAGES, TOOL_PAGES, navbar
    page = next(p for p in dash.page_registry.values() if p["path"] == "/quality")
    assert page["name"] == "Data quality"
    analysis = [p for p in dash.page_registry.values() if p["path"] in dict(PAGES)]
    assert all(page["order"] > p["order"] for p in analysis)
    links = [c.children for c in iter_components(navbar()) if isinstance(c, dbc.NavLink)]
    assert links == [label for _, label in PAGES + TOOL_PAGES] and links[-1] == "Data quality"


@pytest.mark.parametrize("query", ["", "site=S03", "age_min=100&age_max=100"])
def test_the_answer_is_plain_json_and_its_counts_are_the_export_s(synthetic_root, monkeypatch, query):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    state = {"snapshot": "latest", "query": query}
    value = cb.page_content(state)
    converted = wire.plain(value)
    orjson.dumps(converted, option=FAST)                  # raises TypeError if Dash would have to walk it
    assert to_json_plotly(converted) == to_json_plotly(value)
    table, note, columns, rows, _ = value
    snapshot = data.resolve("latest")
    exp = exports.compute_export("data-quality", snapshot, Filters.from_query(query)[0])
    assert rows == exports.records(exp.rows)
    assert [c["field"] for c in columns] == ["site_id", "patient_id", "table", "rule", "detail"]
    if exp.n_patients == 0:
        assert "No patients in the current filter" in str(table)
        return
    cells = {}
    for tr in iter_components(table.component):
        if getattr(tr, "children", None) and type(tr).__name__ == "Tr":
            texts = [td.children for td in tr.children]
            cells[str(texts[0])] = texts[1:]
    counted = exp.rows.groupby("rule").size()
    for rule, n in counted.items():
        row = next(v for k, v in cells.items() if k.startswith(f"['{rule}'") or k.startswith(f'["{rule}"'))
        assert str(row[-1].children) == str(n), rule          # the Total column
    assert f"{len(exp.rows)} in all" in (note if isinstance(note, str) else note[0])


def test_a_cached_answer_sends_the_bytes_of_the_computed_one(synthetic_root, dash_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path / "cache"))
    snapshot = data.resolve("latest")
    with signed_in(monkeypatch, tmp_path) as as_user:
        page = Page(dash_app, "/quality", snapshot.snapshot_id, as_user("committee"))
        for scenario in ({}, {"site": ["S02"]}):
            first = page.update(as_user("committee"), scenario)[1]     # computed and stored
            again = page.update(as_user("committee"), scenario)[1]     # read back
            assert first == again and "quality-grid" in first


def test_the_file_name_says_the_cut_and_the_filter():
    day = dt.date(2026, 1, 2)
    assert cb.file_name("2025-12-31", Filters(), day) == "quality_data-quality_2025-12-31_all-patients_2026-01-02.csv"
    assert cb.file_name("2025-12-31", Filters(site=("S01", "S02"), bclc=("B",)), day) == \
        "quality_data-quality_2025-12-31_site-S01-S02-bclc-B_2026-01-02.csv"
    assert cb.file_name("2025-06-30_reissue", Filters(age_min=50), day) == \
        "quality_data-quality_2025-06-30_reissue_age-min-50_2026-01-02.csv"
