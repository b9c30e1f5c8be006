"""Tumour response (mRECIST, secondary objectives 1 and 2): waterfall, best overall response and
ORR/DCR by group, spider and swimmer plots, and recorded responses that disagree with the
measurements. The scope switch (overall / local) at the top applies to every card."""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.analytics.response import SWIMMER_SORTS
from dashboard.callbacks.response import (BOR, BY, CONSISTENCY, DEFAULT_SIZE, HIGHLIGHT, HIGHLIGHT_CLEAR,
                                          HIGHLIGHT_LABEL, OPEN_PATIENT, OPEN_PATIENT_SWIMMER, SCOPE, SCOPE_CHOICES,
                                          SIZES, SORT, SPIDER, SUMMARY, SWIMMER, SWIMMER_COUNT, SWIMMER_PAGE, SWIMMER_SIZE, WATERFALL)
from dashboard.components import figure_card, table_card
from dashboard.grouping import GROUPINGS

dash.register_page(__name__, path="/response", name="Tumour response",
                   title="Tumour response · HCC DEB-TACE Registry", order=3)


def _choices(mapping: dict) -> list[dict]:
    return [{"label": label, "value": key} for key, label in mapping.items()]


def top_controls(scope: str):
    """The response scope for every card, and the highlighted patient."""
    return dbc.Card(dbc.CardBody(dbc.Row([
        dbc.Col([
            html.Span("Response", className="filter-label me-3"),
            dbc.RadioItems(id=SCOPE, value=scope, inline=True, options=_choices(SCOPE_CHOICES)),
        ], width="auto", className="d-flex align-items-center flex-wrap", id="response-scope"),
        dbc.Col([
            html.Span(id=HIGHLIGHT_LABEL, className="small"),
            dcc.Link(id=OPEN_PATIENT, href="", className="small fw-semibold ms-1", style={"display": "none"}),
            dbc.Button("Clear", id=HIGHLIGHT_CLEAR, size="sm", color="secondary", outline=True, disabled=True,
                       className="ms-2 py-0"),
        ], className="d-flex align-items-center justify-content-xl-end"),
    ], className="g-2 align-items-center")), className="mb-3", id="response-controls")


def swimmer_controls(sort: str):
    return html.Div([
        dbc.Label("Sort lanes by", className="me-2 small mb-0"),
        html.Div(dcc.Dropdown(id=SORT, value=sort, clearable=False, searchable=False, options=_choices(SWIMMER_SORTS),
                              style={"width": "21rem"}), id="response-swimmer-sort"),
        dbc.Label("Lanes per page", className="ms-3 me-2 small mb-0"),
        html.Div(dcc.Dropdown(id=SWIMMER_SIZE, value=DEFAULT_SIZE, clearable=False, searchable=False,
                              options=[{"label": str(n), "value": n} for n in SIZES], style={"width": "5.5rem"})),
    ], className="d-flex align-items-center flex-wrap")


def swimmer_pager():
    return html.Div([
        html.Span(id=SWIMMER_COUNT, className="small text-muted me-3"),
        dcc.Link(id=OPEN_PATIENT_SWIMMER, href="", className="small fw-semibold me-3", style={"display": "none"}),
        dbc.Pagination(id=SWIMMER_PAGE, max_value=1, active_page=1, fully_expanded=False, first_last=True,
                       previous_next=True, size="sm", className="mb-0"),
    ], className="d-flex align-items-center flex-wrap mt-1")


def layout(scope="overall", by="bclc_stage", sort="time_desc", **_):
    """Page options from the URL: ?scope=local&by=site_id&sort=time_asc."""
    scope = scope if scope in SCOPE_CHOICES else "overall"
    by = by if by in GROUPINGS else "bclc_stage"
    sort = sort if sort in SWIMMER_SORTS else "time_desc"
    group_controls = html.Div([
        dbc.Label("Group by", className="me-2 small mb-0"),
        html.Div(dcc.Dropdown(id=BY, value=by, clearable=False, searchable=False, options=_choices(GROUPINGS),
                              style={"width": "15rem"}), id="response-by"),
    ], className="d-flex align-items-center")
    return html.Div([
        html.H1("Tumour response (mRECIST)", className="h4 mt-1"),
        dcc.Store(id=HIGHLIGHT, storage_type="memory"),
        top_controls(scope),
        dbc.Row([
            dbc.Col(figure_card(WATERFALL, "Waterfall: best change in viable tumour", height=440), xl=7),
            dbc.Col(figure_card(SPIDER, "Spider plot", height=440), xl=5),
        ]),
        dbc.Row([
            dbc.Col(figure_card(BOR, "Best overall response", controls=group_controls, height=260), xl=5),
            dbc.Col(table_card(SUMMARY, "Objective response (ORR) and disease control (DCR)"), xl=7),
        ]),
        figure_card(SWIMMER, "Swimmer: treatment, scans and outcome per patient", controls=swimmer_controls(sort),
                    height=300, extra=swimmer_pager()),
        table_card(CONSISTENCY, "Data quality: recorded response versus measurements"),
    ])
