"""Tumour response page: not built yet (see the project's open issues)."""
import dash
from dash import html

dash.register_page(__name__, path="/response", name="Tumour response", title="Tumour response · HCC DEB-TACE Registry")

layout = html.Div([
    html.H1("Tumour response", className="h4 mt-2"),
    html.P("This page is not built yet. The data behind it is available from the command line: "
           "python -m dashboard export --help.", className="alert alert-secondary"),
])
