"""Enrollment page: not built yet."""
import dash
from dash import html

dash.register_page(__name__, path="/enrollment", name="Enrollment", title="Enrollment · HCC DEB-TACE Registry")

layout = html.Div([html.H1("Enrollment", className="h4 mt-2"),
                   html.P("This page is not built yet.", className="alert alert-secondary")])
