"""`python -m dashboard export NAME --users FILE --as-user NAME` applies that user's scope (issue 15,
item 5), for every export and every role, run as the command line runs (dashboard.__main__.main)
over a generated registry of 120 patients at 4 sites, whose small groups give counts from 1 to 4.

The rules come from the issue: an investigator of S01 gets patient-level rows of S01 only (all of
them) and pooled aggregates over every site, with small cells suppressed; a sponsor gets no patient
id, no patient's date, patient-level exports refused or de-identified, and no count from 1 to 4.
The count columns are checked twice: as each export declares them (its Suppression) and as listed
by hand below from the issue's "every count", so a declaration that forgets a column is caught.
Expected rows: the committee's own export of the same registry (every site, nothing hidden).
"""
import contextlib
import io
import json
import re

import pytest

from access_support import ACCOUNTS, write_users
from dashboard import access, data, exports
from dashboard.__main__ import EXIT_REFUSED, main
from dashboard.access import SUPPRESSED, is_small
from dashboard.exports import AGGREGATE, EXPORTS, PATIENT, Suppression, _load_all
from dashboard.filters import Filters

_load_all()
ROLES = ("committee", "investigator", "sponsor")
OWN_SITE = "S01"

# Count columns (rows) and count keys (top-level), by export, read off each export's output by hand:
# every number of patients, events or sessions, whatever the export's declaration says.
COUNTS = {
    "accrual": ["n_enrolled", "cum_enrolled", "cumulative_total"],
    "ae-incidence": ["n_patients_any", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5", "n_grade_3_4",
                     "n_grade_5", "n_serious", "n_related", "denominator", "n_events", "n_sessions",
                     "n_patients_with_ae"],
    "baseline-table": ["n_group", "n"],
    "cox": [],
    "downstaging-cif": ["n_risk", "n_event", "n_competing", "n_censor", "n_eligible", "n_downstaged",
                        "n_died_first", "n_censored", "n_baseline_unknown"],
    "downstaging-summary": ["eligible", "achieved", "baseline_unknown"],
    "enrollment": ["n_enrolled"],
    "followup-status": ["n"],
    "forest": ["n", "events", "ref_n", "ref_events"],
    "headline": ["n"],                          # and the value of its count metrics: tests/test_headline.py
    "km-curve": ["n_risk", "n_event", "n_censor"],
    "km-risk-table": ["n_at_risk", "cum_events", "cum_censored"],
    "km-summary": ["n", "events"],
    "overview": ["n_patients", "n_deaths"],      # (the enroll branch's Overview facts)
    "response-summary": ["n", "n_evaluable", "cr", "pr", "sd", "pd", "ne", "n_patients_not_assessed",
                         "n_scans_not_assessed"],
    "staging-flow": ["n"],
}
COUNT_NAME = re.compile(r"n|n_.+|.+_n|count|.+_count")     # any other column or key named as a count
NOT_PATIENTS = {"n_sites", "n_sites_enrolling", "n_sites_with_target"}     # counts of hospitals: identify no one
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
# dates that are not a patient's: the snapshot's own, the request's filters; an aggregate's calendar axis
SNAPSHOT_KEYS = {"snapshot_id", "cutoff_date", "filters"}
AXIS_DATES = {("accrual", "month")}         # months of cumulative accrual per site, counts suppressed


# exports that need an option to run at all (one patient's record: a patient of the investigator's
# own site), and the n they report (the patients shown) when it is not the registry's 120
REQUIRED = {"patient-record": ["--patient-id", OWN_SITE + "-0001"]}
EXPECTED_N = {"patient-record": 1}


def variants(name: str) -> list[list[str]]:
    """The option sets each export runs with: its defaults, and by etiology (small groups) when it groups."""
    base = REQUIRED.get(name, [])
    return [base] + ([base + ["--by", "etiology_group"]] if "by" in EXPORTS[name].options else [])


def required_options(name: str) -> dict:
    """REQUIRED as keyword options of exports.run_export."""
    args = REQUIRED.get(name, [])
    return {flag.lstrip("-").replace("-", "_"): value for flag, value in zip(args[::2], args[1::2])}


CASES = [(name, role, args) for name in sorted(EXPORTS) for args in variants(name) for role in ROLES]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("as-user")
    generate_registry(root, n_patients=120, n_sites=4, seed=3, last_cut_only=True, progress=False)
    users = root / "users.json"
    write_users(users)
    return root, users


@pytest.fixture(autouse=True)
def audit_to_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", str(tmp_path / "audit.log"))
    return tmp_path / "audit.log"


def run(*argv) -> tuple[int, str, str]:
    """(exit status, standard output, standard error) of the command line run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def export_as(registry, name, role, *args):
    root, users = registry
    who = ["--as-user", role, "--users", users] if role else []
    return run("export", name, "--data", root, "--format", "json", *who, *args)


def committee_doc(registry, name, *args) -> dict:
    status, out, err = export_as(registry, name, "committee", *args)
    assert status == 0, err
    return json.loads(out)


def walk(value, path=()):
    """(path, value) of every scalar in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, path + (k,))
    elif isinstance(value, list):
        for v in value:
            yield from walk(v, path)
    else:
        yield path, value


def count_names(name: str, doc: dict) -> set[str]:
    """Every column or top-level key that holds a count: declared, listed by hand, or named as one."""
    spec = EXPORTS[name]
    declared = set(spec.suppress.counts) if isinstance(spec.suppress, Suppression) else set()
    present = set(doc["rows"][0]) if doc["rows"] else set()
    named = {c for c in present | set(doc) if COUNT_NAME.fullmatch(c) and c not in NOT_PATIENTS}
    return declared | set(COUNTS.get(name, ())) | named | {"n_patients"}


def small_counts(name: str, doc: dict) -> list:
    names = count_names(name, doc)
    found = [(k, v) for k, v in doc.items() if k in names and is_small(v) and not isinstance(v, bool)]
    for row in doc["rows"]:
        found += [(c, v) for c, v in row.items() if c in names and is_small(v) and not isinstance(v, bool)]
    return found


def patient_dates(name: str, doc: dict) -> list:
    """Values that are dates, outside the snapshot's metadata and an aggregate's calendar axis."""
    found = []
    for key, value in doc.items():
        if key in SNAPSHOT_KEYS:
            continue
        if key == "rows":
            for row in value:
                found += [(c, v) for c, v in row.items() if (name, c) not in AXIS_DATES and
                          (isinstance(v, str) and DATE_TEXT.match(v) or ("date" in c and v is not None))]
        else:
            found += [(p, v) for p, v in walk(value, (key,)) if isinstance(v, str) and DATE_TEXT.match(v)]
    return found


# --- every export, every role ---------------------------------------------------------------------
@pytest.mark.parametrize("name,role,args", CASES, ids=[f"{n}-{r}{'-by' if a else ''}" for n, r, a in CASES])
def test_every_export_keeps_the_role_s_rules(registry, name, role, args):
    status, out, err = export_as(registry, name, role, *args)
    spec = EXPORTS[name]
    expected = committee_doc(registry, name, *args)
    if role == "committee":
        assert status == 0 and json.loads(out)["n_patients"] == EXPECTED_N.get(name, 120), err
        return
    if role == "sponsor" and spec.level == PATIENT and status == EXIT_REFUSED:
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
        return
    assert status == 0, err
    doc = json.loads(out)
    rows = doc["rows"]
    if role == "investigator" and spec.level == PATIENT:
        assert rows, "the investigator's own site has rows of this export"
        assert {r["site_id"] for r in rows} == {OWN_SITE}
        own = {r["patient_id"] for r in expected["rows"] if r["patient_id"].startswith(OWN_SITE + "-")}
        assert {r["patient_id"] for r in rows} == own, "every row of the own site, and no other"
        return
    if spec.level == AGGREGATE:      # pooled over every site, not the user's own
        assert doc["n_patients"] == expected["n_patients"] == 120
        if rows and "site_id" in rows[0]:
            assert {r["site_id"] for r in rows} == {r["site_id"] for r in expected["rows"]}
    assert not small_counts(name, doc), f"counts 1-4 shown: {small_counts(name, doc)[:5]}"
    if role == "sponsor":
        assert all("patient_id" not in r for r in rows)
        assert "patient_id" not in json.dumps({k: v for k, v in doc.items() if k != "rows"})
        assert not patient_dates(name, doc), f"dates shown: {patient_dates(name, doc)[:5]}"


def test_the_small_count_checks_are_not_vacuous(registry):
    """The committee's exports of this registry hold counts from 1 to 4 in most aggregate exports,
    so the checks above would see a suppression that let them through."""
    with_small = {name for name, spec in EXPORTS.items() if spec.level == AGGREGATE
                  for args in variants(name) if small_counts(name, committee_doc(registry, name, *args))}
    assert len(with_small) >= 10, sorted(with_small)


def test_the_hand_list_covers_every_aggregate_export():
    assert {n for n, s in EXPORTS.items() if s.level == AGGREGATE} <= set(COUNTS)


# --- the same rows as the page ---------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_as_user_output_equals_the_page_s_export(registry, role):
    """What the page's download runs for that user (exports.run_export under the user's scope),
    for every export: the same JSON, or the same refusal."""
    root, users = registry
    user = access.User(role, ACCOUNTS[role]["role"], tuple(ACCOUNTS[role]["sites"]))
    snapshot = data.resolve("latest", root)
    for name in sorted(EXPORTS):
        status, out, err = export_as(registry, name, role, *REQUIRED.get(name, []))
        try:
            exp = exports.run_export(name, snapshot, Filters(), access.scope_for(user, ()), **required_options(name))
        except access.AccessDenied:
            assert status == EXIT_REFUSED, (name, err)
            continue
        assert status == 0, (name, err)
        assert json.loads(out) == json.loads(exports.to_json(exp, snapshot, Filters())), name


# --- the site filter -------------------------------------------------------------------------------
def test_an_investigator_filtering_on_their_own_site_sees_its_small_cells(registry):
    """The own site only: no suppression (their own patients), the committee's numbers exactly."""
    args = ["--filter", f"site={OWN_SITE}", "--by", "etiology_group"]
    status, out, err = export_as(registry, "response-summary", "investigator", *args)
    assert status == 0, err
    expected = committee_doc(registry, "response-summary", *args)
    assert small_counts("response-summary", expected), "the own site has small groups"
    assert json.loads(out) == expected


def test_an_investigator_filtering_on_another_site_gets_no_patient_rows(registry):
    status, out, err = export_as(registry, "patients", "investigator", "--filter", "site=S02")
    assert status == 0, err
    assert json.loads(out)["rows"] == []
    status, out, err = export_as(registry, "staging-flow", "investigator", "--filter", "site=S02")
    doc = json.loads(out)
    assert status == 0 and not small_counts("staging-flow", doc)
    assert small_counts("staging-flow", committee_doc(registry, "staging-flow", "--filter", "site=S02"))
    assert SUPPRESSED in {r["n"] for r in doc["rows"]}


# --- who the command runs as ------------------------------------------------------------------------
def test_an_unknown_user_exits_2_with_one_line(registry):
    status, out, err = export_as(registry, "patients", "nobody")
    assert (status, out) == (2, "") and err.count("\n") == 1 and "nobody" in err and "Traceback" not in err


def test_users_without_as_user_exits_2(registry):
    root, users = registry
    status, out, err = run("export", "patients", "--data", root, "--users", users)
    assert (status, out) == (2, "") and err.count("\n") == 1 and "--as-user" in err


def test_as_user_without_a_users_file_exits_2(registry, tmp_path, monkeypatch):
    root, _ = registry
    monkeypatch.setenv("DASHBOARD_USERS", str(tmp_path / "missing.json"))
    status, out, err = run("export", "patients", "--data", root, "--as-user", "investigator")
    assert (status, out) == (2, "") and err.count("\n") == 1 and "missing.json" in err


def test_as_user_reads_the_default_users_file(registry, monkeypatch):
    root, users = registry
    monkeypatch.setenv("DASHBOARD_USERS", str(users))
    status, out, err = run("export", "waterfall", "--data", root, "--as-user", "investigator")
    assert status == 0, err
    assert {r["site_id"] for r in json.loads(out)["rows"]} == {OWN_SITE}


def test_a_refused_export_is_one_line_exit_3(registry):
    """The swimmer lanes are patient-level, with no de-identified form: a sponsor is refused."""
    assert EXPORTS["swimmer"].level == "patient" and EXPORTS["swimmer"].deidentified is None
    status, out, err = export_as(registry, "swimmer", "sponsor")
    assert (status, out) == (EXIT_REFUSED, "") and err.startswith("refused: ") and err.count("\n") == 1


def test_without_as_user_the_command_reads_every_site(registry):
    root, _ = registry
    status, out, err = run("export", "patients", "--data", root, "--format", "json")
    assert status == 0, err
    assert json.loads(out) == committee_doc(registry, "patients")
    assert access.current_user() is None, "the process user is reset after the command"


def test_the_process_user_is_reset_after_an_export(registry):
    export_as(registry, "enrollment", "sponsor")
    assert access.current_user() is None
