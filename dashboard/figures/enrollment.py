"""Enrollment figures: cumulative accrual against targets, enrolled versus target per site,
follow-up status."""
from __future__ import annotations

import pandas as pd

from dashboard.figures.builder import Bar, Figure
from dashboard.figures.common import NO_PATIENTS, QUALITATIVE, base_layout, empty_figure


def accrual_figure(accrual: pd.DataFrame, per_site: bool = False) -> Figure:
    """Cumulative patients by month: pooled (with the summed target) or one line per site (with
    each site's target as a dotted line in the same colour). Input: rows of accrual export."""
    if accrual.empty or accrual["n_enrolled"].sum() == 0:
        return empty_figure(NO_PATIENTS)
    fig = Figure()
    if per_site:
        for i, (site, g) in enumerate(accrual[accrual.site_id != "all"].groupby("site_id", sort=True)):
            colour = QUALITATIVE[i % len(QUALITATIVE)]
            name = f"{site} {g.site_name.iloc[0]}"
            fig.add_scatter(x=g.month, y=g.cum_enrolled, mode="lines", name=site, line=dict(color=colour, width=2),
                            legendgroup=site, customdata=g[["n_enrolled", "target_enrollment"]],
                            hovertemplate=f"<b>{name}</b><br>%{{x|%b %Y}}<br>cumulative %{{y}} of target "
                                          "%{customdata[1]}<br>this month %{customdata[0]}<extra></extra>")
            fig.add_scatter(x=g.month, y=g.target_enrollment, mode="lines", showlegend=False, legendgroup=site,
                            line=dict(color=colour, width=1, dash="dot"), hoverinfo="skip")
    else:
        pooled = accrual[accrual.site_id == "all"]
        fig.add_scatter(x=pooled.month, y=pooled.cum_enrolled, mode="lines+markers", name="Enrolled (cumulative)",
                        line=dict(color="#332288", width=3), marker=dict(size=5),
                        customdata=pooled[["n_enrolled", "target_enrollment"]],
                        hovertemplate="%{x|%b %Y}<br>cumulative %{y} of target %{customdata[1]}"
                                      "<br>this month %{customdata[0]}<extra></extra>")
        fig.add_scatter(x=pooled.month, y=pooled.target_enrollment, mode="lines", name="Target (sum of sites)",
                        line=dict(color="#CC6677", width=2, dash="dash"),
                        hovertemplate="target %{y}<extra></extra>")
    fig.update_yaxes(title="Patients enrolled", rangemode="tozero")
    fig.update_xaxes(title="Month of first DEB-TACE")
    return base_layout(fig)


SORTS = {"site": ("site_id", True), "enrolled": ("n_enrolled", False), "pct_target": ("pct_target", False)}


def enrollment_bars(enrollment: pd.DataFrame, sort: str = "site") -> Figure:
    """Enrolled versus target per site, as horizontal bars; sort by site, enrolled or % of target."""
    if enrollment.empty:
        return empty_figure("No site in the current filter.")
    df = enrollment.copy()
    df["pct_target"] = 100.0 * df.n_enrolled / df.target_enrollment.where(df.target_enrollment > 0)
    col, ascending = SORTS.get(sort, SORTS["site"])
    df = df.sort_values([col, "site_id"], ascending=[ascending, True])
    # short labels leave the bars room on a laptop; the full name is in the hover
    labels = df.site_id + " " + df.site_name.map(lambda n: n if len(n) <= 18 else n[:17].rstrip() + "…")
    fig = Figure()
    fig.add_bar(y=labels, x=df.target_enrollment, orientation="h", name="Target",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color="#6c757d", width=1.5)),
                hovertemplate="%{y}<br>target %{x}<extra></extra>")
    fig.add_bar(y=labels, x=df.n_enrolled, orientation="h", name="Enrolled", marker_color="#332288",
                customdata=df[["target_enrollment", "pct_target"]],
                text=[f"{n} ({p:.0f}%)" if pd.notna(p) else f"{n}" for n, p in zip(df.n_enrolled, df.pct_target)],
                textposition="outside", cliponaxis=False,
                hovertext=df.site_id + " " + df.site_name, hoverinfo="text",
                hovertemplate="%{hovertext}<br>enrolled %{x} of target %{customdata[0]} (%{customdata[1]:.0f}%)<extra></extra>")
    fig.update_layout(barmode="overlay", bargap=0.25)
    fig.update_yaxes(autorange="reversed", title=None)
    top = float(max(df.n_enrolled.max(), df.target_enrollment.max(), 1))
    fig.update_xaxes(title="Patients", range=[0, top * 1.45])    # room for the "n (%)" labels
    return base_layout(fig, height=max(300, 60 + 28 * len(df)))


def followup_figure(status: pd.DataFrame) -> Figure:
    """Follow-up status as horizontal bars of n (%)."""
    if status.empty or status.n.sum() == 0:
        return empty_figure(NO_PATIENTS)
    fig = Figure(Bar(
        y=status.status, x=status.n, orientation="h", marker_color="#44AA99",
        text=[f"{n} ({p:.1f}%)" for n, p in zip(status.n, status.pct)], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x} patients<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="Patients", range=[0, float(status.n.max()) * 1.35])
    return base_layout(fig, height=max(240, 60 + 34 * len(status)))
