"""The Survival page's "Subgroup forest plot" card: state + page options (endpoint, forest_by,
forest_ref, forest_compare, forest_form) -> the `forest` export as the user's scope may see it (the
export the command line runs) -> the forest figure. One export per request (run_export's cache)."""
from __future__ import annotations

from dash import Input, Output, callback, no_update

from dashboard import exports, ids
from dashboard.components import card_outputs, export_spec, graph_config
from dashboard.contract import BCLC_STAGES, ETIOLOGIES
from dashboard.exports import forest as fx
from dashboard.exports import survival as km
from dashboard.figures import forest as figs
from dashboard.figures.common import NO_PATIENTS, empty_figure
from dashboard.grouping import GROUPINGS, LEVEL_ORDER
from dashboard.state import cached_view, state_context

PAGE = "survival"
FIGURE = "forest"
# the groupings the page compares, with their levels (fixed vocabularies: a page option's choices are
# read from the layout, dashboard/security.py) and the default comparison (reference, compared)
ARM_LEVELS = {
    "bclc_stage": list(BCLC_STAGES),
    "child_pugh_class": ["A", "B", "C"],
    "etiology_group": list(ETIOLOGIES),
    "ecog_group": ["0", "1", "2", "3", "4"],
    "sex": ["M", "F"],
    "age_group": LEVEL_ORDER["age_group"][:2],
    "afp_group": LEVEL_ORDER["afp_group"][:2],
    "tumor_size_group": LEVEL_ORDER["tumor_size_group"],
    "up_to_seven_group": LEVEL_ORDER["up_to_seven_group"][:2],
}
DEFAULT_PAIR = {"bclc_stage": ("B", "C"), "etiology_group": ("HBV", "HCV")}
VOCABULARY = list(dict.fromkeys(v for levels in ARM_LEVELS.values() for v in levels))
FORMS = {"hr": "Hazard ratios", "single-arm": "Single arm: 1-year and median"}
DEFAULTS = {"forest_by": "bclc_stage", "forest_ref": "B", "forest_compare": "C", "forest_form": "hr"}


def default_pair(by: str) -> tuple[str, str]:
    return DEFAULT_PAIR.get(by, tuple(ARM_LEVELS[by][:2]))


def level_options(by: str) -> list[dict]:
    """Every level of the vocabulary, those of other groupings disabled (the choices stay one fixed set)."""
    own = ARM_LEVELS[by]
    return [{"label": v, "value": v, "disabled": v not in own} for v in own + [v for v in VOCABULARY if v not in own]]


def options(endpoint, by, ref, compare, form) -> dict:
    """The export options from the page options; an unknown or mismatched value falls back to the default."""
    by = by if by in ARM_LEVELS else DEFAULTS["forest_by"]
    d_ref, d_cmp = default_pair(by)
    ref = ref if ref in ARM_LEVELS[by] else d_ref
    compare = compare if compare in ARM_LEVELS[by] and compare != ref else (d_cmp if d_cmp != ref else d_ref)
    return {"endpoint": endpoint if endpoint in km.ENDPOINTS else "os", "by": by, "ref": ref, "compare": compare,
            "form": form if form in FORMS else "hr"}


def _page_options(params: dict) -> dict:
    return options(params.get("endpoint"), params.get("forest_by"), params.get("forest_ref"),
                   params.get("forest_compare"), params.get("forest_form"))


DOWNLOADS = {FIGURE: lambda params, *context: ("forest", _page_options(params))}


def field_label(field: str) -> str:
    return GROUPINGS.get(field, field)


def footnote(exp: exports.Export, opts: dict) -> list:
    what = km.ENDPOINTS[opts["endpoint"]]
    if opts["form"] == "single-arm":
        text = (f"{what}, every patient of the filter, per subgroup level: Kaplan-Meier S at 365 days with its "
                "95% pointwise CI (log-log) and the median in months (Brookmeyer-Crowley 95% CI; NR: not reached).")
    else:
        by = GROUPINGS[opts["by"]]
        text = (f"{what}: hazard ratio of {by} {opts['compare']} against {opts['ref']} (reference) within each "
                "subgroup level, Cox proportional hazards (Efron ties), Wald 95% CI; events/n per arm. p-interaction: "
                f"likelihood-ratio test of {by} × subgroup (patients with the subgroup known). Not estimable: an "
                "arm without patients or events, or a ratio running to 0 or infinity; p-interaction —: no interaction "
                "term estimable (fewer than two levels with both arms). p-values are descriptive.")
    small = "A subgroup" if opts["form"] == "single-arm" else "An arm"
    notes = [text, f" {figs.DAGGER} {small} of fewer than {fx.MIN_GROUP} patients (open marker): unstable."]
    if exp.extra.get("note"):
        notes.append(" " + exp.extra["note"])
    return notes


def forest_view(state, endpoint="os", by=None, ref=None, compare=None, form=None):
    """(figure, config, export spec, footnote) of the card, from the forest export."""
    snapshot, filters, scope = state_context(state)
    opts = options(endpoint, by, ref, compare, form)
    spec = export_spec(PAGE, FIGURE, "forest", snapshot.snapshot_id, opts)
    config = graph_config(FIGURE)
    try:
        exp = exports.run_export("forest", snapshot, filters, scope, **opts)
    except ValueError as e:            # a level not in this filter, a single level: said, not raised
        return empty_figure(str(e)), config, spec, None
    if exp.n_patients == 0 or exp.rows.empty:
        return empty_figure(exp.extra.get("note") or NO_PATIENTS), config, spec, None
    rows = exp.rows.astype(object).where(exp.rows.notna(), None).to_dict("records")
    single = opts["form"] == "single-arm"
    if single:
        headers = ("n", "Events", "1-year, % (95% CI)", "Median, mo (95% CI)")
        title = f"{km.ENDPOINTS[opts['endpoint']]} by subgroup"
    else:
        headers = (f"{opts['compare']} events/n", f"{opts['ref']} events/n", "HR (95% CI)", "p-interaction")
        title = f"{km.ENDPOINTS[opts['endpoint']]}: {GROUPINGS[opts['by']]} {opts['compare']} vs {opts['ref']}"
    fig = figs.forest_figure(rows, field_label, headers, single_arm=single, title=title, suppressed=scope.suppress)
    return fig, config, spec, footnote(exp, opts)


@callback(
    *card_outputs(FIGURE),
    Input(ids.STATE, "data"),
    Input(ids.page_option("endpoint"), "value"),
    Input(ids.page_option("forest_by"), "value"),
    Input(ids.page_option("forest_ref"), "value"),
    Input(ids.page_option("forest_compare"), "value"),
    Input(ids.page_option("forest_form"), "value"),
)
@cached_view("survival.forest")
def _forest(state, endpoint, by, ref, compare, form):
    return forest_view(state, endpoint, by, ref, compare, form)


@callback(
    Output(ids.page_option("forest_ref"), "options"),
    Output(ids.page_option("forest_compare"), "options"),
    Output(ids.page_option("forest_ref"), "value"),
    Output(ids.page_option("forest_compare"), "value"),
    Input(ids.page_option("forest_by"), "value"),
    prevent_initial_call=True,
)
def _forest_levels(by):
    """A new grouping: its levels enabled, and its default comparison chosen."""
    if by not in ARM_LEVELS:
        return no_update, no_update, no_update, no_update
    ref, compare = default_pair(by)
    return level_options(by), level_options(by), ref, compare
