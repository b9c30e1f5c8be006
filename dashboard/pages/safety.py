"""Safety (CTCAE v4.0, secondary objective 3): the listing of serious safety signals (grade 5 and serious
grade >= 3 events, its own options), then worst grade per patient by term and grade, by term and site / BCLC
stage / Child-Pugh class, and the incidence table. The episode switches (all / treatment-related / serious;
onset within N days of a session) apply to those three cards."""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.callbacks.safety import (BY, EVENT_CHOICES, EVENTS, GRADE_MAP, GROUP_MAP, LEVEL, LEVEL_CHOICES,
                                        LISTING, MEASURE, MEASURE_CHOICES, MIN_GRADE, MIN_GRADE_CHOICES, SAFETY_BY,
                                        SERIOUS_ONLY, TABLE, WITHIN_DAYS, within_days_value)
from dashboard.components import figure_card, table_card

dash.register_page(__name__, path="/safety", name="Safety", title="Safety · HCC DEB-TACE Registry", order=4)


def _choices(mapping: dict) -> list[dict]:
    return [{"label": label, "value": key} for key, label in mapping.items()]


def episode_controls(events: str, within_days: int | None):
    """Which episodes count, for every card."""
    return dbc.Card(dbc.CardBody(dbc.Row([
        dbc.Col([
            html.Span("Adverse events counted", className="filter-label me-3"),
            dbc.RadioItems(id=EVENTS, value=events, inline=True, options=_choices(EVENT_CHOICES)),
        ], width="auto", className="d-flex align-items-center flex-wrap", id="safety-events"),
        dbc.Col([
            dbc.Label("Onset within", className="filter-label me-2 mb-0"),
            dcc.Input(id=WITHIN_DAYS, type="number", min=0, step=1, debounce=True, placeholder="all",
                      value=within_days, className="form-control form-control-sm", style={"width": "5.5rem"}),
            html.Span("days of a DEB-TACE session", className="ms-2"),
        ], width="auto", className="d-flex align-items-center", id="safety-within-days"),
    ], className="g-3 align-items-center")), className="mb-3", id="safety-controls")


def incidence_card(level: str):
    card = table_card(TABLE, "Adverse-event incidence (worst grade per patient)")
    switch = html.Div(dbc.RadioItems(id=LEVEL, value=level, inline=True, options=_choices(LEVEL_CHOICES)),
                      className="mb-2 figure-controls", id="safety-level")
    card.children[1].children.insert(0, switch)      # table_card takes no controls argument
    return card


def listing_card(min_grade: str, serious_only: list):
    """The listing of serious safety signals, with its own options (in the URL: min_grade, serious_only)."""
    card = table_card(LISTING, "Serious safety signals: event listing")
    controls = html.Div([
        dbc.Label("Events listed", className="me-2 small mb-0"),
        html.Div(dcc.Dropdown(id=MIN_GRADE, value=min_grade, clearable=False, searchable=False,
                              options=_choices(MIN_GRADE_CHOICES), style={"width": "19rem"}), id="safety-min-grade"),
        html.Div(dbc.Checklist(id=SERIOUS_ONLY, value=serious_only, switch=True,
                               options=[{"label": "Serious only", "value": "on"}]), className="ms-3",
                 id="safety-serious-only"),
    ], className="d-flex align-items-center flex-wrap mb-2 figure-controls")
    card.children[1].children.insert(0, controls)      # table_card takes no controls argument
    return card


def layout(events="all", within_days=None, by="site_id", measure="any", level="term", min_grade="default",
           serious_only=None, **_):
    """Page options from the URL: ?events=serious&within_days=7&by=bclc_stage&measure=grade3&level=soc
    &min_grade=4&serious_only=on."""
    min_grade = min_grade if min_grade in MIN_GRADE_CHOICES else "default"
    serious_only = ["on"] if serious_only == "on" else []
    events = events if events in EVENT_CHOICES else "all"
    by = by if by in SAFETY_BY else "site_id"
    measure = measure if measure in MEASURE_CHOICES else "any"
    level = level if level in LEVEL_CHOICES else "term"
    group_controls = html.Div([
        dbc.Label("Columns", className="me-2 small mb-0"),
        html.Div(dcc.Dropdown(id=BY, value=by, clearable=False, searchable=False, options=_choices(SAFETY_BY),
                              style={"width": "12rem"}), id="safety-by"),
        html.Div(dbc.RadioItems(id=MEASURE, value=measure, inline=True, options=_choices(MEASURE_CHOICES)),
                 className="ms-3", id="safety-measure"),
    ], className="d-flex align-items-center flex-wrap")
    return html.Div([
        html.H1("Safety", className="h4 mt-1"),
        listing_card(min_grade, serious_only),
        episode_controls(events, within_days_value(within_days)),
        dbc.Row([
            dbc.Col(figure_card(GRADE_MAP, "CTCAE terms by worst grade (% of patients)", height=320), xxl=5),
            dbc.Col(figure_card(GROUP_MAP, "CTCAE terms by site, BCLC stage or Child-Pugh class (% of patients)",
                                height=320, controls=group_controls), xxl=7),
        ]),
        incidence_card(level),
    ])
