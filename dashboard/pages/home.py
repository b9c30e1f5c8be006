"""Overview: which data cut is shown, how many patients and sites, and its data-quality status."""
import dash
from dash import html

dash.register_page(__name__, path="/", name="Overview", title="Overview · HCC DEB-TACE Registry", order=0)

layout = html.Div([
    html.H1("Registry overview", className="h4 mt-2"),
    html.P("Superselective HepaSphere DEB-TACE in intermediate and advanced hepatocellular carcinoma: "
           "a multicentre registry in Taiwan. Primary endpoint: 1-year overall survival.",
           className="text-muted"),
    html.Div(id="overview-cards"),
])
