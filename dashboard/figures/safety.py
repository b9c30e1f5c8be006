"""Safety figures: CTCAE heatmaps of worst grade per patient (term x grade, term x group).

Pure functions of the `ae-incidence` export rows (dashboard/exports/safety.py): one row per
(soc, term, group) with patient counts and the denominator; the overall row has soc
'Any adverse event' and no term. Rows arrive in display order (SOC, then term, by incidence).
"""
from __future__ import annotations

import pandas as pd

from dashboard.access import SUPPRESSED
from dashboard.analytics.safety import ANY_AE, GRADES, SMALL_GROUP
from dashboard.figures.builder import Figure, Heatmap
from dashboard.figures.common import NO_PATIENTS, base_layout, empty_figure

# ColorBrewer "Blues": one hue from near-white (0%) to dark navy, ordered by lightness, so it reads
# in greyscale, on a washed-out projector and for every kind of colour blindness.
BLUES = [[0.0, "#f7fbff"], [0.125, "#deebf7"], [0.25, "#c6dbef"], [0.375, "#9ecae1"], [0.5, "#6baed6"],
         [0.625, "#4292c6"], [0.75, "#2171b5"], [0.875, "#08519c"], [1.0, "#08306b"]]
# The worst-grade heatmap's colour bands, so that a rare grade 5 is never a pale cell: each band its own hue
# (ColorBrewer Blues, Oranges, Reds), shaded from its lightest colour (just above 0%) to its darkest (the band's
# largest %); 0% is white. Each band's text colour has a contrast of at least 4.5:1 (WCAG AA) on every colour
# of its ramp, and every grade 5 colour has at least 5.7:1 against white: (name, grades, colour scale, text colour).
GRADE_BANDS = [
    ("grades 1-2", (1, 2), [[0.0, "#c6dbef"], [0.5, "#9ecae1"], [1.0, "#6baed6"]], "#212529"),
    ("grades 3-4", (3, 4), [[0.0, "#fdd0a2"], [0.5, "#fdae6b"], [1.0, "#f16913"]], "#212529"),
    ("grade 5", (5,), [[0.0, "#cb181d"], [0.5, "#a50f15"], [1.0, "#67000d"]], "#ffffff"),
]
ZERO_COLOUR = "#ffffff"
GRADE_ENCODING = ("Colour: worst grade 1-2 in blue, 3-4 in orange, 5 in red, each band shaded from light (near 0%) "
                  "to dark (its largest % among the terms; 'Any adverse event' at or beyond it is dark), so compare "
                  "colours within a band and read the printed %; 0% is white, and a grade 5 cell is dark red with "
                  "white text from one patient on.")
ROW_PX = 26
SUPPRESSED_COLOUR = "#dee2e6"      # cells of 1-4 patients for a suppressing role: grey, no % (not on the scale)


def _suppressed(n) -> bool:
    """A count the export does not show: "<5" (1-4 patients) or None (withheld so that a "<5" beside it
    cannot be worked out by subtraction: dashboard/exports/complement.py)."""
    return n is None or isinstance(n, str)


def _shown(n) -> str:
    return "–" if n is None else str(n)


def _pct(n, d) -> float | None:
    """100 n / d; None when either count was withheld or there is no patient."""
    if _suppressed(n) or _suppressed(d) or not d:
        return None
    return 100.0 * n / d


def _n_pct(n, d) -> str:
    """'3 of 40 patients (7.5%)'; '<5 of 40 patients' for a withheld count (no %)."""
    p = _pct(n, d)
    return f"{_shown(n)} of {d} patients" + ("" if p is None else f" ({p:.1f}%)")


def _any(values) -> bool:
    """Some patient among these counts ("<5" is at least one)."""
    return any(_suppressed(v) or v > 0 for v in values)


def _layout_rows(items: pd.DataFrame) -> list[dict]:
    """Display rows: the overall row, then per SOC a header row (no cells) followed by its terms.
    items: unique (soc, term) in display order. Term-level rows have a term; SOC-level rows do not."""
    out, last_soc = [], None
    for soc, term in items.itertuples(index=False):
        if soc == ANY_AE:
            out.append(dict(kind="overall", soc=soc, term=term, label=f"<b>{ANY_AE}</b>"))
            continue
        if term is None or term != term:                          # SOC-level rows: one line per SOC
            out.append(dict(kind="item", soc=soc, term=None, label=soc))
            continue
        if soc != last_soc:
            out.append(dict(kind="header", soc=soc, term=None, label=soc))
            last_soc = soc
        out.append(dict(kind="item", soc=soc, term=term, label=term))
    return out


def _label_px(labels: list[str], size: int = 13) -> int:
    """A generous estimate of the pixel width of the widest tick label (system sans-serif)."""
    return int(max((len(t.replace("<b>", "").replace("</b>", "")) for t in labels), default=10) * 0.58 * size) + 12


def _heatmap(rows: list[dict], column_labels: list[str], z, text, hover, x_title: str | None = None,
             top_px: int = 45, withheld=None, bands=None):
    """The shared heatmap: one line per display row. A SOC header row has no cells; its name is written
    from the figure's left edge across the row, like a section header of a table, so the label margin
    only needs the width of the terms. The colour bar lies flat under the cells.

    withheld: per cell, (text, hover) of a count the export does not show ("<5" or withheld: "–"), else
    None. Those cells are gaps of the coloured trace (z None) and cells of a grey trace of their own, so
    no value sent to the browser carries their count.

    bands: None (one colour scale for every cell), or GRADE_BANDS with the column index of each grade: the
    cells drawn by `_banded`."""
    n = len(rows)
    labels = ["" if r["kind"] == "header" else r["label"] for r in rows]
    left = _label_px(labels)
    columns, lines = list(range(len(column_labels))), list(range(n))
    if bands is None:
        fig = Figure(Heatmap(
            z=z, x=columns, y=lines, text=text, texttemplate="%{text}",
            textfont=dict(size=13), customdata=hover, hovertemplate="%{customdata}<extra></extra>",
            hoverongaps=False, colorscale=BLUES, zmin=0, zmax=max(10.0, _max(z)), xgap=2, ygap=2,
            colorbar=dict(orientation="h", x=0, xanchor="left", y=-8 / (ROW_PX * n), yanchor="top", lenmode="pixels",
                          len=260, thickness=10, ticksuffix="%", outlinewidth=0,
                          title=dict(text="% of patients", side="right", font=dict(size=13))),
        ))
    else:
        fig = _banded(z, text, hover, columns, lines, bands, n, {i for i, r in enumerate(rows) if r["kind"] == "overall"})
    if withheld is not None and any(h is not None for line in withheld for h in line):
        fig.add_trace(Heatmap(
            z=[[None if h is None else 0 for h in line] for line in withheld], x=columns, y=lines,
            text=[["" if h is None else h[0] for h in line] for line in withheld], texttemplate="%{text}",
            textfont=dict(size=13, color="#495057"), customdata=[["" if h is None else h[1] for h in line]
                                                                 for line in withheld],
            hovertemplate="%{customdata}<extra></extra>", hoverongaps=False, showscale=False, zmin=0, zmax=1,
            colorscale=[[0.0, SUPPRESSED_COLOUR], [1.0, SUPPRESSED_COLOUR]], xgap=2, ygap=2, name="fewer than 5"))
    for i, r in enumerate(rows):
        if r["kind"] == "header":
            fig.add_annotation(x=0, xref="paper", y=i, yref="y", xanchor="left", xshift=-(left - 4),
                               text=f"<b>{r['soc']}</b>", showarrow=False, font=dict(size=13, color="#343a40"))
    fig.update_yaxes(tickvals=list(range(n)), ticktext=labels, autorange="reversed", showgrid=False,
                     zeroline=False, ticks="", automargin=True, tickfont=dict(size=13), fixedrange=True)
    fig.update_xaxes(tickvals=list(range(len(column_labels))), ticktext=column_labels, side="top", showgrid=False,
                     zeroline=False, ticks="", fixedrange=True, tickangle=0,
                     title=dict(text=x_title, standoff=4, font=dict(size=13)) if x_title else None)
    fig = base_layout(fig, height=80 + top_px + ROW_PX * n + (16 if bands else 0))
    fig.update_layout(margin=dict(l=left, r=10, t=top_px, b=86 if bands else 70), plot_bgcolor="#fff")
    return fig


def _banded(z, text, hover, columns, lines, bands, n, overall=frozenset()) -> Figure:
    """The cells as one heatmap trace per colour band (GRADE_BANDS: its columns, its own colour scale from
    0 to the band's largest % among the terms, its text colour), then a white trace of the 0% cells (their
    hover only). The `overall` lines ('Any adverse event', always the largest) do not set the scale: a value
    beyond it is drawn in the darkest colour. Every trace has the full grid, with gaps (None) where another
    trace draws the cell."""
    def only(keep):
        """(z, text, hover) of the cells kept; the others are gaps."""
        kept = [[keep(j, v) for j, v in enumerate(line)] for line in z]
        return ([[v if k else None for v, k in zip(line, keeps)] for line, keeps in zip(z, kept)],
                [[s if k else "" for s, k in zip(line, keeps)] for line, keeps in zip(text, kept)],
                [[s if k else "" for s, k in zip(line, keeps)] for line, keeps in zip(hover, kept)])
    fig = Figure()
    for k, (name, grade_columns, scale, font) in enumerate(bands):
        band_z, band_text, band_hover = only(lambda j, v: j in grade_columns and v is not None and v > 0)
        fig.add_trace(Heatmap(
            z=band_z, x=columns, y=lines, text=band_text, texttemplate="%{text}",
            textfont=dict(size=13, color=font), customdata=band_hover, hovertemplate="%{customdata}<extra></extra>",
            hoverongaps=False, colorscale=scale, zmin=0, xgap=2, ygap=2, name=name,
            zmax=max(_max([line for i, line in enumerate(band_z) if i not in overall]) or _max(band_z), 1e-9),
            colorbar=dict(orientation="h", x=k / len(bands), xanchor="left", y=-8 / (ROW_PX * n), yanchor="top",
                          lenmode="fraction", len=0.9 / len(bands), thickness=10, ticksuffix="%", outlinewidth=0,
                          nticks=4, title=dict(text=f"{name}, % of patients", side="bottom", font=dict(size=12)))))
    zero_z, _, zero_hover = only(lambda j, v: v is not None and v == 0)
    fig.add_trace(Heatmap(z=zero_z, x=columns, y=lines, customdata=zero_hover, hovertemplate="%{customdata}<extra></extra>",
                          hoverongaps=False, showscale=False, zmin=0, zmax=1, xgap=2, ygap=2, name="none",
                          colorscale=[[0.0, ZERO_COLOUR], [1.0, ZERO_COLOUR]]))
    return fig


def heatmap_cells(fig) -> tuple[list, list]:
    """(z, text) of a heatmap figure's coloured cells, one grid: each cell from the trace that draws it
    (the grey trace of counts not shown left out); z None where no trace has a value."""
    traces = [t for t in fig.data if t.name != "fewer than 5"]
    z = [[None] * len(line) for line in traces[0].z]
    text = [[""] * len(line) for line in traces[0].z]
    for trace in traces:
        for i, line in enumerate(trace.z):
            for j, v in enumerate(line):
                if v is not None:
                    z[i][j] = v
                    if trace.text is not None:
                        text[i][j] = trace.text[i][j]
    return z, text


def _max(z) -> float:
    values = [v for row in z for v in row if v is not None and v == v]
    return max(values) if values else 0.0


def _pct_text(p: float, decimals: int) -> str:
    """The % printed in a cell: blank for none, '<1' (or '<0.1') where rounding would print a 0."""
    if p is None or p != p or p == 0:
        return ""
    text = f"{p:.{decimals}f}"
    return text if float(text) > 0 else "<" + f"{10 ** -decimals:.{decimals}f}"


WITHHELD = "fewer than 5 patients: number and % not shown for your role"
COMPLEMENT = "not shown for your role, so that a number under 5 in this row cannot be worked out"


def _withheld_cell(n, hover: str):
    """(text, hover) of the grey cell of a count not shown."""
    return (SUPPRESSED, f"{hover}<br>{WITHHELD}") if isinstance(n, str) else ("–", f"{hover}<br>{COMPLEMENT}")


def grade_heatmap(rows: pd.DataFrame) -> Figure:
    """Term (grouped by SOC) x worst grade 1-5: the % of patients whose worst grade for the term is
    that grade; hover gives n, % and the denominator. Input: ae-incidence rows with --by none; a
    count withheld as "<5" is a grey cell reading "<5", without a %."""
    denominator = rows["denominator"].iloc[0] if len(rows) else 0
    if rows.empty or denominator == 0:
        return empty_figure(NO_PATIENTS)
    if not _any(rows.loc[rows.soc == ANY_AE, "n_patients_any"]):
        return empty_figure(f"No adverse event counted among the {denominator} patients "
                            "in the current filter and switches.")
    display = _layout_rows(rows[["soc", "term"]].drop_duplicates())
    by_item = {(r.soc, r.term if isinstance(r.term, str) else None): r for r in rows.itertuples()}
    z, text, hover, withheld = [], [], [], []
    for d in display:
        if d["kind"] == "header":
            z.append([None] * 5), text.append([""] * 5), hover.append([""] * 5), withheld.append([None] * 5)
            continue
        r = by_item[(d["soc"], d["term"])]
        name = f"<b>{d['term'] or d['soc']}</b>" + (f"<br>{d['soc']}" if d["term"] else "")
        counts = [getattr(r, f"grade_{g}") for g in GRADES]
        pcts = [_pct(n, r.denominator) for n in counts]
        any_p = _pct(r.n_patients_any, r.denominator)
        any_grade = f"<br>any grade: {_shown(r.n_patients_any)}" + ("" if any_p is None else f" ({any_p:.1f}%)")
        cells = [f"{name}<br>worst grade {g}: {_n_pct(n, r.denominator)}{any_grade}" for g, n in zip(GRADES, counts)]
        z.append([None if _suppressed(n) else (p or 0.0) for n, p in zip(counts, pcts)])
        text.append(["" if _suppressed(n) else _pct_text(p, 1) for n, p in zip(counts, pcts)])
        hover.append(["" if _suppressed(n) else h for n, h in zip(counts, cells)])
        withheld.append([_withheld_cell(n, h) if _suppressed(n) else None for n, h in zip(counts, cells)])
    bands = [(name, tuple(GRADES.index(g) for g in grades), scale, font) for name, grades, scale, font in GRADE_BANDS]
    return _heatmap(display, [str(g) for g in GRADES], z, text, hover, x_title="Worst CTCAE grade", top_px=52,
                    withheld=withheld, bands=bands)


MEASURES = {"any": "any grade", "grade3": "grade ≥ 3"}


def _small_group(d) -> bool:
    return _suppressed(d) or d < SMALL_GROUP


def group_heatmap(rows: pd.DataFrame, measure: str = "any", group_label: str = "Site") -> Figure:
    """Term (grouped by SOC) x group (site, BCLC stage, Child-Pugh class): the % of the group's
    patients with the term at any grade, or at grade 3 or more. Columns with fewer than 5 patients
    are marked with a dagger. Input: ae-incidence rows with --by a grouping; a count withheld as
    "<5" is a grey cell reading "<5", without a %."""
    if rows.empty or not _any(rows["denominator"]):
        return empty_figure(NO_PATIENTS)
    rows = rows.assign(n_measure=rows.n_patients_any if measure == "any" else rows.n_grade_3_plus)
    if not _any(rows.loc[rows.soc == ANY_AE, "n_measure"]):
        return empty_figure(f"No patient with an adverse event at {MEASURES.get(measure, measure)} "
                            "in the current filter and switches.")
    groups = list(dict.fromkeys(rows["group"]))
    denominators = rows.drop_duplicates("group").set_index("group")["denominator"]
    with_patient = {item for item, n in zip(zip(rows.soc, rows.term.where(rows.term.notna(), None)), rows.n_measure)
                    if _suppressed(n) or n > 0}
    shown = [(s, t) in with_patient or s == ANY_AE for s, t in zip(rows.soc, rows.term.where(rows.term.notna(), None))]
    items = rows.loc[shown, ["soc", "term"]].drop_duplicates()
    display = _layout_rows(items)
    cells = {(r.soc, r.term if isinstance(r.term, str) else None, r.group): r for r in rows.itertuples()}
    z, text, hover, withheld = [], [], [], []
    for d in display:
        if d["kind"] == "header":
            blank = [None] * len(groups)
            z.append(blank), text.append([""] * len(groups)), hover.append([""] * len(groups)), withheld.append(blank)
            continue
        zr, tr, hr, wr = [], [], [], []
        for g in groups:
            r = cells[(d["soc"], d["term"], g)]
            p = _pct(r.n_measure, r.denominator)
            h = (f"<b>{d['term'] or d['soc']}</b><br>{group_label} {g}: {_n_pct(r.n_measure, r.denominator)} "
                 f"at {MEASURES.get(measure, measure)}" +
                 ("<br>fewer than 5 patients: unstable" if _small_group(r.denominator) else ""))
            hidden = _suppressed(r.n_measure)
            zr.append(None if hidden else p)
            tr.append("" if hidden else _pct_text(p, 0))
            hr.append("" if hidden else h)
            wr.append(_withheld_cell(r.n_measure, h) if hidden else None)
        z.append(zr), text.append(tr), hover.append(hr), withheld.append(wr)
    labels = [f"{g}{'†' if _small_group(denominators[g]) else ''}<br><span style='font-size:11px'>"
              f"n={denominators[g]}</span>" for g in groups]
    return _heatmap(display, labels, z, text, hover, top_px=55, withheld=withheld)
