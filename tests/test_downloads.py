"""The CSV download runs what the server decides (issue 14, item 6): the figure id of the button maps
to its export on the server, and the options come from the page's own state (the page options of
the URL, validated as the page validates them). Nothing a client posts names an export or its
options: the crafted requests below once returned every patient row with exact dates, another
figure's rows, and a 42 MB risk table.

Expected values: `python -m dashboard export` run as a user runs it (a separate process, cache
off), and the export named in the figure's own store, as the page callback filled it."""
import json
import subprocess
import sys

import pytest

from dashboard import data, exports
from dashboard.app import PAGES
from dashboard.data import ALL_SITES
from dashboard.filters import Filters
from dashboard.replay import Session, layout_props, parse_id, split_output

ROOT = data.__file__.rsplit("/dashboard/", 1)[0]
DOWNLOAD_OUTPUT = '{"figure":["MATCH"],"type":"download"}.data'


@pytest.fixture
def session(synthetic_root, monkeypatch, dash_app):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    return Session(dash_app)


def download_body(session, figure: str, search: str = "", state=None, store=None) -> dict:
    """The browser's POST for a click on a card's "Download data (CSV)", built from the callback
    the server declares (whatever State it reads: the URL, the filter state, a card's store)."""
    dep = next(d for d in session.deps if d["output"] == DOWNLOAD_OUTPUT)
    values = {"url.search": search, "filter-state.data": state or {"snapshot": "latest", "query": ""},
              '{"figure":["MATCH"],"type":"figure-export"}.data': store}
    button = {"type": "download-csv", "figure": figure}
    states = []
    for item in dep["state"]:
        ident = parse_id(item["id"])
        if isinstance(ident, dict):
            ident = {k: (figure if v == ["MATCH"] else v) for k, v in ident.items()}
        states.append({"id": ident, "property": item["property"], "value": values[f"{item['id']}.{item['property']}"]})
    return {"output": DOWNLOAD_OUTPUT, "outputs": {"id": {"type": "download", "figure": figure}, "property": "data"},
            "inputs": [{"id": button, "property": "n_clicks", "value": 1}], "state": states,
            "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"]}


def post(session, body):
    return session.client.post("/_dash-update-component", json=body)


def sent_csv(response, figure: str) -> str | None:
    """The CSV text a download response carries (None: nothing sent)."""
    if response.status_code != 200:
        return None
    key = json.dumps({"figure": figure, "type": "download"}, separators=(",", ":"))
    return response.get_json()["response"][key]["data"]["content"]


def csv_of(export, snapshot, filters=Filters(), **options) -> str:
    return exports.to_csv(exports.run_export(export, snapshot, filters, ALL_SITES, **options))


# --- crafted requests ------------------------------------------------------------------------------
def test_a_client_named_export_is_never_run(session):
    snapshot = data.resolve("latest")
    accrual = csv_of("accrual", snapshot)
    patients = csv_of("patients", snapshot)
    for store in ({"export": "patients", "options": {}, "filename": "x", "figure": "accrual"},
                  {"export": "waterfall", "options": {"response_scope": "local"}, "filename": "x"},
                  {"export": "accrual", "options": {"times": "1,2"}, "filename": "x"}):
        r = post(session, download_body(session, "accrual", store=store))
        assert r.status_code < 500
        got = sent_csv(r, "accrual")
        assert got in (None, accrual), f"{store['export']}: the client's export was run"
        assert got != patients and "first_treatment_date" not in (got or "")


def test_the_risk_table_s_times_are_the_server_s(session):
    """500,000 posted times once made a 55 MB cache entry and a 42 MB response; the times are the
    figure's ticks, which the server computes (the page's own spec of the same state)."""
    snapshot = data.resolve("latest")
    times = ",".join(str(t) for t in range(500_000))
    crafted = {"export": "km-risk-table", "filename": "x",
               "options": {"endpoint": "os", "by": "bclc_stage", "ci": "log-log", "times": times}}
    r = post(session, download_body(session, "km-risk-table", store=crafted))
    assert r.status_code < 500 and len(r.data) < 100_000
    spec = page_specs(session, "/survival", "")["km-risk-table"]
    assert len(spec["options"]["times"].split(",")) <= 50
    assert sent_csv(r, "km-risk-table") in (None, csv_of("km-risk-table", snapshot, **spec["options"]))


@pytest.mark.parametrize("figure", ["patients", "no-such-figure", "", "x" * 5000], ids=["patients", "unknown", "empty", "long"])
def test_an_unknown_figure_is_a_polite_no_op(session, figure):
    r = post(session, download_body(session, figure, store={"export": "patients", "filename": "x"}))
    assert r.status_code in (204, 400, 404), r.data[:200]
    assert b"patient_id" not in r.data


def test_an_invalid_page_option_gives_what_the_page_shows(session):
    """?scope=nonsense: the page draws the overall scope (its layout's fallback), and the download
    is that view's rows, not an error and not a client-chosen scope."""
    snapshot = data.resolve("latest")
    got = sent_csv(post(session, download_body(session, "response-waterfall", "?scope=nonsense")), "response-waterfall")
    assert got == csv_of("waterfall", snapshot, response_scope="overall")


# --- every real figure ----------------------------------------------------------------------------
def page_specs(session, path: str, search: str, state=None) -> dict:
    """figure -> the export spec the page's callbacks put in the figure's store, with the page's
    controls as its layout renders them for `search` (what the browser posts)."""
    from dashboard.callbacks.shell import render_page
    from dashboard.replay import page_callbacks
    layout, _ = render_page(path, search)
    comps = layout_props(layout)
    values = {f"{k}.{prop}": getattr(c, prop) for k, c in comps.items() for prop in ("value", "active_page")
              if getattr(c, prop, None) is not None}
    values["filter-state.data"] = state or {"snapshot": "latest", "query": ""}
    specs = {}
    for dep in page_callbacks(session.deps, set(comps) | session.shell_ids):
        outputs = split_output(dep["output"])
        body = {"output": dep["output"],
                "outputs": [{"id": parse_id(i), "property": p} for i, p in outputs],
                "inputs": [{"id": parse_id(i["id"]), "property": i["property"],
                            "value": values.get(f"{i['id']}.{i['property']}")} for i in dep["inputs"]],
                "state": [{"id": parse_id(i["id"]), "property": i["property"],
                           "value": values.get(f"{i['id']}.{i['property']}")} for i in dep["state"]],
                "changedPropIds": ["filter-state.data"]}
        if len(outputs) == 1:
            body["outputs"] = body["outputs"][0]
        r = post(session, body)
        assert r.status_code == 200, (dep["output"][:80], r.data[:300])
        for key, props in r.get_json()["response"].items():
            if key.startswith("{") and json.loads(key).get("type") == "figure-export":
                specs[json.loads(key)["figure"]] = props["data"]
    return specs


SEARCHES = {
    "/enrollment": ["", "?mode=site&sort=enrolled"],
    "/survival": ["", "?endpoint=pfs&by=sex&ci=log&bands=on", "?endpoint=nonsense&by=drop+table"],
    "/response": ["", "?scope=local&by=site_id&sort=time_asc"],
    "/safety": ["", "?events=serious&within_days=7&by=bclc_stage&measure=grade3&level=soc&min_grade=4&serious_only=on",
                "?within_days=-3&min_grade=9"],
    "/downstaging": ["", "?measure=milan&by=sex"],
}


def test_every_figure_downloads_the_export_its_page_shows(session):
    """For every card of every page, in several page states and a filter: the CSV the server sends
    is the export named in the card's own store (which the page callback filled), with its options."""
    snapshot = data.resolve("latest")
    state = {"snapshot": snapshot.snapshot_id, "query": "bclc=B,C"}
    filters = Filters(bclc=("B", "C"))
    seen = set()
    for path, _ in PAGES:
        for search in SEARCHES.get(path, []):
            specs = page_specs(session, path, search, state)
            for figure, spec in specs.items():
                got = sent_csv(post(session, download_body(session, figure, search, state, store=spec)), figure)
                assert got == csv_of(spec["export"], snapshot, filters, **spec["options"]), (path, search, figure)
                seen.add(figure)
    assert len(seen) == 23, sorted(seen)


def cli_export(root, name, *args) -> str:
    out = subprocess.run([sys.executable, "-m", "dashboard", "export", name, "--data", str(root), "--format", "csv",
                          *args], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**__import__("os").environ, "REGISTRY_CACHE": "off"})
    return out.stdout


def test_downloads_equal_the_command_line(session, synthetic_root):
    """km-risk-table, waterfall and ae-incidence, each in a non-default page state and a filter,
    against `python -m dashboard export` in a fresh process with the cache off."""
    snapshot = data.resolve("latest")
    state = {"snapshot": snapshot.snapshot_id, "query": "bclc=B,C&sex=M"}
    cases = [
        ("/survival", "?endpoint=pfs&by=ecog_group&ci=plain", "km-risk-table",
         ["km-risk-table", "--endpoint", "pfs", "--by", "ecog_group", "--ci", "plain"]),
        ("/response", "?scope=local", "response-waterfall", ["waterfall", "--scope", "local"]),
        ("/safety", "?events=related&within_days=30&level=soc", "ae-incidence-table",
         ["ae-incidence", "--level", "soc", "--by", "none", "--related-only", "--within-days", "30"]),
    ]
    for path, search, figure, args in cases:
        if figure == "km-risk-table":     # the figure's ticks: the page's spec, computed by the server
            times = page_specs(session, path, search, state)[figure]["options"]["times"]
            args = args + ["--times", times]
        got = sent_csv(post(session, download_body(session, figure, search, state)), figure)
        expected = cli_export(synthetic_root, *args, "--filter", "bclc=B,C", "--filter", "sex=M")
        assert got is not None and got.strip() == expected.strip(), figure


def sent_name(response, figure: str) -> str:
    key = json.dumps({"figure": figure, "type": "download"}, separators=(",", ":"))
    return response.get_json()["response"][key]["data"]["filename"]


def test_csv_names_carry_the_options_and_the_filter(session):
    """Issue 20: OS and PFS, or two filters, once downloaded under the same name."""
    names = {}
    for search, state in (("?endpoint=os", {"snapshot": "latest", "query": ""}),
                          ("?endpoint=pfs", {"snapshot": "latest", "query": ""}),
                          ("?endpoint=pfs&bclc=B,C&sex=F", {"snapshot": "latest", "query": "bclc=B,C&sex=F"})):
        names[search] = sent_name(post(session, download_body(session, "km-summary", search, state)), "km-summary")
    assert len(set(names.values())) == 3, names
    os_name, pfs_name, filtered = names.values()
    assert os_name.startswith("survival_km-summary_") and "endpoint-os" in os_name and os_name.endswith(".csv")
    assert "endpoint-pfs" in pfs_name and "_all-patients_" in pfs_name
    assert "_bclc-B-C-sex-F_" in filtered
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") for n in names.values())


def test_file_name_parts_are_bounded_and_file_safe():
    import datetime as dt
    from dashboard.components import file_name
    long = Filters(site=tuple(f"S{i:02d}" for i in range(1, 40)), etiology=("HBV", "../etc"))
    short = Filters(etiology=("../../etc/passwd",))
    name = file_name("survival", "km-curve", "2025-12-31", dt.date(2026, 1, 2),
                     options={"endpoint": "os", "by": "bclc_stage", "ci": None}, filters=long)
    prefix, _, rest = name.partition("_2025-12-31_")
    assert prefix == "survival_km-curve_by-bclc-stage-endpoint-os"
    tag, date = rest.rsplit("_", 1)
    assert date == "2026-01-02" and len(tag) <= 80 and "/" not in tag and ".." not in tag.replace("...", "")
    assert file_name("safety", "x", "2025-12-31", dt.date(2026, 1, 2)) == "safety_x_2025-12-31_2026-01-02"
    assert file_name("safety", "x", "2025-12-31", dt.date(2026, 1, 2), filters=short) == \
        "safety_x_2025-12-31_etiology-etc-passwd_2026-01-02"
