"""Overview: the headline numbers, which data cut is shown, how many patients and sites, and its data-quality
status. Each part is a Div its callback fills (dashboard/callbacks/overview.py), one after the other."""
import dash
from dash import html

from dashboard.callbacks.changes import changes_section

dash.register_page(__name__, path="/", name="Overview", title="Overview · HCC DEB-TACE Registry", order=0)

layout = html.Div([
    html.H1("Registry overview", className="h4 mt-2 mb-1"),
    html.P("Superselective HepaSphere DEB-TACE in intermediate and advanced hepatocellular carcinoma: "
           "a multicentre registry in Taiwan. Primary endpoint: 1-year overall survival. Each number "
           "below opens the page that shows it, with the current filters.",
           className="text-muted small mb-2"),
    html.Div(id="overview-headline"),
    html.Div(id="overview-cards"),
    changes_section(),
    html.H2("Data quality", className="h5 mt-3"),
    html.P("Checks of the snapshot contract (docs/snapshot-contract.md). Errors reject a data cut: the "
           "dashboard keeps serving the last one that passed. Warnings are served and listed here; the "
           "same list is printed by python -m dashboard validate. Every finding by site and patient, with "
           "the analysis plan's checks, is on the Data quality page (navigation bar), for the current filters.",
           className="text-muted small"),
    html.Div(id="overview-quality"),
])
