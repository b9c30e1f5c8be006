"""Enrollment figures: cumulative accrual against targets, enrolled versus target per site,
follow-up status.

Counts may arrive suppressed (the string "<5", dashboard/access.py) with their percentages None:
a suppressed count is labelled "<5" and not drawn to scale (no bar, no point), so its value is
nowhere in the figure's data."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.access import SMALL_CELL
from dashboard.figures.builder import Bar, Figure
from dashboard.figures.common import NO_PATIENTS, QUALITATIVE, base_layout, empty_figure


def drawn(counts: pd.Series) -> pd.Series:
    """Counts as numbers to draw: a suppressed count ("<5") is NaN, not drawn."""
    return pd.to_numeric(counts, errors="coerce")


def has_patients(counts: pd.Series) -> bool:
    """True when some count is a patient or more (a suppressed "<5" is at least one)."""
    return bool((drawn(counts).fillna(1) > 0).any())


def _targets(values: pd.Series) -> pd.Series:
    """Targets as numbers (NaN where a site has none recorded)."""
    return pd.to_numeric(values, errors="coerce").astype(float)


def _of_target(values: pd.Series) -> list[str]:
    """The hover's ' of target N', or nothing for a site (or pool) without a recorded target."""
    return ["" if t != t else f" of target {t:.0f}" for t in _targets(values)]


TOTAL_NAME = "Enrolled in total"
TOTAL_OPACITY = 0.35        # the total's line: light beside the filtered one


def _total_line(fig: Figure, rows: pd.DataFrame, name: str, colour: str, **kwargs) -> None:
    """The light line of every patient enrolled (cumulative_total: no filter), drawn beside the
    filtered line under a subgroup filter; a suppressed total ("<5") leaves its month out."""
    fig.add_scatter(x=rows.month, y=drawn(rows.cumulative_total), mode="lines", name=TOTAL_NAME,
                    line=dict(color=colour, width=2), opacity=TOTAL_OPACITY,
                    customdata=np.column_stack([rows.cumulative_total.astype(object)]),
                    hovertemplate=f"{name}%{{x|%b %Y}}<br>%{{customdata[0]}} enrolled in total (no filter)"
                                  "<extra></extra>", **kwargs)


def accrual_figure(accrual: pd.DataFrame, per_site: bool = False,
                   target_label: str = "Target (sum of sites)", subgroup: bool = False) -> Figure:
    """Cumulative patients by month: pooled (with the summed target) or one line per site (with
    each site's target as a dotted line in the same colour); no target line where no target was
    recorded. Input: rows of accrual export; a suppressed cumulative count ("<5") leaves its month
    out of the line, a suppressed monthly count is "<5" in the hover. `subgroup` (a filter other
    than the sites is active): a light line "Enrolled in total" beside each filtered line draws
    every patient enrolled (the export's cumulative_total), so the target is read against it."""
    if accrual.empty or not has_patients(accrual["n_enrolled"]):
        return empty_figure(NO_PATIENTS)
    fig = Figure()
    if per_site:
        for i, (site, g) in enumerate(accrual[accrual.site_id != "all"].groupby("site_id", sort=True)):
            colour = QUALITATIVE[i % len(QUALITATIVE)]
            name = f"{site} {g.site_name.iloc[0]}"
            fig.add_scatter(x=g.month, y=drawn(g.cum_enrolled), mode="lines", name=site,
                            line=dict(color=colour, width=2),
                            legendgroup=site, customdata=np.column_stack([g.n_enrolled.astype(object),
                                                                          _of_target(g.target_enrollment)]),
                            hovertemplate=f"<b>{name}</b><br>%{{x|%b %Y}}<br>cumulative %{{y}}%{{customdata[1]}}"
                                          "<br>this month %{customdata[0]}<extra></extra>")
            if subgroup:
                _total_line(fig, g, f"<b>{name}</b><br>", colour, legendgroup=site, showlegend=False)
            if _targets(g.target_enrollment).notna().any():
                fig.add_scatter(x=g.month, y=_targets(g.target_enrollment), mode="lines", showlegend=False,
                                legendgroup=site, line=dict(color=colour, width=1, dash="dot"), hoverinfo="skip")
    else:
        pooled = accrual[accrual.site_id == "all"]
        fig.add_scatter(x=pooled.month, y=drawn(pooled.cum_enrolled), mode="lines+markers",
                        name="Enrolled (cumulative)",
                        line=dict(color="#332288", width=3), marker=dict(size=5),
                        customdata=np.column_stack([pooled.n_enrolled.astype(object),
                                                    _of_target(pooled.target_enrollment)]),
                        hovertemplate="%{x|%b %Y}<br>cumulative %{y}%{customdata[1]}"
                                      "<br>this month %{customdata[0]}<extra></extra>")
        if subgroup:
            _total_line(fig, pooled, "", "#332288")
        if _targets(pooled.target_enrollment).notna().any():
            fig.add_scatter(x=pooled.month, y=_targets(pooled.target_enrollment), mode="lines", name=target_label,
                            line=dict(color="#CC6677", width=2, dash="dash"),
                            hovertemplate="target %{y}<extra></extra>")
    fig.update_yaxes(title="Patients enrolled", rangemode="tozero")
    fig.update_xaxes(title="Month of first DEB-TACE")
    return base_layout(fig)


SORTS = {"site": ("site_id", True), "enrolled": ("enrolled_key", False), "pct_target": ("pct_key", False)}
SMALL_KEY = 2.5         # where a suppressed count sorts: after 5 and more, before 0


def enrollment_bars(enrollment: pd.DataFrame, sort: str = "site", subgroup: bool = False) -> Figure:
    """Enrolled versus target per site, as horizontal bars; sort by site, enrolled or % of target.
    A suppressed count ("<5") has no bar and no percentage, its label says "<5", and it sorts
    between 0 and 5, after the sites of the same key by site id (so the order tells nothing more).
    A site without a recorded target has no outline and no percentage (not 0%), and sorts last by %.
    `subgroup` (a filter other than the sites is active): the filtered count beside the site's total
    enrolled (a lighter bar) and its target, "2 of 27 enrolled (target 40)", no percentage; % of
    target sorts by the total's."""
    if enrollment.empty:
        return empty_figure("No site in the current filter.")
    df = enrollment.copy()
    enrolled = drawn(df.n_enrolled)
    df["target_enrollment"] = _targets(df.target_enrollment)
    total = drawn(df.enrolled_total) if subgroup else enrolled
    df["pct_target"] = 100.0 * total / df.target_enrollment.where(df.target_enrollment > 0)
    df["enrolled_key"] = enrolled.fillna(SMALL_KEY)
    df["pct_key"] = df.pct_target.where(total.notna(), -1.0).fillna(-2.0)
    col, ascending = SORTS.get(sort, SORTS["site"])
    df = df.sort_values([col, "site_id"], ascending=[ascending, True])
    shown = df.n_enrolled.astype(object).tolist()
    # short labels leave the bars room on a laptop; the full name is in the hover
    labels = df.site_id + " " + df.site_name.map(lambda n: n if len(n) <= 18 else n[:17].rstrip() + "…")
    fig = Figure()
    fig.add_bar(y=labels, x=df.target_enrollment, orientation="h", name="Target",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color="#6c757d", width=1.5)),
                hovertemplate="%{y}<br>target %{x}<extra></extra>")
    if subgroup:
        totals = df.enrolled_total.astype(object).tolist()
        texts = [f"{n} of {t} enrolled" + (f" (target {g:.0f})" if pd.notna(g) else "")
                 for n, t, g in zip(shown, totals, df.target_enrollment)]
        fig.add_bar(y=labels, x=drawn(df.enrolled_total).fillna(0), orientation="h", name="Enrolled in total",
                    marker_color="rgba(51,34,136,0.25)", customdata=np.array(totals, dtype=object).astype(str),
                    hovertext=df.site_id + " " + df.site_name, hoverinfo="text",
                    hovertemplate="%{hovertext}<br>%{customdata} enrolled in total (no filter)<extra></extra>")
    else:
        texts = [f"{n} ({p:.0f}%)" if pd.notna(p) else f"{n}" for n, p in zip(shown, df.pct_target)]
    of_target = [""] * len(df) if subgroup else _of_target(df.target_enrollment)     # the label says the target
    fig.add_bar(y=labels, x=drawn(df.n_enrolled).fillna(0), orientation="h", name="Enrolled", marker_color="#332288",
                customdata=np.column_stack([of_target, texts]),
                text=texts, textposition="none" if subgroup else "outside", cliponaxis=False,
                hovertext=df.site_id + " " + df.site_name, hoverinfo="text",
                hovertemplate="%{hovertext}<br>enrolled %{customdata[1]}%{customdata[0]}<extra></extra>")
    top = float(max(enrolled.fillna(0).max(), total.fillna(0).max(), df.target_enrollment.fillna(0).max(), 1))
    if subgroup:
        # the label after the longest of the three bars (filtered, total, target), shortened to fit a laptop's card
        end = pd.concat([enrolled.fillna(0), total.fillna(0), df.target_enrollment.fillna(0)], axis=1).max(axis=1)
        short = [t.replace(" enrolled", "") for t in texts]
        fig.add_scatter(y=labels, x=end, mode="text", text=short, textposition="middle right", showlegend=False,
                        hoverinfo="skip", cliponaxis=False, textfont=dict(size=11))
    fig.update_layout(barmode="overlay", bargap=0.25)
    fig.update_yaxes(autorange="reversed", title=None)
    # room for the "n (%)" labels, or the longer "n of N (target T)"
    fig.update_xaxes(title="Patients", range=[0, top * (2.3 if subgroup else 1.45)])
    return base_layout(fig, height=max(300, 60 + 28 * len(df)))


def followup_figure(status: pd.DataFrame) -> Figure:
    """Follow-up status as horizontal bars of n (%); a suppressed count is labelled "<5", no bar."""
    if status.empty or not has_patients(status.n):
        return empty_figure(NO_PATIENTS)
    n = drawn(status.n)
    shown = status.n.astype(object).tolist()
    fig = Figure(Bar(
        y=status.status, x=n.fillna(0), orientation="h", marker_color="#44AA99",
        text=[f"{c} ({p:.1f}%)" if pd.notna(p) else f"{c}" for c, p in zip(shown, status.pct)],
        textposition="outside", cliponaxis=False, customdata=shown,
        hovertemplate="%{y}: %{customdata} patients<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    top = float(n.max()) if (n > 0).any() else float(SMALL_CELL)      # every count suppressed: room for "<5"
    fig.update_xaxes(title="Patients", range=[0, top * 1.35])
    return base_layout(fig, height=max(240, 60 + 34 * len(status)))
