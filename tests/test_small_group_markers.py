"""Groups of fewer than 5 patients are drawn as the page's legend and notes say: dashed with open
circles on the Kaplan-Meier curves, open markers on the downstaging rates (the diamond of all
patients too).

Source of the expectations: the analysis plan ("groups of fewer than 5 patients are drawn but
flagged") and the notes' own words; the group sizes are counted by hand from the data written here.
"""
from __future__ import annotations

import pandas as pd
import pytest

from dashboard.figures import downstaging as dfigs
from fixtures import write_snapshot
from test_survival_page import registry_from, text_of


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """BCLC A: 4 patients (small), B: 6 patients (not small); by hand."""
    root = tmp_path_factory.mktemp("small")
    times = [100, 200, 300, 400] + [50, 150, 250, 350, 450, 550]
    status = [1, 0, 1, 1] + [1, 1, 0, 1, 0, 1]
    write_snapshot(root, "2022-12-31", registry_from(times, status, bclc=["A"] * 4 + ["B"] * 6))
    return root


def test_km_curve_of_a_small_group_is_dashed_with_open_circles(small_root, monkeypatch):
    from dashboard.callbacks.survival import survival_view
    monkeypatch.setenv("REGISTRY_DATA", str(small_root))
    out = survival_view({"snapshot": "2022-12-31", "query": ""}, "os", "bclc_stage", "log-log", [])
    curves = {t.name: t for t in out[0].data if t.meta == "km"}
    assert list(curves) == ["A (n = 4) †", "B (n = 6)"]
    small, large = curves["A (n = 4) †"], curves["B (n = 6)"]
    assert small.line.dash == "dash" and small.mode == "lines+markers" and small.marker.symbol == "circle-open"
    assert large.line.dash is None and large.mode == "lines"
    note = text_of(out[3])
    assert "Fewer than 5 patients (A): drawn dashed with open circles" in note


def test_km_curves_of_a_suppressing_role_draw_no_small_group():
    """A role with suppression never draws a group under 10 (its n arrives as "<5"): nothing is
    marked small, and km_figure is given no such group (few() is False for "<5")."""
    from dashboard.callbacks.survival import few
    assert not few("<5") and few(4) and not few(5)


def test_rates_figure_all_patients_under_five_is_an_open_diamond():
    """Two eligible patients in all (by hand): the diamond of all patients is open, as the note's
    "Open markers" says."""
    rows = pd.DataFrame({"group": ["all", "all"], "measure": ["downstaged_to_milan", "converted_to_resectable"],
                         "eligible": [2, 2], "achieved": [1, 0], "rate": [0.5, 0.0],
                         "ci_lower": [0.0126, 0.0], "ci_upper": [0.9874, 0.8419]})
    fig = dfigs.rates_figure(rows, "none")
    assert [list(t.marker.symbol) for t in fig.data] == [["diamond-open"], ["diamond-open"]]
