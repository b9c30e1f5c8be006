"""Reusable page parts. A figure card is a titled plotly graph with its downloads: PNG from the
modebar and SVG (both named page_figure_snapshot_date), and "Download data (CSV)" that returns
exactly the rows of the figure's export (dashboard/exports.py)."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

import dash_bootstrap_components as dbc
from dash import dcc, html


def iter_components(node):
    """Every Dash component of a layout tree, depth first."""
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from iter_components(child)
    elif hasattr(node, "to_plotly_json"):
        yield node
        yield from iter_components(getattr(node, "children", None))


def fid(kind: str, figure: str) -> dict:
    return {"type": kind, "figure": figure}


def figure_card(figure: str, title: str, controls=None, height: int = 420, extra=None):
    """A card with a title, optional controls, the graph, a footnote and the download buttons."""
    header = dbc.CardHeader(dbc.Row([
        dbc.Col(html.H2(title, className="h6 mb-0"), className="d-flex align-items-center"),
        dbc.Col(dbc.ButtonGroup([
            dbc.Button("PNG", id=fid("download-png", figure), size="sm", color="secondary", outline=True,
                       title="Download the figure as PNG, with the data cut, filters and n under it"),
            dbc.Button("SVG", id=fid("download-svg", figure), size="sm", color="secondary", outline=True,
                       title="Download the figure as SVG, with the data cut, filters and n under it"),
            dbc.Button("Download data (CSV)", id=fid("download-csv", figure), size="sm", color="secondary",
                       outline=True, title="The rows behind this figure, as the export command gives them"),
        ], size="sm"), width="auto"),
    ], className="g-2"), className="py-2")
    body = [
        html.Div(controls, className="mb-2 figure-controls") if controls is not None else None,
        dcc.Loading(dcc.Graph(id=fid("figure", figure), style={"minHeight": f"{height}px"},
                              config=graph_config(figure)), type="circle", delay_show=250),
        extra,
        html.Div(id=fid("footnote", figure), className="footnote small text-muted mt-1"),
        dcc.Store(id=fid("figure-export", figure)),
        dcc.Download(id=fid("download", figure)),
    ]
    return dbc.Card([header, dbc.CardBody([b for b in body if b is not None])], className="mb-3 figure-card",
                    id=f"card-{figure}")


def file_name(page: str, figure: str, snapshot_id: str, today: dt.date | None = None, options: dict | None = None,
              filters=None) -> str:
    """What a download is called: page_figure[_options]_snapshot[_filter]_date. The options that change
    the numbers (endpoint-pfs-by-sex) and the filter (bclc-B-C-sex-F; all-patients without one) are
    made file-safe and bounded, so OS and PFS, or two filters, never share a name."""
    parts = [page, figure]
    chosen = [(k, v) for k, v in sorted((options or {}).items()) if v not in (None, "", False)]
    if chosen:
        parts.append(name_tag(chosen, 60))
    parts.append(snapshot_id)
    if filters is not None:
        parts.append(name_tag(filters.to_pairs(), 80) or "all-patients")
    return "_".join(parts + [(today or dt.date.today()).isoformat()])


def name_tag(pairs, limit: int) -> str:
    """key-value pairs as one file-safe word: [("bclc", "B,C"), ("sex", "F")] -> bclc-B-C-sex-F."""
    text = "-".join(f"{k}-{v}" for k, v in pairs)
    return re.sub(r"[^A-Za-z0-9]+", "-", unquote(text)).strip("-")[:limit].rstrip("-")


def graph_config(figure: str, in_card: bool = True) -> dict:
    """A graph's plotly config. In a figure card the PNG and SVG buttons download it with a caption
    (assets/registry.js), so the toolbar's camera, which would not, is removed; elsewhere it stays."""
    if not in_card:
        return {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"],
                "toImageButtonOptions": {"format": "png", "filename": figure, "scale": 2}}
    return {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d", "toImage"]}


def export_spec(page: str, figure: str, export: str, snapshot_id: str, options: dict | None = None) -> dict:
    """The card's store: the figure and file name the browser's SVG download needs, and the export
    the CSV holds (for reading; the server decides the CSV itself: dashboard/callbacks/downloads.py)."""
    return {"page": page, "figure": figure, "export": export, "options": options or {},
            "filename": file_name(page, figure, snapshot_id)}


def table_card(figure: str, title: str, controls=None):
    """A card holding a table (filled by a callback) with the CSV download of its export, and
    optional controls above the table."""
    header = dbc.CardHeader(dbc.Row([
        dbc.Col(html.H2(title, className="h6 mb-0"), className="d-flex align-items-center"),
        dbc.Col(dbc.Button("Download data (CSV)", id=fid("download-csv", figure), size="sm", color="secondary",
                           outline=True), width="auto"),
    ], className="g-2"), className="py-2")
    return dbc.Card([header, dbc.CardBody([
        *([html.Div(controls, className="mb-2 figure-controls")] if controls is not None else []),
        dcc.Loading(html.Div(id=fid("table", figure), className="table-responsive"), type="circle",
                    delay_show=250),
        html.Div(id=fid("footnote", figure), className="footnote small text-muted mt-1"),
        dcc.Store(id=fid("figure-export", figure)),
        dcc.Download(id=fid("download", figure)),
    ])], className="mb-3 figure-card", id=f"card-{figure}")


def card_outputs(figure: str, table: bool = False) -> list:
    """The outputs a page callback fills for one card: content, (config), export spec, footnote."""
    from dash import Output
    if table:
        return [Output(fid("table", figure), "children"), Output(fid("figure-export", figure), "data"),
                Output(fid("footnote", figure), "children")]
    return [Output(fid("figure", figure), "figure"), Output(fid("figure", figure), "config"),
            Output(fid("figure-export", figure), "data"), Output(fid("footnote", figure), "children")]


class RowsTable:
    """A table of text drawn by one Dash component (assets/registry.js): `columns` (header texts),
    `rows` (lists of cell texts), `column_classes` (a class per column, or None) and `strong` (the
    indexes of the columns shown bold) and `links` ({column index: path prefix}: each cell of that column is a
    link to prefix + the cell's text, URL-encoded, + the page's current query string, so the link keeps the
    data cut and filters). The same DOM as html.Table of html.Td, without a Dash
    component per cell: Dash's renderer runs a selector for every mounted component on every store
    update, so a table of a few hundred cells slowed every update of its page. Reads like a
    component: .id, .rows, .columns."""

    __slots__ = ("props",)

    def __init__(self, columns: list, rows: list, id: str | None = None, className: str | None = None,
                 column_classes: list | None = None, strong: tuple = (), style: dict | None = None,
                 links: dict | None = None):
        self.props = {"columns": list(columns), "rows": rows, "column_classes": column_classes,
                      "strong": list(strong), "id": id, "className": className, "style": style,
                      "links": {str(j): prefix for j, prefix in links.items()} if links else None}
        self.props = {k: v for k, v in self.props.items() if v is not None}

    def __getattr__(self, name):
        try:
            return self.props[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_plotly_json(self) -> dict:
        return {"props": self.props, "type": "RowsTable", "namespace": "registry_components"}


class Static:
    """An html component tree (a table, a note) sent as one Dash component (assets/registry.js):
    its nodes keep the html components' JSON ({"type", "props"}) without the namespace, so Dash's
    renderer draws them as plain elements. The renderer mounts every component of an answer as its
    own wrapper, and each new wrapper dispatches a store update that runs every mounted wrapper's
    selector: a table of a few hundred cells cost seconds of drawing (quadratic in the cells).
    Reads like the wrapped component (.id, .children), for tests and iter_components. The top may
    be an html component or a dbc.Table (its classes written out, as dbc writes them)."""

    __slots__ = ("component",)

    def __init__(self, component):
        self.component = component

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.component, name)

    def __repr__(self):
        return f"Static({self.component!r})"

    def to_plotly_json(self) -> dict:
        from dashboard.wire import plain
        top = plain(self.component)
        props = dict(top["props"])
        if top["namespace"] == "dash_bootstrap_components":
            props = _dbc_table_props(top["type"], props)
        props["tag"] = top["type"].lower()
        props["children"] = _without_namespace(props.get("children"))
        return {"props": props, "type": "Static", "namespace": "registry_components"}


def _dbc_table_props(kind: str, props: dict) -> dict:
    """A dbc.Table's props as the html table's: the classes dbc adds for size, hover, bordered, striped."""
    if kind != "Table":
        raise ValueError(f"Static: a dbc.{kind} is not drawn statically")
    extra = {k: props.pop(k) for k in ("size", "hover", "bordered", "borderless", "striped") if k in props}
    classes = [props.get("className"), "table"] + ([f"table-{extra['size']}"] if extra.get("size") else []) + [
        f"table-{k}" for k in ("bordered", "borderless", "striped", "hover") if extra.get(k)]
    return {**props, "className": " ".join(c for c in classes if c)}


def _without_namespace(node):
    if isinstance(node, list):
        return [_without_namespace(n) for n in node]
    if isinstance(node, dict) and "props" in node:
        if node.get("namespace") not in (None, "dash_html_components"):
            raise ValueError(f"Static: only html components inside, not {node.get('namespace')}.{node.get('type')}")
        props = dict(node["props"])
        if "children" in props:
            props["children"] = _without_namespace(props["children"])
        return {"props": props, "type": node["type"]}
    return node


def empty_message(text: str):
    return dbc.Alert(text, color="light", className="text-muted mb-0")
