"""Safety figures: CTCAE heatmaps of worst grade per patient (term x grade, term x group).

Pure functions of the `ae-incidence` export rows (dashboard/exports/safety.py): one row per
(soc, term, group) with patient counts and the denominator; the overall row has soc
'Any adverse event' and no term. Rows arrive in display order (SOC, then term, by incidence).
"""
from __future__ import annotations

import pandas as pd

from dashboard.analytics.safety import ANY_AE, GRADES, SMALL_GROUP
from dashboard.figures.builder import Figure, Heatmap
from dashboard.figures.common import NO_PATIENTS, base_layout, empty_figure

# ColorBrewer "Blues": one hue from near-white (0%) to dark navy, ordered by lightness, so it reads
# in greyscale, on a washed-out projector and for every kind of colour blindness.
BLUES = [[0.0, "#f7fbff"], [0.125, "#deebf7"], [0.25, "#c6dbef"], [0.375, "#9ecae1"], [0.5, "#6baed6"],
         [0.625, "#4292c6"], [0.75, "#2171b5"], [0.875, "#08519c"], [1.0, "#08306b"]]
ROW_PX = 26


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
             top_px: int = 45):
    """The shared heatmap: one line per display row. A SOC header row has no cells; its name is written
    from the figure's left edge across the row, like a section header of a table, so the label margin
    only needs the width of the terms. The colour bar lies flat under the cells."""
    n = len(rows)
    labels = ["" if r["kind"] == "header" else r["label"] for r in rows]
    left = _label_px(labels)
    fig = Figure(Heatmap(
        z=z, x=list(range(len(column_labels))), y=list(range(n)), text=text, texttemplate="%{text}",
        textfont=dict(size=13), customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        hoverongaps=False, colorscale=BLUES, zmin=0, zmax=max(10.0, _max(z)), xgap=2, ygap=2,
        colorbar=dict(orientation="h", x=0, xanchor="left", y=-8 / (ROW_PX * n), yanchor="top", lenmode="pixels",
                      len=260, thickness=10, ticksuffix="%", outlinewidth=0,
                      title=dict(text="% of patients", side="right", font=dict(size=13))),
    ))
    for i, r in enumerate(rows):
        if r["kind"] == "header":
            fig.add_annotation(x=0, xref="paper", y=i, yref="y", xanchor="left", xshift=-(left - 4),
                               text=f"<b>{r['soc']}</b>", showarrow=False, font=dict(size=13, color="#343a40"))
    fig.update_yaxes(tickvals=list(range(n)), ticktext=labels, autorange="reversed", showgrid=False,
                     zeroline=False, ticks="", automargin=True, tickfont=dict(size=13), fixedrange=True)
    fig.update_xaxes(tickvals=list(range(len(column_labels))), ticktext=column_labels, side="top", showgrid=False,
                     zeroline=False, ticks="", fixedrange=True, tickangle=0,
                     title=dict(text=x_title, standoff=4, font=dict(size=13)) if x_title else None)
    fig = base_layout(fig, height=80 + top_px + ROW_PX * n)
    fig.update_layout(margin=dict(l=left, r=10, t=top_px, b=70), plot_bgcolor="#fff")
    return fig


def _max(z) -> float:
    values = [v for row in z for v in row if v is not None and v == v]
    return max(values) if values else 0.0


def _pct_text(p: float, decimals: int) -> str:
    """The % printed in a cell: blank for none, '<1' (or '<0.1') where rounding would print a 0."""
    if p is None or p != p or p == 0:
        return ""
    text = f"{p:.{decimals}f}"
    return text if float(text) > 0 else "<" + f"{10 ** -decimals:.{decimals}f}"


def grade_heatmap(rows: pd.DataFrame) -> Figure:
    """Term (grouped by SOC) x worst grade 1-5: the % of patients whose worst grade for the term is
    that grade; hover gives n, % and the denominator. Input: ae-incidence rows with --by none."""
    if rows.empty or rows["denominator"].max() == 0:
        return empty_figure(NO_PATIENTS)
    if rows.loc[rows.soc == ANY_AE, "n_patients_any"].sum() == 0:
        return empty_figure(f"No adverse event counted among the {int(rows.denominator.max())} patients "
                            "in the current filter and switches.")
    display = _layout_rows(rows[["soc", "term"]].drop_duplicates())
    by_item = {(r.soc, r.term if isinstance(r.term, str) else None): r for r in rows.itertuples()}
    z, text, hover = [], [], []
    for d in display:
        if d["kind"] == "header":
            z.append([None] * 5), text.append([""] * 5), hover.append([""] * 5)
            continue
        r = by_item[(d["soc"], d["term"])]
        name = d["term"] or d["soc"]
        pcts = [100.0 * getattr(r, f"grade_{g}") / r.denominator for g in GRADES]
        z.append(pcts)
        text.append([_pct_text(p, 1) for p in pcts])
        hover.append([f"<b>{name}</b>" + (f"<br>{d['soc']}" if d["term"] else "") +
                      f"<br>worst grade {g}: {getattr(r, f'grade_{g}')} of {r.denominator} patients ({p:.1f}%)"
                      f"<br>any grade: {r.n_patients_any} ({100.0 * r.n_patients_any / r.denominator:.1f}%)"
                      for g, p in zip(GRADES, pcts)])
    return _heatmap(display, [str(g) for g in GRADES], z, text, hover, x_title="Worst CTCAE grade", top_px=52)


MEASURES = {"any": "any grade", "grade3": "grade ≥ 3"}


def group_heatmap(rows: pd.DataFrame, measure: str = "any", group_label: str = "Site") -> Figure:
    """Term (grouped by SOC) x group (site, BCLC stage, Child-Pugh class): the % of the group's
    patients with the term at any grade, or at grade 3 or more. Columns with fewer than 5 patients
    are marked with a dagger. Input: ae-incidence rows with --by a grouping."""
    if rows.empty or rows["denominator"].max() == 0:
        return empty_figure(NO_PATIENTS)
    rows = rows.assign(n_measure=rows.n_patients_any if measure == "any" else rows.n_grade_3_4 + rows.n_grade_5)
    if rows.loc[rows.soc == ANY_AE, "n_measure"].sum() == 0:
        return empty_figure(f"No patient with an adverse event at {MEASURES.get(measure, measure)} "
                            "in the current filter and switches.")
    groups = list(dict.fromkeys(rows["group"]))
    denominators = rows.drop_duplicates("group").set_index("group")["denominator"]
    shown = rows.groupby(["soc", "term"], dropna=False, sort=False)["n_measure"].transform("sum") > 0
    items = rows.loc[shown | (rows.soc == ANY_AE), ["soc", "term"]].drop_duplicates()
    display = _layout_rows(items)
    cells = {(r.soc, r.term if isinstance(r.term, str) else None, r.group): r for r in rows.itertuples()}
    z, text, hover = [], [], []
    for d in display:
        if d["kind"] == "header":
            z.append([None] * len(groups)), text.append([""] * len(groups)), hover.append([""] * len(groups))
            continue
        zr, tr, hr = [], [], []
        for g in groups:
            r = cells[(d["soc"], d["term"], g)]
            p = 100.0 * r.n_measure / r.denominator if r.denominator else None
            zr.append(p)
            tr.append(_pct_text(p, 0))
            hr.append(f"<b>{d['term'] or d['soc']}</b><br>{group_label} {g}: {r.n_measure} of {r.denominator} "
                      f"patients ({p:.1f}%) at {MEASURES.get(measure, measure)}" +
                      ("<br>fewer than 5 patients: unstable" if r.denominator < SMALL_GROUP else ""))
        z.append(zr), text.append(tr), hover.append(hr)
    labels = [f"{g}{'†' if denominators[g] < SMALL_GROUP else ''}<br><span style='font-size:11px'>"
              f"n={denominators[g]}</span>" for g in groups]
    return _heatmap(display, labels, z, text, hover, top_px=55)
