"""Survival: Kaplan-Meier curves of OS, TTP, PFS or local TTP by a grouping, the numbers at risk
under them, the summary per group (medians, S at 6/12/24 months), log-rank and Cox hazard ratios.

The four controls are page options kept in the URL (?endpoint=pfs&by=sex&ci=log&bands=on), and so is
the Cox reference group beside the hazard ratios (?ref=C; none: the default reference).
"""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard.analytics.survival import CONF_TYPES
from dashboard.components import fid, figure_card, table_card
from dashboard.exports.survival import CI_TYPES, ENDPOINTS
from dashboard.grouping import GROUPINGS

dash.register_page(__name__, path="/survival", name="Survival", title="Survival · HCC DEB-TACE Registry", order=2)

DEFAULTS = {"endpoint": "os", "by": "bclc_stage", "ci": "log-log"}


def _control(id_, label, control, width=None):
    return dbc.Col([html.Div(label, className="filter-label"), control], id=id_, width=width or "auto",
                   className="survival-control")


def controls(endpoint, by, ci, bands):
    """Endpoint, grouping, CI transform and CI bands: each a page option (ids.page_option) in a
    container whose id starts with 'survival-'."""
    return dbc.Card(dbc.CardBody(dbc.Row([
        _control("survival-endpoint", "Endpoint", dbc.RadioItems(
            id=ids.page_option("endpoint"), value=endpoint, inline=True,
            options=[{"label": label, "value": key} for key, label in ENDPOINTS.items()])),
        _control("survival-by", "Group by", dcc.Dropdown(
            id=ids.page_option("by"), value=by, clearable=False, searchable=False, style={"width": "15rem"},
            options=[{"label": label, "value": key} for key, label in GROUPINGS.items()])),
        _control("survival-ci", "95% CI transform", dbc.RadioItems(
            id=ids.page_option("ci"), value=ci, inline=True,
            options=[{"label": CI_TYPES[c], "value": c} for c in CONF_TYPES])),
        _control("survival-bands", "Bands", dbc.Checklist(
            id=ids.page_option("bands"), value=bands, switch=True,
            options=[{"label": "Show 95% CI bands", "value": "on"}])),
    ], className="g-3 align-items-start")), className="mb-3", id="survival-controls")


def risk_download():
    """The numbers under the curves as CSV (the km-risk-table export at the figure's ticks)."""
    return html.Div([
        dbc.Button("Numbers at risk (CSV)", id=fid("download-csv", "km-risk-table"), size="sm", color="link",
                   className="p-0", title="At risk, cumulative events and censored at the x ticks, per group"),
        dcc.Store(id=fid("figure-export", "km-risk-table")),
        dcc.Download(id=fid("download", "km-risk-table")),
    ], className="text-end small")


def reference_control(ref):
    """The Cox reference group: a page option whose choices (the groups of the grouping in the
    filter) the survival callbacks fill; empty = the default (BCLC B, else the largest group)."""
    return html.Div([
        html.Span("Reference group", className="filter-label me-2"),
        dcc.Dropdown(id=ids.page_option("ref"), value=ref, clearable=True, searchable=False,
                     placeholder="Default", style={"width": "14rem"},
                     options=[{"label": ref, "value": ref}] if ref else []),
    ], id="survival-ref", className="d-flex align-items-center")


def forest_controls(by, ref, compare, form):
    """The forest card's page options: the compared grouping, its reference and compared levels, the form."""
    from dashboard.callbacks import forest as fc
    opts = fc.options(None, by, ref, compare, form)
    by, ref, compare, form = opts["by"], opts["ref"], opts["compare"], opts["form"]
    pick = dict(clearable=False, searchable=False, style={"width": "7rem"})
    return dbc.Row([
        _control("forest-by", "Compare within", dcc.Dropdown(
            id=ids.page_option("forest_by"), value=by, clearable=False, searchable=False, style={"width": "13rem"},
            options=[{"label": GROUPINGS[k], "value": k} for k in fc.ARM_LEVELS])),
        _control("forest-compare", "Group", dcc.Dropdown(id=ids.page_option("forest_compare"), value=compare,
                                                         options=fc.level_options(by), **pick)),
        _control("forest-ref", "vs reference", dcc.Dropdown(id=ids.page_option("forest_ref"), value=ref,
                                                            options=fc.level_options(by), **pick)),
        _control("forest-form", "Form", dbc.RadioItems(
            id=ids.page_option("forest_form"), value=form, inline=True,
            options=[{"label": label, "value": key} for key, label in fc.FORMS.items()])),
    ], className="g-3 align-items-start")


def layout(endpoint=None, by=None, ci=None, bands=None, ref=None, forest_by=None, forest_ref=None, forest_compare=None,
           forest_form=None, **_):
    """Page options from the URL; an unknown value falls back to the default."""
    endpoint = endpoint if endpoint in ENDPOINTS else DEFAULTS["endpoint"]
    by = by if by in GROUPINGS else DEFAULTS["by"]
    ci = ci if ci in CONF_TYPES else DEFAULTS["ci"]
    bands = ["on"] if bands == "on" else []
    ref = ref[:64] if isinstance(ref, str) and ref else None        # checked against the groups by the export
    return html.Div([
        html.H1("Survival", className="h4 mt-1"),
        controls(endpoint, by, ci, bands),
        figure_card("km-curve", "Kaplan-Meier curves", height=620, extra=risk_download()),
        dbc.Row([
            dbc.Col(table_card("km-summary", "Summary by group"), xxl=8),
            dbc.Col(table_card("cox", "Hazard ratios (Cox proportional hazards)", controls=reference_control(ref)),
                    xxl=4),
        ]),
        figure_card("forest", "Subgroup forest plot", height=500,
                    controls=forest_controls(forest_by, forest_ref, forest_compare, forest_form)),
    ])
