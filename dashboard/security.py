"""What reaches the server from a browser: request size, callback bodies, page option values, and
the security headers of every response.

- Request bodies over MAX_BODY_BYTES (1 MB) are refused with 413 before they are read.
- A POST to /_dash-update-component must be the body the browser sends for a callback the app
  declares: its inputs, state and outputs the callback's own (ids and properties, pattern-matching
  ids matching their pattern, one value for MATCH), its triggers among its inputs, and the values
  of the page options and shell controls within their sets and lengths. Anything else: 400 with
  a one-line reason, never a 500 from inside Dash.
- Headers by flask-talisman: a Content-Security-Policy that allows scripts from this origin and
  the hashes of the app's inline scripts only (styles inline too: plotly.js writes <style> tags),
  no remote host; frame-ancestors 'none' and X-Frame-Options DENY; nosniff; Referrer-Policy
  same-origin. No redirect to https unless REGISTRY_FORCE_HTTPS=on (the app is served on
  loopback over http behind a proxy that terminates TLS).
- `python app.py` (Werkzeug) sends `Server: dashboard` instead of its and Python's versions;
  gunicorn sends `Server: gunicorn`, without a version.
"""
from __future__ import annotations

import json
import logging
import math
import os

import flask
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_PATTERN_ITEMS = 500          # components one ALL pattern may match (the filter chips, at most ~50)
MAX_TEXT = 8192                  # URL search, the filter state's query
MAX_ID_TEXT = 64                 # a snapshot id, a date, one filter value
MAX_SITES = 1000                 # site values in the site filter (the registry has 12 sites)
WILDCARDS = (["ALL"], ["MATCH"], ["ALLSMALLER"])


class Refused(Exception):
    """A callback body the server does not run; the message says why (sent with the 400)."""


# --- request bodies -------------------------------------------------------------------------------
def _pattern(spec_id: str):
    return json.loads(spec_id) if spec_id.startswith("{") else spec_id


def _is_multi(pattern) -> bool:
    return isinstance(pattern, dict) and any(v in (["ALL"], ["ALLSMALLER"]) for v in pattern.values())


def _matches(pattern, concrete, match_values: dict) -> bool:
    """A concrete component id against a declared id or pattern; MATCH keys agree across the body."""
    if isinstance(pattern, str):
        return concrete == pattern
    if not isinstance(concrete, dict) or set(concrete) != set(pattern):
        return False
    for key, wanted in pattern.items():
        value = concrete[key]
        if wanted in WILDCARDS:
            if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and len(value) > MAX_TEXT):
                return False
            if wanted == ["MATCH"] and match_values.setdefault(key, value) != value:
                return False
        elif value != wanted:
            return False
    return True


def _prop(name) -> str:
    return name.split("@", 1)[0] if isinstance(name, str) else name    # allow_duplicate outputs carry @hash


def _check_items(items, specs: list[tuple[str, str]], match_values: dict, what: str, values: bool) -> list[dict]:
    """The flattened items after checking them against the callback's declared (id, property) list."""
    if not isinstance(items, list) or len(items) != len(specs):
        raise Refused(f"{what}: expected a list of {len(specs)}")
    flat = []
    for item, (spec_id, prop) in zip(items, specs):
        pattern = _pattern(spec_id)
        group = item if _is_multi(pattern) else [item]
        if not isinstance(group, list) or len(group) > MAX_PATTERN_ITEMS:
            raise Refused(f"{what}: {spec_id}.{prop} expects a list of at most {MAX_PATTERN_ITEMS}")
        for one in group:
            if not isinstance(one, dict) or _prop(one.get("property")) != _prop(prop) \
                    or not _matches(pattern, one.get("id"), match_values):
                raise Refused(f"{what}: expected {spec_id}.{prop}")
            if values:
                check_value(one["id"], one["property"], one.get("value"))
            flat.append(one)
    return flat


def check_callback_body(body, callback_map: dict) -> None:
    """Raise Refused unless `body` is a browser's call of a declared callback (module docstring)."""
    from dashboard.replay import split_output
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        raise Refused("unknown callback")
    declared = callback_map[output]
    match_values: dict = {}
    inputs = _check_items(body.get("inputs"), [(i["id"], i["property"]) for i in declared["inputs"]], match_values,
                          "inputs", values=True)
    _check_items(body.get("state", []), [(s["id"], s["property"]) for s in declared.get("state", [])], match_values,
                 "state", values=True)
    if not declared.get("no_output"):
        outputs = body.get("outputs")
        specs = split_output(output)
        _check_items(outputs if output.startswith("..") else [outputs], specs, match_values, "outputs", values=False)
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or len(changed) > len(inputs):
        raise Refused("changedPropIds: expected a list of inputs")
    known = [(i["id"], i["property"]) for i in inputs]
    for prop_id in changed:
        if not isinstance(prop_id, str) or "." not in prop_id:
            raise Refused("changedPropIds: expected 'id.property'")
        ident, prop = prop_id.rsplit(".", 1)
        try:
            ident = json.loads(ident) if ident.startswith("{") else ident
        except ValueError:
            raise Refused("changedPropIds: an id is not JSON") from None
        if (ident, prop) not in known:
            raise Refused("changedPropIds: a trigger that is not an input of the callback")


# --- values ---------------------------------------------------------------------------------------
_option_rules: dict | None = None
# page options whose value is a data cut (the Overview's `since`): the cuts change as they are
# published, so a value is bounded by the snapshot-id pattern here and checked against the
# servable cuts by the page itself
SNAPSHOT_OPTIONS = frozenset({"since"})
# page options whose value is a group level of the data (the Survival page's Cox `ref`): their
# choices depend on the grouping and the filter, so a value is bounded to short text here and
# checked against the groups by the export (an unknown level falls back to the default, said so)
TEXT_OPTIONS = frozenset({"ref"})


class ServableCutIds:
    """The allowed values of a data-cut page option as the browser's step is told them: the cut ids
    the current user may be served, listed again each time it is read (a cut published since the
    server started is among them)."""

    def __iter__(self):
        from dashboard import data, state
        try:
            return iter([s.snapshot_id for s in state.servable(data.complete_snapshots())])
        except Exception:           # no data root, no user: the browser falls back to the default
            log.warning("data cuts could not be listed for a page option", exc_info=True)
            return iter([])


def page_option_rules() -> dict:
    """key -> ("one", allowed values) | ("list", allowed values) | ("number", None) | ("snapshot",
    ServableCutIds()) | ("text", None), from the page option controls of every page as their layouts
    render them: a RadioItems or Dropdown allows its options, a Checklist a list of them, a number box
    a number, a data-cut option (SNAPSHOT_OPTIONS) a snapshot id, a group-level option (TEXT_OPTIONS)
    a short text."""
    global _option_rules
    if _option_rules is None:
        import dash
        import dash_bootstrap_components as dbc
        from dashboard.callbacks.shell import render_page
        from dashboard.components import iter_components
        rules: dict = {}
        for page in dash.page_registry.values():
            layout, _ = render_page(page["path"], "")
            for c in iter_components(layout):
                cid = getattr(c, "id", None)
                if not (isinstance(cid, dict) and cid.get("type") == "page-option"):
                    continue
                if cid["key"] in SNAPSHOT_OPTIONS:
                    rules[cid["key"]] = ("snapshot", ServableCutIds())
                    continue
                if cid["key"] in TEXT_OPTIONS:
                    rules[cid["key"]] = ("text", None)
                    continue
                options = getattr(c, "options", None)
                if options is None:
                    rules[cid["key"]] = ("number", None)
                    continue
                values = {o["value"] if isinstance(o, dict) else o for o in options}
                kind = "list" if isinstance(c, dbc.Checklist) or getattr(c, "multi", False) else "one"
                old = rules.get(cid["key"], (kind, set()))
                rules[cid["key"]] = (kind, old[1] | values)
        if not dash.page_registry:
            return rules                # no app yet: nothing to learn from (and nothing cached)
        _option_rules = rules
    return _option_rules


def _number_or_none(value) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value) and abs(value) < 1e9
    return isinstance(value, str) and len(value) <= 16


def _snapshot_id_or_none(value) -> bool:
    """None, "" (the page's default cut) or a snapshot id."""
    from dashboard.snapshots import SNAPSHOT_ID
    if value in (None, ""):
        return True
    return isinstance(value, str) and len(value) <= MAX_ID_TEXT and bool(SNAPSHOT_ID.match(value))


def _text_or_none(value, limit: int) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= limit)


def _list_of_text(value, limit: int) -> bool:
    return value is None or (isinstance(value, list) and len(value) <= limit and
                             all(isinstance(v, (str, int)) and len(str(v)) <= MAX_ID_TEXT for v in value))


def check_value(ident, prop: str, value) -> None:
    """Raise Refused for a page option outside its set, or a shell control value of the wrong
    kind or length. Other components' values are the callbacks' to read leniently."""
    from dashboard import ids
    from dashboard.filters import LIST_KEYS
    if isinstance(ident, dict) and ident.get("type") == "page-option" and prop == "value":
        rule = page_option_rules().get(ident.get("key"))
        if rule is None:
            raise Refused(f"unknown page option {str(ident.get('key'))[:40]!r}")
        kind, allowed = rule
        ok = (_snapshot_id_or_none(value) if kind == "snapshot" else
              _text_or_none(value, MAX_ID_TEXT) if kind == "text" else
              _number_or_none(value) if kind == "number" else
              value is None or (_hashable(value) and value in allowed) if kind == "one" else
              isinstance(value, list) and len(value) <= len(allowed) and all(_hashable(v) and v in allowed
                                                                             for v in value))
        if not ok:
            raise Refused(f"page option {ident['key']!r}: a value outside its choices")
        return
    if not isinstance(ident, str):
        return
    controls = {control: key for key, control in ids.LIST_CONTROLS.items()}
    ok = True
    if ident in controls and prop == "value":
        allowed = LIST_KEYS[controls[ident]]
        ok = _list_of_text(value, len(allowed) if allowed else MAX_SITES)
    elif ident == ids.F_AGE and prop == "value":
        ok = value is None or (isinstance(value, list) and len(value) == 2 and all(_number_or_none(v) for v in value))
    elif (ident == ids.F_ENROLLED and prop in ("start_date", "end_date")) or (ident == ids.SNAPSHOT and prop == "value"):
        ok = _text_or_none(value, MAX_ID_TEXT)
    elif (ident == ids.URL and prop in ("search", "pathname", "href", "hash")) or \
            (ident in (ids.URL_SEEN, ids.ROUTED) and prop == "data"):
        ok = _text_or_none(value, MAX_TEXT)
    elif ident in (ids.SHOWN_CUT, ids.CUT_POLL_SEEN) and prop == "data":
        ok = _text_or_none(value, MAX_ID_TEXT)
    elif ident == ids.CUT_POLL and prop == "n_intervals":
        ok = _number_or_none(value)
    elif ident == ids.STATE and prop == "data":
        ok = value is None or (isinstance(value, dict) and set(value) <= {"snapshot", "query"} and
                               _text_or_none(value.get("snapshot"), MAX_ID_TEXT) and
                               _text_or_none(value.get("query"), MAX_TEXT))
    if not ok:
        raise Refused(f"{ident}.{prop}: a value of the wrong kind or length")


def _hashable(value) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and len(value) > MAX_TEXT)


# --- installation ---------------------------------------------------------------------------------
def force_https() -> bool:
    """REGISTRY_FORCE_HTTPS=on: redirect http to https and mark the session cookie secure (off by
    default: behind a proxy that terminates TLS, or on loopback, the app sees http)."""
    return os.environ.get("REGISTRY_FORCE_HTTPS", "off").lower() in ("on", "1", "true", "yes")


def content_security_policy(app) -> dict:
    """Scripts from this origin plus the app's inline scripts by hash (Dash's renderer start-up
    and the clientside callbacks); styles inline too (plotly.js adds <style> elements); images
    from this origin and data: URLs (plotly's PNG/SVG export, Bootstrap's icons)."""
    return {
        "default-src": "'self'",
        "script-src": ["'self'", *app.csp_hashes()],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],   # blob: plotly draws a PNG download through one
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def install(app) -> None:
    """Limits, the callback body check and the security headers on the app's Flask server. Call
    after every callback and inline script is registered (create_app does)."""
    from flask_talisman import Talisman
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    update_path = app.config.routes_pathname_prefix + "_dash-update-component"

    @server.before_request
    def _check_callback_request():
        if flask.request.path != update_path or flask.request.method != "POST":
            return None
        try:
            body = flask.request.get_json(force=True)       # 413 past the limit, 400 if not JSON
            check_callback_body(body, app.callback_map)
        except Refused as e:
            log.warning("callback request refused: %s", e)
            return flask.Response(f"Bad request: {e}\n", status=400, mimetype="text/plain")
        except HTTPException as e:
            if isinstance(e, BadRequest) and e.code == 400:
                return flask.Response("Bad request: the body is not JSON\n", status=400, mimetype="text/plain")
            raise
        return None

    page_option_rules()                 # the page options' choices, read from the layouts once
    https = force_https()
    Talisman(server, force_https=https, session_cookie_secure=https, frame_options="DENY",
             referrer_policy="same-origin", content_security_policy=content_security_policy(app),
             x_content_type_options=True, permissions_policy={})


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its and Python's version in the Server header."""

    def version_string(self) -> str:
        return "dashboard"
