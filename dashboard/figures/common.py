"""Shared figure style: readable on a laptop and on a 1920x1080 projector, colour-blind safe."""
from __future__ import annotations

from dashboard.figures.builder import Figure


FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
            size=14, color="#212529")
# Paul Tol's "muted"/"safe" qualitative colours (colour-blind safe), then greys
QUALITATIVE = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
               "#AA4499", "#661100", "#6699CC", "#888888"]
BCLC_COLOURS = {"0": "#117733", "A": "#44AA99", "B": "#332288", "C": "#CC6677", "D": "#882255", "all": "#332288"}
BOR_COLOURS = {"CR": "#117733", "PR": "#44AA99", "SD": "#DDCC77", "PD": "#CC6677", "NE": "#888888"}


def colour_for(group, index: int) -> str:
    return BCLC_COLOURS.get(str(group), QUALITATIVE[index % len(QUALITATIVE)]) if str(group) in BCLC_COLOURS \
        else QUALITATIVE[index % len(QUALITATIVE)]


_AXIS = dict(gridcolor="#E9ECEF", linecolor="#CED4DA", zerolinecolor="#CED4DA", ticks="", automargin=True,
             title=dict(standoff=12))
# A small template in place of "plotly_white": the same look, without deep-copying plotly's large
# built-in template into every figure (measured: ~25 ms of every figure build).
TEMPLATE = dict(layout=dict(
    paper_bgcolor="white", plot_bgcolor="white", colorway=QUALITATIVE, hovermode="closest",
    xaxis=_AXIS, yaxis=_AXIS, coloraxis=dict(colorbar=dict(outlinewidth=0, ticks="")),
))


def base_layout(fig: Figure, title: str | None = None, height: int = 420) -> Figure:
    fig.update_layout(
        template=TEMPLATE, font=FONT, height=height, margin=dict(l=60, r=20, t=50 if title else 20, b=50),
        title=dict(text=title, x=0, xanchor="left", font=dict(size=16)) if title else None,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        hoverlabel=dict(font_size=13), separators=".,",
    )
    return fig


def empty_figure(message: str, height: int = 300) -> Figure:
    """A figure that says why there is nothing to draw (e.g. no patient in the filter)."""
    fig = Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=16, color="#6c757d"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, height=height)


NO_PATIENTS = "No patients in the current filter. Remove a filter to see this figure."
