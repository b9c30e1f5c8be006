"""Who sees what on the Safety page (issue 15, item 2): every callback and every download of the page
replayed by hand as committee, investigator (own site S01) and sponsor, the raw JSON answers read.

The registry is generated (200 patients, 6 sites, seed 3) and every filter below is checked to make
AE cells of 1 to 4 patients before anything is asserted. The expected numbers come from the
ae-incidence export run with no scope in this process (the committee's view, what `python -m
dashboard export` prints), never from the answers under test.
"""
from __future__ import annotations

import datetime as dt
import json
import re

import orjson
import pytest

from access_page_checks import PATIENT_ID, Page, csv_frame, dates_in, figure_of, filters_of, footnote_of, small
from access_support import signed_in
from dashboard import data, exports, wire
from dashboard.access import ALL_SITES, SUPPRESSED, Scope
from dashboard.analytics.safety import ANY_AE
from dashboard.figures import safety as figs
from dashboard.generate import generate_registry

SPONSOR = Scope(patient_sites=(), suppress=True)
GRADE_MAP, GROUP_MAP, TABLE = "ae-grade-heatmap", "ae-group-heatmap", "ae-incidence-table"
LISTING = "ae-listing-table"
COUNTS = ["n_patients_any", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5", "n_grade_3_4", "n_grade_5",
          "n_grade_3_plus", "n_serious", "n_related", "denominator", "n_events", "n_sessions"]
# filters that make small cells: one site, one sex, a BCLC stage of 2 patients
SCENARIOS = [{}, {"site": ["S02"]}, {"sex": ["F"]}, {"bclc": ["A", "C"]}]
OPTIONS = [{}, {"by": "bclc_stage", "measure": "grade3", "level": "soc", "events": "serious"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("access-safety")
    generate_registry(root, n_patients=200, n_sites=6, seed=3, last_cut_only=True, progress=False)
    return root


@pytest.fixture
def env(root, dash_app, monkeypatch, tmp_path):
    """(page, as_user, snapshot) with the header sign-in on and the generated registry served."""
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    snapshot = data.resolve("latest")
    with signed_in(monkeypatch, tmp_path) as as_user:
        yield Page(dash_app, "/safety", snapshot.snapshot_id, as_user("committee")), as_user, snapshot


def truth(snapshot, scenario, **options):
    """The committee's numbers: the export with no scope."""
    return exports.compute_export("ae-incidence", snapshot, filters_of(scenario), ALL_SITES, **options)


def page_options(options: dict) -> dict:
    """The export options of each card for the page options (as the page derives them)."""
    from dashboard.callbacks import safety as cb
    events, days = options.get("events", "all"), options.get("within_days")
    return {GRADE_MAP: cb.grade_options(events, days), GROUP_MAP: cb.group_options(events, days, options.get("by")),
            TABLE: cb.table_options(events, days, options.get("level"))}


def strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


COUNT_TEXTS = (re.compile(r"(\d+) of (?:\d+|<5) patients"), re.compile(r"any grade: (\d+)"),
               re.compile(r"n=(\d+)"), re.compile(r"N = (\d+)"), re.compile(r"(\d+) DEB-TACE sessions"),
               re.compile(r"Only (\d+) patient"))


def small_counts_in_text(value) -> list[str]:
    """Counts of 1-4 written in the texts of an answer (hovers, labels, notes)."""
    found = []
    for text in strings(value):
        for pattern in COUNT_TEXTS:
            found += [m for m in pattern.findall(text) if small(m)]
    return found


def table_cells(value) -> list[str]:
    """The texts of every cell (td) of a table answer."""
    cells = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Td":
                children = node["props"].get("children")
                cells.append(children if isinstance(children, str) else json.dumps(children))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(value)
    return cells


def cell_count(text: str):
    """The count of a table cell: '12 (3.4%)' -> 12, '7' -> 7, '<5' -> '<5'; None for other text."""
    m = re.fullmatch(r"(\d+|<5)(?: \(\d+\.\d%\))?", str(text))
    return m and (m.group(1) if m.group(1) == SUPPRESSED else int(m.group(1)))


def as_json(fig) -> dict:
    """A figure as the browser receives it (Dash sends wire.plain values as orjson writes them)."""
    return json.loads(orjson.dumps(wire.plain(fig), option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))


GREY = "fewer than 5"        # the name of the grey trace of counts not shown


def heatmap_cells(fig: dict):
    """(z, overlay text) of a heatmap answer: the coloured traces' values (the grade heatmap draws each colour
    band and the 0% cells as a trace of its own, with gaps elsewhere) and the grey '<5' trace's texts."""
    coloured = [t for t in fig["data"] if t.get("name") != GREY]
    z = [[None] * len(line) for line in coloured[0]["z"]]
    for trace in coloured:
        for i, line in enumerate(trace["z"]):
            for j, v in enumerate(line):
                if v is not None:
                    assert z[i][j] is None, "two traces draw one cell"
                    z[i][j] = v
    grey = [t for t in fig["data"] if t.get("name") == GREY]
    overlay = grey[0]["text"] if grey else [[""] * len(r) for r in z]
    return z, overlay


def small_cells(rows, columns) -> int:
    return int(sum(rows[c].map(small).sum() for c in columns))


# --- every callback, every role ----------------------------------------------------------------
@pytest.mark.parametrize("options", OPTIONS, ids=["default", "by-bclc-soc-serious"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=["all", "site-S02", "sex-F", "bclc-A-C"])
def test_a_sponsor_gets_no_count_from_1_to_4_and_no_patient_data(env, scenario, options):
    page, as_user, snapshot = env
    specs = page_options(options)
    grade = truth(snapshot, scenario, **specs[GRADE_MAP])
    assert small_cells(grade.rows, ["grade_1", "grade_2", "grade_3", "grade_4", "grade_5"]) > 0, \
        "the filter must make cells of 1-4 patients, or this test cannot fail"
    answers, raw = page.update(as_user("sponsor"), scenario, options)

    assert not PATIENT_ID.search(raw)
    assert not dates_in(raw, {snapshot.cutoff_date.isoformat(), dt.date.today().isoformat()})
    for figure in (GRADE_MAP, GROUP_MAP, TABLE):
        key = json.dumps({"figure": figure, "type": "figure" if figure != TABLE else "table"}, separators=(",", ":"))
        assert not small_counts_in_text(answers[key]), figure
        assert not small_counts_in_text(json.loads(footnote_of(answers, figure))), figure

    # the grade heatmap: no coloured cell whose % is a count of 1-4 of the N patients; those cells read "<5"
    n = grade.n_patients
    z, overlay = heatmap_cells(figure_of(answers, GRADE_MAP))
    coloured = [round(v * n / 100) for line in z for v in line if v is not None]
    assert coloured and not [c for c in coloured if small(c)]
    shown = grade.rows.drop_duplicates(["soc", "term"])
    expected = small_cells(shown, ["grade_1", "grade_2", "grade_3", "grade_4", "grade_5"])
    assert sum(t == SUPPRESSED for line in overlay for t in line) == expected
    # a cell withheld beside a "<5" (dashboard/exports/complement.py) is grey too: no % of it in z
    sponsor = exports.run_export("ae-incidence", snapshot, filters_of(scenario), SPONSOR, **specs[GRADE_MAP]).rows
    grades = ["grade_1", "grade_2", "grade_3", "grade_4", "grade_5"]
    assert sum(t == "–" for line in overlay for t in line) == int(sponsor[grades].isna().sum().sum())
    assert sum(v is not None for line in z for v in line) == int(sponsor[grades].map(
        lambda v: not (v is None or isinstance(v, str))).sum().sum())

    # the group heatmap: the same, with each column's own denominator (the committee's)
    group = truth(snapshot, scenario, **specs[GROUP_MAP])
    denominators = list(group.rows.drop_duplicates("group")["denominator"])
    z, overlay = heatmap_cells(figure_of(answers, GROUP_MAP))
    for line in z:
        for v, d in zip(line, denominators):
            assert v is None or not small(round(v * d / 100))

    # the table: every count cell is 0, 5 or more, or "<5"
    table = answers[json.dumps({"figure": TABLE, "type": "table"}, separators=(",", ":"))]["children"]
    counts = [cell_count(c) for c in table_cells(table)]
    assert not [c for c in counts if small(c)]
    table_truth = truth(snapshot, scenario, **specs[TABLE]).rows
    if small_cells(table_truth, ["n_patients_any", "n_grade_3_4", "n_grade_5", "n_serious", "n_related"]):
        assert SUPPRESSED in counts


@pytest.mark.parametrize("scenario", SCENARIOS[1:], ids=["site-S02", "sex-F", "bclc-A-C"])
def test_an_investigator_gets_the_pooled_aggregates_as_a_sponsor_does(env, scenario):
    """Safety has aggregates only: an investigator's answers over other sites are the sponsor's, byte
    for byte (suppressed), and over their own site alone the committee's (exact)."""
    page, as_user, snapshot = env
    investigator, _ = page.update(as_user("investigator"), scenario)
    sponsor, _ = page.update(as_user("sponsor"), scenario)
    committee, _ = page.update(as_user("committee"), scenario)
    assert aggregates(investigator) == aggregates(sponsor) != aggregates(committee)
    own = dict(scenario, site=["S01"])
    assert small_cells(truth(snapshot, own, level="term", by="none").rows, ["grade_1", "grade_2", "grade_3"]) > 0
    investigator, _ = page.update(as_user("investigator"), own)
    committee, _ = page.update(as_user("committee"), own)
    assert aggregates(investigator) == aggregates(committee)


def aggregates(answers: dict) -> dict:
    """The answers of the incidence cards (the listing of serious safety signals is patient level: tested below)."""
    return {k: v for k, v in answers.items() if LISTING not in k}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=["all", "site-S02", "sex-F", "bclc-A-C"])
def test_the_committee_sees_every_number(env, scenario):
    page, as_user, snapshot = env
    answers, _ = page.update(as_user("committee"), scenario)
    grade = truth(snapshot, scenario, level="term", by="none")
    group = truth(snapshot, scenario, level="term", by="site_id")
    assert figure_of(answers, GRADE_MAP) == as_json(figs.grade_heatmap(grade.rows))
    assert figure_of(answers, GROUP_MAP) == as_json(figs.group_heatmap(group.rows, "any", "Site"))
    assert GREY not in [t.get("name") for t in figure_of(answers, GRADE_MAP)["data"]]     # no grey '<5' trace
    table = answers[json.dumps({"figure": TABLE, "type": "table"}, separators=(",", ":"))]["children"]
    counts = [cell_count(c) for c in table_cells(table)]
    overall = grade.rows[grade.rows.soc == ANY_AE].iloc[0]
    assert SUPPRESSED not in counts and int(overall["n_patients_any"]) in counts
    assert [c for c in counts if small(c)], "the committee sees the counts of 1-4"


# --- downloads ---------------------------------------------------------------------------------
SEARCHES = ["", "?events=serious&by=bclc_stage&level=soc"]


@pytest.mark.parametrize("search", SEARCHES, ids=["default", "serious-bclc-soc"])
@pytest.mark.parametrize("scenario", SCENARIOS[1:3], ids=["site-S02", "sex-F"])
def test_downloads_per_role(env, scenario, search):
    """Sponsor and investigator (not only their site): every count of 1-4 is "<5" and its rate
    empty, every other number is the committee's; the committee's CSV is the export with no scope."""
    from dashboard.callbacks.downloads import page_options as options_of
    from dashboard.callbacks.safety import DOWNLOADS
    page, as_user, snapshot = env
    state = page.state(scenario)
    withheld_cells = needed = 0
    for figure in (GRADE_MAP, GROUP_MAP, TABLE):
        _, options = DOWNLOADS[figure](options_of(search))
        expected = truth(snapshot, scenario, **options)
        status, _, committee = page.download(as_user("committee"), figure, state, search)
        assert status == 200 and committee == exports.to_csv(expected)
        full = csv_frame(committee)
        assert small_cells(full, COUNTS) > 0
        for role in ("sponsor", "investigator"):
            status, raw, csv = page.download(as_user(role), figure, state, search)
            assert status == 200 and not PATIENT_ID.search(raw)
            got = csv_frame(csv)
            assert list(got.columns) == list(full.columns) and len(got) == len(full)
            for column in COUNTS:
                for mine, theirs in zip(got[column], full[column]):
                    # "<5" for 1-4; otherwise the committee's number, or withheld (empty) beside a "<5"
                    assert mine == SUPPRESSED if small(theirs) else mine in (theirs, ""), (role, figure, column)
                    assert mine != "" or int(theirs) >= 5, (role, figure, column)
            assert not recoverable(got), (role, figure)
            withheld_cells += int((got[COUNTS] == "").sum().sum())
            withheld = full["n_events"].map(small) | full["n_sessions"].map(small)
            rate = "events_per_100_sessions"
            assert (got.loc[withheld, rate] == "").all()
            assert (got.loc[~withheld, rate] == full.loc[~withheld, rate]).all()
        # without withholding, a "<5" of the committee's rows would be recoverable here
        needed += len(recoverable(full.map(lambda v: SUPPRESSED if small(v) else v)))
    assert (withheld_cells > 0) == (needed > 0)


# a row's sums (analysis plan: each patient once per term at the worst grade): any grade = grades 1-5,
# grade 3-4 = grades 3 and 4, grade >= 3 = grades 3, 4 and 5, grade 5 = grade 5
ROW_SUMS = [("n_patients_any", ["grade_1", "grade_2", "grade_3", "grade_4", "grade_5"]),
            ("n_grade_3_4", ["grade_3", "grade_4"]), ("n_grade_3_plus", ["grade_3", "grade_4", "grade_5"]),
            ("n_grade_5", ["grade_5"])]


def recoverable(rows) -> list:
    """What a reader of the CSV can work out by subtraction: (row, column, value) for each sum of a row
    with exactly one member not shown ("<5" or withheld)."""
    found = []
    for i, r in rows.iterrows():
        for total, parts in ROW_SUMS:
            members = [total, *parts]
            hidden = [m for m in members if not r[m].isdigit()]
            if len(hidden) == 1:
                parts_shown = sum(int(r[m]) for m in parts if m not in hidden)
                value = parts_shown if hidden[0] == total else int(r[total]) - parts_shown
                found.append((i, hidden[0], value))
    return found


def test_an_investigator_s_own_site_download_is_exact(env):
    page, as_user, snapshot = env
    state = page.state({"site": ["S01"]})
    status, _, csv = page.download(as_user("investigator"), GROUP_MAP, state)
    expected = truth(snapshot, {"site": ["S01"]}, level="term", by="site_id")
    assert status == 200 and csv == exports.to_csv(expected) and small_cells(csv_frame(csv), COUNTS) > 0


# --- crafted requests --------------------------------------------------------------------------
def test_a_forged_state_gets_no_more(env):
    """A state naming the investigator's own site with the query of another; a URL asking for another
    site in the download's page options; a store naming another export; a download of another page's
    patient-level figure: none gives a sponsor or investigator more than the rules allow."""
    page, as_user, snapshot = env
    own_and_other = {"snapshot": snapshot.snapshot_id, "query": "site=S01,S02"}
    answers, raw = page.update(as_user("investigator"), {}, state=own_and_other)
    assert SUPPRESSED in json.dumps(answers, ensure_ascii=False)   # not own-site only: suppressed
    sponsor, _ = page.update(as_user("sponsor"), {}, state=own_and_other)
    assert aggregates(answers) == aggregates(sponsor)
    listed = rows_tables(answers[LISTING_KEY])["safety-listing-grid"]     # patient rows: of S01 only
    assert listed and {r[1] for r in listed} == {"S01"}

    own = page.state({"site": ["S01"]})
    status, _, csv = page.download(as_user("investigator"), GROUP_MAP, own, "?by=site_id&site=S02",
                                   store={"export": "patients", "options": {"by": "none"}, "filename": "x"})
    rows = csv_frame(csv)
    assert set(rows["group"]) == {"S01"}                           # the URL's site is not a filter of the CSV
    assert csv == exports.to_csv(truth(snapshot, {"site": ["S01"]}, level="term", by="site_id"))

    for figure in ("response-waterfall", "response-swimmer", "downstaging-downsizing", "patients"):
        status, raw, csv = page.download(as_user("sponsor"), figure, own)
        assert status in (200, 204, 400) and not PATIENT_ID.search(raw), figure


def test_a_request_without_a_user_is_refused(env):
    page, as_user, snapshot = env
    r = page.client.post("/_dash-update-component", json={"output": "x", "inputs": []})
    assert r.status_code == 401 and b"Not signed in" in r.data


def test_the_json_export_withholds_totals_of_1_to_4(root, monkeypatch):
    """ae-incidence's `n_events` is both a row column and a key of the export's header (the JSON of
    `python -m dashboard export`): a sponsor's has "<5" in both. Site S04, serious episodes within a
    day of a session: 4 events of 2 patients (the committee's export, checked first)."""
    from dashboard.access import Scope
    from dashboard.filters import Filters
    monkeypatch.setenv("REGISTRY_DATA", str(root))
    snapshot = data.resolve("latest")
    options = dict(level="term", by="none", serious_only=True, within_days=1)
    full = exports.compute_export("ae-incidence", snapshot, Filters(site=("S04",)), ALL_SITES, **options)
    assert (full.extra["n_events"], full.extra["n_patients_with_ae"]) == (4, 2)
    sponsor = Scope(patient_sites=(), suppress=True)
    doc = json.loads(exports.to_json(exports.run_export("ae-incidence", snapshot, Filters(site=("S04",)), sponsor,
                                                        **options), snapshot, Filters(site=("S04",))))
    assert (doc["n_events"], doc["n_patients_with_ae"], doc["n_sessions"]) == (SUPPRESSED, SUPPRESSED,
                                                                               full.extra["n_sessions"])
    overall = next(r for r in doc["rows"] if r["soc"] == ANY_AE)
    assert overall["n_events"] == SUPPRESSED and overall["events_per_100_sessions"] is None


def test_one_more_count_is_withheld_where_a_small_one_could_be_worked_out():
    """By hand: site S02's overall row (39 patients: worst grade 1: 6, 2: 22, 3: 10, 4: one, 5: none;
    grade 3-4: 11). Grade 4 shown as "<5" is 39 - 6 - 22 - 10 - 0 = 1 and 11 - 10 = 1; withholding
    grade 3 (the smallest part of 6 or more in the any-grade sum) leaves grade 3 + grade 4 = 11 in
    both sums: grade 4 could be 1 to 4."""
    from dashboard.exports.complement import to_withhold
    from dashboard.exports.safety import GRADE_SUMS
    row = {"n_patients_any": 39, "grade_1": 6, "grade_2": 22, "grade_3": 10, "grade_4": SUPPRESSED, "grade_5": 0,
           "n_grade_3_4": 11, "n_grade_5": 0, "n_grade_3_plus": 11}
    assert to_withhold(row, GRADE_SUMS) == {"grade_3"}
    # nothing to do when each sum already has two members not shown, or none
    assert to_withhold(dict(row, grade_2=SUPPRESSED, grade_1=SUPPRESSED, n_grade_3_4=SUPPRESSED,
                            n_grade_3_plus=SUPPRESSED, grade_3=SUPPRESSED), GRADE_SUMS) == set()
    assert to_withhold(dict(row, grade_4=1), GRADE_SUMS) == set()
    # a public total is relied on, never withheld: the other part goes
    assert to_withhold({"t": 9, "a": SUPPRESSED, "b": 6}, [("t", ["a", "b"])], public={"t"}) == {"b"}


# --- the listing of serious safety signals (patient level) ------------------------------------------
LISTING_KEY = json.dumps({"figure": LISTING, "type": "table"}, separators=(",", ":"))
LISTING_SEARCHES = ["", "?min_grade=3", "?min_grade=4&serious_only=on"]


def rows_tables(value) -> dict:
    """id -> rows of every RowsTable in an answer."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "RowsTable":
                found[node["props"].get("id")] = node["props"]["rows"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(value)
    return found


def listing_truth(snapshot, scenario, search=""):
    """The committee's listing (every site) for a page URL's listing options."""
    from dashboard.callbacks.downloads import page_options as options_of
    from dashboard.callbacks.safety import DOWNLOADS
    name, options = DOWNLOADS[LISTING](options_of(search))
    return exports.compute_export(name, snapshot, filters_of(scenario), ALL_SITES, **options)


@pytest.mark.parametrize("search", LISTING_SEARCHES, ids=["default", "grade3", "grade4-serious"])
def test_the_listing_per_role(env, search):
    """Committee: every selected event of every site; investigator (own site S01) outside their own site:
    patient rows of S01 only, the same rows as the committee's S01 rows; sponsor: no patient id, date or
    site, counts per term x grade x serious with 1-4 as "<5" (and some "<5" to see: the test can fail)."""
    from dashboard.callbacks.downloads import page_options as options_of
    page, as_user, snapshot = env
    options = {k: (["on"] if k == "serious_only" else v) for k, v in options_of(search).items()}
    full = listing_truth(snapshot, {}, search).rows
    assert full["site_id"].nunique() > 1 and (full["site_id"] == "S01").any()

    committee, _ = page.update(as_user("committee"), {}, options)
    shown = rows_tables(committee[LISTING_KEY])["safety-listing-grid"]
    assert [r[0] for r in shown] == full["patient_id"].head(500).tolist()

    investigator, raw = page.update(as_user("investigator"), {}, options)
    rows = rows_tables(investigator[LISTING_KEY])["safety-listing-grid"]
    own = full[full["site_id"] == "S01"]
    assert rows and {r[1] for r in rows} == {"S01"}
    assert [(r[0], r[2], r[6]) for r in rows] == list(zip(own["patient_id"], own["term"],
                                                          own["onset_date"].astype(str).str[:10]))
    listing_raw = json.dumps(investigator[LISTING_KEY])
    assert set(PATIENT_ID.findall(listing_raw)) == set(own["patient_id"])       # no other site's patient
    assert "Patients of your site (S01) only" in footnote_of(investigator, LISTING)

    sponsor, raw = page.update(as_user("sponsor"), {}, options)
    assert not PATIENT_ID.search(raw)
    assert not dates_in(raw, {snapshot.cutoff_date.isoformat(), dt.date.today().isoformat()})
    counts = rows_tables(sponsor[LISTING_KEY])["safety-listing-counts"]
    expected = full.groupby(["soc", "term", "grade", "is_serious"]).agg(
        n_events=("patient_id", "size"), n_patients=("patient_id", "nunique")).reset_index()
    assert len(counts) == len(expected)
    for soc, term, grade, serious, n_events, n_patients in counts:
        e = expected[(expected.term == term) & (expected.grade == int(grade)) &
                     (expected.is_serious == (serious == "yes"))].iloc[0]
        for mine, theirs in ((n_events, e.n_events), (n_patients, e.n_patients)):
            assert mine == (SUPPRESSED if small(theirs) else str(theirs))
    assert any(SUPPRESSED in r for r in counts), "some cell of 1-4 events or patients, or this cannot fail"


@pytest.mark.parametrize("search", LISTING_SEARCHES[:2], ids=["default", "grade3"])
def test_the_listing_downloads_per_role(env, search):
    page, as_user, snapshot = env
    state = page.state({})
    full = listing_truth(snapshot, {}, search)
    status, _, csv = page.download(as_user("committee"), LISTING, state, search)
    assert status == 200 and csv == exports.to_csv(full)

    status, _, csv = page.download(as_user("investigator"), LISTING, state, search)
    got = csv_frame(csv)
    assert status == 200 and set(got["site_id"]) == {"S01"}
    assert got["patient_id"].tolist() == full.rows.loc[full.rows.site_id == "S01", "patient_id"].tolist()

    status, raw, csv = page.download(as_user("sponsor"), LISTING, state, search)
    got = csv_frame(csv)
    assert status == 200 and not PATIENT_ID.search(raw)
    assert not dates_in(raw, {snapshot.cutoff_date.isoformat(), dt.date.today().isoformat()})     # the file name
    assert list(got.columns) == ["soc", "term", "grade", "is_serious", "n_events", "n_patients"]
    assert not [v for c in ("n_events", "n_patients") for v in got[c] if small(v)]
    assert (got[["n_events", "n_patients"]] == SUPPRESSED).any().any()
    assert int(got.loc[got.n_events != SUPPRESSED, "n_events"].astype(int).sum()) <= len(full.rows)


def test_the_listing_cli_per_role(root, tmp_path, capsys):
    """`export ae-listing --as-user`: the sponsor's JSON has no patient id or date; the investigator's rows
    are of S01 only."""
    from access_support import write_users
    from dashboard.__main__ import main
    users = tmp_path / "users.json"
    write_users(users)
    args = ["export", "ae-listing", "--data", str(root), "--users", str(users), "--min-grade", "3"]
    assert main(args + ["--as-user", "sponsor"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert not PATIENT_ID.search(out) and doc["rows"] and "patient_id" not in doc["rows"][0]
    assert not dates_in(json.dumps(doc["rows"]), set())
    assert main(args + ["--as-user", "investigator"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] and {r["site_id"] for r in doc["rows"]} == {"S01"}
