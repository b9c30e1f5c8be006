"""The subgroup forest plot: one row per subgroup level under a header row per subgroup field, the
estimate and its 95% CI on the axis (hazard ratio on a log axis with a line at 1, or S(365) in %),
and the numbers as text columns beside it (annotations: no Dash component per cell)."""
from __future__ import annotations

import math

from dashboard.figures.builder import Figure
from dashboard.figures.common import base_layout

DAGGER = "†"
WITHHELD = "–"
ROW_PX = 24
MARKER = "#332288"
# x positions (paper) of the text columns and of the plotting area
LABEL_X, AXIS = 0.0, (0.40, 0.70)
HR_TEXT_COLUMNS = (0.22, 0.31, 0.72, 0.89)         # compared arm, reference arm, HR (CI), p-interaction
SINGLE_TEXT_COLUMNS = (0.22, 0.31, 0.72, 0.88)     # n, events, 1-year (CI), median (CI)


def number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def count(v) -> str:
    return WITHHELD if v is None or (isinstance(v, float) and v != v) else str(v)


def fmt_hr(hr, lo, hi) -> str:
    if not (number(hr) and number(lo) and number(hi)):
        return "not estimable"
    return f"{hr:.2f} ({lo:.2f}–{hi:.2f})"


def fmt_p(p) -> str:
    if not number(p):
        return "—"
    return "< 0.0001" if p < 0.0001 else f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def fmt_pct(s, lo, hi) -> str:
    if not number(s):
        return "—"
    if not (number(lo) and number(hi)):
        return f"{100 * s:.1f}% (CI —)"
    return f"{100 * s:.1f}% ({100 * lo:.1f}–{100 * hi:.1f})"


def fmt_months(d) -> str:
    return "NR" if not number(d) else f"{d / 30.4375:.1f}"


def _layout_rows(rows: list[dict], field_label) -> list[tuple]:
    """[(kind, field, row)] from the top: a header per field, then its levels."""
    out, seen = [], None
    for r in rows:
        if r["subgroup_field"] != seen:
            seen = r["subgroup_field"]
            out.append(("field", seen, r))
        out.append(("level", seen, r))
    return out


def forest_figure(rows: list[dict], field_label, headers: tuple[str, ...], single_arm: bool = False,
                  title: str | None = None, suppressed: bool = False) -> Figure:
    """The forest plot of the forest export's rows (records). `field_label(field)` names a field;
    `headers` the four text columns' headings; `suppressed`: the role's small-cell rules applied, so a
    small row's missing estimate reads as withheld, not as not estimable."""
    lines = _layout_rows(rows, field_label)
    n = len(lines)
    ys = list(range(n, 0, -1))
    fig = Figure()
    ann = []

    def text(x, y, s, bold=False, anchor="left", colour="#212529"):
        ann.append(dict(x=x, y=y, xref="paper", yref="y", text=f"<b>{s}</b>" if bold else s, showarrow=False,
                        xanchor=anchor, font=dict(size=12, color=colour)))

    columns = SINGLE_TEXT_COLUMNS if single_arm else HR_TEXT_COLUMNS
    head_y = n + 1
    text(LABEL_X, head_y, "Subgroup", bold=True)
    for x, h in zip(columns, headers):
        text(x, head_y, h, bold=True, anchor="left")
    solid = dict(x=[], y=[], lo=[], hi=[], hover=[])
    hollow = dict(x=[], y=[], lo=[], hi=[], hover=[])
    for (kind, field, r), y in zip(lines, ys):
        if kind == "field":
            text(LABEL_X, y, field_label(field), bold=True)
            if not single_arm:
                text(columns[3], y, fmt_p(r["p_interaction"]))
            continue
        label = "  " + str(r["subgroup_level"]) + (f" {DAGGER}" if r.get("small") else "")
        text(LABEL_X + 0.01, y, label)
        if single_arm:
            est, lo, hi = r["surv_365"], r["surv_365_ci_lower"], r["surv_365_ci_upper"]
            text(columns[0], y, count(r["n"]))
            text(columns[1], y, count(r["events"]))
            hidden = suppressed and r.get("small")
            text(columns[2], y, WITHHELD if hidden else fmt_pct(est, lo, hi))
            text(columns[3], y, WITHHELD if hidden else f"{fmt_months(r['median_days'])} "
                 f"({fmt_months(r['median_ci_lower_days'])}–{fmt_months(r['median_ci_upper_days'])})")
            scale = 100.0
        else:
            est, lo, hi = r["hazard_ratio"], r["ci_lower"], r["ci_upper"]
            text(columns[0], y, f"{count(r['events'])}/{count(r['n'])}")
            text(columns[1], y, f"{count(r['ref_events'])}/{count(r['ref_n'])}")
            text(columns[2], y, WITHHELD if suppressed and r.get("small") else fmt_hr(est, lo, hi))
            scale = 1.0
        if number(est) and number(lo) and number(hi):
            into = hollow if r.get("small") else solid
            into["x"].append(est * scale)
            into["y"].append(y)
            into["lo"].append((est - lo) * scale)
            into["hi"].append((hi - est) * scale)
            into["hover"].append(f"{field_label(field)}: {r['subgroup_level']}")
    for pts, symbol, name in ((solid, "square", "estimate"), (hollow, "square-open", f"{DAGGER} arm under 10")):
        if not pts["x"]:
            continue
        fig.add_scatter(x=pts["x"], y=pts["y"], mode="markers", name=name, showlegend=False,
                        marker=dict(symbol=symbol, size=9, color=MARKER, line=dict(color=MARKER, width=1.5)),
                        error_x=dict(type="data", symmetric=False, array=pts["hi"], arrayminus=pts["lo"],
                                     color=MARKER, thickness=1.5, width=0),
                        text=pts["hover"], hovertemplate="%{text}: %{x:.2f}<extra></extra>")
    height = max(260, ROW_PX * (n + 2) + 110)
    base_layout(fig, title=title, height=height)
    if single_arm:
        fig.update_xaxes(domain=list(AXIS), range=[0, 102], tickvals=[0, 25, 50, 75, 100],
                         title_text="1-year survival, % (95% CI)")
    else:
        xs = [v for pts in (solid, hollow) for e, lo, hi in zip(pts["x"], pts["lo"], pts["hi"])
              for v in (e - lo, e + hi) if v > 0]
        lo_x = min(xs + [0.5]) * 0.9
        hi_x = max(xs + [2.0]) * 1.1
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo_x <= t <= hi_x]
        fig.update_xaxes(type="log", domain=list(AXIS), range=[math.log10(lo_x), math.log10(hi_x)],
                         tickvals=ticks, ticktext=[f"{t:g}" for t in ticks],
                         title_text="Hazard ratio (95% CI), log scale")
        fig.add_shape(type="line", x0=1, x1=1, xref="x", y0=0.5, y1=n + 0.5, yref="y",
                      line=dict(color="#6c757d", width=1, dash="dash"))
    fig.update_yaxes(visible=False, range=[0.3, n + 1.6], fixedrange=True)
    fig.update_layout(annotations=ann, margin=dict(l=10, r=10, t=50 if title else 10, b=50), showlegend=False)
    return fig
