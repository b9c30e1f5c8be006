"""Patient view callback: state + the patient id of the path -> the patient-record export (each part) -> the
baseline, the timeline and the tables. Access is decided here, on the server: a role without patient-level
rows gets a notice and no query runs; an id not of a patient's form, or of a patient outside the data cut,
the filter or the user's sites, gets "no such patient" (the export reads the patient through `cohort`)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, dcc, html

from dashboard import exports, ids
from dashboard.components import RowsTable, graph_config
from dashboard.exports.patient import PARTS, check_patient_id
from dashboard.figures.patient import timeline_figure
from dashboard.state import cached_view, state_context

PATIENT_ID, BODY = "patient-id", "patient-body"     # the page's store (the id from the path) and its content
NOT_FOR_ROLE = "The patient view is not available for your role: it shows one patient's record."
NO_SUCH = "No such patient in this data cut"


def _text(v) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "–"
    if isinstance(v, pd.Timestamp) or hasattr(v, "strftime"):
        return pd.Timestamp(v).strftime("%Y-%m-%d")
    if isinstance(v, (bool,)) or type(v).__name__ == "bool_":
        return "yes" if v else "no"
    return str(v)


def _number(v, digits: int = 1) -> str:
    return "–" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"


def _dose(v) -> str:
    """A dose as recorded (37.5 stays 37.5, 75.0 reads 75)."""
    return "–" if v is None or pd.isna(v) else f"{float(v):g}"


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{float(v):+.1f}%"


def _table(table_id: str, columns: list[str], rows: list[list[str]], empty: str, right=()):
    if not rows:
        return html.P(empty, className="text-muted small mb-0", id=table_id)
    return RowsTable(columns, rows, id=table_id, className="table table-sm table-hover mb-0",
                     column_classes=["text-end" if j in right else None for j in range(len(columns))])


def sessions_table(sessions: pd.DataFrame):
    rows = [[str(n), _text(d), _text(drug), _dose(dose), _text(beads), _text(sup)] for n, d, drug, dose, beads, sup
            in sessions[["session_number", "treatment_date", "drug", "dose_mg", "microsphere_size",
                         "is_superselective"]].itertuples(index=False)]
    return _table("patient-sessions", ["Session", "Date", "Drug", "Dose (mg)", "Beads (µm)", "Superselective"], rows,
                  "No DEB-TACE session recorded.", right=(0, 3))


def scans_table(scans: pd.DataFrame):
    rows = [[_text(v), _text(d), _number(s), _pct(p), _text(o), _text(lr), _text(new)] for v, d, s, p, o, lr, new
            in scans[["visit", "imaging_date", "sum_mm", "pct_change", "overall_response", "local_response",
                      "has_new_lesion"]].itertuples(index=False)]
    return _table("patient-scans", ["Visit", "Date", "Target sum of viable diameters (mm)", "Change from baseline",
                                    "Overall response", "Local response", "New lesion"], rows,
                  "No scan recorded.", right=(2, 3))


def aes_table(aes: pd.DataFrame):
    rows = [[_text(t), str(g), _text(s), _text(r), _text(o), _text(res) if not pd.isna(res) else "not resolved",
             _text(n)] for t, g, s, r, o, res, n
            in aes[["term", "grade", "is_serious", "is_treatment_related", "onset_date", "resolution_date",
                    "session_number"]].itertuples(index=False)]
    return _table("patient-aes", ["CTCAE term", "Grade", "Serious", "Treatment-related", "Onset", "Resolution",
                                  "Session"], rows, "No adverse event recorded.", right=(1, 6))


def restaging_table(restaging: pd.DataFrame):
    rows = [[_text(v), _text(d), _text(b), _text(m), _text(r)] for v, d, b, m, r
            in restaging[["visit", "review_date", "bclc_stage", "is_within_milan", "is_resectable"]].itertuples(
                index=False)]
    return _table("patient-restaging", ["Visit", "Date", "BCLC stage", "Within Milan", "Resectable"], rows,
                  "No restaging review recorded.")


def baseline_list(b: pd.Series):
    """The baseline and how follow-up ended, as a definition list."""
    dead = not pd.isna(b["death_date"])
    items = [("Site", b["site_id"]), ("First DEB-TACE", _text(b["first_treatment_date"])),
             ("BCLC stage", _text(b["bclc_stage"])),
             ("Child-Pugh", f"{_text(b['child_pugh_class'])} ({_text(b['child_pugh_score'])})"),
             ("Etiology", _text(b["etiology"])), ("Age, sex", f"{_text(b['age_years'])}, {_text(b['sex'])}"),
             ("ECOG PS", _text(b["ecog_ps"])),
             ("Death" if dead else "Last contact", _text(b["death_date"] if dead else b["last_known_alive_date"])),
             ("Off study", f"{_text(b['off_study_date'])} ({_text(b['off_study_reason'])})"
              if not pd.isna(b["off_study_date"]) else "no")]
    return html.Dl([part for label, value in items for part in (html.Dt(label, className="col-sm-2"),
                                                                 html.Dd(str(value), className="col-sm-4 mb-1"))],
                   className="row small mb-0", id="patient-baseline")


def _card(title: str, body):
    return dbc.Card([dbc.CardHeader(html.H2(title, className="h6 mb-0"), className="py-2"), dbc.CardBody(body)],
                    className="mb-3 figure-card")


def notice(text: str, color: str = "warning"):
    """The page without a patient to show: its heading (every page has one) and why."""
    return html.Div([html.H1("Patient view", className="h4 mt-1"),
                     dbc.Alert(text, color=color, className="mb-0", id="patient-notice")])


def patient_body(state, patient_id):
    """The page's content for the data cut, filters and scope of `state`."""
    snapshot, filters, scope = state_context(state)
    if not scope.patient_level:
        return notice(NOT_FOR_ROLE)
    pid = check_patient_id(patient_id)
    if pid is None:
        return notice(f"{NO_SUCH}: a patient id is 1 to 40 letters, digits, '_', '-' or '.'.")
    parts = {p: exports.run_export("patient-record", snapshot, filters, scope, patient_id=pid, part=p).rows
             for p in PARTS}
    if parts["baseline"].empty:
        where = " and the current filter" if not filters.is_empty() else ""
        sites = " and your sites" if scope.patient_sites else ""
        return notice(f"{NO_SUCH}{where}{sites}: {pid} (data cut {snapshot.snapshot_id}).")
    b = parts["baseline"].iloc[0]
    figure = timeline_figure(b, parts["sessions"], parts["scans"], parts["aes"], parts["restaging"])
    return html.Div([
        html.H1(f"Patient {pid}", className="h4 mt-1", id="patient-heading"),
        _card("Baseline and follow-up", baseline_list(b)),
        _card("Timeline", [dcc.Graph(id="patient-timeline", figure=figure, config=graph_config("patient-timeline", in_card=False),
                                     style={"minHeight": "340px"}),
                           html.Div("Sessions, scans (colour: overall mRECIST response), adverse events (colour: "
                                    "CTCAE grade, at onset), restaging reviews, and death or last contact; months "
                                    "= days from the first DEB-TACE / 30.4375.", className="small text-muted")]),
        dbc.Row([dbc.Col(_card("DEB-TACE sessions", sessions_table(parts["sessions"])), xxl=5),
                 dbc.Col(_card("Restaging reviews", restaging_table(parts["restaging"])), xxl=7)]),
        _card("Scans (mRECIST)", [scans_table(parts["scans"]), html.Div(
            "Target sum: viable diameters of all target lesions (– when one is unmeasured or none is recorded); "
            "change from the baseline sum.", className="small text-muted mt-1")]),
        _card("Adverse events (CTCAE v4.0)", aes_table(parts["aes"])),
    ])


@callback(Output(BODY, "children"), Input(ids.STATE, "data"), Input(PATIENT_ID, "data"))
@cached_view("patient.body")
def _body(state, patient_id):
    return patient_body(state, patient_id)
