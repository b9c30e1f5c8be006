"""Downstaging (exploratory objective 1): staging flow, downstaging and conversion rates, time to
downstaging with death competing, downsizing of the largest lesion."""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.callbacks.downstaging import BY, CIF, DOWNSIZING, FLOW, MEASURE, RATES
from dashboard.components import figure_card
from dashboard.grouping import GROUPINGS

dash.register_page(__name__, path="/downstaging", name="Downstaging", title="Downstaging · HCC DEB-TACE Registry",
                   order=5)

MEASURES = {"bclc": "BCLC stage", "milan": "Milan criteria", "resectable": "Resectability"}


def layout(measure="bclc", by="bclc_stage", **_):
    """Page options from the URL: ?measure=milan&by=site_id."""
    measure = measure if measure in MEASURES else "bclc"
    by = by if by in GROUPINGS else "bclc_stage"
    return html.Div([
        dbc.Row([
            dbc.Col(html.H1("Downstaging", className="h4 mb-0"), width="auto"),
            dbc.Col(html.Div([
                dbc.Label("Group by", className="me-2 mb-0 small fw-semibold"),
                html.Div(dcc.Dropdown(id=BY, value=by, clearable=False, searchable=False, style={"width": "15rem"},
                                      options=[{"label": label, "value": key} for key, label in GROUPINGS.items()]),
                         id="downstaging-by"),
            ], className="d-flex align-items-center"), width="auto"),
            dbc.Col(html.Span("Rates, time to downstaging and downsizing are shown per group.",
                              className="text-muted small"), className="d-none d-xl-block"),
        ], className="align-items-center g-3 mt-1 mb-2"),
        dbc.Row([
            dbc.Col(figure_card(FLOW, "Staging flow: baseline to best follow-up", height=500, controls=html.Div(dbc.RadioItems(
                id=MEASURE, value=measure, inline=True,
                options=[{"label": label, "value": key} for key, label in MEASURES.items()]), id="downstaging-measure")),
                xl=7),
            dbc.Col(figure_card(CIF, "Time to downstaging to within Milan (cumulative incidence)"), xl=5),
        ]),
        dbc.Row([
            dbc.Col(figure_card(RATES, "Downstaging and conversion rates", height=300), xl=7),
            dbc.Col(figure_card(DOWNSIZING, "Downsizing of the largest viable lesion"), xl=5),
        ]),
    ])
