"""A plotly figure as plain dicts, with the part of plotly's Figure API our figures use.

Why: plotly.graph_objects validates every property as it is set. That was two thirds of a page
update (measured: a KM figure 200 ms with graph_objects, under 5 ms as dicts), and the browser
gets the same JSON either way. This builder writes the dicts directly. It keeps the graph_objects
calls we use (add_scatter, add_bar, add_box, add_trace, add_annotation, add_shape, add_hline,
update_layout, update_xaxes, update_yaxes, make_subplots) with the same results, including
"magic underscore" names (title_text=...) and subplot references (row=, col=).
tests/test_figure_builder.py checks the output against plotly's own for each of them.

Nested values are `Props`: dicts that also read as attributes (fig.layout.xaxis.title.text),
like graph_objects, so a test can read a figure either way. Unset attributes read as None.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# plotly property names that contain an underscore (not a magic-underscore path)
_UNDERSCORED = {"error_x", "error_y", "error_z"}


class Props(dict):
    """A dict whose keys read as attributes; a missing key reads as None."""

    __slots__ = ()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)


def _plain(value):
    """Dicts (at any depth, also inside lists) become Props; pandas columns become numpy arrays
    (what plotly serialises); anything else is kept as it is."""
    if isinstance(value, dict):
        return Props((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        # a dict anywhere in the list? Asked of its few distinct types (a C-level pass), not of
        # every value in a Python loop: a figure's text and number lists run to thousands
        return [_plain(v) for v in value] if any(issubclass(t, dict) for t in set(map(type, value))) else value
    if isinstance(value, (pd.Series, pd.Index, pd.DataFrame)):
        return value.to_numpy()
    return value


def _path(key: str) -> list[str]:
    """'xaxis_title_text' -> ['xaxis', 'title', 'text']; 'error_x' stays one name."""
    if "_" not in key or key in _UNDERSCORED:
        return [key]
    parts, out = key.split("_"), []
    i = 0
    while i < len(parts):
        if i + 1 < len(parts) and f"{parts[i]}_{parts[i + 1]}" in _UNDERSCORED:
            out.append(f"{parts[i]}_{parts[i + 1]}")
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def _merge(target: dict, updates: dict) -> None:
    """plotly's update: dicts merge recursively, anything else (lists included) replaces; a None
    value leaves the property as it is."""
    for key, value in updates.items():
        if value is None:
            continue
        *head, last = _path(key)
        node = target
        for name in head:
            node = node.setdefault(name, Props())
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            _merge(node[last], value)
        elif isinstance(value, dict):             # a new dict: magic underscores inside it too
            node[last] = Props()
            _merge(node[last], value)
        else:
            node[last] = _plain(value)


def _props(kwargs: dict) -> Props:
    out = Props()
    _merge(out, kwargs)
    return out


def Scatter(**kwargs) -> Props:
    return _trace("scatter", kwargs)


def Bar(**kwargs) -> Props:
    return _trace("bar", kwargs)


def Heatmap(**kwargs) -> Props:
    return _trace("heatmap", kwargs)


def Box(**kwargs) -> Props:
    return _trace("box", kwargs)


def _trace(kind: str, kwargs: dict) -> Props:
    trace = _props(kwargs)
    trace["type"] = kind
    return trace


class Figure:
    """data (a list of trace dicts) and layout (a dict), built with graph_objects' method names."""

    def __init__(self, data=None, layout=None):
        self.data: list[Props] = []
        self.layout: Props = Props()
        self._grid: dict[tuple[int, int], tuple[str, str]] = {}      # (row, col) -> ("x2", "y2")
        for trace in ([data] if isinstance(data, dict) else data or []):
            self.add_trace(trace)
        if layout:
            self.update_layout(layout)

    # --- traces -----------------------------------------------------------------------------
    def add_trace(self, trace, row=None, col=None) -> "Figure":
        trace = trace if isinstance(trace, Props) else _props(dict(trace))
        if row is not None:
            trace["xaxis"], trace["yaxis"] = self._grid[(row, col or 1)]
        self.data.append(trace)
        return self

    def add_scatter(self, row=None, col=None, **kwargs) -> "Figure":
        return self.add_trace(Scatter(**kwargs), row, col)

    def add_bar(self, row=None, col=None, **kwargs) -> "Figure":
        return self.add_trace(Bar(**kwargs), row, col)

    def add_box(self, row=None, col=None, **kwargs) -> "Figure":
        return self.add_trace(Box(**kwargs), row, col)

    def add_heatmap(self, row=None, col=None, **kwargs) -> "Figure":
        return self.add_trace(Heatmap(**kwargs), row, col)

    # --- layout -----------------------------------------------------------------------------
    def update_layout(self, dict1: dict | None = None, **kwargs) -> "Figure":
        if dict1:
            _merge(self.layout, dict1)
        _merge(self.layout, kwargs)
        return self

    def _refs(self, row, col) -> tuple[str, str]:
        return self._grid[(row, col or 1)] if row is not None else ("x", "y")

    def add_annotation(self, row=None, col=None, **kwargs) -> "Figure":
        item = _props(kwargs)
        if row is not None:
            item["xref"], item["yref"] = self._refs(row, col)
        self.layout.setdefault("annotations", []).append(item)
        return self

    def add_shape(self, row=None, col=None, **kwargs) -> "Figure":
        item = _props(kwargs)
        if row is not None:
            item["xref"], item["yref"] = self._refs(row, col)
        self.layout.setdefault("shapes", []).append(item)
        return self

    def add_hline(self, y, row=None, col=None, annotation=None, annotation_position=None, **kwargs) -> "Figure":
        """A horizontal line across the plot area at y, as plotly draws it (a shape on the x
        domain), with its optional annotation at the right end."""
        x, yref = self._refs(row, col)
        shape = _props(kwargs)
        shape.update(type="line", x0=0, x1=1, xref=f"{x} domain", y0=y, y1=y, yref=yref)
        self.layout.setdefault("shapes", []).append(shape)
        if annotation is not None:
            if annotation_position not in (None, "right"):
                raise ValueError(f"annotation_position {annotation_position!r} is not supported")
            note = Props(showarrow=False, x=1, xanchor="left", xref=f"{x} domain", y=y, yanchor="middle", yref=yref)
            _merge(note, annotation)
            self.layout.setdefault("annotations", []).append(note)
        return self

    def _axes(self, letter: str, row, col) -> list[Props]:
        if row is not None or col is not None:
            names = {ref for (r, c), refs in self._grid.items()
                     if (row is None or r == row) and (col is None or c == col)
                     for ref in refs if ref[0] == letter}
        else:
            names = {k.replace("axis", "") for k in self.layout if k.startswith(letter + "axis")} | {letter}
        return [self.layout.setdefault(f"{letter}axis{n[1:]}", Props()) for n in sorted(names)]

    def update_xaxes(self, patch: dict | None = None, row=None, col=None, **kwargs) -> "Figure":
        for axis in self._axes("x", row, col):
            _merge(axis, {**(patch or {}), **kwargs})
        return self

    def update_yaxes(self, patch: dict | None = None, row=None, col=None, **kwargs) -> "Figure":
        for axis in self._axes("y", row, col):
            _merge(axis, {**(patch or {}), **kwargs})
        return self

    # --- output -----------------------------------------------------------------------------
    def to_plotly_json(self) -> dict:
        """What Dash sends to the browser (and what go.Figure(...) accepts)."""
        return {"data": self.data, "layout": self.layout}

    def to_dict(self) -> dict:
        return self.to_plotly_json()


def make_subplots(rows: int = 1, cols: int = 1, shared_xaxes: bool = False, shared_yaxes: bool = False,
                  vertical_spacing: float | None = None, horizontal_spacing: float | None = None,
                  row_heights=None, column_widths=None, subplot_titles=None) -> Figure:
    """A grid of subplots, laid out as plotly.subplots.make_subplots lays them (row 1 on top):
    the same axis names, anchors, domains, shared-axis matching and subplot titles."""
    vertical_spacing = 0.3 / rows if vertical_spacing is None else vertical_spacing
    horizontal_spacing = 0.2 / cols if horizontal_spacing is None else horizontal_spacing
    fig = Figure()

    def spans(n, spacing, weights, clamp=True):
        # plotly's arithmetic, step for step (the last digit of a domain shows in the JSON); the
        # axis domains are clamped to [0, 1], the subplot titles use the unclamped ones
        usable = 1.0 - spacing * (n - 1)
        sizes = [usable / n] * n if weights is None else [usable * (w / float(sum(weights))) for w in weights]
        fix = (lambda v: min(max(v, 0.0), 1.0)) if clamp else (lambda v: v)
        return [[fix(sum(sizes[:i]) + i * spacing), fix(sum(sizes[:i]) + i * spacing + sizes[i])] for i in range(n)]

    col_domains = spans(cols, horizontal_spacing, column_widths)
    # plotly stacks rows from the top: row 1 takes the top of the figure
    row_domains = list(reversed(spans(rows, vertical_spacing, list(reversed(row_heights))
                                      if row_heights is not None else None)))
    number = 0
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            number += 1
            suffix = "" if number == 1 else str(number)
            x, y = f"x{suffix}", f"y{suffix}"
            fig._grid[(r, c)] = (x, y)
            fig.layout[f"xaxis{suffix}"] = Props(anchor=y, domain=col_domains[c - 1])
            fig.layout[f"yaxis{suffix}"] = Props(anchor=x, domain=row_domains[r - 1])
    if shared_xaxes and rows > 1:
        for c in range(1, cols + 1):
            bottom = fig._grid[(rows, c)][0]
            for r in range(1, rows):
                axis = fig.layout["xaxis" + fig._grid[(r, c)][0][1:]]
                axis.update(matches=bottom, showticklabels=False)
    if shared_yaxes and cols > 1:
        for r in range(1, rows + 1):
            first = fig._grid[(r, 1)][1]
            for c in range(2, cols + 1):
                axis = fig.layout["yaxis" + fig._grid[(r, c)][1][1:]]
                axis.update(matches=first, showticklabels=False)
    if subplot_titles:
        title_x = spans(cols, horizontal_spacing, column_widths, clamp=False)
        for (r, c), title in zip(sorted(fig._grid), subplot_titles):
            x0, x1 = title_x[c - 1]
            fig.layout.setdefault("annotations", []).append(Props(
                font=Props(size=16), showarrow=False, text=title, x=(x0 + x1) / 2.0, xanchor="center", xref="paper",
                y=row_domains[r - 1][1], yanchor="bottom", yref="paper"))
    return fig


def to_numpy_free(value):
    """A figure's dicts with numpy arrays as lists (for comparisons in tests)."""
    if isinstance(value, dict):
        return {k: to_numpy_free(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_numpy_free(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_numpy_free(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
