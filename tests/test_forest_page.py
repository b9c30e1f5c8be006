"""The Survival page's "Subgroup forest plot" card: its callback called as a function and replayed as the
browser posts it (/_dash-update-component, signed in as each role), its CSV download and its options.

Expected values: the `forest` export run with the same options (itself checked against R in
tests/test_forest.py), and for the sponsor the export's small-cell rules (tests/test_access_forest.py).
Registry: generate_registry(n_patients=240, n_sites=6, seed=3), which has arms of 1-4 patients.
"""
from __future__ import annotations

import json
import re

import pytest

from access_support import signed_in
from dashboard import app as app_module
from dashboard import data, exports, ids
from dashboard.callbacks import forest as cb
from dashboard.filters import NON_FILTER_PARAMS
from dashboard.generate import generate_registry
from dashboard.replay import callback_body, layout_props, page_plan, update_values

CUT = "2025-12-31"
SMALL = {"1", "2", "3", "4"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("forest-page")
    generate_registry(root, n_patients=240, n_sites=6, seed=3, last_cut_only=True, progress=False)
    return root


@pytest.fixture
def state(registry, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(registry))
    return {"snapshot": CUT, "query": ""}


def plain(fig) -> dict:
    """A figure as the JSON the browser gets (the callback's Figure, or a replayed response's dict)."""
    return fig if isinstance(fig, dict) else json.loads(json.dumps(fig.to_dict(), default=list))


def texts(fig) -> list[str]:
    return [a["text"] for a in plain(fig)["layout"]["annotations"]]


def test_card_draws_the_forest_export(state, registry):
    """Every row of the export is on the card: its level, events/n per arm and HR (CI) as text, its marker
    at the HR with the CI as error bars (the export, default options: OS, BCLC C vs B)."""
    fig, config, spec, note = cb.forest_view(state)
    fig = plain(fig)
    exp = exports.run_export("forest", data.resolve(CUT, registry), **spec["options"])
    assert spec["export"] == "forest" and spec["options"] == {"endpoint": "os", "by": "bclc_stage", "ref": "B",
                                                              "compare": "C", "form": "hr"}
    shown = texts(fig)
    xs = [x for t in fig["data"] for x in t["x"]]
    for r in exp.rows.to_dict("records"):
        assert f"{r['events']}/{r['n']}" in shown and f"{r['ref_events']}/{r['ref_n']}" in shown
        if r["hazard_ratio"] == r["hazard_ratio"]:
            assert f"{r['hazard_ratio']:.2f} ({r['ci_lower']:.2f}–{r['ci_upper']:.2f})" in shown
            assert any(abs(x - r["hazard_ratio"]) < 1e-12 for x in xs)
    fields = exp.rows["subgroup_field"].unique()
    assert len(xs) == exp.rows["hazard_ratio"].notna().sum()
    assert "<b>Child-Pugh class</b>" in shown and "<b>Up-to-seven</b>" in shown
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert any(s["x0"] == 1 and s["x1"] == 1 for s in fig["layout"]["shapes"])        # the line at HR 1
    p = exp.rows.groupby("subgroup_field")["p_interaction"].first()
    for field in fields:
        if p[field] == p[field]:
            assert cb.figs.fmt_p(p[field]) in shown
    assert "likelihood-ratio test" in note[0] and "p-interaction" in note[0]


def test_small_arms_are_open_markers_and_flagged(state):
    fig, _, _, note = cb.forest_view(state)
    fig = plain(fig)
    hollow = [t for t in fig["data"] if t["marker"]["symbol"] == "square-open"]
    assert hollow and any(t.endswith(cb.figs.DAGGER) for t in texts(fig))
    assert "fewer than 10" in note[1]


def test_single_arm_form(state, registry):
    fig, _, spec, note = cb.forest_view(state, "os", "bclc_stage", "B", "C", "single-arm")
    fig = plain(fig)
    exp = exports.run_export("forest", data.resolve(CUT, registry), **spec["options"])
    shown = texts(fig)
    for r in exp.rows.to_dict("records"):
        if r["surv_365"] == r["surv_365"] and r["surv_365_ci_lower"] == r["surv_365_ci_lower"]:
            assert (f"{100 * r['surv_365']:.1f}% ({100 * r['surv_365_ci_lower']:.1f}–"
                    f"{100 * r['surv_365_ci_upper']:.1f})") in shown
    assert "<b>BCLC stage</b>" in shown and "S at 365 days" in note[0]
    assert fig["layout"]["xaxis"]["range"] == [0, 102]


def test_other_comparison_and_a_level_not_in_the_filter(state):
    _, _, spec, _ = cb.forest_view(state, "pfs", "sex", "M", "F", "hr")
    assert spec["options"] == {"endpoint": "pfs", "by": "sex", "ref": "M", "compare": "F", "form": "hr"}
    # mismatched levels fall back to the grouping's default comparison
    assert cb.options("os", "sex", "B", "C", "hr")["ref"] == "M"
    fig, _, _, note = cb.forest_view({"snapshot": CUT, "query": "bclc=C"})
    assert "reference group 'B' (--ref) is not a level" in plain(fig)["layout"]["annotations"][0]["text"]
    assert note is None
    fig, _, _, _ = cb.forest_view({"snapshot": CUT, "query": "sex=F&bclc=C"})
    assert "single level" not in str(plain(fig)) and "is not a level" in plain(fig)["layout"]["annotations"][0]["text"]
    from dashboard.callbacks.downloads import csv_download
    sent = csv_download("forest", "", {"snapshot": CUT, "query": "bclc=C"})
    assert sent["content"].splitlines() == [",".join(cb.fx.HR_COLUMNS)]
    fig, _, _, _ = cb.forest_view({"snapshot": CUT, "query": "bclc=B,C&enrolled_to=2000-01-01"})
    assert "No patients" in plain(fig)["layout"]["annotations"][0]["text"]


def test_csv_download_is_the_export(state, registry):
    from dashboard.callbacks.downloads import csv_download
    sent = csv_download("forest", "?forest_by=sex&forest_ref=M&forest_compare=F&endpoint=pfs", state)
    want = exports.to_csv(exports.run_export("forest", data.resolve(CUT, registry), endpoint="pfs", by="sex",
                                             ref="M", compare="F", form="hr"))
    assert sent["content"] == want


def test_page_options_are_registered_and_read_from_the_url():
    import dash
    from dashboard.app import create_app
    from test_safety_page import find
    assert {"forest_by", "forest_ref", "forest_compare", "forest_form"} <= NON_FILTER_PARAMS
    if not any(p["path"] == "/survival" for p in dash.page_registry.values()):
        create_app()
    layout = next(p["layout"] for p in dash.page_registry.values() if p["path"] == "/survival")
    page = layout(forest_by="sex", forest_ref="F", forest_compare="M", forest_form="single-arm")
    got = {k: find(page, ids.page_option(k)).value for k in ("forest_by", "forest_ref", "forest_compare",
                                                              "forest_form")}
    assert got == {"forest_by": "sex", "forest_ref": "F", "forest_compare": "M", "forest_form": "single-arm"}
    bad = layout(forest_by="drug", forest_ref="Q", forest_compare="B", forest_form="x")
    got = {k: find(bad, ids.page_option(k)).value for k in ("forest_by", "forest_ref", "forest_compare",
                                                            "forest_form")}
    assert got == {"forest_by": "bclc_stage", "forest_ref": "B", "forest_compare": "C", "forest_form": "hr"}


# --- the callback as the browser posts it, per role ------------------------------------------------
@pytest.fixture
def web(registry, dash_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_DATA", str(registry))
    with signed_in(monkeypatch, tmp_path) as as_user:
        client = dash_app.server.test_client()
        deps = client.get("/_dash-dependencies", headers=as_user("committee")).get_json()
        callbacks, _, base = page_plan(deps, "/survival", set(layout_props(app_module.layout())))
        (dep,) = [d for d in callbacks if '{"figure":"forest","type":"figure"}.figure' in d["output"]]

        def post(role, opts):
            _, values = update_values(base, CUT, {})
            for key, value in opts.items():
                values[f'{{"key":"{key}","type":"page-option"}}.value'] = value
            r = client.post("/_dash-update-component", json=callback_body(dep, values), headers=as_user(role))
            assert r.status_code == 200, r.data[:300]
            out = r.get_json()["response"]
            return out[json.dumps({"figure": "forest", "type": "figure"}, separators=(",", ":"))]["figure"]
        yield post


def test_replayed_callback_per_role(web):
    """Committee: counts of 1-4 appear (the registry has them); sponsor and investigator (every site): no
    events/n cell with a count of 1-4, and no HR text for a row flagged small."""
    committee = texts(web("committee", {"forest_by": "bclc_stage", "forest_ref": "B", "forest_compare": "C"}))
    cells = [c for t in committee for c in re.findall(r"^(\S+)/(\S+)$", t)]
    assert any(a in SMALL or b in SMALL for a, b in cells)
    for role in ("sponsor", "investigator"):
        shown = texts(web(role, {"forest_by": "bclc_stage", "forest_ref": "B", "forest_compare": "C"}))
        cells = [c for t in shown for c in re.findall(r"^(\S+)/(\S+)$", t)]
        assert cells and not any(a in SMALL or b in SMALL for a, b in cells), role
        assert any("<5" in a or "<5" in b for a, b in cells)
    single = texts(web("sponsor", {"forest_form": "single-arm"}))
    assert not any(t in SMALL for t in single)
