"""Safety page callbacks: state + episode switches -> the ae-incidence export -> heatmaps and table; state +
listing options -> the ae-listing export -> the listing of serious safety signals."""
from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, callback, html

from dashboard import exports, ids
from dashboard.access import SUPPRESSED
from dashboard.analytics.safety import ANY_AE, SMALL_GROUP
from dashboard.state import state_context
from dashboard.components import RowsTable, Static, card_outputs, empty_message, export_spec, graph_config
from dashboard.exports import safety as safety_exports
from dashboard.figures import safety as figs
from dashboard.figures.common import NO_PATIENTS
from dashboard.state import cached_view

PAGE = "safety"
EXPORT = "ae-incidence"
GRADE_MAP, GROUP_MAP, TABLE = "ae-grade-heatmap", "ae-group-heatmap", "ae-incidence-table"     # the cards
# the page's controls keep their value in the URL (?events=serious&within_days=7&by=bclc_stage&measure=grade3&level=soc)
EVENTS, WITHIN_DAYS, BY, MEASURE, LEVEL = (ids.page_option(k) for k in ("events", "within_days", "by", "measure",
                                                                          "level"))
EVENT_CHOICES = {"all": "All AEs", "related": "Treatment-related only", "serious": "Serious only"}
SAFETY_BY = {"site_id": "Site", "bclc_stage": "BCLC stage", "child_pugh_class": "Child-Pugh class"}
LEVEL_CHOICES = {"term": "Terms within system organ class", "soc": "System organ classes"}
MEASURE_CHOICES = {"any": "Any grade", "grade3": "Grade ≥ 3"}
COUNTING = ("Each patient counts once per term at the worst CTCAE v4.0 grade of the counted episodes, "
            "once per system organ class and once overall ('Any adverse event').")


MAX_WITHIN_DAYS = 36_500       # 100 years: a larger window is no window ("all")


def within_days_value(value) -> int | None:
    """N of 'onset within N days' from the page's number box or the URL; empty, bad, negative or
    over MAX_WITHIN_DAYS = all."""
    if isinstance(value, bool):
        return None
    try:
        days = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return days if 0 <= days <= MAX_WITHIN_DAYS else None


def episode_options(events: str | None = "all", within_days=None) -> dict:
    """The export options of the page's episode switches."""
    return {"related_only": events == "related", "serious_only": events == "serious",
            "within_days": within_days_value(within_days)}


def episodes_note(options: dict) -> str:
    kind = ("treatment-related episodes only" if options["related_only"] else
            "serious episodes only" if options["serious_only"] else "all episodes")
    days = options["within_days"]
    when = ("" if days is None else
            f", with onset 0-{days} days after the DEB-TACE session the episode followed (its recorded session; "
            "none recorded: the latest session on or before onset)")
    return f"Counted: {kind}{when}."


def small_note(n):
    """A warning for a filter of fewer than SMALL_GROUP patients (n: a count, or "<5" as the export shows it)."""
    if isinstance(n, str):
        return html.Strong(" Fewer than 5 patients in the filter: percentages are unstable. ", className="text-danger")
    return html.Strong(f" Only {n} patient{'s' if n != 1 else ''} in the filter: percentages are unstable. ",
                       className="text-danger") if 0 < n < SMALL_GROUP else ""


def suppression_note(scope) -> str:
    """What "<5" means, for a scope whose counts of 1-4 patients are withheld."""
    return (" <5: 1 to 4 patients; the number and its percentage are not shown for your role; –: not shown so "
            "that a <5 beside it cannot be worked out by subtraction." if scope.suppress else "")


def grade_options(events="all", within_days=None) -> dict:
    return dict(episode_options(events, within_days), level="term", by="none")


def group_options(events="all", within_days=None, by="site_id") -> dict:
    return dict(episode_options(events, within_days), level="term", by=by if by in SAFETY_BY else "site_id")


def table_options(events="all", within_days=None, level="term") -> dict:
    return dict(episode_options(events, within_days), level=level if level in LEVEL_CHOICES else "term", by="none")


LISTING, LISTING_EXPORT = "ae-listing-table", "ae-listing"          # the listing card and its export
# the listing's options, in the URL too (?min_grade=4&serious_only=on)
MIN_GRADE, SERIOUS_ONLY = ids.page_option("min_grade"), ids.page_option("serious_only")
MIN_GRADE_CHOICES = {"default": "Grade 5, and serious grade ≥ 3", "1": "Grade ≥ 1", "2": "Grade ≥ 2",
                     "3": "Grade ≥ 3", "4": "Grade ≥ 4", "5": "Grade 5"}
PATIENT_LINK = "/patient/"     # the listing's patient ids link to the patient view (dashboard/pages/patient.py)
LISTING_MAX_ROWS = 500         # rows drawn in the listing; the CSV holds every selected event


def listing_options(min_grade="default", serious_only=None) -> dict:
    """The ae-listing options of the page's listing controls (or the URL): min_grade None = the default
    selection; serious_only from the switch (["on"]) or the URL ("on")."""
    grade = int(min_grade) if isinstance(min_grade, str) and min_grade in MIN_GRADE_CHOICES and \
        min_grade != "default" else None
    return {"min_grade": grade, "serious_only": serious_only in ("on", ["on"])}


# figure -> (export, options) of its CSV download from the page options (dashboard/callbacks/downloads.py);
# the cards build their store's spec with the same functions
DOWNLOADS = {
    GRADE_MAP: lambda p, *context: (EXPORT, grade_options(p.get("events"), p.get("within_days"))),
    GROUP_MAP: lambda p, *context: (EXPORT, group_options(p.get("events"), p.get("within_days"), p.get("by"))),
    TABLE: lambda p, *context: (EXPORT, table_options(p.get("events"), p.get("within_days"), p.get("level"))),
    LISTING: lambda p, *context: (LISTING_EXPORT, listing_options(p.get("min_grade"), p.get("serious_only"))),
}


def grade_heatmap_card(state, events="all", within_days=None):
    snapshot, filters, scope = state_context(state)
    options = grade_options(events, within_days)
    exp = exports.run_export(EXPORT, snapshot, filters, scope, **options)
    spec = export_spec(PAGE, GRADE_MAP, EXPORT, snapshot.snapshot_id, options)
    note = [small_note(exp.n_patients),
            f"Cell = patients whose worst grade for the term is that grade / N = {exp.n_patients} patients in the "
            f"filter (patients without any AE included). {COUNTING} Rows: terms grouped by system organ class, "
            f"classes and terms ordered by any-grade incidence. {figs.GRADE_ENCODING} {episodes_note(options)}"
            f"{suppression_note(scope)}"]
    return figs.grade_heatmap(exp.rows), graph_config(GRADE_MAP), spec, note


def group_heatmap_card(state, events="all", within_days=None, by="site_id", measure="any"):
    snapshot, filters, scope = state_context(state)
    by = by if by in SAFETY_BY else "site_id"
    measure = measure if measure in MEASURE_CHOICES else "any"
    options = group_options(events, within_days, by)
    exp = exports.run_export(EXPORT, snapshot, filters, scope, **options)
    spec = export_spec(PAGE, GROUP_MAP, EXPORT, snapshot.snapshot_id, options)
    what = "at any grade" if measure == "any" else "with worst grade 3, 4 or 5"
    note = [small_note(exp.n_patients),
            f"Cell = patients of the column with the term {what} / patients of the column (n under each label; "
            f"patients without any AE included). {COUNTING} † fewer than {SMALL_GROUP} patients: unstable. "
            + ("Terms with no patient at grade ≥ 3 are not shown. " if measure != "any" else "")
            + episodes_note(options) + suppression_note(scope)]
    fig = figs.group_heatmap(exp.rows, measure, SAFETY_BY[by])
    return fig, graph_config(GROUP_MAP), spec, note


def incidence_card(state, events="all", within_days=None, level="term"):
    snapshot, filters, scope = state_context(state)
    options = table_options(events, within_days, level)
    exp = exports.run_export(EXPORT, snapshot, filters, scope, **options)
    spec = export_spec(PAGE, TABLE, EXPORT, snapshot.snapshot_id, options)
    note = [small_note(exp.n_patients),
            f"n (%) of the N = {exp.n_patients} patients in the filter, patients without any AE included. {COUNTING} "
            "Grade 3-4: worst grade 3 or 4; grade 5: death related to the AE. Serious / treatment-related: at least "
            "one counted episode was. Events: every counted episode; per 100 sessions = events / the "
            f"{exp.extra['n_sessions']} DEB-TACE sessions of these patients × 100. {episodes_note(options)}"
            f"{suppression_note(scope)}"]
    if exp.n_patients == 0:
        return empty_message(NO_PATIENTS), spec, note
    if exp.extra["n_events"] == 0:
        return empty_message(f"No adverse event counted among the {exp.n_patients} patients in the current filter "
                             "and switches."), spec, note
    return incidence_table(exp.rows, exp.n_patients), spec, note


def n_pct(n, d) -> str:
    """'12 (3.4%)'; a zero count is '0' (easier to scan than '0 (0.0%)'); a count shown as "<5" is shown
    so, without a percentage (nor one of a "<5" denominator); a count withheld (None) is '–'."""
    if n is None:
        return "–"
    if n == 0 or isinstance(n, str) or isinstance(d, str) or not d:
        return str(n)
    return f"{n} ({100.0 * n / d:.1f}%)"


def rate_text(rate) -> str:
    """Events per 100 sessions: '' without sessions (NaN), '–' when withheld (None: events or sessions <5)."""
    if rate is None:
        return "–"
    return "" if rate != rate else f"{rate:.1f}"


COLUMNS = [("n_patients_any", ["Any grade"]), ("n_grade_3_4", ["Grade 3-4"]), ("n_grade_5", ["Grade 5"]),
           ("n_serious", ["Serious"]), ("n_related", ["Treatment-", html.Br(), "related"])]


def incidence_table(rows, n: int):
    """Per SOC (level soc) or per term under its SOC (level term): n (%) columns, events and events
    per 100 sessions; the overall row first. The denominator is in the header."""
    head = html.Thead(html.Tr(
        [html.Th(["System organ class / CTCAE term", html.Br(),
                  html.Span(f"n (%) of N = {n} patients", className="fw-normal", id="safety-denominator")])] +
        [html.Th(label, className="text-end") for _, label in COLUMNS] +
        [html.Th("Events", className="text-end"),
         html.Th(["Per 100", html.Br(), "sessions"], className="text-end")]))
    body, last_soc = [], None
    for r in rows.to_dict("records"):
        term = r["term"] if isinstance(r["term"], str) else None
        if term and r["soc"] != last_soc:
            body.append(html.Tr(html.Td(r["soc"], colSpan=len(COLUMNS) + 3, className="var-label")))
        last_soc = r["soc"]
        label_class = "var-label" if r["soc"] == ANY_AE or not term else "level"
        rate = r["events_per_100_sessions"]
        body.append(html.Tr(
            [html.Td(term or r["soc"], className=label_class)] +
            [html.Td(n_pct(r[c], r["denominator"]), className="text-end") for c, _ in COLUMNS] +
            [html.Td(r["n_events"], className="text-end"),
             html.Td(rate_text(rate), className="text-end")]))
    return Static(dbc.Table([head, html.Tbody(body)], bordered=False, hover=True, size="sm",
                            className="table-one mb-0", id="safety-incidence-grid"))


def _yes_no(value) -> str:
    return "yes" if value else "no"


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _text(value) -> str:
    """A cell's text: '' for a missing value, a date as YYYY-MM-DD."""
    if _missing(value):
        return ""
    return str(value)[:10] if hasattr(value, "isoformat") else str(value)


# (header, class of the column): long texts and headers wrap, so the listing fits the card at 1366 px
LISTING_HEADER = (("Patient", None), ("Site", None), ("CTCAE term", "text-wrap"), ("System organ class", "text-wrap"),
                  ("Grade", "text-end"), ("Serious", None), ("Onset", None),
                  ("Days since last session", "text-end text-wrap"), ("Session", "text-end"),
                  ("Treatment-related", "text-wrap"), ("Resolved", None))


def listing_table(rows, n_events: int | None = None):
    """The selected events as one RowsTable (one Dash component, whatever the number of rows), in a box that
    scrolls; rows: the first LISTING_MAX_ROWS of the export's order (grade, then onset), of `n_events` (a note
    says so when there are more). patient_id has a column of its own (the patient links of the patient view)."""
    shown = rows.head(LISTING_MAX_ROWS)
    n_events = len(rows) if n_events is None else n_events
    body = [[patient, site, term, soc, str(grade), _yes_no(serious), _text(onset),
             "–" if _missing(days) else str(days), _text(session),
             _yes_no(related), _text(resolved) or "not resolved"]
            for patient, site, term, soc, grade, serious, onset, days, session, related, resolved in zip(
                *(shown[c].tolist() for c in ("patient_id", "site_id", "term", "soc", "grade", "is_serious",
                                              "onset_date", "days_since_last_session", "session_number",
                                              "is_treatment_related", "resolution_date")))]
    table = html.Div(RowsTable([h for h, _ in LISTING_HEADER], body, id="safety-listing-grid",
                               className="table table-sm table-hover table-one mb-0",
                               column_classes=[c for _, c in LISTING_HEADER], strong=(0, 4),
                               links={0: PATIENT_LINK}),
                     style={"maxHeight": "360px", "overflowY": "auto"})
    if n_events <= len(shown):
        return table
    return html.Div([html.Div(f"First {len(shown):,} of {n_events:,} events shown (grade, then onset); the CSV "
                              "has all.", id="safety-listing-cap", className="small text-muted mb-1"), table])


DEIDENTIFIED_HEADER = (("System organ class", None), ("CTCAE term", None), ("Grade", "text-end"), ("Serious", None),
                       ("Events", "text-end"), ("Patients", "text-end"))


def deidentified_table(rows):
    """A sponsor's listing: events and patients per term, grade and seriousness (counts 1-4 as "<5")."""
    body = [[soc, term, str(grade), _yes_no(serious), str(n_events), str(n_patients)]
            for soc, term, grade, serious, n_events, n_patients in rows[
                ["soc", "term", "grade", "is_serious", "n_events", "n_patients"]].itertuples(index=False)]
    return html.Div(RowsTable([h for h, _ in DEIDENTIFIED_HEADER], body, id="safety-listing-counts",
                              className="table table-sm table-hover table-one mb-0",
                              column_classes=[c for _, c in DEIDENTIFIED_HEADER], strong=(2,)),
                    style={"maxHeight": "360px", "overflowY": "auto"})


def listing_card(state, min_grade="default", serious_only=None):
    """The listing of serious safety signals: patient rows (an investigator: of their own sites), or for a
    role without patient-level access the de-identified counts of the same selection."""
    snapshot, filters, scope = state_context(state)
    options = listing_options(min_grade, serious_only)
    spec = export_spec(PAGE, LISTING, LISTING_EXPORT, snapshot.snapshot_id, options)
    # the card's rows and counts, not the export's row per event (the CSV's); the view is cached
    shown = safety_exports.listing_card_data(snapshot, filters, scope, max_rows=LISTING_MAX_ROWS, **options)
    selection = shown["selection"]
    days = ("Days since last session = onset date − the date of the patient's latest DEB-TACE session on or before "
            "the onset (0: the same day); – when no session is on or before the onset. Session: the session the "
            "event was recorded against (blank when none was recorded). Treatment-related: relatedness to the "
            "chemoembolization as recorded. ")
    independent = ("The switches 'Adverse events counted' and 'Onset within' below apply to the heatmaps and the "
                   "table, not here.")
    if not shown["patient_level"]:
        note = [html.Strong(f"Listed: {selection}. ", id="safety-listing-selection"),
                "No patient, site or date for your role: events and patients per term, grade and seriousness "
                f"(a patient may count in several rows). Counts from 1 to 4 are shown as {SUPPRESSED}. ",
                independent]
        if shown["rows"].empty:
            return empty_message(f"No event in the current filter: {selection}."), spec, note
        return deidentified_table(shown["rows"]), spec, note
    own = scope.patient_sites
    n_events, n_listed = shown["n_events"], shown["n_patients_listed"]
    count = (f"{n_events:,} event{'s' if n_events != 1 else ''} in {n_listed:,} patient{'s' if n_listed != 1 else ''}"
             f" (grade 5: {shown['n_grade_5']:,}) of the {shown['n_patients']:,} patients "
             + ("of your sites " if own and len(own) > 1 else "of your site " if own else "") + "in the filter")
    note = [html.Strong(f"Listed: {selection}. {count}. ", id="safety-listing-selection"),
            f"Patients of your site{'s' if len(own) > 1 else ''} ({', '.join(own)}) only. " if own else "",
            "Sorted by grade (highest first), then onset. ", days, independent]
    if shown["n_patients"] == 0:
        return empty_message(NO_PATIENTS), spec, note
    if shown["rows"].empty:
        return empty_message(f"No event in the current filter: {selection}."), spec, note
    return listing_table(shown["rows"], n_events), spec, note


@callback(*card_outputs(LISTING, table=True), Input(ids.STATE, "data"), Input(MIN_GRADE, "value"),
          Input(SERIOUS_ONLY, "value"))
@cached_view("safety.listing")
def _listing(state, min_grade, serious_only):
    return listing_card(state, min_grade, serious_only)


SWITCHES = [Input(EVENTS, "value"), Input(WITHIN_DAYS, "value")]


@callback(*card_outputs(GRADE_MAP), Input(ids.STATE, "data"), *SWITCHES)
@cached_view("safety.grade_heatmap")
def _grade_heatmap(state, events, within_days):
    return grade_heatmap_card(state, events, within_days)


@callback(*card_outputs(GROUP_MAP), Input(ids.STATE, "data"), *SWITCHES,
          Input(BY, "value"), Input(MEASURE, "value"))
@cached_view("safety.group_heatmap")
def _group_heatmap(state, events, within_days, by, measure):
    return group_heatmap_card(state, events, within_days, by, measure)


@callback(*card_outputs(TABLE, table=True), Input(ids.STATE, "data"), *SWITCHES,
          Input(LEVEL, "value"))
@cached_view("safety.incidence")
def _incidence(state, events, within_days, level):
    return incidence_card(state, events, within_days, level)
