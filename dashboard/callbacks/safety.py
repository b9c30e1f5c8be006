"""Safety page callbacks: state + episode switches -> the ae-incidence export -> heatmaps and table."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, callback, html

from dashboard import exports, ids
from dashboard.analytics.safety import ANY_AE, SMALL_GROUP
from dashboard.state import state_context
from dashboard.components import Static, card_outputs, empty_message, export_spec, graph_config
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


# figure -> (export, options) of its CSV download from the page options (dashboard/callbacks/downloads.py);
# the cards build their store's spec with the same functions
DOWNLOADS = {
    GRADE_MAP: lambda p, *context: (EXPORT, grade_options(p.get("events"), p.get("within_days"))),
    GROUP_MAP: lambda p, *context: (EXPORT, group_options(p.get("events"), p.get("within_days"), p.get("by"))),
    TABLE: lambda p, *context: (EXPORT, table_options(p.get("events"), p.get("within_days"), p.get("level"))),
}


def grade_heatmap_card(state, events="all", within_days=None):
    snapshot, filters, scope = state_context(state)
    options = grade_options(events, within_days)
    exp = exports.run_export(EXPORT, snapshot, filters, scope, **options)
    spec = export_spec(PAGE, GRADE_MAP, EXPORT, snapshot.snapshot_id, options)
    note = [small_note(exp.n_patients),
            f"Cell = patients whose worst grade for the term is that grade / N = {exp.n_patients} patients in the "
            f"filter (patients without any AE included). {COUNTING} Rows: terms grouped by system organ class, "
            f"classes and terms ordered by any-grade incidence. {episodes_note(options)}{suppression_note(scope)}"]
    return figs.grade_heatmap(exp.rows), graph_config(GRADE_MAP, spec["filename"]), spec, note


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
    return fig, graph_config(GROUP_MAP, spec["filename"]), spec, note


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
