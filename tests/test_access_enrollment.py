"""Who sees what on Overview and Enrollment (issue 15, item 2), the shell's "n of N" banner and its
site options: requests built by hand against /_dash-update-component for every callback of both
pages and every CSV download of their figures, signed in (header sign-in) as committee,
investigator (own site S01) and sponsor, asserting on the raw JSON of the response.

Registry: generate_registry(n_patients=150, n_sites=6, seed=3), last cut only. Under the filters of
SCENARIOS some cells are 1-4 and some groups under 10 (`test_the_registry_has_small_cells` checks
it, so the other tests cannot pass on a registry without small cells). Expected values: the exports
run with no scope (ALL_SITES, the committee's numbers) and the registry's parquet files read with
DuckDB (patient ids and dates)."""
from __future__ import annotations

import json
import re

import duckdb
import pandas as pd
import pytest

from access_support import signed_in
from test_downloads import download_body
from dashboard import access, data, exports
from dashboard.access import MIN_GROUP, SUPPRESSED, AccessDenied, User, scope_for
from dashboard.analytics.baseline import baseline_wide_rows
from dashboard.filters import Filters
from dashboard.replay import callback_body, layout_props, page_plan, update_values

N_PATIENTS, N_SITES, SEED = 150, 6, 3
CUTOFF = "2025-12-31"
ROLES = ("committee", "investigator", "sponsor")
SCENARIOS = {
    "none": {},
    "S02": {"site": ["S02"]},
    "S04": {"site": ["S04"]},                          # 13 patients: BCLC B 6, C 7
    "F,C": {"sex": ["F"], "bclc": ["C"]},
    "S06,C": {"site": ["S06"], "bclc": ["C"]},        # 4 patients: every count small
    "own": {"site": ["S01"]},                          # the investigator's own site: not suppressed for them
}
PATIENT_ID = re.compile(r"\bS\d{2}-\d{4}\b")
ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})")
FIGURES = {"accrual": "accrual", "enrollment-by-site": "enrollment", "baseline-table": "baseline-table",
           "followup-status": "followup-status"}
USERS = {"committee": User("committee", "committee"), "investigator": User("investigator", "investigator", ("S01",)),
         "sponsor": User("sponsor", "sponsor")}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("access_enrollment")
    generate_registry(root, n_patients=N_PATIENTS, n_sites=N_SITES, seed=SEED, last_cut_only=True, progress=False)
    return root


@pytest.fixture(scope="module")
def patients(registry):
    """The registry's patients, read from the parquet file itself."""
    return duckdb.sql(f"select * from '{registry}/snapshots/{CUTOFF}/patients.parquet'").df()


@pytest.fixture
def snapshot(registry, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(registry))
    return data.resolve("latest")


class Pages:
    """The browser's side of the two pages, for one signed-in role at a time."""

    def __init__(self, app, as_user):
        from dashboard import app as app_module
        self.client = app.server.test_client()
        self.as_user = as_user
        self.deps = self.client.get("/_dash-dependencies", headers=as_user("committee")).get_json()
        self.shell_ids = set(layout_props(app_module.layout()))
        self.plans = {path: page_plan(self.deps, path, self.shell_ids) for path in ("/", "/enrollment")}

    def post(self, role, body):
        return self.client.post("/_dash-update-component", json=body, headers=self.as_user(role))

    def page(self, role, path, scenario, options=None, query=None):
        """{output key: value} of every callback of the page for the filter scenario, and the raw text
        of every response; `query` forges the filter state's query instead of the scenario's."""
        callbacks, sync, base = self.plans[path]
        shell_values, values = update_values(base, CUTOFF, scenario)
        for key, value in (options or {}).items():
            values[f'{{"key":"{key}","type":"page-option"}}.value'] = value
        if query is not None:
            values["filter-state.data"] = {"snapshot": CUTOFF, "query": query}
        outputs, raw = {}, []
        shell_values["url.search"] = "?" + values["filter-state.data"]["query"]
        for dep in callbacks + [sync]:
            r = self.post(role, callback_body(dep, shell_values if dep is sync else values))
            assert r.status_code == 200, (role, dep["output"][:80], r.status_code, r.data[:300])
            assert b"Traceback" not in r.data and b"Something went wrong" not in r.data
            raw.append(r.get_data(as_text=True))
            for ident, props in r.get_json()["response"].items():
                for prop, value in props.items():
                    outputs[f"{ident}.{prop}"] = value
        return outputs, "\n".join(raw)

    def download(self, role, figure, query="", search=""):
        """The CSV a click on the figure's "Download data (CSV)" sends (None: nothing sent)."""
        body = download_body(self, figure, search, {"snapshot": CUTOFF, "query": query})
        r = self.post(role, body)
        assert r.status_code in (200, 204), r.data[:300]
        if r.status_code == 204:
            return None
        key = json.dumps({"figure": figure, "type": "download"}, separators=(",", ":"))
        return r.get_json()["response"][key]["data"]["content"]


@pytest.fixture
def pages(snapshot, dash_app, monkeypatch, tmp_path):
    with signed_in(monkeypatch, tmp_path) as as_user:
        yield Pages(dash_app, as_user)


def query_of(scenario) -> str:
    return Filters.parse_pairs([(k, ",".join(v)) for k, v in scenario.items()])[0].to_query()


def filters_of(scenario) -> Filters:
    return Filters.parse_pairs([(k, ",".join(v)) for k, v in scenario.items()])[0]


# --- what each card shows, read back from the response --------------------------------------------
def key(figure, kind):
    return json.dumps({"figure": figure, "type": kind}, separators=(",", ":"))


def texts(node) -> list[str]:
    """Every string in a component tree (the text a person reads), in order."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [t for child in node for t in texts(child)]
    if isinstance(node, dict):
        return texts(node.get("props", {}).get("children"))
    return []


def find(node, predicate) -> list[dict]:
    """Components of a tree (the JSON Dash sends) whose props satisfy the predicate."""
    found = []
    if isinstance(node, list):
        for child in node:
            found += find(child, predicate)
    elif isinstance(node, dict) and "props" in node:
        if predicate(node["props"]):
            found.append(node)
        found += find(node["props"].get("children"), predicate)
    return found


def displays(out: dict) -> list[tuple[str, str, object]]:
    """Every count the two pages and the banner show, as (kind, where, value): kind 'drawn' for a
    bar length or a line's height, 'count' for a number a person reads (a label, a hover value, a
    table cell, a card, the banner)."""
    shown = []
    bars = out.get(key("enrollment-by-site", "figure") + ".figure")
    if bars and bars["data"]:
        enrolled = next(t for t in bars["data"] if t.get("name") == "Enrolled")
        shown += [("drawn", f"enrollment bar {y}", x) for y, x in zip(enrolled["y"], enrolled["x"])]
        shown += [("count", f"enrollment label {y}", t) for y, t in zip(enrolled["y"], enrolled["text"])]
        shown += [("count", f"enrollment hover {y}", c[1]) for y, c in zip(enrolled["y"], enrolled["customdata"])]
    accrual = out.get(key("accrual", "figure") + ".figure")
    if accrual and accrual["data"]:
        for trace in accrual["data"]:
            if "customdata" in trace:          # the enrolled lines (targets carry none)
                shown += [("drawn", f"accrual {trace['name']} {x}", y) for x, y in zip(trace["x"], trace["y"])]
                shown += [("count", f"accrual this month {trace['name']} {x}", c[0])
                          for x, c in zip(trace["x"], trace["customdata"])]
    follow = out.get(key("followup-status", "figure") + ".figure")
    if follow and follow["data"]:
        trace = follow["data"][0]
        shown += [("drawn", f"follow-up bar {y}", x) for y, x in zip(trace["y"], trace["x"])]
        shown += [("count", f"follow-up label {y}", t) for y, t in zip(trace["y"], trace["text"])]
        shown += [("count", f"follow-up hover {y}", c) for y, c in zip(trace["y"], trace["customdata"])]
    table = out.get(key("baseline-table", "table") + ".children")
    if table:
        shown += [("count", "Table 1 head", t) for th in find(table, lambda p: p.get("className") == "fw-normal")
                  for t in texts(th)]
        for row in find(table, lambda p: "children" in p and isinstance(p["children"], list)
                        and any(isinstance(c, dict) and c.get("type") == "Td" for c in p["children"])):
            cells = row["props"]["children"]
            label = " ".join(texts(cells[0]))
            shown += [("count", f"Table 1 {label}", " ".join(texts(c))) for c in cells[1:]]
    cards = out.get("overview-cards.children")
    if cards:
        for ident in ("overview-patients", "overview-deaths"):
            shown += [("count", ident, t) for c in find(cards, lambda p: p.get("id") == ident) for t in texts(c)]
    banner = out.get("banner-count.children")
    if banner:
        shown += [("count", "banner n", texts(banner[0])[0]),
                  ("count", "banner N", re.search(r"of (\S+) patients", banner[1]).group(1))]
    quality = out.get("overview-quality.children")
    if quality:
        shown += [("count", "quality rows", t) for td in find(quality, lambda p: p.get("className") == "text-end")
                  for t in texts(td)]
    for figure in FIGURES:
        note = out.get(key(figure, "footnote") + ".children")
        for m in re.finditer(r"(\S+) patients in the current filter", " ".join(texts(note or []))):
            shown.append(("count", f"{figure} note", m.group(1)))
    return shown


SMALL_TEXT = re.compile(r"^(?:N = )?([1-4])(?:\s|$)")


def is_small(value) -> bool:
    """A count from 1 to 4, as a number or as the text a person reads ("3", "3 (7.5%)", "N = 3")."""
    if isinstance(value, str):
        return bool(SMALL_TEXT.match(value))
    return isinstance(value, (int, float)) and 0 < value < 5


def small(shown) -> list:
    return [(where, value) for _, where, value in shown if is_small(value)]


# --- the registry ---------------------------------------------------------------------------------
def test_the_registry_has_small_cells(snapshot):
    """The scenarios make small cells (counts 1-4) and small groups (under 10): without them every
    suppression test below would pass on a rule that does nothing."""
    for name in ("none", "S02", "S04", "F,C", "S06,C"):
        table = exports.run_export("baseline-table", snapshot, filters_of(SCENARIOS[name])).rows
        assert table["n"].map(access.is_small).any(), name
    table = exports.run_export("baseline-table", snapshot, filters_of(SCENARIOS["S04"])).rows
    medians = table[table.level == "median (IQR)"]
    assert medians.n.between(5, MIN_GROUP - 1).any()           # groups of 5-9: counts shown, medians not
    enrolled = exports.run_export("enrollment", snapshot, filters_of(SCENARIOS["F,C"])).rows
    assert enrolled.n_enrolled.map(access.is_small).any() and (enrolled.n_enrolled >= 5).any()
    assert exports.run_export("followup-status", snapshot, filters_of(SCENARIOS["S02"])).rows.n.map(access.is_small).any()
    assert exports.run_export("accrual", snapshot).rows.cum_enrolled.map(access.is_small).any()
    assert exports.n_patients(snapshot, filters_of(SCENARIOS["S06,C"]), access.ALL_SITES) == 4


# --- every callback, every role -------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ["none", "S02", "F,C", "S06,C"])
def test_sponsor_sees_no_small_count_no_patient_id_and_no_patient_date(pages, scenario):
    committee = {}
    for path, options in (("/", None), ("/enrollment", None), ("/enrollment", {"mode": "site", "sort": "enrolled"})):
        out, raw = pages.page("sponsor", path, SCENARIOS[scenario], options)
        assert not PATIENT_ID.search(raw), PATIENT_ID.search(raw).group(0)
        # dates: the cut-off and the months of the accrual axis, no patient's date
        dates = set(ISO_DATE.findall(raw)) - {CUTOFF}
        assert all(d.endswith("-01") for d in dates), sorted(d for d in dates if not d.endswith("-01"))
        shown = displays(out)
        assert shown and not small(shown), small(shown)[:5]
        theirs, _ = pages.page("committee", path, SCENARIOS[scenario], options)
        committee[path, str(options)] = (displays(theirs), shown)
    # the same places, the committee's numbers: a count of 1-4 is "<5" (its bar or point not drawn),
    # every other count as the committee sees it
    small_seen = 0
    for (path, _), (theirs, mine) in committee.items():
        assert [w for _, w, _ in theirs] == [w for _, w, _ in mine], path
        for (kind, where, c), (_, _, s) in zip(theirs, mine):
            if is_small(c):
                small_seen += 1
                assert (s in (0, 0.0, None)) if kind == "drawn" else str(s).removeprefix("N = ").startswith(SUPPRESSED), \
                    (where, c, s)
            elif isinstance(s, str) and s == "n < 10":
                assert re.match(r"^[\d.,]+ \([\d.,]+-[\d.,]+\)$", c), (where, c)      # a median (IQR) withheld
            else:
                assert c == s, (where, c, s)
    assert small_seen, "the committee saw no count of 1-4: the test cannot tell"


def test_committee_sees_the_unsuppressed_numbers_of_the_exports(pages, snapshot):
    for name in ("none", "S06,C", "F,C"):
        filters = filters_of(SCENARIOS[name])
        out, _ = pages.page("committee", "/enrollment", SCENARIOS[name])
        home, _ = pages.page("committee", "/", SCENARIOS[name])
        shown = dict(((w, v) for _, w, v in displays({**out, **home})))
        enrollment = exports.run_export("enrollment", snapshot, filters).rows.sort_values("site_id")
        bars = next(t for t in out[key("enrollment-by-site", "figure") + ".figure"]["data"] if t["name"] == "Enrolled")
        assert bars["x"] == enrollment.n_enrolled.tolist()
        follow = exports.run_export("followup-status", snapshot, filters)
        assert out[key("followup-status", "figure") + ".figure"]["data"][0]["x"] == follow.rows.n.tolist()
        accrual = exports.run_export("accrual", snapshot, filters).rows
        line = out[key("accrual", "figure") + ".figure"]["data"][0]
        assert line["y"] == accrual[accrual.site_id == "all"].cum_enrolled.tolist()
        _, rows = baseline_wide_rows(exports.run_export("baseline-table", snapshot, filters).rows)
        cells = [v for k, w, v in displays(out) if w.startswith("Table 1 ") and w != "Table 1 head"]
        expected = [t or "" for var, _, _, ts in rows if var != "n" for t in ts]
        assert cells == expected
        n = exports.n_patients(snapshot, filters, access.ALL_SITES)
        assert shown["overview-patients"] == f"{n:,}" and shown["banner n"] == f"{n:,}"
        assert shown["overview-deaths"] == str(follow.rows.set_index("status").n["died"])
        assert shown["banner N"] == f"{N_PATIENTS:,}"
        assert small(displays({**out, **home})) or name == "none"    # the committee's small cells stay


@pytest.mark.parametrize("scenario", ["none", "S02", "F,C", "S06,C"])
def test_investigator_pooled_views_are_suppressed_as_the_sponsor_s(pages, scenario):
    for path in ("/", "/enrollment"):
        out, raw = pages.page("investigator", path, SCENARIOS[scenario])
        ids = set(PATIENT_ID.findall(raw))
        assert {i[:3] for i in ids} <= {"S01"}, sorted(ids)[:5]
        shown = displays(out)
        assert not small(shown), small(shown)[:5]
        sponsor, _ = pages.page("sponsor", path, SCENARIOS[scenario])
        assert shown == displays(sponsor)
    _, committee = pages.page("committee", "/", SCENARIOS[scenario])
    assert {i[:3] for i in PATIENT_ID.findall(committee)} - {"S01"}, "no other site's id to hide: the test cannot tell"


def test_investigator_own_site_is_not_suppressed(pages, snapshot):
    """Filtered to their own site, an investigator sees their site's numbers as the committee does,
    small ones included (they may see these patients row by row)."""
    for path in ("/", "/enrollment"):
        mine, _ = pages.page("investigator", path, SCENARIOS["own"])
        theirs, _ = pages.page("committee", path, SCENARIOS["own"])
        if path == "/":          # the data-quality examples name patients of every site: committee only
            mine.pop("overview-quality.children"), theirs.pop("overview-quality.children")
        assert displays(mine) == displays(theirs)
    assert small(displays(mine)), "no small cell at the own site: the test cannot tell"


def test_a_forged_filter_state_gets_the_scope_of_what_it_asks(pages, snapshot):
    """The investigator's own site named next to another (S01,S06) is not their own site only: pooled
    and suppressed, though the state names S01. The committee sees S06's 4 BCLC C patients."""
    query = "site=S01,S06&bclc=C"
    assert exports.run_export("enrollment", snapshot, Filters.from_query(query)[0]).rows.n_enrolled.tolist() == [14, 4]
    out, raw = pages.page("investigator", "/enrollment", {}, query=query)
    bars = next(t for t in out[key("enrollment-by-site", "figure") + ".figure"]["data"] if t["name"] == "Enrolled")
    target = duckdb.sql(f"select target_enrollment from '{snapshot.path}/sites.parquet' where site_id = 'S01'").fetchall()[0][0]
    # under a filter: the filtered count beside the site's total and target, never a % of target (issue 19)
    totals = exports.run_export("enrollment", snapshot, Filters(site=("S01", "S06"))).rows.n_enrolled.tolist()
    assert all(t >= 5 for t in totals)                  # the totals are shown as they are
    s06_target = duckdb.sql(f"select target_enrollment from '{snapshot.path}/sites.parquet' "
                            "where site_id = 'S06'").fetchall()[0][0]
    assert bars["text"] == [f"14 of {totals[0]} enrolled (target {target})",
                            f"{SUPPRESSED} of {totals[1]} enrolled (target {s06_target})"] and bars["x"] == [14, 0]
    assert not small(displays(out))
    csv = pages.download("investigator", "enrollment-by-site", query=query)
    assert "first_enrollment_date" not in csv and ",<5," in csv


@pytest.mark.parametrize("role", ROLES)
def test_site_options_are_every_site_for_every_role(pages, role, snapshot):
    """Site ids and names are not patient data: every role filters by every site (the shell's sync
    callback), and the options carry no count."""
    _, sync, base = pages.plans["/enrollment"]
    values, _ = update_values(base, CUTOFF, {})
    # a page's load: the server step checks the URL and sets the lists (side updates)
    values.update({"url.search": "", "url-seen.data": "load:1", "snapshot-select.value": None})
    r = pages.post(role, callback_body(sync, values, "url-seen.data"))
    options = r.get_json()["sideUpdate"]["f-site"]["options"]
    assert [o["value"] for o in options] == [s for s, _ in data.sites(snapshot)]
    assert all(re.fullmatch(r"S\d{2} · [^\d]+", o["label"]) for o in options), options


# --- downloads ------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("scenario", ["none", "F,C", "S06,C", "own"])
def test_every_download_is_the_export_as_the_role_may_see_it(pages, snapshot, role, scenario):
    filters = filters_of(SCENARIOS[scenario])
    scope = scope_for(USERS[role], filters.site)
    for figure, name in FIGURES.items():
        csv = pages.download(role, figure, query=filters.to_query())
        assert csv == exports.to_csv(exports.compute_export(name, snapshot, filters, scope)), (figure, role)
        assert not PATIENT_ID.search(csv)
        rows = pd.read_csv(pd.io.common.StringIO(csv), dtype=str, keep_default_na=False)
        counts = [c for c in ("n", "n_group", "n_enrolled", "cum_enrolled") if c in rows.columns]
        values = [v for c in counts for v in rows[c]]
        if scope.suppress:
            assert not [v for v in values if v in ("1", "2", "3", "4")], (figure, role)
            assert not {"first_enrollment_date", "last_enrollment_date"} & set(rows.columns)
        elif role == "committee" and scenario != "own":
            assert exports.to_csv(exports.run_export(name, snapshot, filters)) == csv


def test_an_investigator_s_own_site_download_keeps_the_enrollment_dates(pages, snapshot, patients):
    """Decided: the first and last enrollment dates are their own patients' dates, which an
    investigator may see row by row; filtered to their own site, they keep them."""
    csv = pages.download("investigator", "enrollment-by-site", query="site=S01")
    rows = pd.read_csv(pd.io.common.StringIO(csv))
    own = patients[patients.site_id == "S01"].first_treatment_date
    assert rows.site_id.tolist() == ["S01"]
    assert rows.first_enrollment_date[0] == f"{own.min():%Y-%m-%d}" and rows.last_enrollment_date[0] == f"{own.max():%Y-%m-%d}"


def test_the_filter_state_decides_the_download_not_the_url(pages, snapshot):
    """A request whose URL asks for site=S02 while its state names the investigator's own site gets
    S01's rows; the other way round it gets S02 pooled and suppressed, without dates."""
    own = pages.download("investigator", "enrollment-by-site", query="site=S01", search="?site=S02")
    assert pd.read_csv(pd.io.common.StringIO(own)).site_id.tolist() == ["S01"]
    other = pages.download("investigator", "enrollment-by-site", query="site=S02", search="?site=S01")
    rows = pd.read_csv(pd.io.common.StringIO(other))
    assert rows.site_id.tolist() == ["S02"] and "first_enrollment_date" not in rows.columns


@pytest.mark.parametrize("role", ("investigator", "sponsor"))
def test_a_figure_no_page_has_sends_nothing(pages, role):
    for figure in ("patients", "../patients", "baseline"):
        assert pages.download(role, figure) is None


# --- the exports, scope by scope ------------------------------------------------------------------
def test_patients_export_own_site_for_an_investigator_refused_to_a_sponsor(snapshot, patients):
    investigator = exports.compute_export("patients", snapshot, Filters(), scope_for(USERS["investigator"]))
    assert set(investigator.rows.site_id) == {"S01"}
    assert sorted(investigator.rows.patient_id) == sorted(patients[patients.site_id == "S01"].patient_id)
    s02 = exports.compute_export("patients", snapshot, Filters(site=("S02",)), scope_for(USERS["investigator"], ("S02",)))
    assert s02.rows.empty
    with pytest.raises(AccessDenied):
        exports.compute_export("patients", snapshot, Filters(), scope_for(USERS["sponsor"]))
    committee = exports.compute_export("patients", snapshot, Filters(), scope_for(USERS["committee"]))
    assert len(committee.rows) == N_PATIENTS


@pytest.mark.parametrize("scenario", ["none", "S02", "S04", "F,C", "S06,C"])
def test_table_one_for_a_sponsor(snapshot, scenario):
    """Counts 1-4 "<5" with percentage withheld; a median (IQR) of fewer than 10 values withheld
    (text "n < 10"), as a box plot of such a group is not drawn; every other number the committee's."""
    filters = filters_of(SCENARIOS[scenario])
    full = exports.run_export("baseline-table", snapshot, filters).rows
    shown = exports.compute_export("baseline-table", snapshot, filters, scope_for(USERS["sponsor"])).rows
    assert len(full) == len(shown)
    for c, s in zip(full.to_dict("records"), shown.to_dict("records")):
        values = lambda row, keys: tuple(None if v is None or v != v else v for v in (row[k] for k in keys))
        if c["level"] == "median (IQR)":
            if 0 < c["n"] < MIN_GROUP:
                assert values(s, ("median", "q1", "q3", "text")) == (None, None, None, "n < 10"), c
            else:
                assert values(s, ("median", "q1", "q3", "text")) == values(c, ("median", "q1", "q3", "text"))
        elif access.is_small(c["n"]):
            assert values(s, ("n", "pct", "text")) == (SUPPRESSED, None, SUPPRESSED), c
        else:
            assert values(s, ("n", "pct", "text")) == values(c, ("n", "pct", "text")), c
        assert s["n_group"] == (SUPPRESSED if access.is_small(c["n_group"]) else c["n_group"])


def test_follow_up_median_withheld_under_ten_patients(snapshot):
    sponsor = scope_for(USERS["sponsor"])
    few = exports.compute_export("followup-status", snapshot, filters_of(SCENARIOS["S06,C"]), sponsor)
    assert few.n_patients == SUPPRESSED and few.extra["median_followup_days"] is None
    assert "fewer than 10" in few.extra["median_followup_note"]
    assert set(few.rows.n) == {SUPPRESSED} and set(few.rows.pct.map(type)) == {type(None)}
    many = exports.compute_export("followup-status", snapshot, filters_of(SCENARIOS["S02"]), sponsor)
    full = exports.run_export("followup-status", snapshot, filters_of(SCENARIOS["S02"]))
    assert many.extra["median_followup_days"] == full.extra["median_followup_days"] is not None
    assert "median_followup_note" not in many.extra


def test_accrual_for_a_sponsor_suppresses_every_small_month_and_cumulative_count(snapshot):
    full = exports.run_export("accrual", snapshot).rows
    shown = exports.compute_export("accrual", snapshot, Filters(), scope_for(USERS["sponsor"])).rows
    for column in ("n_enrolled", "cum_enrolled"):
        small_cells = full[column].map(access.is_small)
        assert small_cells.any()
        assert (shown[column][small_cells] == SUPPRESSED).all()
        assert (shown[column][~small_cells] == full[column][~small_cells]).all()



def test_accrual_total_line_for_a_sponsor_is_suppressed_as_the_filtered_line(pages, snapshot):
    """Under a subgroup filter the light "Enrolled in total" line(s), pooled and per site: a cumulative total of 1-4
    (committee's numbers, the export with no scope) is not drawn and reads "<5" in the hover; every other as it is."""
    full = exports.run_export("accrual", snapshot, filters_of(SCENARIOS["F,C"])).rows
    small_seen = 0
    for options in (None, {"mode": "site"}):
        out, _ = pages.page("sponsor", "/enrollment", SCENARIOS["F,C"], options)
        lines = [t for t in out[key("accrual", "figure") + ".figure"]["data"] if t.get("name") == "Enrolled in total"]
        assert len(lines) == (1 if options is None else N_SITES)
        for line in lines:
            site = "all" if options is None else line["legendgroup"]
            expected = full[full.site_id == site].cumulative_total.tolist()
            assert len(line["y"]) == len(expected)
            for y, (c,), n in zip(line["y"], line["customdata"], expected):
                small_seen += is_small(n)
                assert (y, c) == ((None, SUPPRESSED) if is_small(n) else (n, n)), (site, y, c, n)
    assert small_seen, "no cumulative total of 1-4: the test cannot tell"


# --- the data-quality panel of the Overview -------------------------------------------------------
@pytest.mark.parametrize("query", ["", "site=S01"])
def test_data_quality_row_counts_and_examples_by_role(mini_root, dash_app, monkeypatch, tmp_path, query):
    """The hand-written mini registry has one warning of 1 row, example key P5/L2/M1 (tests/fixtures.py).
    The findings count rows of every site: only the committee sees the 1 and the key; an
    investigator sees "<5" even when filtered to their own site, and no key."""
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    with signed_in(monkeypatch, tmp_path) as as_user:
        pages = Pages(dash_app, as_user)
        dep = next(d for d in pages.deps if d["output"] == "overview-quality.children")
        state = {"filter-state.data": {"snapshot": "2024-12-31", "query": query}}
        seen = {}
        for role in ROLES:
            r = pages.post(role, callback_body(dep, state))
            table = r.get_json()["response"]["overview-quality"]["children"]
            rows = find(table, lambda p: p.get("className") == "text-end")
            seen[role] = ([t for td in rows for t in texts(td)], "P5/L2/M1" in json.dumps(r.get_json()))
    assert seen["committee"] == (["Rows", "1"], True)
    assert seen["investigator"] == seen["sponsor"] == (["Rows", SUPPRESSED], False)


def test_a_rejected_cut_s_error_keeps_its_keys_for_the_committee_only():
    from dashboard.callbacks.overview import finding_text
    from dashboard.validate import Finding
    error = Finding("error", "patients", "patient_id", "duplicate key", 2, ("S02-0007", "S02-0007"))
    assert finding_text(error, scope_for(USERS["committee"])) == str(error) and "S02-0007" in str(error)
    for role in ("investigator", "sponsor"):
        text = finding_text(error, scope_for(USERS[role], ("S01",)))
        assert text == "ERROR patients.patient_id: duplicate key (<5 rows)"


def test_overview_export_by_role(snapshot, patients):
    """The Overview's facts: the committee's from the parquet file; the sponsor's and an
    investigator's pooled over every site (not their own only), small counts "<5"."""
    committee = exports.compute_export("overview", snapshot, Filters(), scope_for(USERS["committee"])).rows.iloc[0]
    assert (committee.n_patients, committee.n_deaths) == (len(patients), patients.death_date.notna().sum())
    assert (committee.n_sites, committee.n_sites_enrolling) == (N_SITES, patients.site_id.nunique())
    for role in ("investigator", "sponsor"):
        pooled = exports.compute_export("overview", snapshot, Filters(), scope_for(USERS[role])).rows.iloc[0]
        assert pooled.to_dict() == committee.to_dict()
        few = filters_of(SCENARIOS["S06,C"])
        rows = exports.compute_export("overview", snapshot, few, scope_for(USERS[role], few.site)).rows
        assert rows.to_dict("records") == [{"n_patients": SUPPRESSED, "n_deaths": SUPPRESSED, "n_sites": 1,
                                            "n_sites_enrolling": 1}]
