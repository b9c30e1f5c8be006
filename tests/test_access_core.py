"""The access core (dashboard/access.py, the data seam, the exports' declarations, the request state):
the rules of issue 15 checked on the hand-written mini registry, whose patients are counted by hand
in tests/fixtures.py (sites S01 and S02)."""
import flask
import pandas as pd
import pytest

from dashboard import access, cache, data, exports
from dashboard import state as request_state
from dashboard.access import ALL_SITES, AccessDenied, Scope, User, scope_for
from dashboard.exports import AGGREGATE, PATIENT, Export, Suppression, export, suppress_counts
from dashboard.filters import Filters
from dashboard.snapshots import SnapshotError

INVESTIGATOR = User("lin", "investigator", ("S01",))
SPONSOR = User("acme", "sponsor")
COMMITTEE = User("chair", "committee")


# --- who sees what -----------------------------------------------------------------------------
def test_scope_of_each_role_follows_the_issue():
    assert scope_for(COMMITTEE) == ALL_SITES and scope_for(None) == ALL_SITES
    inv = scope_for(INVESTIGATOR)
    assert inv.patient_sites == ("S01",) and inv.suppress and inv.patient_level
    assert not scope_for(INVESTIGATOR, ("S01",)).suppress          # own site only: nothing pooled to hide
    assert scope_for(INVESTIGATOR, ("S01", "S02")).suppress        # any other site in it: pooled
    sponsor = scope_for(SPONSOR, ("S01",))
    assert sponsor.patient_sites == () and sponsor.suppress and not sponsor.patient_level


def test_users_are_checked_when_made():
    with pytest.raises(ValueError, match="at least one site"):
        User("x", "investigator")
    with pytest.raises(ValueError, match="role"):
        User("x", "admin")
    with pytest.raises(ValueError, match="site ids"):
        User("x", "investigator", ("S01; drop table",))
    with pytest.raises(ValueError, match="user name"):
        User("../etc", "committee")


def test_bound_sites_is_the_intersection_of_cohort_and_patient_access():
    assert Scope().bound_sites() is None
    assert Scope(patient_sites=("S01",)).bound_sites() == ("S01",)
    assert Scope(sites=("S01", "S02"), patient_sites=("S02", "S03")).bound_sites() == ("S02",)
    assert Scope(patient_sites=()).bound_sites() == ()
    assert Scope(sites=("S01",), patient_sites=("S01",), suppress=True).pooled() == Scope(sites=("S01",))


# --- the data seam reads only what the scope may see --------------------------------------------
def test_a_query_with_a_sponsor_scope_reads_no_patient_row(mini_snapshot):
    rows = data.query("cohort", mini_snapshot, Filters(), scope_for(SPONSOR))
    assert len(rows) == 0
    assert data.value("select count(*) from cohort", mini_snapshot, Filters(), scope_for(SPONSOR)) == 0


def test_a_query_with_an_investigator_scope_reads_only_their_site(mini_snapshot):
    everyone = data.query("cohort", mini_snapshot)
    own = data.query("cohort", mini_snapshot, Filters(), scope_for(INVESTIGATOR))
    assert set(everyone.site_id) == {"S01", "S02"}                   # the fixture has both sites
    assert set(own.site_id) == {"S01"} and len(own) == (everyone.site_id == "S01").sum()
    # a site filter naming another site cannot widen it
    other = data.query("cohort", mini_snapshot, Filters(site=("S02",)), scope_for(INVESTIGATOR, ("S02",)))
    assert len(other) == 0


def test_the_scope_variable_is_reset_between_queries_on_one_cursor(mini_snapshot):
    assert len(data.query("cohort", mini_snapshot, Filters(), scope_for(SPONSOR))) == 0
    assert len(data.query("cohort", mini_snapshot)) == 5               # the next query: every patient again
    assert len(data.query("cohort", mini_snapshot, Filters(), scope_for(SPONSOR))) == 0


# --- exports declare their level ----------------------------------------------------------------
def test_every_export_declares_its_level_and_aggregates_their_suppression():
    exports._load_all()
    for name, spec in exports.EXPORTS.items():
        assert spec.level in (PATIENT, AGGREGATE), name
        assert spec.level == PATIENT or callable(spec.suppress), name


def test_an_export_without_a_level_cannot_be_registered():
    with pytest.raises(TypeError):
        export("leaky", "no level given")                     # level is a required keyword
    with pytest.raises(ValueError, match="suppression"):
        export("leaky", "aggregate without suppression", level=AGGREGATE)
    assert "leaky" not in exports.EXPORTS


def test_a_patient_level_export_is_refused_to_a_sponsor_and_narrowed_for_an_investigator(mini_snapshot):
    with pytest.raises(AccessDenied):
        exports.compute_export("patients", mini_snapshot, Filters(), scope_for(SPONSOR))
    with pytest.raises(AccessDenied):
        exports.run_export("patients", mini_snapshot, Filters(), scope_for(SPONSOR))
    own = exports.run_export("patients", mini_snapshot, Filters(), scope_for(INVESTIGATOR))
    assert set(own.rows.site_id) == {"S01"}
    assert set(exports.run_export("patients", mini_snapshot).rows.site_id) == {"S01", "S02"}


def test_suppress_counts_by_hand():
    """Counts 1-4 become "<5" with their derived columns withheld; 0 and 5+ are untouched."""
    rows = pd.DataFrame({"group": ["a", "b", "c", "d"], "n": [0, 3, 5, 12], "pct": [0.0, 0.25, 0.4, 0.6],
                         "date": pd.to_datetime(["2024-01-01"] * 4)})
    exp = suppress_counts(Export("x", rows, 4, {"n_other": 2, "other_pct": 0.1, "n_big": 9}),
                          {"n": ("pct",), "n_other": ("other_pct",), "n_big": ()}, drop=("date",))
    assert exp.rows["n"].tolist() == [0, "<5", 5, 12]
    assert exp.rows["pct"].tolist()[0] == 0.0 and exp.rows["pct"].tolist()[1] is None
    assert exp.rows["pct"].tolist()[2:] == [0.4, 0.6]
    assert "date" not in exp.rows.columns
    assert exp.extra == {"n_other": "<5", "other_pct": None, "n_big": 9}
    assert exp.n_patients == "<5"
    assert rows["n"].tolist() == [0, 3, 5, 12]               # the original is not changed


def test_an_aggregate_for_a_sponsor_is_pooled_and_suppressed(mini_snapshot):
    """The mini registry enrolls 3 patients at S01 and 2 at S02 (tests/fixtures.py): both under 5."""
    full = exports.run_export("enrollment", mini_snapshot)
    assert dict(zip(full.rows.site_id, full.rows.n_enrolled)) == {"S01": 3, "S02": 2}
    shown = exports.run_export("enrollment", mini_snapshot, Filters(), scope_for(SPONSOR))
    assert dict(zip(shown.rows.site_id, shown.rows.n_enrolled)) == {"S01": "<5", "S02": "<5"}
    assert "first_enrollment_date" not in shown.rows.columns
    assert exports.run_export("enrollment", mini_snapshot, Filters(), scope_for(COMMITTEE)).rows.equals(full.rows)


def test_cache_keys_differ_by_scope(mini_snapshot):
    keys = {cache.key("export:enrollment", mini_snapshot, Filters(), s)
            for s in (ALL_SITES, scope_for(SPONSOR), scope_for(INVESTIGATOR), scope_for(INVESTIGATOR, ("S01",)),
                      scope_for(User("wu", "investigator", ("S02",))))}
    assert len(keys) == 5


# --- the request state --------------------------------------------------------------------------
def test_a_request_without_a_user_is_refused(dash_app):
    with dash_app.server.test_request_context("/"):
        with pytest.raises(AccessDenied):
            access.current_user()
        with pytest.raises(AccessDenied):
            request_state.state_context({"snapshot": "latest", "query": ""})


def test_the_request_scope_is_the_signed_in_users(dash_app, mini_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    with dash_app.server.test_request_context("/"):
        flask.g.user = INVESTIGATOR
        _, filters, scope = request_state.state_context({"snapshot": "latest", "query": "site=S01"})
        assert filters.site == ("S01",) and scope == scope_for(INVESTIGATOR, ("S01",))
        _, _, pooled = request_state.state_context({"snapshot": "latest", "query": ""})
        assert pooled.suppress


def test_the_demo_without_sign_in_is_never_served_a_real_data_cut(tmp_path, monkeypatch, dash_app):
    """Issue 15: a snapshot whose manifest source is not synthetic is never served without sign-in."""
    from fixtures import mini_registry, write_snapshot
    write_snapshot(tmp_path, "2024-12-31", mini_registry())
    write_snapshot(tmp_path, "2025-03-31", mini_registry(), source="redcap")
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    with dash_app.server.test_request_context("/"):
        flask.g.user = access.DEMO_USER
        assert request_state.resolve("latest").snapshot_id == "2024-12-31"      # the latest synthetic cut
        with pytest.raises(SnapshotError, match="not synthetic"):
            request_state.resolve("2025-03-31")
        from dashboard.callbacks.shell import snapshot_options
        assert [o["value"] for o in snapshot_options()] == ["2024-12-31"]
    with dash_app.server.test_request_context("/"):
        flask.g.user = COMMITTEE                                                # signed in: every cut
        assert request_state.resolve("latest").snapshot_id == "2025-03-31"


def test_the_demo_over_http_serves_no_real_data_cut(tmp_path, monkeypatch, dash_app):
    """The same through the callback endpoint, as a browser asks for a real cut by URL."""
    from fixtures import mini_registry, write_snapshot
    write_snapshot(tmp_path, "2025-03-31", mini_registry(), source="redcap")
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    monkeypatch.setenv("DASHBOARD_AUTH", "none")
    from dashboard.replay import Session, callback_body, update_values
    session = Session(dash_app)
    callbacks, sync, base = session.plan("/enrollment")
    values, page_values = update_values(base, "2025-03-31", {})
    load = {**values, "url.search": "", "url-seen.data": "load:1", "snapshot-select.value": None}
    r = session.client.post("/_dash-update-component", json=callback_body(sync, load, "url-seen.data"))
    assert r.status_code == 200 and b"2025-03-31" not in r.data
    for dep in callbacks:
        r = session.client.post("/_dash-update-component", json=callback_body(dep, page_values, "filter-state.data"))
        assert b"North Hospital" not in r.data and b"\"P1\"" not in r.data, dep["output"]


def test_only_code_in_the_process_can_sign_a_request_in(dash_app, mini_root, monkeypatch, tmp_path):
    """The warmer signs its requests in as the committee through the WSGI environ (a Python object);
    a client sending a header or string of that name is not signed in."""
    from access_support import signed_in
    from dashboard.auth import IN_PROCESS_USER
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    with signed_in(monkeypatch, tmp_path):
        client = dash_app.server.test_client()
        assert client.get("/_dash-layout").status_code == 401
        assert client.get("/_dash-layout", headers={IN_PROCESS_USER: "committee"}).status_code == 401
        assert client.get("/_dash-layout", environ_base={IN_PROCESS_USER: "committee"}).status_code == 401
        assert client.get("/_dash-layout", environ_base={IN_PROCESS_USER: COMMITTEE}).status_code == 200


def test_the_warmer_fills_the_committees_views_when_sign_in_is_on(dash_app, mini_root, monkeypatch, tmp_path):
    from access_support import signed_in
    from dashboard.warm import warm
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    with signed_in(monkeypatch, tmp_path):
        timings = warm("latest", pages=["/enrollment"], app=dash_app)
    assert list(timings) == ["Enrollment"]
