"""Downstaging figures: the staging flow (Sankey), downstaging and conversion rates, the cumulative
incidence of downstaging, downsizing. Pure functions: rows of an export -> Figure.

The flow is drawn from filled paths rather than plotly's sankey trace, whose link values show on
hover only: here every node and every link carries its patient count as text, so the figure reads
on a printed slide, and hovering a node or a link still gives the details.
"""
from __future__ import annotations

import textwrap
from typing import NamedTuple

import numpy as np
import pandas as pd

from dashboard.access import MIN_GROUP, SUPPRESSED
from dashboard.analytics.staging import (DIED, FROM_UNKNOWN, IMPROVED, LINK_KINDS, NOT_RESTAGED, UNCHANGED,
                                         UNKNOWN_STATES, WORSE, link_kind, state_order)
from dashboard.figures.builder import Figure, Scatter, make_subplots
from dashboard.figures.common import BCLC_COLOURS, NO_PATIENTS, base_layout, colour_for, empty_figure

MONTH = 30.4375
SMALL_GROUP = 5          # groups with fewer patients are drawn but flagged (analysis plan)
NOMINAL_WIDTH = 2.5      # the drawn width, in patients, of a flow link withheld as "<5" (its count is not sent)
MAX_BANDS = 4            # CI bands of more curves than this hide each other: drawn for up to 4 groups
MAX_END_LABELS = 6

# --- labels -----------------------------------------------------------------------------------
GROUP_PREFIX = {"bclc_stage": "BCLC ", "child_pugh_class": "Child-Pugh ", "ecog_group": "ECOG ",
                "afp_group": "AFP ", "sex": ""}
FLOW_HEADERS = ("At baseline", "Best at follow-up")
KIND_LABELS = {
    "bclc": {IMPROVED: "Lower stage (downstaged)", UNCHANGED: "Same stage", WORSE: "Higher stage"},
    "milan": {IMPROVED: "Into Milan (downstaged)", UNCHANGED: "Unchanged", WORSE: "Out of Milan"},
    "resectable": {IMPROVED: "Became resectable", UNCHANGED: "Unchanged", WORSE: "No longer resectable"},
}
KIND_COLOURS = {IMPROVED: "#117733", UNCHANGED: "#88A0B8", WORSE: "#CC6677", FROM_UNKNOWN: "#DDCC77",
                DIED: "#4D4D4D", NOT_RESTAGED: "#B8B8B8"}
STATE_COLOURS = {"within Milan": "#117733", "outside Milan": "#AA4499", "resectable": "#117733",
                 "not resectable": "#AA4499", DIED: "#4D4D4D", NOT_RESTAGED: "#B8B8B8",
                 **{state: "#DDCC77" for state in UNKNOWN_STATES.values()}}
RATE_TITLES = {"downstaged_to_milan": "Downstaged to within Milan",
               "converted_to_resectable": "Converted to resectable"}
RATE_COLOURS = {"downstaged_to_milan": "#332288", "converted_to_resectable": "#117733"}


def message_figure(text: str, width: int = 44) -> Figure:
    """empty_figure with the message wrapped, so that it fits a half-width card."""
    return empty_figure("<br>".join(textwrap.wrap(text, width)))


def group_label(by: str, group) -> str:
    """How a group reads on a figure: 'All patients', 'BCLC B', 'ECOG 1', 'S03'."""
    if str(group) == "all":
        return "All patients"
    return f"{GROUP_PREFIX.get(by, '')}{group}"


def _state_colour(state: str) -> str:
    if state.startswith("BCLC ") and state not in STATE_COLOURS:
        return BCLC_COLOURS.get(state[5:], "#888888")
    return STATE_COLOURS.get(state, "#888888")


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


# --- flow (Sankey) ----------------------------------------------------------------------------
FLOW_X = {"left": (0.25, 0.275), "right": (0.695, 0.72)}   # node columns, as fractions of the width
FLOW_GAP = 0.035                                              # between nodes, fraction of the height
MIN_NODE = 0.008                                              # drawn height of a tiny node
ASSUMED_WIDTH_PX = 560                                        # for label collision estimates only
LINK_LABEL_AT = (0.12, 0.88, 0.3, 0.7, 0.5)                   # where along a link its count may go


def _stack(states: list[str], counts: dict, scale: float) -> dict:
    """Top and bottom (y, 0 = bottom) of each node of a column, centred vertically."""
    total = sum(counts[s] for s in states) * scale + FLOW_GAP * (len(states) - 1)
    top = 1 - (1 - total) / 2
    out = {}
    for s in states:
        h = counts[s] * scale
        out[s] = (top, top - h)
        top -= h + FLOW_GAP
    return out


def _bezier(x0, y0, x1, y1, n=24):
    """Points of the horizontal-tangent cubic from (x0, y0) to (x1, y1)."""
    t = np.linspace(0, 1, n)
    xm = (x0 + x1) / 2
    x = (1 - t) ** 3 * x0 + 3 * (1 - t) * t * xm + t ** 3 * x1
    y = y0 + (y1 - y0) * (3 * t ** 2 - 2 * t ** 3)
    return x, y


def _bezier_point(x0, y0, x1, y1, t):
    xm = (x0 + x1) / 2
    return ((1 - t) ** 3 * x0 + 3 * (1 - t) * t * xm + t ** 3 * x1, y0 + (y1 - y0) * (3 * t ** 2 - 2 * t ** 3))


def _spread(wanted: list[float], height: float) -> list[float]:
    """Label centres as close as possible to `wanted` (top first) with at least `height` between
    neighbours, kept inside [height / 2, 1 - 0.6 * height]: the top label stays clear of the
    column header above the plot (a small top node's label reached into it)."""
    ys = list(wanted)
    if ys:
        ys[0] = min(ys[0], 1 - 0.6 * height)
    for i in range(1, len(ys)):
        ys[i] = min(ys[i], ys[i - 1] - height)
    if ys and ys[-1] < height / 2:
        ys[-1] = height / 2
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = max(ys[i], ys[i + 1] + height)
    return ys


def _overlap(a, b) -> float:
    dx = (a[2] + b[2]) / 2 - abs(a[0] - b[0])
    dy = (a[3] + b[3]) / 2 - abs(a[1] - b[1])
    return dx * dy if dx > 0 and dy > 0 else 0.0


def _link_bands(links: list, order: list[str], left_pos: dict, right_pos: dict, scale: float) -> dict:
    """(source, target) -> (top, bottom at the source, top, bottom at the target): links stacked
    inside their nodes, at the source in target order and at the target in source order.
    `links`: (source, target, n) tuples."""
    rank = {s: i for i, s in enumerate(order)}
    src_top = {s: pos[0] for s, pos in left_pos.items()}
    tgt_top = {s: pos[0] for s, pos in right_pos.items()}
    bands = {}
    for source, target, n in sorted(links, key=lambda r: rank[r[1]]):
        bands[(source, target)] = [src_top[source], src_top[source] - n * scale]
        src_top[source] -= n * scale
    for source, target, n in sorted(links, key=lambda r: rank[r[0]]):
        bands[(source, target)] += [tgt_top[target], tgt_top[target] - n * scale]
        tgt_top[target] -= n * scale
    return {k: tuple(v) for k, v in bands.items()}


def _label_spot(x0, y0, x1, y1, width, height, placed) -> tuple:
    """Where a link's count goes: the first point of LINK_LABEL_AT along its centre line whose box
    overlaps no box already placed, else the least covered one. Boxes are (x, y, width, height)."""
    best, best_cost = None, None
    for t in LINK_LABEL_AT:
        x, y = _bezier_point(x0, y0, x1, y1, t)
        box = (x, y, width, height)
        cost = sum(_overlap(box, other) for other in placed)
        if best is None or cost < best_cost:
            best, best_cost = box, cost
        if cost == 0:
            break
    return best


class FlowLink(NamedTuple):
    source: str
    target: str
    n: int | str            # patients, or "<5" where the export withheld the count
    kind: str


def _withheld(n) -> bool:
    """A count the export does not show: "<5" (1 to 4 patients) or None (withheld so that a "<5" beside
    it cannot be worked out by subtraction: dashboard/exports/complement.py)."""
    return n is None or isinstance(n, str)


def _count(n) -> str:
    return "–" if n is None else str(n)


class NodeCount(NamedTuple):
    """The patients of a flow node as its links show them: the sum of the counted links, how many links
    read "<5" and how many were withheld (5 or more each), so that the node's exact count, which would
    give theirs away, is not printed."""
    exact: int = 0
    small: int = 0
    hidden: int = 0

    @property
    def withheld(self) -> int:
        return self.small + self.hidden

    def add(self, n) -> "NodeCount":
        if n is None:
            return self._replace(hidden=self.hidden + 1)
        return self._replace(small=self.small + 1) if _withheld(n) else self._replace(exact=self.exact + n)

    def text(self) -> str:
        """'= 37'; with links not shown, what they allow: '≥ 39' (37 and two of 1-4), '= <5' (one of
        1-4 alone), '< 10' (two of 1-4)."""
        if not self.withheld:
            return f"= {self.exact}"
        if self.exact or self.hidden:
            return f"≥ {self.exact + self.small + 5 * self.hidden}"
        return f"= {SUPPRESSED}" if self.small == 1 else f"< {5 * self.small}"


def flow_figure(links: pd.DataFrame, measure: str, height: int = 500) -> Figure:
    """The staging flow: baseline state (left) -> best follow-up state or terminal state (right),
    node and link widths proportional to patients, every node and link labelled with its count.
    Input: rows of the staging-flow export (source, target, n)."""
    if links.empty or not any(_withheld(n) or n > 0 for n in links["n"]):
        return message_figure(NO_PATIENTS)
    order = state_order(measure)
    records = [(s, t, n) for s, t, n in zip(links["source"].tolist(), links["target"].tolist(), links["n"].tolist())
               if _withheld(n) or n > 0]
    # geometry: a withheld link is drawn at a nominal width, so no coordinate carries its count
    drawn = [(s, t, NOMINAL_WIDTH if _withheld(n) else n) for s, t, n in records]
    total = sum(w for _, _, w in drawn)
    out_n, in_n, out_count, in_count = {}, {}, {}, {}
    for (s, t, n), (_, _, w) in zip(records, drawn):
        out_n[s], in_n[t] = out_n.get(s, 0) + w, in_n.get(t, 0) + w
        out_count[s], in_count[t] = out_count.get(s, NodeCount()).add(n), in_count.get(t, NodeCount()).add(n)
    patients = NodeCount()
    for _, _, n in records:
        patients = patients.add(n)
    lefts, rights = [s for s in order if s in out_n], [s for s in order if s in in_n]
    scale = min((1 - FLOW_GAP * (len(col) - 1)) / total for col in (lefts, rights))
    left_pos, right_pos = _stack(lefts, out_n, scale), _stack(rights, in_n, scale)
    bands = _link_bands(drawn, order, left_pos, right_pos, scale)
    margin = dict(l=8, r=8, t=40, b=56)
    plot_h = height - margin["t"] - margin["b"]
    kind_names = KIND_LABELS[measure] | {DIED: "Died before restaging", NOT_RESTAGED: "Not yet restaged",
                                         FROM_UNKNOWN: "Baseline not recorded"}

    fig, annotations, placed, shown = Figure(), [], [], set()
    x0, x1 = FLOW_X["left"][1], FLOW_X["right"][0]
    links = [FlowLink(s, t, n, link_kind(measure, s, t)) for s, t, n in records]
    widths = {(s, t): w for s, t, w in drawn}
    for r in sorted(links, key=lambda r: -widths[(r.source, r.target)]):   # big links first: the best places
        ys0, ys1, yt0, yt1 = bands[(r.source, r.target)]
        top_x, top_y = _bezier(x0, ys0, x1, yt0)
        bot_x, bot_y = _bezier(x0, ys1, x1, yt1)
        word = kind_names[r.kind].split(" (")[0]
        kind = "" if r.kind in (DIED, NOT_RESTAGED, FROM_UNKNOWN) else f" ({word[0].lower() + word[1:]})"
        source_count = out_count[r.source]
        share = ("" if _withheld(r.n) or source_count.withheld else
                 f" ({r.n / source_count.exact:.0%} of {r.source})")
        withheld = (" (not shown for your role, so that a number under 5 cannot be worked out)" if r.n is None else
                    " (the number is not shown for your role)" if _withheld(r.n) else "")
        text = f"{r.source} → {r.target}{kind}<br>{_count(r.n)} patients{share}{withheld}"
        colour = KIND_COLOURS[r.kind]
        fig.add_scatter(x=np.concatenate([top_x, bot_x[::-1]]), y=np.concatenate([top_y, bot_y[::-1]]),
                        fill="toself", mode="lines", line=dict(width=0.5, color=_rgba(colour, 0.7)),
                        fillcolor=_rgba(colour, 0.45), hoveron="fills", hoverinfo="text", text=text,
                        name=kind_names[r.kind], legendgroup=r.kind, showlegend=r.kind not in shown,
                        legendrank=LINK_KINDS.index(r.kind))
        shown.add(r.kind)
        spot = _label_spot(x0, (ys0 + ys1) / 2, x1, (yt0 + yt1) / 2,
                           (7.5 * len(str(r.n)) + 10) / ASSUMED_WIDTH_PX, 20 / plot_h, placed)
        placed.append(spot)
        annotations.append(dict(x=spot[0], y=spot[1], text=f"<b>{_count(r.n)}</b>", showarrow=False, name="link",
                                font=dict(size=12, color="#212529"), bgcolor="rgba(255,255,255,0.9)",
                                bordercolor=colour, borderwidth=1, borderpad=1, hovertext=text.replace("<br>", ": ")))

    for side, states, pos, counts in (("left", lefts, left_pos, out_count), ("right", rights, right_pos, in_count)):
        xa, xb = FLOW_X[side]
        label_ys = _spread([(pos[s][0] + pos[s][1]) / 2 for s in states], 38 / plot_h)
        for s, ly in zip(states, label_ys):
            top, bottom = pos[s]
            if top - bottom < MIN_NODE:
                mid = (top + bottom) / 2
                top, bottom = mid + MIN_NODE / 2, mid - MIN_NODE / 2
            when = "at baseline" if side == "left" else ("" if s in (DIED, NOT_RESTAGED) else "best at follow-up")
            c = counts[s]
            of = (f" of {patients.exact} patients ({c.exact / patients.exact:.1%})" if not patients.withheld else
                  " patients (links of fewer than 5 patients are not counted exactly for your role)" if c.withheld else
                  " patients")
            hover = f"{s} {when}".strip() + f"<br>{c.exact if not c.withheld else 'n ' + c.text()}{of}"
            fig.add_scatter(x=[xa, xb, xb, xa, xa], y=[bottom, bottom, top, top, bottom], fill="toself",
                            mode="lines", line=dict(width=0), fillcolor=_state_colour(s), hoveron="fills",
                            hoverinfo="text", text=hover, showlegend=False)
            annotations.append(dict(
                x=xa - 0.008 if side == "left" else xb + 0.008, y=ly, xanchor="right" if side == "left" else "left",
                text=f"<b>{s[0].upper() + s[1:]}</b><br>n {c.text()}", showarrow=False, font=dict(size=13),
                align="right" if side == "left" else "left", name="node", hovertext=hover.replace("<br>", ": ")))
    for x, text, anchor in ((x0, FLOW_HEADERS[0], "right"), (x1, FLOW_HEADERS[1], "left")):
        annotations.append(dict(x=x, y=1, yref="paper", yanchor="bottom", xanchor=anchor, showarrow=False,
                                text=f"<b>{text}</b>", font=dict(size=13, color="#495057"), name="header"))
    fig.update_xaxes(visible=False, range=[0, 1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[0, 1], fixedrange=True)
    base_layout(fig, height=height)
    fig.update_layout(annotations=annotations, dragmode=False, margin=margin, hovermode="closest",
                      hoverlabel=dict(bgcolor="white"),
                      legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="center", x=0.5,
                                  traceorder="normal", font=dict(size=12)))
    return fig


# --- rates ------------------------------------------------------------------------------------
def rates_figure(rows: pd.DataFrame, by: str = "none") -> Figure:
    """Downstaging and conversion rates with exact 95% CIs: one panel per measure, one row per
    group ('All patients' on top). Input: rows of the downstaging-summary export."""
    if rows.empty:
        return message_figure(NO_PATIENTS)
    if not any(_withheld(n) or n > 0 for n in rows["eligible"]):
        unknown = "baseline_unknown" in rows and any(_withheld(n) or n > 0 for n in rows["baseline_unknown"])
        return message_figure("No eligible patient: " + (
            "no patient in the filter is known to have been outside Milan or not resectable at baseline (the "
            "source did not record it for some)." if unknown else
            "everyone in the filter was within Milan and resectable at baseline."))
    groups = list(dict.fromkeys(rows["group"]))
    labels = {g: group_label(by, g) for g in groups}
    measures = [m for m in RATE_TITLES if m in set(rows["measure"])]
    fig = make_subplots(rows=1, cols=len(measures), shared_yaxes=True, horizontal_spacing=0.09,
                        subplot_titles=[RATE_TITLES[m] for m in measures])
    for col, measure in enumerate(measures, start=1):
        sub = rows[rows.measure == measure].set_index("group").reindex(groups)
        has = sub["eligible"].map(lambda n: _withheld(n) or n > 0)
        # a rate withheld with its count ("<5": None) is written, not drawn
        drawable = has & sub["rate"].notna()
        d = sub[drawable].astype({c: float for c in ("eligible", "achieved", "rate", "ci_lower", "ci_upper")})
        colour = RATE_COLOURS[measure]
        small = d["eligible"] < SMALL_GROUP
        text = [f"{int(x)}/{int(n)} · {100 * p:.1f}%" + (" (n<5)" if n < SMALL_GROUP else "")
                for x, n, p in zip(d.achieved, d.eligible, d.rate)]
        fig.add_trace(Scatter(
            x=100 * d["rate"], y=[labels[g] for g in d.index], mode="markers+text", text=text,
            textposition="top center", textfont=dict(size=12), cliponaxis=False, showlegend=False,
            name=RATE_TITLES[measure],
            marker=dict(size=[12 if g == "all" else 10 for g in d.index], color=colour,
                        symbol=[("diamond" if g == "all" else "circle") + ("-open" if s else "")
                                for g, s in zip(d.index, small)], line=dict(width=2, color=colour)),
            error_x=dict(type="data", symmetric=False, array=100 * (d["ci_upper"] - d["rate"]),
                         arrayminus=100 * (d["rate"] - d["ci_lower"]), color=colour, thickness=2, width=6),
            customdata=np.column_stack([d["achieved"], d["eligible"], 100 * d["ci_lower"], 100 * d["ci_upper"]]),
            hovertemplate=f"<b>%{{y}}</b><br>{RATE_TITLES[measure]}: %{{customdata[0]}} of %{{customdata[1]}} "
                          "(%{x:.1f}%)<br>95% CI %{customdata[2]:.1f}–%{customdata[3]:.1f}% (Clopper-Pearson)"
                          "<extra></extra>"), row=1, col=col)
        for g in sub.index[~has]:
            fig.add_annotation(x=0, y=labels[g], xref=f"x{col if col > 1 else ''}", yref="y", xanchor="left",
                               text="no eligible patient", showarrow=False, font=dict(size=12, color="#6c757d"))
        for g in sub.index[has & ~drawable]:
            r = sub.loc[g]
            fig.add_annotation(x=0, y=labels[g], xref=f"x{col if col > 1 else ''}", yref="y", xanchor="left",
                               text=f"{_count(r['achieved'])}/{_count(r['eligible'])} · rate not shown",
                               showarrow=False, font=dict(size=12, color="#6c757d"))
        fig.update_xaxes(range=[-3, 103], ticksuffix="%", dtick=25, zeroline=False, row=1, col=col,
                         title="Patients (%), 95% CI")
    # headroom above the top row for its label
    fig.update_yaxes(categoryorder="array", categoryarray=[labels[g] for g in groups][::-1], type="category",
                     range=[-0.5, len(groups) - 0.5 + 0.3])
    base_layout(fig, height=max(220, 120 + 58 * len(groups)))
    fig.update_layout(margin=dict(l=10, r=20, t=40, b=50))
    fig.update_yaxes(automargin=True)
    return fig


# --- cumulative incidence ----------------------------------------------------------------------
def _nan_to_zero(values: np.ndarray) -> np.ndarray:
    """pandas' fillna(0.0) on a float column, for a numpy array."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), 0.0, values)


def not_drawn_note(by: str, groups) -> str:
    """'BCLC D: fewer than 10 patients, not drawn for your role.' (groups a suppressing scope does not see)."""
    names = [group_label(by, g) for g in groups]
    if not names:
        return ""
    return f"{', '.join(names)}: fewer than {MIN_GROUP} patients, not drawn for your role."


def _not_drawn_annotation(fig: Figure, by: str, groups) -> int:
    """The not-drawn note under the plot, wrapped to the card; returns the bottom margin it needs."""
    lines = textwrap.wrap(not_drawn_note(by, groups), 55)
    fig.add_annotation(x=0, y=-0.16, xref="paper", yref="paper", xanchor="left", yanchor="top", showarrow=False,
                       text="<br>".join(lines), align="left", font=dict(size=12, color="#6c757d"), name="not-drawn")
    return 50 + 18 * len(lines)


def cif_figure(rows: pd.DataFrame, by: str = "none", not_drawn=()) -> Figure:
    """Cumulative incidence of downstaging to within Milan (Aalen-Johansen, death competing) per
    group, as step curves with their 95% pointwise CI band; the value at the last time labelled.
    Input: rows of the downstaging-cif export; `not_drawn`: its groups left out for the user's role
    (said under the plot)."""
    if rows.empty and not_drawn:
        return message_figure(not_drawn_note(by, not_drawn))
    if rows.empty:
        return message_figure("No patient outside Milan at baseline in the current filter: nobody to downstage.")
    fig = Figure()
    bottom = _not_drawn_annotation(fig, by, not_drawn) if not_drawn else 50
    group_col = rows["group"].to_numpy()
    groups = list(dict.fromkeys(group_col.tolist()))
    columns = {c: rows[c].to_numpy() for c in ("time_days", "cif", "ci_lower", "ci_upper", "n_risk", "n_event",
                                               "n_competing")}
    ends = []
    for i, g in enumerate(groups):
        at = np.flatnonzero(group_col == g)
        d = {c: v[at] for c, v in columns.items()}
        d = {c: v[np.argsort(d["time_days"], kind="stable")] for c, v in d.items()}
        n = int(d["n_risk"][0])
        colour = colour_for(g, i)
        months = d["time_days"] / MONTH
        positive = d["cif"] > 0
        lower = _nan_to_zero(np.where(positive, d["ci_lower"], 0.0))
        upper = _nan_to_zero(np.where(positive, d["ci_upper"], 0.0))
        name = f"{group_label(by, g)} (n={n}{', <5: descriptive' if n < SMALL_GROUP else ''})"
        if len(groups) <= MAX_BANDS:
            fig.add_scatter(x=months, y=upper, mode="lines", line=dict(width=0, shape="hv"), showlegend=False,
                            legendgroup=g, hoverinfo="skip", name=f"{g} upper")
            fig.add_scatter(x=months, y=lower, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                            fillcolor=_rgba(colour, 0.15), showlegend=False, legendgroup=g, hoverinfo="skip",
                            name=f"{g} lower")
        fig.add_scatter(
            x=months, y=d["cif"], mode="lines", name=name, legendgroup=g,
            line=dict(color=colour, width=2.5, shape="hv", dash="dash" if n < SMALL_GROUP else "solid"),
            customdata=np.column_stack([d["time_days"], _nan_to_zero(d["ci_lower"]), _nan_to_zero(d["ci_upper"]),
                                        d["n_risk"], d["n_event"], d["n_competing"]]),
            hovertemplate=f"<b>{group_label(by, g)}</b><br>day %{{customdata[0]}} (%{{x:.1f}} months)"
                          "<br>downstaged: %{y:.1%} (95% CI %{customdata[1]:.1%}–%{customdata[2]:.1%})"
                          "<br>at risk %{customdata[3]}; downstaged %{customdata[4]}, died %{customdata[5]} "
                          "at this time<extra></extra>")
        ends.append((float(d["time_days"][-1] / MONTH), float(d["cif"][-1]), colour))
    # end labels, nudged apart so that two curves ending together stay readable
    ymax = max(0.05, float(np.nanmax(rows["ci_upper"].where(rows["cif"] > 0).fillna(0).to_numpy())) * 1.08,
               max(e[1] for e in ends) * 1.15)
    ymax = min(1.0, ymax)
    ends = sorted(ends, key=lambda e: -e[1]) if len(ends) <= MAX_END_LABELS else []
    for (x, y, colour), sy in zip(ends, _spread([e[1] / ymax for e in ends], 0.06)):
        fig.add_annotation(x=x, y=sy * ymax, text=f"<b>{y:.0%}</b>", showarrow=False, xanchor="left", xshift=4,
                           font=dict(size=12, color=colour), name="end")
    fig.update_yaxes(title="Downstaged to within Milan", tickformat=".0%", range=[0, ymax], rangemode="tozero")
    fig.update_xaxes(title="Months since first DEB-TACE", dtick=3, rangemode="tozero")
    base_layout(fig, height=420)
    fig.update_layout(hovermode="closest", margin=dict(l=60, r=40, t=40, b=bottom))
    return fig


# --- downsizing -------------------------------------------------------------------------------
POINTS_BUDGET = 3000     # points drawn at most over all groups (about 300 KB of figure)
MIN_POINTS = 300         # a group may always show this many


def points_per_group(n_groups: int) -> int:
    """How many patients a group shows as points: every one up to this number; above it, a fixed
    sample of this size (the box is still drawn from every patient)."""
    return max(MIN_POINTS, POINTS_BUDGET // max(n_groups, 1))


def point_sample(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of a fixed sample of k of the values: evenly spaced in the values' order (ties
    by position), so that the sample keeps the spread of the group, its smallest and its
    largest value. Every position when there are k or fewer."""
    n = len(values)
    if n <= k:
        return np.arange(n)
    order = np.argsort(values, kind="stable")
    return np.sort(order[np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))])


def box_stats(values: np.ndarray) -> dict:
    """The box of every value: quartiles by R's type 7 (numpy's linear; the export's summary)
    and the whiskers as plotly draws them, at the most extreme values within 1.5 IQR of the box."""
    q1, med, q3 = (float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))
    iqr = q3 - q1
    return dict(q1=[q1], median=[med], q3=[q3],
                lowerfence=[float(values[values >= q1 - 1.5 * iqr].min())],
                upperfence=[float(values[values <= q3 + 1.5 * iqr].max())])


def downsizing_figure(rows: pd.DataFrame, groups: list[str] | None = None, by: str = "none", not_drawn=()) -> Figure:
    """Best percent change of the index lesion's viable diameter per group: a box (median,
    quartiles) with every patient as a point; dashed line at -30%. Input: rows of the
    downsizing export.

    A group with more patients than points_per_group(groups) (100,000 patients: thousands per
    box, megabytes of figure) is drawn as a box computed from all its patients (the quartiles
    of the export's summary) and, as points, a fixed sample of that many (point_sample); the
    export keeps every patient.

    De-identified rows (no patient_id: the export's form for a role without patient-level access)
    get a hover without an id; `not_drawn`: groups left out for the user's role (said under the plot)."""
    if rows.empty and not_drawn:
        return message_figure(not_drawn_note(by, not_drawn))
    if rows.empty:
        return message_figure("No patient in the current filter has an index lesion measured after baseline.")
    identified = "patient_id" in rows.columns
    hover_columns = (["patient_id"] if identified else []) + ["lesion_id", "baseline_diameter_mm", "best_diameter_mm",
                                                              "best_visit"]
    at = 1 if identified else 0           # customdata index of the lesion
    hover = ("<b>%{customdata[0]}</b> " if identified else "") + (
        f"lesion %{{customdata[{at}]}}<br>%{{customdata[{at + 1}]:.0f}} mm at baseline → "
        f"%{{customdata[{at + 2}]:.0f}} mm at %{{customdata[{at + 3}]}}<br>best change %{{y:.1f}}%<extra></extra>")
    present = set(rows["group"])
    groups = [g for g in (groups or list(dict.fromkeys(rows["group"]))) if g in present]
    by_group = dict(tuple(rows.groupby("group", sort=False)))
    many = len(groups) > 8
    k = points_per_group(len(groups))

    def tick(g):
        n = len(by_group[g])
        return f"{group_label(by, g)}<br>{'' if many else 'n='}{n}" + (" (<5)" if n < SMALL_GROUP and not many else "")

    fig = Figure()
    for i, g in enumerate(groups):
        d = by_group[g]
        colour = colour_for(g, i)
        n = len(d)
        label = tick(g)
        values = d["best_pct_change"].to_numpy(float)
        sampled = n > k
        box = dict(name=group_label(by, g), line=dict(color=colour, width=2), fillcolor=_rgba(colour, 0.12),
                   showlegend=False, boxmean=False)
        points = dict(boxpoints="all", jitter=0.45, pointpos=0, marker=dict(color=colour, size=5, opacity=0.55),
                      hovertemplate=hover)
        if sampled:
            # the box of every patient (no points), then the sample's points over it (no box)
            fig.add_box(x=[label], **box_stats(values), boxpoints=False, hoveron="boxes", **box)
            d = d.iloc[point_sample(values, k)]
            box = dict(box, name=f"{group_label(by, g)}: {len(d)} of {n} patients", line=dict(color=colour, width=0),
                       fillcolor="rgba(0,0,0,0)")
            points = dict(points, hoveron="points")
        else:
            points = dict(points, hoveron="points+boxes")
        fig.add_box(
            y=d["best_pct_change"], x=[label] * len(d), **box, **points,
            customdata=np.column_stack([d[c] for c in hover_columns]))
        med = float(np.median(values))
        fig.add_annotation(x=label, y=1, yref="paper", yanchor="bottom", showarrow=False, name="median",
                           text=f"{med:+.0f}%".replace("-", "−"), font=dict(size=12, color=colour),
                           hovertext=f"{group_label(by, g)}: median {med:+.1f}% (n={n})")
    fig.add_annotation(x=0, xref="paper", xanchor="right", y=1, yref="paper", yanchor="bottom", showarrow=False,
                       text="median", font=dict(size=12, color="#495057"))
    fig.add_hline(y=-30, line=dict(color="#6c757d", dash="dash", width=1.5),
                  annotation=dict(text="−30%", font=dict(size=11, color="#6c757d")), annotation_position="right")
    fig.add_hline(y=0, line=dict(color="#adb5bd", width=1))
    top = max(10.0, float(rows["best_pct_change"].max()) + 8)
    fig.update_yaxes(title="Best change of the largest viable diameter", ticksuffix="%", range=[-108, top],
                     zeroline=False, hoverformat=".1f")
    fig.update_xaxes(type="category", tickangle=0, categoryorder="array", categoryarray=[tick(g) for g in groups],
                     tickfont=dict(size=11 if many else 13))
    bottom = _not_drawn_annotation(fig, by, not_drawn) + 10 if not_drawn else 60
    base_layout(fig, height=420)
    fig.update_layout(margin=dict(l=60, r=50, t=40, b=bottom), hovermode="closest")
    return fig
