"""Enrollment: accrual against targets, enrolled versus target per site, Table 1, follow-up."""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.components import figure_card, table_card

dash.register_page(__name__, path="/enrollment", name="Enrollment", title="Enrollment · HCC DEB-TACE Registry",
                   order=1)

layout = html.Div([
    html.H1("Enrollment", className="h4 mt-1"),
    dbc.Row([
        dbc.Col(figure_card("accrual", "Cumulative accrual against target", controls=dbc.RadioItems(
            id="accrual-mode", value="pooled", inline=True,
            options=[{"label": "Pooled", "value": "pooled"}, {"label": "Per site", "value": "site"}])), xl=7),
        dbc.Col(figure_card("enrollment-by-site", "Enrolled versus target per site", controls=html.Div([
            dbc.Label("Sort by", html_for="enrollment-sort", className="me-2 small"),
            dcc.Dropdown(id="enrollment-sort", value="site", clearable=False, style={"width": "14rem"},
                         options=[{"label": "Site", "value": "site"},
                                  {"label": "Patients enrolled", "value": "enrolled"},
                                  {"label": "% of target", "value": "pct_target"}]),
        ], className="d-flex align-items-center")), xl=5),
    ]),
    dbc.Row([
        dbc.Col(table_card("baseline-table", "Baseline characteristics (Table 1)"), xl=7),
        dbc.Col(figure_card("followup-status", "Follow-up status", height=300), xl=5),
    ]),
])
