"""Data quality: the findings a data manager chases, per site and rule, and every finding in a sortable,
filterable grid with its CSV (the data-quality export; rules in dashboard/quality.py, docs/quality.md)."""
import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.callbacks.quality import COUNTS, COUNTS_NOTE, DOWNLOAD, DOWNLOAD_BUTTON, GRID, GRID_NOTE

dash.register_page(__name__, path="/quality", name="Data quality", title="Data quality · HCC DEB-TACE Registry",
                   order=6)


def _card(title, body, button=None):
    header = dbc.Row([dbc.Col(html.H2(title, className="h6 mb-0"), className="d-flex align-items-center")]
                     + ([dbc.Col(button, width="auto")] if button else []), className="g-2")
    return dbc.Card([dbc.CardHeader(header, className="py-2"), dbc.CardBody(body)], className="mb-3 figure-card")


def layout(**_):
    grid = dag.AgGrid(
        id=GRID, rowData=[], columnDefs=[],
        defaultColDef={"sortable": True, "filter": True, "floatingFilter": True, "resizable": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 50, "animateRows": False,
                         "enableCellTextSelection": True},
        className="ag-theme-alpine", style={"height": "560px", "width": "100%"})
    download = dbc.Button("Download data (CSV)", id=DOWNLOAD_BUTTON, size="sm", color="secondary", outline=True)
    return html.Div([
        html.H1("Data quality", className="h4 mt-1"),
        _card("Findings per site and rule", [
            dcc.Loading(html.Div(id=COUNTS, className="table-responsive"), type="circle", delay_show=250),
            html.Div(id=COUNTS_NOTE, className="footnote small text-muted mt-1"),
        ]),
        _card("Findings", [grid, html.Div(id=GRID_NOTE, className="footnote small text-muted mt-1"),
                           dcc.Download(id=DOWNLOAD)], button=download),
    ], id="quality-page")
