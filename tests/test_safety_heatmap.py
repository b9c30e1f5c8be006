"""The worst-grade heatmap does not hide a rare grade 5 (issue 18 item 4): every cell's colour is worked out
here from the figure's own colour scale (plotly interpolates linearly in RGB between the stops, z mapped from
zmin..zmax to 0..1) and checked with the WCAG 2.1 formulas (relative luminance, contrast ratio), written out
below, not taken from the dashboard: a grade 5 cell of one patient has a contrast of at least 3:1 with white
(WCAG 1.4.11, non-text contrast) and every printed value at least 4.5:1 with its cell (1.4.3, AA).

The registry below (cut-off 2024-12-31): 12 patients at one site; grade 5 hepatic failure in P1-P4 and grade 5
sepsis in P5 only, so the sepsis cell (1 of 12 patients, 8.3%) is the smallest grade 5 value and the overall
row's grade 5 (5 of 12) the largest: the sepsis cell gets the lightest colour of the grade 5 scale.
"""
from __future__ import annotations

import pytest

from dashboard import data, exports
from dashboard.figures import safety as figs
from dashboard.filters import Filters
from fixtures import D, ae, patient, session, write_snapshot


def registry() -> dict[str, list[dict]]:
    ids = [f"P{i}" for i in range(1, 13)]
    deaths = {"P1": "2024-03-01", "P2": "2024-03-02", "P3": "2024-03-03", "P4": "2024-03-04", "P5": "2024-03-05"}
    return {
        "sites": [dict(site_id="S01", site_name="North Hospital", activation_date=D("2024-01-01"),
                       target_enrollment=20)],
        "patients": [patient(p, "S01", "2024-02-01", death=deaths.get(p), last_alive=None if p in deaths
                             else "2024-12-31") for p in ids],
        "treatments": [session(p, 1, "2024-02-01") for p in ids],
        "adverse_events": [ae(p, "A1", "Hepatic failure", 5, "2024-02-20", serious=True) for p in ids[:4]] +
                          [ae("P5", "A1", "Sepsis", 5, "2024-02-20", serious=True)] +
                          [ae(p, "A2", "Fever", 1 + i % 4, "2024-02-03") for i, p in enumerate(ids)],
    }


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    root = tmp_path_factory.mktemp("heatmap")
    write_snapshot(root, "2024-12-31", registry())
    return data.resolve("latest", root)


# --- WCAG 2.1, written out -------------------------------------------------------------------------
def rgb(colour: str) -> tuple[float, float, float]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))


def luminance(c) -> float:
    def channel(v):
        v = v / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def colour_at(trace, z: float):
    """The colour plotly paints a cell of value z: the trace's colour scale at (z - zmin) / (zmax - zmin)."""
    t = min(1.0, max(0.0, (z - trace.zmin) / (trace.zmax - trace.zmin)))
    stops = [(s, rgb(c)) for s, c in trace.colorscale]
    for (s0, c0), (s1, c1) in zip(stops, stops[1:]):
        if s0 <= t <= s1:
            f = 0.0 if s1 == s0 else (t - s0) / (s1 - s0)
            return tuple(a + (b - a) * f for a, b in zip(c0, c1))
    raise AssertionError(f"{t} outside the colour scale")


WHITE = rgb("#ffffff")


def cells(fig):
    """(row label, grade, z, text, trace) of every coloured cell with a value above 0."""
    labels = list(fig.layout.yaxis.ticktext)
    for trace in fig.data:
        if trace.name in ("none", "fewer than 5"):
            continue
        for i, line in enumerate(trace.z):
            for j, v in enumerate(line):
                if v is not None and v > 0:
                    yield labels[i], j + 1, v, trace.text[i][j], trace


def test_a_grade_5_cell_of_one_patient_stands_out(snap):
    fig = figs.grade_heatmap(exports.compute_export("ae-incidence", snap, Filters()).rows)
    grade5 = {label: (v, trace) for label, grade, v, _, trace in cells(fig) if grade == 5}
    assert set(grade5) == {"<b>Any adverse event</b>", "Hepatic failure", "Sepsis"}
    v, trace = grade5["Sepsis"]
    assert v == pytest.approx(100 / 12) and v == min(x for x, _ in grade5.values())      # the palest grade 5 cell
    assert contrast(colour_at(trace, v), WHITE) >= 3.0
    # the colour scale the heatmap had before (one Blues scale for every grade, 0 to the largest %) drew it
    # nearly white: this test tells the two apart
    fever_max = max(v for _, _, v, _, _ in cells(fig))
    before = type("Old", (), {"zmin": 0, "zmax": max(10.0, fever_max), "colorscale": figs.BLUES})
    assert contrast(colour_at(before, 100 / 12), WHITE) < 1.5


def test_every_printed_value_has_a_contrast_of_4_5_with_its_cell(snap):
    fig = figs.grade_heatmap(exports.compute_export("ae-incidence", snap, Filters()).rows)
    checked = 0
    for label, grade, v, text, trace in cells(fig):
        assert text, (label, grade)                                   # the number is kept
        assert contrast(colour_at(trace, v), rgb(trace.textfont.color)) >= 4.5, (label, grade, v)
        checked += 1
    assert checked >= 10
    # and on every colour of every band's ramp, not only the values of this registry
    for trace in fig.data[:3]:
        for k in range(101):
            z = trace.zmin + (trace.zmax - trace.zmin) * k / 100
            assert contrast(colour_at(trace, z), rgb(trace.textfont.color)) >= 4.5, (trace.name, k)


def test_the_synthetic_grade_5_hepatic_failure_is_not_pale(synthetic_root):
    """The issue's case: grade 5 hepatic failure, 7 of 600 patients, was among the palest cells."""
    snapshot = data.resolve("latest", synthetic_root)
    rows = exports.compute_export("ae-incidence", snapshot, Filters()).rows
    fig = figs.grade_heatmap(rows)
    found = [(v, trace) for label, grade, v, _, trace in cells(fig) if label == "Hepatic failure" and grade == 5]
    assert len(found) == 1
    v, trace = found[0]
    n = int(rows.loc[rows.term == "Hepatic failure", "grade_5"].iloc[0])
    assert n == 7 and v == pytest.approx(100 * n / rows["denominator"].iloc[0])
    assert contrast(colour_at(trace, v), WHITE) >= 3.0
    # every other cell of the grades 1-4 is lighter than it (it is no longer among the palest)
    darkest_mild = min(luminance(colour_at(t, x)) for _, g, x, _, t in cells(fig) if g <= 4)
    assert luminance(colour_at(trace, v)) < darkest_mild


def test_the_footnote_states_the_encoding(snap, monkeypatch):
    from pathlib import Path
    from dashboard.callbacks import safety as cb
    monkeypatch.setenv("REGISTRY_DATA", str(Path(snap.path).parent.parent))
    _, _, _, note = cb.grade_heatmap_card({"snapshot": snap.snapshot_id, "query": ""})
    assert figs.GRADE_ENCODING in note[1] and "5 in red" in figs.GRADE_ENCODING
