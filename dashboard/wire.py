"""What a page callback returns, as plain JSON values: the form Dash serialises fastest.

Dash serialises a callback's response with plotly's `to_json_plotly`: it first tries orjson on the
response as it is, and only if that fails (a Dash component, or our figure builder's Figure, is not
JSON) walks the whole response in Python (`clean_to_json_compatible`), every number of every
figure array included. Measured on the Tumour response page at 600 patients: 20 ms of a page
update went to that walk, 4.6 ms when the response is already plain.

`plain(value)` turns Dash components into the dicts they serialise to ({"props", "type",
"namespace"}) and figures into {"data", "layout"}, descending only where a component can be: it
does not walk numeric arrays. Whatever it leaves that orjson cannot write (it never should) only
sends Dash back to its slow path, with the same result. The browser receives the same JSON either
way: arrays, dates and missing values are converted as plotly converts them. tests/test_wire.py
checks, on every callback response of every page, that the JSON is byte for byte plotly's and that
it takes the fast path.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import orjson
import pandas as pd
from dash.development.base_component import Component

from dashboard.figures.builder import Props

_SCALARS = (str, int, float, bool, np.number, np.bool_, type(None))
# the exact types of a list that is written as it is (checked in C: set(map(type, ...)))
_LEAF_TYPES = {str, int, float, bool, type(None), np.float64, np.float32, np.int64, np.int32, np.bool_}


def plain(value):
    """The value with every Dash component and figure replaced by its JSON dict (recursively)."""
    return _plain(value)


# values returned as they are, by exact type: a dict lookup instead of a chain of isinstance
# checks (a Tumour response update walks about 5,000 values; the checks were most of its time)
_KEPT = frozenset({str, int, float, bool, type(None), np.float64, np.float32, np.int64, np.int32, np.bool_})


def _plain(value):
    kind = type(value)
    if kind in _KEPT:
        return value
    if kind is dict or kind is Props:
        return {k: v if type(v) in _KEPT else _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        if set(map(type, value)) <= _LEAF_TYPES:     # a column of numbers or labels: not walked
            return list(value)
        return [v if type(v) in _KEPT else _plain(v) for v in value]
    if kind is Element:
        out = value.to_plotly_json()
        out["props"] = {k: v if type(v) in _KEPT else _plain(v) for k, v in out["props"].items()}
        return out
    return _plain_any(value)


def _plain_any(value):
    """_plain for any other type (subclasses included): the general checks."""
    if isinstance(value, Component):
        out = value.to_plotly_json()
        out["props"] = {k: _plain(v) for k, v in out["props"].items()}
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if set(map(type, value)) <= _LEAF_TYPES:     # a column of numbers or labels: not walked
            return list(value)
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):          # as plotly.io.json.clean_to_json_compatible does
        kind = value.dtype.kind
        if kind in "biuf":
            return np.ascontiguousarray(value)
        if kind == "M":
            return np.datetime_as_string(value).tolist()
        if kind == "O":
            return [_plain(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, _SCALARS):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, (pd.Series, pd.Index)):
        return _plain(value.to_numpy())
    to_json = getattr(value, "to_plotly_json", None)      # dashboard.figures.builder.Figure, Element
    if to_json is not None:
        return _plain(to_json())
    return value


# plotly's options for orjson (plotly.io.json.to_json_plotly), so a value read back from its JSON is
# written by Dash exactly as the value itself was
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def encode(value) -> bytes:
    """A plain value (see plain) as JSON bytes, as plotly's serialiser writes it: numbers, text,
    lists and dicts; numpy arrays become lists, dates ISO text. For the result cache. A value
    orjson cannot write as it is (plain never leaves one) goes the way Dash would send it:
    plotly's own conversion."""
    try:
        return orjson.dumps(value, option=JSON_OPTIONS)
    except TypeError:
        from plotly.io.json import to_json_plotly
        return to_json_plotly(value).encode()


def decode(raw: bytes):
    """The JSON values encode() wrote."""
    return orjson.loads(raw)


class Element:
    """An html element (html.Td(children, className=...), html.Tr, html.Strong, ...) already in the
    form Dash sends it: the same JSON as the html component (props in the component's order:
    children, then className, and any further props given by keyword, such as id, style or
    colSpan, written as given), without Dash's validating constructor. For the cells of big tables
    (the Tumour response consistency table: 200 rows, 2,600 elements, most of the card's time as
    components). Reads like a component: .children, .className; `plain` and
    dashboard.components.iter_components find it through to_plotly_json."""

    __slots__ = ("_type", "children", "className", "_props")

    def __init__(self, type_: str, children=None, className: str | None = None, **props):
        self._type, self.children, self.className, self._props = type_, children, className, props

    def __getattr__(self, name):                # the keyword props read as attributes, like a component's
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._props[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_plotly_json(self) -> dict:
        props = {"children": self.children}
        if self.className is not None:
            props["className"] = self.className
        if self._props:
            props.update(self._props)
            order = _prop_order(self._type)
            props = dict(sorted(props.items(), key=lambda item: order.get(item[0], len(order))))
        return {"props": props, "type": self._type, "namespace": "dash_html_components"}


@lru_cache(maxsize=64)
def _prop_order(type_: str) -> dict[str, int]:
    """The html component's props in the order Dash writes them (its _prop_names)."""
    from dash import html
    return {name: i for i, name in enumerate(getattr(html, type_)()._prop_names)}
