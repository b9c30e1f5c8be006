"""Enrollment: accrual against targets, enrolled versus target per site, Table 1, follow-up."""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard.components import figure_card, table_card

dash.register_page(__name__, path="/enrollment", name="Enrollment", title="Enrollment · HCC DEB-TACE Registry",
                   order=1)


def layout(mode="pooled", sort="site", **_):
    """Page options from the URL: ?mode=site&sort=enrolled."""
    return html.Div([
        html.H1("Enrollment", className="h4 mt-1"),
        dbc.Row([
            dbc.Col(figure_card("accrual", "Cumulative accrual against target", controls=dbc.RadioItems(
                id=ids.page_option("mode"), value=mode if mode in ("pooled", "site") else "pooled", inline=True,
                options=[{"label": "Pooled", "value": "pooled"}, {"label": "Per site", "value": "site"}])), xl=7),
            dbc.Col(figure_card("enrollment-by-site", "Enrolled versus target per site", controls=html.Div([
                dbc.Label("Sort by", className="me-2 small"),
                dcc.Dropdown(id=ids.page_option("sort"), clearable=False, style={"width": "14rem"},
                             value=sort if sort in ("site", "enrolled", "pct_target") else "site",
                             options=[{"label": "Site", "value": "site"},
                                      {"label": "Patients enrolled", "value": "enrolled"},
                                      {"label": "% of target", "value": "pct_target"}]),
            ], className="d-flex align-items-center")), xl=5),
        ]),
        dbc.Row([
            # Table 1 needs ~800 px for four columns: side by side only on wide screens (>= 1400 px)
            dbc.Col(table_card("baseline-table", "Baseline characteristics (Table 1)"), xxl=7),
            dbc.Col(figure_card("followup-status", "Follow-up status", height=300), xxl=5),
        ]),
    ])
