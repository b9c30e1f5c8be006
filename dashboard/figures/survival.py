"""Survival figures: Kaplan-Meier curves with the numbers at risk under them (KMunicate style).

Pure functions of the survival exports' rows (`km-curve`, `km-risk-table`): no Dash, no DuckDB.
Counts arrive as numbers or, for a role with small-cell suppression, as the text "<5"; they are
shown as they arrive, never computed with.
The x axis is in months (days / 30.4375) with a tick every 6 months (3 for short follow-up); the
table under the curves shares that axis and sits at exactly those ticks.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard.figures.builder import Figure, make_subplots
from dashboard.figures.common import NO_PATIENTS, QUALITATIVE, base_layout, colour_for, empty_figure

DAYS_PER_MONTH = 30.4375
CI_BAND = "ci-band"                   # trace meta of the confidence bands (shown or hidden in the browser)
RISK_ROWS = (("n_at_risk", "at risk"), ("cum_events", "events"), ("cum_censored", "censored"))
KM_HEIGHT, GAP, LINE_HEIGHT = 430, 78, 17
MAX_LEGEND_ABOVE = 5


def months(days):
    return np.asarray(days, dtype=float) / DAYS_PER_MONTH


def tick_months(max_days: float) -> list[float]:
    """x ticks in months: every 6 months, every 3 when follow-up is under 2 years (every month
    under 6 months), from 0 up to the longest follow-up."""
    span = max(float(max_days or 0), 0.0) / DAYS_PER_MONTH
    step = 1 if span < 6 else 3 if span < 24 else 6
    return [float(m) for m in range(0, int(math.floor(span / step)) * step + 1, step)]


def tick_days(max_days: float) -> list[float]:
    """The same ticks in days: where the numbers at risk are counted."""
    return [m * DAYS_PER_MONTH for m in tick_months(max_days)]


def group_colours(by: str, levels) -> dict:
    """A colour per group: BCLC stages keep their stage colours, other groupings take the
    qualitative palette in level order."""
    if by in ("bclc_stage", "none"):
        return {lv: colour_for(lv, i) for i, lv in enumerate(levels)}
    return {lv: QUALITATIVE[i % len(QUALITATIVE)] for i, lv in enumerate(levels)}


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def km_figure(curve: pd.DataFrame, risk: pd.DataFrame, levels, colours: dict | None = None,
              labels: dict | None = None, show_ci: bool = False, title: str | None = None,
              y_title: str = "Survival probability", ticks: list[float] | None = None, small=()) -> Figure:
    """Kaplan-Meier step curves per group (censoring marks, optional CI bands) above a table of
    at risk / cumulative events / cumulative censored per group at the x ticks.

    curve: rows of the km-curve export; risk: rows of km-risk-table at the tick times (days);
    levels: group order; labels: legend text per group; ticks: x ticks in months (default from
    the longest time); small: the groups of fewer than 5 patients, drawn dashed with open circles
    (as their legend entries show). The CI band traces carry meta "ci-band" and are drawn hidden
    unless show_ci."""
    levels = list(levels)
    if curve.empty or not levels:
        return empty_figure(NO_PATIENTS)
    colours = colours or {lv: colour_for(lv, i) for i, lv in enumerate(levels)}
    labels = labels or {lv: str(lv) for lv in levels}
    ticks = ticks if ticks is not None else tick_months(curve["time_days"].max())
    n_lines = len(levels) * len(RISK_ROWS)
    table_px = LINE_HEIGHT * n_lines + 24
    height = KM_HEIGHT + GAP + table_px + 60
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=GAP / (height - 90),
                        row_heights=[KM_HEIGHT, table_px])
    for level in levels:
        _add_group(fig, curve[curve["group"] == level], level, colours[level], labels[level], show_ci,
                   level in set(small))
    fig.add_hline(y=0.5, line=dict(color="#adb5bd", width=1, dash="dot"), row=1, col=1)
    _add_risk_table(fig, risk, levels, colours, ticks)

    last = max(ticks[-1] if ticks else 0.0, float(months(curve["time_days"].max())))
    x_range = [-0.01 * max(last, 1), last * 1.02 if last > 0 else 1]
    fig.update_xaxes(range=x_range, tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], zeroline=False)
    fig.update_xaxes(title=dict(text="Months since first DEB-TACE", standoff=6), showticklabels=True,
                     ticks="outside", row=1, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=True, gridcolor="#f1f3f5", row=2, col=1)
    fig.update_yaxes(title=y_title, range=[-0.02, 1.03], tickformat=".0%", dtick=0.25, row=1, col=1)
    fig.update_yaxes(visible=False, range=[-n_lines + 0.5, 0.7], fixedrange=True, row=2, col=1)
    label_width = max(len(str(lv)) for lv in levels) + len(" censored") + 2
    base_layout(fig, title, height=height)
    if len(levels) <= MAX_LEGEND_ABOVE:
        legend, right = dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0), 24
    else:  # many groups: a column beside the curves instead of rows over the title
        legend, right = dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.01), 150
    fig.update_layout(margin=dict(l=max(70, 7 * label_width), r=right, t=80 if title else 40, b=20),
                      legend=legend, hovermode="closest")
    return fig


def count_labels(counts: pd.Series) -> list[str]:
    """Counts as text: '12', or '<5' as a suppressed count arrives; '' where missing."""
    return ["" if v is None or (isinstance(v, float) and v != v) else v if isinstance(v, str) else f"{int(v)}"
            for v in counts]


def _any(counts: pd.Series) -> pd.Series:
    """Counts above 0 ("<5" is 1 to 4)."""
    return pd.to_numeric(counts, errors="coerce").fillna(1) > 0


SMALL_LINE = dict(dash="dash")                                  # a group of fewer than 5 patients
SMALL_MARKER = dict(symbol="circle-open", size=7)


def _add_group(fig, g: pd.DataFrame, level, colour: str, label: str, show_ci: bool, small: bool = False):
    x = months(g["time_days"])
    band = g[np.isfinite(g["ci_lower"]) & np.isfinite(g["ci_upper"])]
    if len(band):
        bx = months(band["time_days"])
        common = dict(mode="lines", line=dict(width=0, shape="hv"), hoverinfo="skip", showlegend=False,
                      legendgroup=str(level), meta=CI_BAND, visible=bool(show_ci))
        fig.add_scatter(x=bx, y=band["ci_lower"], name=f"{label} lower CI", **common, row=1, col=1)
        fig.add_scatter(x=bx, y=band["ci_upper"], name=f"{label} upper CI", fill="tonexty",
                        fillcolor=_rgba(colour, 0.16), **common, row=1, col=1)
    custom = np.column_stack([g["time_days"], g["ci_lower"], g["ci_upper"]])
    style = dict(mode="lines+markers", line=dict(color=colour, width=2.5, shape="hv", **SMALL_LINE),
                 marker=dict(color=colour, line=dict(width=1.5, color=colour), **SMALL_MARKER)) if small else \
        dict(mode="lines", line=dict(color=colour, width=2.5, shape="hv"))
    fig.add_scatter(x=x, y=g["surv"], name=label, legendgroup=str(level), meta="km", **style,
                    customdata=custom, text=count_labels(g["n_risk"]),
                    hovertemplate=f"<b>{label}</b><br>%{{x:.1f}} months (day %{{customdata[0]:.0f}})"
                                  "<br>S = %{y:.1%} (95% CI %{customdata[1]:.1%} to %{customdata[2]:.1%})"
                                  "<br>at risk %{text}<extra></extra>", row=1, col=1)
    cens = g[_any(g["n_censor"])]
    if len(cens):
        fig.add_scatter(x=months(cens["time_days"]), y=cens["surv"], mode="markers", name=f"{label} censoring",
                        legendgroup=str(level), showlegend=False, meta="censor",
                        marker=dict(symbol="line-ns-open", size=9, color=colour, line=dict(width=1.5)),
                        customdata=cens["time_days"].to_numpy(float), text=count_labels(cens["n_censor"]),
                        hovertemplate=f"<b>{label}</b><br>%{{text}} censored at day "
                                      "%{customdata:.0f}<extra></extra>", row=1, col=1)


def readable(hex_colour: str) -> str:
    """The group colour, darkened when too light to read as small text on white (Tol's light
    blue and sand)."""
    h = hex_colour.lstrip("#")
    rgb = [int(h[i:i + 2], 16) for i in (0, 2, 4)]
    luminance = sum(w * (c / 255) for w, c in zip((0.2126, 0.7152, 0.0722), rgb))
    if luminance < 0.5:
        return hex_colour
    return "#" + "".join(f"{int(c * 0.6):02x}" for c in rgb)


def _add_risk_table(fig, risk: pd.DataFrame, levels, colours: dict, ticks):
    """Text rows under the curves: for each group its at risk, events and censored at the ticks."""
    tick_x = np.asarray(ticks, dtype=float)
    line = 0
    for level in levels:
        colour = readable(colours[level])
        rows = risk[risk["group"] == level].sort_values("time_days")
        for column, what in RISK_ROWS:
            size = 12 if what == "at risk" else 11
            values = rows[column] if len(rows) == len(tick_x) else pd.Series([None] * len(tick_x))
            fig.add_scatter(x=tick_x, y=[-line] * len(tick_x), mode="text", meta="risk-table",
                            name=f"{level} {what}", text=count_labels(values),
                            textfont=dict(color=colour, size=size),
                            textposition="middle center", cliponaxis=False, hoverinfo="skip",
                            showlegend=False, row=2, col=1)
            fig.add_annotation(x=0, xref="paper", xanchor="right", xshift=-8, y=-line, yref="y2", showarrow=False,
                               text=f"<b>{level}</b> {what}" if what == "at risk" else what,
                               font=dict(color=colour, size=size))
            line += 1
    fig.add_annotation(x=0, xref="paper", xanchor="left", y=1, yref="y2 domain", yanchor="bottom",
                       text="Number at risk, cumulative events and cumulative censored", showarrow=False,
                       font=dict(size=12, color="#495057"))

