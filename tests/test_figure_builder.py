"""The dict figure builder against plotly's own graph_objects (the independent reference): the
same calls must give the same figure JSON, and plotly must accept every figure we build
(go.Figure validates each property and raises on an unknown one)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots as go_make_subplots

from dashboard.figures import builder
from dashboard.figures.builder import Props


def as_json(fig) -> dict:
    """A figure (ours or plotly's) through plotly's validation and serialisation."""
    validated = go.Figure(fig.to_plotly_json() if isinstance(fig, builder.Figure) else fig)
    out = json.loads(pio.to_json(validated))
    out["layout"].pop("template", None)
    return out


def build(make, make_subplots, scatter_cls):
    """One sequence of calls that exercises what our figure modules use."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[430, 120])
    x = np.array([0.0, 1.5, 3.0])
    fig.add_scatter(x=x, y=pd.Series([1.0, 0.8, 0.5]), mode="lines", line=dict(color="#332288", shape="hv"),
                    name="A", customdata=np.column_stack([x, x]), hovertemplate="%{x}<extra></extra>", row=1, col=1)
    fig.add_scatter(x=x, y=[0, 0, 0], mode="text", text=["1", "2", "3"], textfont=dict(size=12),
                    cliponaxis=False, hoverinfo="skip", showlegend=False, row=2, col=1)
    fig.add_trace(scatter_cls(x=[1], y=[2], error_x=dict(type="data", array=[0.5]), marker_line_width=2),
                  row=1, col=1)
    fig.add_hline(y=0.5, line=dict(color="#adb5bd", width=1, dash="dot"), row=1, col=1)
    fig.add_annotation(x=0, xref="paper", y=-1, yref="y2", text="<b>A</b> at risk", showarrow=False,
                       font=dict(color="#332288", size=12))
    fig.add_annotation(x=1, y=2, text="in a subplot", row=2, col=1)
    fig.update_xaxes(range=[-0.1, 3.2], tickvals=[0, 3], zeroline=False)
    fig.update_xaxes(title=dict(text="Months", standoff=6), showticklabels=True, row=1, col=1)
    fig.update_yaxes(title="Survival", tickformat=".0%", row=1, col=1)
    fig.update_yaxes(visible=False, fixedrange=True, row=2, col=1)
    fig.update_layout(height=600, margin=dict(l=70, r=24), legend=dict(orientation="h", y=1.01),
                      title_text="KM", xaxis2_title_standoff=4, hoverlabel=dict(font_size=13), title=None)
    fig.update_layout(margin=dict(t=40))
    return fig


def test_subplots_traces_and_layout_match_plotly():
    ours = build(builder.Figure, builder.make_subplots, builder.Scatter)
    theirs = build(go.Figure, go_make_subplots, go.Scatter)
    assert as_json(ours) == as_json(theirs)


def test_side_by_side_panels_with_titles_match_plotly():
    def panels(make_subplots):
        fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.09,
                            subplot_titles=["Downstaging", "Milan", "Resectable"])
        for col in (1, 2, 3):
            fig.add_scatter(x=[10, 20], y=["All", "B"], mode="markers", row=1, col=col)
        fig.update_xaxes(range=[0, 100], ticksuffix="%")
        return fig
    assert as_json(panels(builder.make_subplots)) == as_json(panels(go_make_subplots))


def test_plain_figure_bars_boxes_heatmap_and_hline_annotation_match_plotly():
    def plain(figure, bar, heatmap):
        fig = figure(bar(x=["S01", "S02"], y=[3, 4], marker_color="#332288", text=["3", "4"]))
        fig.add_box(y=[1, 2, 3], x=["a"] * 3, boxpoints="all", jitter=0.45, pointpos=0)
        fig.add_trace(heatmap(z=[[1, 2], [3, 4]], x=["G1", "G2"], y=["t1", "t2"], colorscale="Blues"))
        fig.add_hline(y=-30, line=dict(color="#6c757d", dash="dash", width=1.5),
                      annotation=dict(text="−30%", font=dict(size=11, color="#6c757d")), annotation_position="right")
        fig.add_shape(type="rect", xref="paper", x0=0, x1=1, y0=0.5, y1=1.5, layer="below", line_width=0)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=["S02", "S01"])
        fig.update_yaxes(ticksuffix="%")
        fig.update_layout(barmode="stack", yaxis_range=[0, 10])
        return fig
    assert as_json(plain(builder.Figure, builder.Bar, builder.Heatmap)) == as_json(plain(go.Figure, go.Bar, go.Heatmap))


def test_reads_as_attributes_like_graph_objects():
    fig = builder.Figure()
    fig.add_scatter(x=[1], y=[2], name="A")
    fig.update_layout(xaxis_title_text="Months", annotations=[dict(text="n")])
    assert fig.data[0].name == "A" and fig.data[0].type == "scatter"
    assert fig.layout.xaxis.title.text == "Months"
    assert fig.layout.annotations[0].text == "n"
    assert fig.layout.shapes is None                 # unset reads as None, as in graph_objects
    assert isinstance(fig.layout.xaxis, Props)


def test_unsupported_annotation_position_is_refused():
    with pytest.raises(ValueError, match="annotation_position"):
        builder.Figure().add_hline(y=1, annotation=dict(text="x"), annotation_position="top left")
