"""The browser's side of Dash's callback protocol, replayed on the server: what the browser
posts to /_dash-update-component when a filter changes, built from /_dash-dependencies and the
page's layout. Used by the cache warmer (dashboard/warm.py) and the benchmark (benchmarks/):
the JSON is the browser's, so the results land under the keys the browser's requests read.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

# filter key -> the shell control that sets it (a scenario: {"bclc": ["C"], "age": [50, 75], ...})
CONTROL_IDS = {"site": "f-site", "bclc": "f-bclc", "child_pugh": "f-child-pugh", "etiology": "f-etiology",
               "sex": "f-sex", "ecog": "f-ecog"}


def split_output(output: str) -> list[tuple[str, str]]:
    """'..a.b...c.d..' -> [('a','b'), ('c','d')]; 'a.b' -> [('a','b')]."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    out = []
    for p in parts:
        ident, prop = p.rsplit(".", 1)
        out.append((ident, prop))
    return out


def parse_id(ident: str):
    return json.loads(ident) if ident.startswith("{") else ident


def id_key(ident) -> str:
    return json.dumps(ident, sort_keys=True, separators=(",", ":")) if isinstance(ident, dict) else ident


def layout_props(component) -> dict[str, object]:
    """id (as a key string) -> component, for every component of a layout tree."""
    from dashboard.components import iter_components
    return {id_key(c.id): c for c in iter_components(component) if getattr(c, "id", None) is not None}


class Replayer:
    """Posts callbacks as the browser does, through the Flask test client or over HTTP."""

    def __init__(self, client=None, deps=None, base_url=None):
        self.client = client
        self.deps = deps
        self.base_url = base_url

    def _send(self, body) -> tuple[int, bytes]:
        if self.client is not None:
            r = self.client.post("/_dash-update-component", json=body)
            return r.status_code, r.data
        req = urllib.request.Request(self.base_url + "/_dash-update-component", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post(self, dep, values: dict) -> float:
        """POST one callback; values maps 'id.prop' -> value. Returns milliseconds."""
        body = callback_body(dep, values)
        t0 = time.perf_counter()
        status, payload = self._send(body)
        ms = 1000 * (time.perf_counter() - t0)
        if status not in (200, 204):
            raise RuntimeError(f"callback {dep['output'][:80]} answered {status}: {payload[:300]!r}")
        return ms


def callback_body(dep: dict, values: dict, changed: str | None = None) -> dict:
    """The JSON the browser posts for one callback; values maps 'id.prop' -> value. `changed`: the
    input that fired (default: the first of the callback's own inputs given a value)."""
    outputs = [{"id": parse_id(i), "property": p} for i, p in split_output(dep["output"])]

    def spec(items):
        out = []
        for item in items:
            ident = item["id"]
            if "ALL" in ident or "MATCH" in ident:
                out.append([])          # no pattern-matched component present
                continue
            out.append({"id": parse_id(ident), "property": item["property"],
                        "value": values.get(f"{ident}.{item['property']}")})
        return out
    if changed is None:
        own = {f"{i['id']}.{i['property']}" for i in dep["inputs"]}
        fired = [k for k in values if (k.endswith(".data") or k.endswith(".value")) and k in own][:1]
    else:
        fired = [changed]
    return {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": spec(dep["inputs"]), "state": spec(dep.get("state", [])), "changedPropIds": fired}


def page_callbacks(deps, present: set[str]):
    """Callbacks that read the filter state and write only components present on the page/shell."""
    out = []
    for dep in deps:
        if dep.get("clientside_function") or "filter-state" not in {i["id"] for i in dep["inputs"]}:
            continue
        if all(i in present for i, _ in split_output(dep["output"])):
            out.append(dep)
    return out


def shell_sync(deps) -> dict:
    """The shell's server callback that keeps URL and controls canonical (dashboard/callbacks/shell.py)."""
    return next(d for d in deps if not d.get("clientside_function") and d["output"] == "url-message.children")


def page_plan(deps, page_path, shell_ids):
    """(callbacks, shell sync callback, base control values) of one page."""
    from dashboard.callbacks.shell import render_page
    layout, _ = render_page(page_path, "")
    comps = layout_props(layout)
    callbacks = page_callbacks(deps, set(comps) | shell_ids)
    sync = shell_sync(deps)
    base_values = {}
    for key, comp in comps.items():
        for prop in ("value", "start_date", "end_date"):
            if getattr(comp, prop, None) is not None:
                base_values[f"{key}.{prop}"] = getattr(comp, prop)
    return callbacks, sync, base_values


def update_values(base_values: dict, snapshot_id: str, scenario: dict) -> tuple[dict, dict]:
    """(the shell sync callback's input values, the page callbacks' input values) for one filter
    change: the controls set as the scenario says, and the filter state the shell derives."""
    from dashboard.filters import Filters
    values = dict(base_values)
    values["snapshot-select.value"] = snapshot_id
    for key, control in CONTROL_IDS.items():
        values[f"{control}.value"] = scenario.get(key, [])
    values["f-age.value"] = scenario.get("age", [18, 100])
    values["f-enrolled.start_date"], values["f-enrolled.end_date"] = scenario.get("enrolled", [None, None])
    pairs = [(k, ",".join(v)) for k, v in scenario.items() if k in CONTROL_IDS]
    if "age" in scenario:
        pairs += [("age_min", str(scenario["age"][0])), ("age_max", str(scenario["age"][1]))]
    if "enrolled" in scenario:
        pairs += [("enrolled_from", scenario["enrolled"][0]), ("enrolled_to", scenario["enrolled"][1])]
    page_values = dict(values)
    page_values["filter-state.data"] = {"snapshot": snapshot_id, "query": Filters.parse_pairs(pairs)[0].to_query()}
    return values, page_values


class Session:
    """The app's callback map and a test client: everything needed to replay a page."""

    def __init__(self, app=None, user=None):
        from dashboard import app as app_module
        from dashboard.app import create_app
        from dashboard.auth import IN_PROCESS_USER
        self.app = app or create_app()
        self.client = self.app.server.test_client()
        if user is not None:            # requests of this process, signed in as that user whatever the sign-in mode
            self.client.environ_base[IN_PROCESS_USER] = user
        self.client.get("/")
        self.deps = self.client.get("/_dash-dependencies").get_json()
        self.shell_ids = set(layout_props(app_module.layout()))
        self.replayer = Replayer(self.client, self.deps)

    def plan(self, page_path: str):
        return page_plan(self.deps, page_path, self.shell_ids)
