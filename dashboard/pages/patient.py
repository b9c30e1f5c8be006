"""Patient view (/patient/<patient_id>, not in the navigation): one patient's baseline, timeline, DEB-TACE sessions,
scans, adverse events and restaging reviews, for roles with patient-level rows (dashboard/callbacks/patient.py).
Reached from the patient links of the Safety listing, the changes panel and the Tumour response figures."""
import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from dashboard.callbacks.patient import BODY, PATIENT_ID
from dashboard.exports.patient import check_patient_id

dash.register_page(__name__, path="/patient", path_template="/patient/<patient_id>", name="Patient",
                   title="Patient · HCC DEB-TACE Registry", order=90)


BACK = "patient-back"


def layout(patient_id=None, **_):
    """The id from the path, only when it has a patient id's form (the callback says "no such patient" else):
    nothing longer than an id reaches a store or a query."""
    return html.Div([
        dbc.Button("← Back", id=BACK, size="sm", color="link", className="px-0 py-0 small",
                   title="Back to the page you came from (the same data cut and filters)"),
        dcc.Store(id=PATIENT_ID, data=check_patient_id(patient_id)),
        dcc.Loading(html.Div(id=BODY), type="circle", delay_show=250),
    ])


clientside_callback(ClientsideFunction(namespace="registry", function_name="back"),
                    Output(BACK, "title"), Input(BACK, "n_clicks"), prevent_initial_call=True)
