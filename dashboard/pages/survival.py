"""Survival page: not built yet (see the project's open issues)."""
import dash
from dash import html

dash.register_page(__name__, path="/survival", name="Survival", title="Survival · HCC DEB-TACE Registry")

layout = html.Div([
    html.H1("Survival", className="h4 mt-2"),
    html.P("This page is not built yet. The data behind it is available from the command line: "
           "python -m dashboard export --help.", className="alert alert-secondary"),
])
